//! `dales train`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use dales::config::TrainConfig;
use dales::device::DeviceChoice;
use dales::learner::ModelSpec;
use dales::nn::MlpConfig;
use dales::nn::convnet::ConvConfig;
use dales::nn::recurrent_net::RecurrentConfig;
use dales::nn::seq::SeqConfig;
use dales::run::{AnyConfig, Dataset, Outcome, Overrides, RunDir, StartOptions, Trainer, memory};

use crate::training::run_to_end;

/// Train a model into a run directory (config.toml, metrics.csv, checkpoint.safetensors,
/// summary.json, curves.png/.svg). Ctrl-C saves the state; `--resume` continues it.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Paper preset [default: dann]. Feed-forward (Fashion-MNIST images): mlp, layernorm,
    /// columnei, dann, dann-nocorr, dann-subtractive, dann-dngd (the diagonal natural
    /// gradient). Convolutional: conv-dann, conv-dann-nocorr, conv-standard, conv-columnei
    /// (Fashion-MNIST), vgg16-dann, vgg16-standard (CIFAR-10, with --data). Sequential (permuted pixel sequences, the adaptation paper's psMNIST
    /// setting): rnn-relu, rnn-tanh, rnn-softplus, rnn-gamma, rnn-gamma-het, arun, lstm, gru;
    /// add -small for the CPU-sized variant (49 steps, H 64); copy-MODEL[-small] for the copy
    /// task. Recurrent E/I (row-sequential images, the spectral
    /// paper): rowseq-rnn, rowseq-dann, rowseq-colei, and rowseq3-… with three layers; the
    /// adding problem: adding-rnn, adding-dann, adding-colei.
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
    /// Replace the run already in the --out directory (its files are deleted first).
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Refuse a model whose estimated memory (model, optimiser state, batch buffers) exceeds
    /// this size, e.g. 8G [default: the memory available on this machine].
    #[arg(long, value_name = "SIZE", conflicts_with = "resume")]
    pub max_memory: Option<String>,
}

impl TrainArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            data: self.data.clone(),
            epochs: self.epochs,
            seed: self.seed,
            validation: self.validation,
            device: self.device.as_deref().map(|d| match d {
                "gpu" => DeviceChoice::Gpu,
                _ => DeviceChoice::Cpu,
            }),
        }
    }
}

pub fn run(args: TrainArgs) -> Result<ExitCode> {
    crate::interrupt::install();
    if let Some(dir) = &args.resume {
        return match RunDir::open(dir)?.config {
            AnyConfig::FeedForward(_) => resume::<MlpConfig>(dir, &args),
            AnyConfig::Sequence(_) => resume::<SeqConfig>(dir, &args),
            AnyConfig::Recurrent(_) => resume::<RecurrentConfig>(dir, &args),
            AnyConfig::Conv(_) => resume::<ConvConfig>(dir, &args),
        };
    }
    let mut config = match (&args.preset, &args.config) {
        (_, Some(path)) => AnyConfig::from_file(path)?,
        (Some(name), None) => AnyConfig::preset(name)?,
        (None, None) => AnyConfig::preset("dann")?,
    };
    config.apply(&args.overrides())?;
    match config {
        AnyConfig::FeedForward(c) => start(c, &args),
        AnyConfig::Sequence(c) => start(c, &args),
        AnyConfig::Recurrent(c) => start(c, &args),
        AnyConfig::Conv(c) => start(c, &args),
    }
}

fn resume<M: ModelSpec>(dir: &Path, args: &TrainArgs) -> Result<ExitCode> {
    let trainer = Trainer::<M>::resume(dir, args.data.clone(), args.epochs)
        .with_context(|| format!("resuming the run in {}", dir.display()))?;
    finish(trainer, dir)
}

fn start<M: ModelSpec>(config: TrainConfig<M>, args: &TrainArgs) -> Result<ExitCode> {
    let dir = args.out.clone().unwrap_or_else(|| config.default_run_dir());
    eprintln!(
        "dales train: {} model, {} epochs, batch {}, lr {}, seed {}, data {}",
        config.name(),
        config.epochs,
        config.batch_size,
        config.optim.lr,
        config.seed,
        Dataset::describe(&config)
    );
    let options = StartOptions {
        overwrite: args.overwrite,
        max_memory: args
            .max_memory
            .as_deref()
            .map(memory::parse_size)
            .transpose()?,
    };
    let data = Dataset::load(&config)?;
    let trainer = Trainer::start(config, data, &dir, options)?;
    eprint!("update rules:\n{}", trainer.optimizer().describe());
    finish(trainer, &dir)
}

fn finish<M: ModelSpec>(mut trainer: Trainer<M>, dir: &Path) -> Result<ExitCode> {
    let name = trainer.config().name();
    let outcome = run_to_end(&mut trainer, dir, &name, None)?;
    let s = trainer.summary();
    match outcome {
        Outcome::Finished => {
            let (last, best) = (
                s.final_test_error.unwrap_or(f64::NAN),
                s.best_test_error.unwrap_or(f64::NAN),
            );
            let result = if trainer.is_regression() {
                format!("final {} MSE {last:.4} (best {best:.4})", s.eval_set)
            } else {
                format!("final {} error {last:.2}% (best {best:.2}%)", s.eval_set)
            };
            eprintln!(
                "done: {} epochs, {result}, {:.0} s; run directory {}",
                s.epochs_done,
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
            Ok(ExitCode::from(crate::interrupt::exit_code()))
        }
    }
}
