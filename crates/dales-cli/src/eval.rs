//! `dales eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use dales::checkpoint::load_mlp;
use dales::config::TrainConfig;
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
    let config = TrainConfig::from_file(&args.run_dir.join(files::CONFIG))
        .with_context(|| format!("{} is not a dales run directory", args.run_dir.display()))?;
    let data_dir = args.data.clone().or(config.data.dir.clone());
    let data = match &data_dir {
        Some(d) => MnistLike::load_dir(d)?,
        None => MnistLike::load_default()?,
    };
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
