//! `dales train`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use dales::config::{PRESETS, SEQ_PRESETS, TrainConfig};
use dales::device::DeviceChoice;
use dales::learner::ModelSpec;
use dales::nn::MlpConfig;
use dales::nn::seq::{SeqConfig, SeqKind};
use dales::run::{Dataset, Outcome, Trainer, files};
use indicatif::MultiProgress;

use crate::plot;
use crate::progress::Reporter;

/// Train a model into a run directory (config.toml, metrics.csv, checkpoint.safetensors,
/// summary.json, curves.png/.svg). Ctrl-C saves the state; `--resume` continues it.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Paper preset [default: dann]. Feed-forward (Fashion-MNIST images): mlp, layernorm,
    /// columnei, dann, dann-nocorr, dann-subtractive. Sequential (permuted pixel sequences, the
    /// adaptation paper's psMNIST setting): rnn-relu, rnn-tanh, rnn-softplus, rnn-gamma,
    /// rnn-gamma-het, arun; add -small for the CPU-sized variant (49 steps, H 64).
    #[arg(long, conflicts_with_all = ["config", "resume"])]
    pub preset: Option<String>,
    /// A TOML file with every setting of the run (see configs/).
    #[arg(long, conflicts_with = "resume")]
    pub config: Option<PathBuf>,
    /// Continue the interrupted run in this directory.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// Directory holding the four IDX files [default: /usr/share/datasets/fashion-mnist].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Number of epochs (presets: 50).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed of the initialisation and the batch order (presets: 1).
    #[arg(long, conflicts_with = "resume")]
    pub seed: Option<u64>,
    /// Hold this many training images out and evaluate on them instead of the test set.
    #[arg(long, conflicts_with = "resume")]
    pub validation: Option<usize>,
    /// Run directory [default: runs/<kind>-seed<seed>].
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// cpu, or gpu (a dales built with --features gpu).
    #[arg(long, value_parser = ["cpu", "gpu"], conflicts_with = "resume")]
    pub device: Option<String>,
}

static STOP: AtomicBool = AtomicBool::new(false);

/// Install the Ctrl-C handler once: the first Ctrl-C asks runs to save and stop, a second one
/// exits at once.
pub fn install_ctrl_c() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = ctrlc::set_handler(|| {
            if STOP.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: saving the current state (Ctrl-C again to quit at once)");
        });
    });
}

/// Whether Ctrl-C was pressed.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// A run configuration of either model family.
pub enum AnyConfig {
    /// Feed-forward networks on images.
    FeedForward(TrainConfig<MlpConfig>),
    /// Recurrent networks on pixel sequences.
    Sequence(TrainConfig<SeqConfig>),
}

/// Whether the TOML file at `path` configures a sequence model (its `model.kind` names one).
pub fn is_sequence_config(path: &Path) -> Result<bool> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: toml::Table = text
        .parse()
        .with_context(|| format!("parsing {} as TOML", path.display()))?;
    let kind = value
        .get("model")
        .and_then(|m| m.get("kind"))
        .and_then(|k| k.as_str());
    Ok(kind.is_some_and(|k| k.parse::<SeqKind>().is_ok()))
}

/// The configuration a `dales train` invocation asks for.
pub fn resolve_config(args: &TrainArgs) -> Result<AnyConfig> {
    let config = match (&args.preset, &args.config) {
        (_, Some(path)) if is_sequence_config(path)? => {
            AnyConfig::Sequence(TrainConfig::from_file(path)?)
        }
        (_, Some(path)) => AnyConfig::FeedForward(TrainConfig::from_file(path)?),
        (Some(name), None) if TrainConfig::is_sequence_preset(name) => {
            AnyConfig::Sequence(TrainConfig::sequence_preset(name)?)
        }
        (Some(name), None) => AnyConfig::FeedForward(TrainConfig::preset(name).map_err(|_| {
            anyhow::anyhow!(
                "unknown preset {name:?}: expected one of {}, {}, or copy-MODEL[-small] with MODEL \
                 a sequence model (the copy task)",
                PRESETS.join(", "),
                SEQ_PRESETS.join(", ")
            )
        })?),
        (None, None) => AnyConfig::FeedForward(TrainConfig::preset("dann")?),
    };
    Ok(match config {
        AnyConfig::FeedForward(mut c) => {
            apply_overrides(&mut c, args)?;
            AnyConfig::FeedForward(c)
        }
        AnyConfig::Sequence(mut c) => {
            apply_overrides(&mut c, args)?;
            AnyConfig::Sequence(c)
        }
    })
}

fn apply_overrides<M: ModelSpec>(config: &mut TrainConfig<M>, args: &TrainArgs) -> Result<()> {
    if let Some(dir) = &args.data {
        config.data.dir = Some(dir.clone());
    }
    if let Some(e) = args.epochs {
        config.epochs = e;
    }
    if let Some(s) = args.seed {
        config.seed = s;
    }
    if let Some(v) = args.validation {
        config.data.validation = v;
    }
    if let Some(d) = &args.device {
        config.device = if d == "gpu" {
            DeviceChoice::Gpu
        } else {
            DeviceChoice::Cpu
        };
    }
    config.validate()?;
    Ok(())
}

pub fn run(args: TrainArgs) -> Result<ExitCode> {
    install_ctrl_c();
    match &args.resume {
        Some(dir) => {
            if is_sequence_config(&dir.join(files::CONFIG))? {
                resume::<SeqConfig>(dir, &args)
            } else {
                resume::<MlpConfig>(dir, &args)
            }
        }
        None => match resolve_config(&args)? {
            AnyConfig::FeedForward(c) => start(c, &args),
            AnyConfig::Sequence(c) => start(c, &args),
        },
    }
}

fn resume<M: ModelSpec>(dir: &Path, args: &TrainArgs) -> Result<ExitCode> {
    let trainer = Trainer::<M>::resume(dir, args.data.clone(), args.epochs)
        .with_context(|| format!("resuming the run in {}", dir.display()))?;
    finish(trainer, dir.to_path_buf())
}

fn start<M: ModelSpec>(config: TrainConfig<M>, args: &TrainArgs) -> Result<ExitCode> {
    let dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("{}-seed{}", config.model.name(), config.seed))
    });
    eprintln!(
        "dales train: {} model, {} epochs, batch {}, lr {}, seed {}, data {}",
        config.model.name(),
        config.epochs,
        config.batch_size,
        config.optim.lr,
        config.seed,
        Dataset::describe_dir(&config)
    );
    let data = Dataset::load(&config)?;
    let trainer = Trainer::new(config, data, &dir)?;
    eprint!("update rules:\n{}", trainer.optimizer().rules().describe());
    finish(trainer, dir)
}

fn finish<M: ModelSpec>(mut trainer: Trainer<M>, dir: PathBuf) -> Result<ExitCode> {
    let name = trainer.config().model.name();
    let outcome = train_to_end(&mut trainer, &dir, &name, None)?;
    let s = trainer.summary();
    match outcome {
        Outcome::Finished => {
            eprintln!(
                "done: {} epochs, final {} error {:.2}% (best {:.2}%), {:.0} s; run directory {}",
                s.epochs_done,
                s.eval_set,
                s.final_test_error.unwrap_or(f64::NAN),
                s.best_test_error.unwrap_or(f64::NAN),
                s.wall_seconds,
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Interrupted => {
            eprintln!(
                "stopped after {} steps; continue with: dales train --resume {}",
                s.steps,
                dir.display()
            );
            Ok(ExitCode::from(130))
        }
    }
}

/// Run `trainer` with progress reporting, then draw its curves.
pub fn train_to_end<M: ModelSpec>(
    trainer: &mut Trainer<M>,
    dir: &Path,
    name: &str,
    multi: Option<MultiProgress>,
) -> Result<Outcome> {
    let mut reporter = Reporter::new(name, trainer.config().epochs, multi);
    let result = trainer.run(&mut |e| reporter.on(e), &|_| stop_requested());
    reporter.finish();
    if !trainer.records().is_empty() {
        let title = format!(
            "{} seed {}",
            trainer.config().model.name(),
            trainer.config().seed
        );
        let panels = plot::run_curves(trainer.records(), trainer.eval_name(), &title);
        if let Err(e) = plot::save(&panels, &dir.join("curves")) {
            eprintln!("warning: no plot for {}: {e:#}", dir.display());
        }
    }
    result.with_context(|| format!("training the run in {}", dir.display()))
}

/// The run directory's resume file exists.
pub fn has_run(dir: &Path) -> bool {
    dir.join(files::RESUME).exists()
}
