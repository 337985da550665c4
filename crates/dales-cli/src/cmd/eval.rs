//! `dales eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use dales::learner::ModelSpec;
use dales::run::{AnyConfig, RunDir, evaluate, files, first_logits};

/// Evaluate a run's checkpoint on the test set (loss and error), optionally writing the logits
/// of the first 8 test images as JSON ({"logits": [[...], ...]}) for the reference's
/// check_checkpoint.py / check_rnn_checkpoint.py / check_conv_checkpoint.py --compare.
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
                write_logits(out, first_logits(&model, task.as_ref(), 8), kind.name())?;
            }
        }
        AnyConfig::Recurrent(config) => {
            let (_, model) = run.recurrent()?;
            let (loss, error) = evaluate(&model, task.as_ref(), 1000);
            let score = if config.model.adding.is_some() {
                format!("test MSE {loss:.4}")
            } else {
                format!("test loss {loss:.4}, test error {error:.2}%")
            };
            println!(
                "{}: {} model, {score} ({} sequences)",
                ckpt.display(),
                config.model.name(),
                task.len()
            );
            for (name, nse) in model.nse() {
                println!("{name}: {nse:.4}");
            }
            if let Some(out) = &args.logits_out {
                write_logits(
                    out,
                    first_logits(&model, task.as_ref(), 8),
                    config.model.cell.name(),
                )?;
            }
        }
        AnyConfig::Conv(config) => {
            let (_, model) = run.conv()?;
            let (loss, error) = evaluate(&model, task.as_ref(), config.model.eval_batch());
            let name = config.model.name();
            println!(
                "{}: {name} model, test loss {loss:.4}, test error {error:.2}% ({} images)",
                ckpt.display(),
                task.len()
            );
            if let Some(out) = &args.logits_out {
                write_logits(out, first_logits(&model, task.as_ref(), 8), &name)?;
            }
        }
        AnyConfig::Sequence(config) => {
            if args.logits_out.is_some() {
                bail!(
                    "--logits-out is for the feed-forward, convolutional and recurrent E/I checkpoints (the reference's formats)"
                );
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

/// Write `{"logits": [...], "kind": kind}` for the reference's `--compare`.
fn write_logits(out: &std::path::Path, logits: Vec<Vec<f64>>, kind: &str) -> Result<()> {
    let json = serde_json::json!({ "logits": logits, "kind": kind });
    dales::io::write_atomic(out, serde_json::to_string_pretty(&json)?.as_bytes())?;
    println!(
        "logits of the first {} test examples: {}",
        logits.len(),
        out.display()
    );
    Ok(())
}
