//! `dales robustness`: accuracy of trained sequence models under an external drive of growing
//! amplitude (spec C4), several runs side by side.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use dales::config::TrainConfig;
use dales::learner::load_seq;
use dales::nn::seq::{SeqClassifier, SeqConfig};
use dales::robustness::{Drive, InputTransform, evaluate_under};
use dales::run::files;

use crate::compare::markdown_table;
use crate::eval::load_data;
use crate::plot::{self, Panel, Series};
use crate::reproduce::mean_sd;

/// Evaluate sequence runs under an external drive added to every hidden neuron (the paper's
/// step drive, ξ inside a window of 200/784 of the sequence starting at 200/784, or Gaussian
/// noise of std ξ in that window) and under the sin input transform. Writes robustness.csv,
/// robustness.md and robustness.png/.svg (accuracy vs ξ, mean over seeds per model).
#[derive(Debug, clap::Args)]
pub struct RobustnessArgs {
    /// Run directories of sequence models (from `dales train --preset arun-small`, …).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Drive amplitudes ξ (0 is the clean accuracy).
    #[arg(
        long,
        value_delimiter = ',',
        allow_negative_numbers = true,
        default_value = "0,1,2.5,5,10,20"
    )]
    pub xi: Vec<f64>,
    /// step (constant ξ in the window), noise (N(0, ξ²) per neuron and step) or mvnormal
    /// (N(ξ, c·I) per step, with c from --cov).
    #[arg(long, default_value = "step", value_parser = ["step", "noise", "mvnormal"])]
    pub drive: String,
    /// The variance c of the mvnormal drive's covariance c·I (the figure code's 2.0).
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
    pub cov: f64,
    /// Evaluate on the first N test images only [default: all].
    #[arg(long)]
    pub limit: Option<usize>,
    /// Output directory.
    #[arg(long, default_value = "runs/robustness")]
    pub out: PathBuf,
    /// Directory holding the four IDX files [default: each run's data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// One evaluated run.
struct RunResult {
    dir: PathBuf,
    kind: String,
    seed: u64,
    /// Accuracy (%) per ξ, in the order of `--xi`.
    accuracy: Vec<f64>,
    /// Accuracy (%) under SinTransform(f = 1, φ = 0, A = 0.5).
    sin: f64,
}

/// The config and model of a sequence run for the robustness tests and the analyses (an
/// image-classification run; a copy-task run is an error).
pub fn load_run(dir: &Path) -> Result<(TrainConfig<SeqConfig>, SeqClassifier)> {
    let config_path = dir.join(files::CONFIG);
    if !crate::train::is_sequence_config(&config_path)? {
        bail!(
            "{}: not a sequence-model run (its model.kind is not one of the sequence models)",
            dir.display()
        );
    }
    let config = TrainConfig::<SeqConfig>::from_file(&config_path)?;
    if config.model.copy.is_some() {
        bail!(
            "{}: a copy-task run (its config has [model.copy]); the robustness tests and the \
             analyses are for the image-classification runs",
            dir.display()
        );
    }
    let device = config.device.device()?;
    let model = load_seq(&dir.join(files::CHECKPOINT), Some(&config.model), &device)?;
    Ok((config, model))
}

/// Drive amplitudes must be finite and ≥ 0.
pub fn check_xi(xi: &[f64]) -> Result<()> {
    if let Some(bad) = xi.iter().find(|x| !(x.is_finite() && **x >= 0.0)) {
        bail!("--xi {bad}: amplitudes must be finite and ≥ 0");
    }
    Ok(())
}

pub fn run(args: RobustnessArgs) -> Result<ExitCode> {
    check_xi(&args.xi)?;
    if !(args.cov >= 0.0 && args.cov.is_finite()) {
        bail!("--cov {}: the variance must be finite and ≥ 0", args.cov);
    }
    if args.limit == Some(0) {
        bail!("--limit 0: at least one test image is needed");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut results = Vec::new();
    for dir in &args.runs {
        let (config, model) = load_run(dir)?;
        let data = load_data(args.data.as_ref().or(config.data.dir.as_ref()))?;
        let steps = model.steps();
        let mut accuracy = Vec::new();
        for &xi in &args.xi {
            let drive = match args.drive.as_str() {
                "noise" => Drive::paper_noise(xi, steps, 0),
                "mvnormal" => Drive::paper_normal(xi, args.cov, steps, 0),
                _ => Drive::paper_step(xi, steps),
            };
            let drive = (xi > 0.0).then_some(drive);
            let (_, error) =
                evaluate_under(&model, &data.test, None, drive.as_ref(), 500, args.limit)?;
            eprintln!(
                "{}: ξ = {xi}: accuracy {:.2}%",
                dir.display(),
                100.0 - error
            );
            accuracy.push(100.0 - error);
        }
        let sin = InputTransform::Sin {
            freq: 1.0,
            phase: 0.0,
            amplitude: 0.5,
        };
        let (_, sin_error) = evaluate_under(&model, &data.test, Some(&sin), None, 500, args.limit)?;
        results.push(RunResult {
            dir: dir.clone(),
            kind: config.model.kind.to_string(),
            seed: config.seed,
            accuracy,
            sin: 100.0 - sin_error,
        });
    }
    let csv = results_csv(&results, &args);
    dales::io::write_atomic(&args.out.join("robustness.csv"), csv.as_bytes())?;
    let table = summary_table(&results, &args);
    dales::io::write_atomic(&args.out.join("robustness.md"), table.as_bytes())?;
    plot::save(&[panel(&results, &args)], &args.out.join("robustness"))?;
    print!("{table}");
    eprintln!(
        "wrote robustness.csv, robustness.md and robustness.png/.svg in {}",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn results_csv(results: &[RunResult], args: &RobustnessArgs) -> String {
    let mut s = String::from("run,kind,seed,drive,xi,accuracy\n");
    for r in results {
        for (xi, acc) in args.xi.iter().zip(&r.accuracy) {
            let _ = writeln!(
                s,
                "{},{},{},{},{xi},{acc:.2}",
                r.dir.display(),
                r.kind,
                r.seed,
                args.drive
            );
        }
        let _ = writeln!(
            s,
            "{},{},{},sin_f1_a0.5,0,{:.2}",
            r.dir.display(),
            r.kind,
            r.seed,
            r.sin
        );
    }
    s
}

fn by_kind(results: &[RunResult]) -> BTreeMap<&str, Vec<&RunResult>> {
    let mut groups: BTreeMap<&str, Vec<&RunResult>> = BTreeMap::new();
    for r in results {
        groups.entry(r.kind.as_str()).or_default().push(r);
    }
    groups
}

/// Mean ± sd accuracy over seeds per model and ξ.
fn summary_table(results: &[RunResult], args: &RobustnessArgs) -> String {
    let mut header: Vec<String> = vec!["model".into(), "seeds".into()];
    header.extend(args.xi.iter().map(|xi| {
        if *xi == 0.0 {
            "clean".to_string()
        } else {
            format!("ξ = {xi}")
        }
    }));
    header.push("sin (f 1, A 0.5)".into());
    let rows: Vec<Vec<String>> = by_kind(results)
        .into_iter()
        .map(|(kind, runs)| {
            let seeds: Vec<String> = runs.iter().map(|r| r.seed.to_string()).collect();
            let mut row = vec![kind.to_string(), seeds.join(", ")];
            for i in 0..args.xi.len() {
                let v: Vec<f64> = runs.iter().map(|r| r.accuracy[i]).collect();
                let (m, sd) = mean_sd(&v);
                row.push(format!("{m:.1} ± {sd:.1}"));
            }
            let (m, sd) = mean_sd(&runs.iter().map(|r| r.sin).collect::<Vec<_>>());
            row.push(format!("{m:.1} ± {sd:.1}"));
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    format!(
        "Test accuracy (%) under a {} drive of amplitude ξ, mean ± sd over seeds\n\n{}",
        args.drive,
        markdown_table(&header, &rows)
    )
}

fn panel(results: &[RunResult], args: &RobustnessArgs) -> Panel {
    let series = by_kind(results)
        .into_iter()
        .map(|(kind, runs)| Series {
            label: kind.to_string(),
            points: args
                .xi
                .iter()
                .enumerate()
                .map(|(i, &xi)| {
                    let v: Vec<f64> = runs.iter().map(|r| r.accuracy[i]).collect();
                    (xi, mean_sd(&v).0)
                })
                .collect(),
        })
        .collect();
    Panel {
        title: format!("accuracy under a {} drive", args.drive),
        x_label: "drive amplitude ξ".into(),
        y_label: "test accuracy (%)".into(),
        series,
    }
}
