//! `dales eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use dales::run::{AnyConfig, RunDir, evaluate, files, first_logits};

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
    let run = RunDir::open(&args.run_dir)?;
    let task = run.test_task(args.data.as_deref())?;
    let ckpt = args.run_dir.join(files::CHECKPOINT);
    match &run.config {
        AnyConfig::FeedForward(_) => {
            let (_, model, kind) = run.feed_forward()?;
            let (loss, error) = evaluate(&model, task.as_ref(), 1000);
            println!(
                "{}: {kind} model, test loss {loss:.4}, test error {error:.2}% ({} images)",
                ckpt.display(),
                task.len()
            );
            if let Some(out) = &args.logits_out {
                let logits = first_logits(&model, task.as_ref(), 8);
                let json = serde_json::json!({ "logits": logits, "kind": kind.name() });
                dales::io::write_atomic(out, serde_json::to_string_pretty(&json)?.as_bytes())?;
                println!(
                    "logits of the first {} test images: {}",
                    logits.len(),
                    out.display()
                );
            }
        }
        AnyConfig::Sequence(config) => {
            if args.logits_out.is_some() {
                bail!("--logits-out is for feed-forward checkpoints (the reference's format)");
            }
            let (_, model) = run.sequence()?;
            let (loss, error) = evaluate(&model, task.as_ref(), 1000);
            println!(
                "{}: {} model, {} steps, test loss {loss:.4}, test error {error:.2}% ({} sequences)",
                ckpt.display(),
                config.model.kind,
                model.steps(),
                task.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
