//! What a run directory records about its progress: one [`EpochRecord`] per epoch in
//! `metrics.csv`, and the [`Summary`] in `summary.json`.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Global step at the end of the epoch.
    pub step: u64,
    /// Mean training loss over the epoch's batches (before each update).
    pub train_loss: f64,
    /// Training error (%) over the epoch (before each update).
    pub train_error: f64,
    /// Loss on the evaluation set after the epoch's last update.
    pub test_loss: f64,
    /// Error (%) on the evaluation set after the epoch's last update.
    pub test_error: f64,
    /// Learning rate.
    pub lr: f64,
    /// Training seconds since the start of the run (evaluation included).
    pub seconds: f64,
}

/// The CSV header of `metrics.csv`.
pub const METRICS_HEADER: &str =
    "epoch,step,train_loss,train_error,test_loss,test_error,lr,seconds";

/// Render records as `metrics.csv`.
pub fn metrics_csv(records: &[EpochRecord]) -> String {
    let mut s = format!("{METRICS_HEADER}\n");
    for r in records {
        let _ = writeln!(
            s,
            "{},{},{:.6},{:.4},{:.6},{:.4},{},{:.3}",
            r.epoch,
            r.step,
            r.train_loss,
            r.train_error,
            r.test_loss,
            r.test_error,
            r.lr,
            r.seconds
        );
    }
    s
}

/// Parse a `metrics.csv` written by [`metrics_csv`].
pub fn read_metrics(path: &Path) -> Result<Vec<EpochRecord>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut lines = text.lines();
    if lines.next() != Some(METRICS_HEADER) {
        return Err(Error::config(
            path.display().to_string(),
            "(header)",
            format!("a metrics file starting with `{METRICS_HEADER}`"),
        ));
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            let bad = || {
                Error::config(
                    format!("{}:{}", path.display(), i + 2),
                    line,
                    "8 comma-separated numbers",
                )
            };
            if f.len() != 8 {
                return Err(bad());
            }
            let n = |k: usize| f[k].parse::<f64>().map_err(|_| bad());
            Ok(EpochRecord {
                epoch: f[0].parse().map_err(|_| bad())?,
                step: f[1].parse().map_err(|_| bad())?,
                train_loss: n(2)?,
                train_error: n(3)?,
                test_loss: n(4)?,
                test_error: n(5)?,
                lr: n(6)?,
                seconds: n(7)?,
            })
        })
        .collect()
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Model kind.
    pub kind: String,
    /// Seed.
    pub seed: u64,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Epochs configured.
    pub epochs: usize,
    /// Whether every configured epoch is done.
    pub finished: bool,
    /// `test` or `validation`.
    pub eval_set: String,
    /// Error (%) after the last completed epoch.
    pub final_test_error: Option<f64>,
    /// Loss after the last completed epoch.
    pub final_test_loss: Option<f64>,
    /// Mean training loss of the last completed epoch.
    pub final_train_loss: Option<f64>,
    /// Lowest per-epoch error (%).
    pub best_test_error: Option<f64>,
    /// Training seconds (evaluation included).
    pub wall_seconds: f64,
    /// Updates done.
    pub steps: u64,
    /// dales version.
    pub dales_version: String,
}

impl Summary {
    /// Read `summary.json`.
    pub fn read(path: &Path) -> Result<Summary> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::config(path.display().to_string(), e, "a dales summary.json"))
    }
}
