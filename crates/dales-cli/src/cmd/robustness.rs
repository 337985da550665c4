//! `dales robustness`: accuracy of trained sequence models under an external drive of growing
//! amplitude (spec C4), several runs side by side.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use dales::robustness::{DriveKind, Sweep};

use dales::plot;

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
    #[arg(long, default_value = "step")]
    pub drive: DriveKind,
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

pub fn run(args: RobustnessArgs) -> Result<ExitCode> {
    let sweep = Sweep {
        xi: args.xi.clone(),
        drive: args.drive,
        limit: args.limit,
        data: args.data.clone(),
    }
    .cov(args.cov);
    sweep.validate()?;
    let mut results = Vec::new();
    for dir in &args.runs {
        let result = sweep.run(dir, |xi, accuracy| {
            eprintln!("{}: ξ = {xi}: accuracy {accuracy:.2}%", dir.display());
        })?;
        results.push(result);
    }
    sweep.write(&args.out, &results)?;
    plot::save(
        &[plot::sweep(&sweep, &results)],
        &args.out.join("robustness"),
    )?;
    print!("{}", sweep.table(&results));
    eprintln!(
        "wrote robustness.csv, robustness.md and robustness.png/.svg in {}",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
