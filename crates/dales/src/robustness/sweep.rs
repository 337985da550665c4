//! The robustness sweep of the adaptation paper (spec C4, `dales robustness`): trained
//! sequence runs evaluated under an external drive of each amplitude `ξ` and under the sin
//! input transform, with the tables that compare them.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::{Drive, InputTransform, evaluate_under};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::report::{markdown_table, mean_sd};
use crate::run::RunDir;

/// The family of drives a sweep applies at each amplitude `ξ`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DriveKind {
    /// `ξ` inside the paper's window ([`Drive::paper_step`]).
    Step,
    /// `N(0, ξ²)` per neuron and step in that window ([`Drive::paper_noise`]).
    Noise,
    /// `N(ξ, c·I)` per step in that window ([`Drive::paper_normal`]), with the variance `c`.
    MvNormal {
        /// The variance `c`.
        cov: f64,
    },
}

impl DriveKind {
    /// The drive of amplitude `xi` over `steps` steps (none at `ξ = 0`).
    pub fn at(self, xi: f64, steps: usize) -> Option<Drive> {
        (xi > 0.0).then(|| match self {
            DriveKind::Step => Drive::paper_step(xi, steps),
            DriveKind::Noise => Drive::paper_noise(xi, steps, 0),
            DriveKind::MvNormal { cov } => Drive::paper_normal(xi, cov, steps, 0),
        })
    }
}

impl fmt::Display for DriveKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DriveKind::Step => "step",
            DriveKind::Noise => "noise",
            DriveKind::MvNormal { .. } => "mvnormal",
        })
    }
}

/// `step`, `noise` or `mvnormal` (with the figure code's variance 2; set another with
/// [`Sweep::cov`]).
impl FromStr for DriveKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "step" => Ok(DriveKind::Step),
            "noise" => Ok(DriveKind::Noise),
            "mvnormal" => Ok(DriveKind::MvNormal { cov: 2.0 }),
            other => Err(format!(
                "unknown drive `{other}`: expected step, noise or mvnormal"
            )),
        }
    }
}

/// A robustness sweep: the amplitudes, the drive, and what is evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// Drive amplitudes `ξ` (0 is the clean accuracy).
    pub xi: Vec<f64>,
    /// The drive.
    pub drive: DriveKind,
    /// Evaluate on the first this many test images only (all with `None`).
    pub limit: Option<usize>,
    /// The dataset directory (default: each run's).
    pub data: Option<PathBuf>,
}

/// The sin input transform of the paper's `--test` mode: `SinTransform(f = 1, φ = 0, A = 0.5)`.
pub const SIN_TEST: InputTransform = InputTransform::Sin {
    freq: 1.0,
    phase: 0.0,
    amplitude: 0.5,
};

/// One evaluated run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunResult {
    /// The run directory.
    pub dir: PathBuf,
    /// Its model kind.
    pub kind: String,
    /// Its seed.
    pub seed: u64,
    /// Accuracy (%) per `ξ`, in the order of [`Sweep::xi`].
    pub accuracy: Vec<f64>,
    /// Accuracy (%) under [`SIN_TEST`].
    pub sin: f64,
}

impl Sweep {
    /// The paper's amplitudes `0, 1, 2.5, 5, 10, 20` of the step drive, on every test image.
    pub fn paper() -> Self {
        Sweep {
            xi: vec![0.0, 1.0, 2.5, 5.0, 10.0, 20.0],
            drive: DriveKind::Step,
            limit: None,
            data: None,
        }
    }

    /// The variance of an `mvnormal` drive (ignored by the others).
    pub fn cov(mut self, cov: f64) -> Self {
        if let DriveKind::MvNormal { cov: c } = &mut self.drive {
            *c = cov;
        }
        self
    }

    /// Check the numbers; errors name the option.
    pub fn validate(&self) -> Result<()> {
        check_xi(&self.xi)?;
        if let DriveKind::MvNormal { cov } = self.drive
            && !(cov >= 0.0 && cov.is_finite())
        {
            return Err(Error::option(
                "--cov",
                cov,
                "the variance must be finite and ≥ 0",
            ));
        }
        if self.limit == Some(0) {
            return Err(Error::option(
                "--limit",
                0,
                "at least one test image is needed",
            ));
        }
        Ok(())
    }

    /// Evaluate the sequence run in `dir`; `progress(ξ, accuracy)` is told each amplitude's
    /// result as it comes.
    pub fn run(&self, dir: &Path, mut progress: impl FnMut(f64, f64)) -> Result<RunResult> {
        self.validate()?;
        let run = RunDir::open(dir)?;
        let (config, model) = run.image_sequence()?;
        let task = run.test_task(self.data.as_deref())?;
        let steps = task.steps();
        let mut accuracy = Vec::with_capacity(self.xi.len());
        for &xi in &self.xi {
            let drive = self.drive.at(xi, steps);
            let (_, error) =
                evaluate_under(&model, task.as_ref(), None, drive.as_ref(), 500, self.limit)?;
            progress(xi, 100.0 - error);
            accuracy.push(100.0 - error);
        }
        let (_, sin_error) = evaluate_under(
            &model,
            task.as_ref(),
            Some(&SIN_TEST),
            None,
            500,
            self.limit,
        )?;
        Ok(RunResult {
            dir: dir.to_path_buf(),
            kind: config.model.kind.to_string(),
            seed: config.seed,
            accuracy,
            sin: 100.0 - sin_error,
        })
    }

    /// Every result as CSV: `run,kind,seed,drive,xi,accuracy`, the sin transform as one more
    /// row per run.
    pub fn csv(&self, results: &[RunResult]) -> String {
        let mut s = String::from("run,kind,seed,drive,xi,accuracy\n");
        for r in results {
            let (dir, kind, seed) = (r.dir.display(), &r.kind, r.seed);
            for (xi, acc) in self.xi.iter().zip(&r.accuracy) {
                let _ = writeln!(s, "{dir},{kind},{seed},{},{xi},{acc:.2}", self.drive);
            }
            let _ = writeln!(s, "{dir},{kind},{seed},sin_f1_a0.5,0,{:.2}", r.sin);
        }
        s
    }

    /// Mean ± sd accuracy over seeds per model and `ξ`, as a titled markdown table.
    pub fn table(&self, results: &[RunResult]) -> String {
        let mut header: Vec<String> = vec!["model".into(), "seeds".into()];
        header.extend(self.xi.iter().map(|xi| {
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
                for i in 0..self.xi.len() {
                    let (m, sd) = mean_sd(&runs.iter().map(|r| r.accuracy[i]).collect::<Vec<_>>());
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
            self.drive,
            markdown_table(&header, &rows)
        )
    }

    /// Mean accuracy over seeds against `ξ`, one curve per model.
    pub fn curves(&self, results: &[RunResult]) -> Vec<(String, Vec<(f64, f64)>)> {
        by_kind(results)
            .into_iter()
            .map(|(kind, runs)| {
                let points = self
                    .xi
                    .iter()
                    .enumerate()
                    .map(|(i, &xi)| {
                        let v: Vec<f64> = runs.iter().map(|r| r.accuracy[i]).collect();
                        (xi, mean_sd(&v).0)
                    })
                    .collect();
                (kind.to_string(), points)
            })
            .collect()
    }
}

impl Sweep {
    /// Write `robustness.csv` ([`Sweep::csv`]) and `robustness.md` ([`Sweep::table`]) into
    /// `out` (created).
    pub fn write(&self, out: &Path, results: &[RunResult]) -> Result<()> {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        write_atomic(&out.join("robustness.csv"), self.csv(results).as_bytes())?;
        write_atomic(&out.join("robustness.md"), self.table(results).as_bytes())
    }
}

/// Drive amplitudes must be finite and ≥ 0.
pub fn check_xi(xi: &[f64]) -> Result<()> {
    if let Some(bad) = xi.iter().find(|x| !(x.is_finite() && **x >= 0.0)) {
        return Err(Error::option(
            "--xi",
            bad,
            "amplitudes must be finite and ≥ 0",
        ));
    }
    Ok(())
}

fn by_kind(results: &[RunResult]) -> BTreeMap<&str, Vec<&RunResult>> {
    let mut groups: BTreeMap<&str, Vec<&RunResult>> = BTreeMap::new();
    for r in results {
        groups.entry(r.kind.as_str()).or_default().push(r);
    }
    groups
}
