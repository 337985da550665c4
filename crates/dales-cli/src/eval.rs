//! `dales eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use dales::checkpoint::load_mlp;
use dales::config::TrainConfig;
use dales::learner::{ModelSpec, load_seq};
use dales::nn::MlpConfig;
use dales::nn::seq::SeqConfig;
use dales::run::{evaluate, files, first_logits};
use dales_data::MnistLike;

/// Evaluate a run's checkpoint on the test set (loss and error), optionally writing the logits
/// of the first 8 test images as JSON ({"logits": [[...], ...]}) for
/// shared/reference/check_checkpoint.py --compare.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The run directory (holding checkpoint.safetensors and config.toml).
    pub run_dir: PathBuf,
    /// Directory holding the four IDX files [default: the run's data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Write the logits of the first 8 test images here.
    #[arg(long, value_name = "FILE.json")]
    pub logits_out: Option<PathBuf>,
}

pub fn run(args: EvalArgs) -> Result<ExitCode> {
    let config_path = args.run_dir.join(files::CONFIG);
    if config_path.exists() && crate::train::is_sequence_config(&config_path)? {
        return eval_sequence(&args);
    }
    let config = TrainConfig::<MlpConfig>::from_file(&config_path)
        .with_context(|| format!("{} is not a dales run directory", args.run_dir.display()))?;
    let data = load_data(args.data.as_ref().or(config.data.dir.as_ref()))?;
    let device = config.device.device()?;
    let ckpt = args.run_dir.join(files::CHECKPOINT);
    let (model, kind) = load_mlp(&ckpt, &device)?;
    let (loss, error) = evaluate(&model, &data.test, 1000);
    println!(
        "{}: {} model, test loss {loss:.4}, test error {error:.2}% ({} images)",
        ckpt.display(),
        kind,
        data.test.len()
    );
    if let Some(out) = &args.logits_out {
        let logits = first_logits(&model, &data.test, 8);
        let json = serde_json::json!({ "logits": logits, "kind": kind.name() });
        dales::io::write_atomic(out, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!(
            "logits of the first {} test images: {}",
            logits.len(),
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `dales eval` of a sequence run: the checkpoint must match the run's sequence settings.
fn eval_sequence(args: &EvalArgs) -> Result<ExitCode> {
    if args.logits_out.is_some() {
        anyhow::bail!("--logits-out is for feed-forward checkpoints (the reference's format)");
    }
    let config = TrainConfig::<SeqConfig>::from_file(&args.run_dir.join(files::CONFIG))?;
    // The copy task generates its sequences from the run's config; the others read a dataset.
    let data = match config.model.generated_data()? {
        Some(generated) => generated,
        None => load_data(args.data.as_ref().or(config.data.dir.as_ref()))?,
    };
    let ckpt = args.run_dir.join(files::CHECKPOINT);
    let model = load_seq(&ckpt, Some(&config.model), &config.device.device()?)?;
    let (loss, error) = evaluate(&model, &data.test, 1000);
    println!(
        "{}: {} model, {} steps, test loss {loss:.4}, test error {error:.2}% ({} sequences)",
        ckpt.display(),
        config.model.kind,
        model.steps(),
        data.test.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// The IDX dataset in `dir`, or Fashion-MNIST from `dataset-fashion-mnist`.
pub fn load_data(dir: Option<&PathBuf>) -> Result<MnistLike> {
    Ok(match dir {
        Some(d) => MnistLike::load_dir(d)?,
        None => MnistLike::load_default()?,
    })
}
