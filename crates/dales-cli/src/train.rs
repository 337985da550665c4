//! `dales train`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use dales::config::TrainConfig;
use dales::device::DeviceChoice;
use dales::run::{Dataset, Outcome, Trainer, files};
use indicatif::MultiProgress;

use crate::plot;
use crate::progress::Reporter;

/// Train a model into a run directory (config.toml, metrics.csv, checkpoint.safetensors,
/// summary.json, curves.png/.svg). Ctrl-C saves the state; `--resume` continues it.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Paper preset: mlp, layernorm, columnei, dann, dann-nocorr, dann-subtractive
    /// [default: dann].
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

/// The configuration a `dales train` invocation asks for.
pub fn resolve_config(args: &TrainArgs) -> Result<TrainConfig> {
    let mut config = match (&args.preset, &args.config) {
        (_, Some(path)) => TrainConfig::from_file(path)?,
        (Some(name), None) => TrainConfig::preset(name)?,
        (None, None) => TrainConfig::preset("dann")?,
    };
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
    Ok(config)
}

pub fn run(args: TrainArgs) -> Result<ExitCode> {
    install_ctrl_c();
    let (mut trainer, dir) = match &args.resume {
        Some(dir) => {
            let t = Trainer::resume(dir, args.data.clone(), args.epochs)
                .with_context(|| format!("resuming the run in {}", dir.display()))?;
            (t, dir.clone())
        }
        None => {
            let config = resolve_config(&args)?;
            let dir = args.out.clone().unwrap_or_else(|| {
                PathBuf::from("runs").join(format!("{}-seed{}", config.model.kind, config.seed))
            });
            eprintln!(
                "dales train: {} model, {} epochs, batch {}, lr {}, seed {}, data {}",
                config.model.kind,
                config.epochs,
                config.batch_size,
                config.optim.lr,
                config.seed,
                Dataset::describe_dir(&config)
            );
            let data = Dataset::load(&config)?;
            let t = Trainer::new(config, data, &dir)?;
            eprint!("update rules:\n{}", t.optimizer().rules().describe());
            (t, dir)
        }
    };
    let name = trainer.config().model.kind.to_string();
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
pub fn train_to_end(
    trainer: &mut Trainer,
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
            trainer.config().model.kind,
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
