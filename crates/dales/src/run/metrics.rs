//! What a run directory records about its progress: one [`EpochRecord`] per epoch in
//! `metrics.csv` (after a row for the initial model, epoch 0, when the model has probes such as
//! the spectral entropy of its recurrent matrices), and the [`Summary`] in `summary.json`.

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
    #[serde(with = "nan_as_null")]
    pub train_loss: f64,
    /// Training error (%) over the epoch (before each update).
    #[serde(with = "nan_as_null")]
    pub train_error: f64,
    /// Loss on the evaluation set after the epoch's last update.
    #[serde(with = "nan_as_null")]
    pub test_loss: f64,
    /// Error (%) on the evaluation set after the epoch's last update.
    #[serde(with = "nan_as_null")]
    pub test_error: f64,
    /// Learning rate.
    pub lr: f64,
    /// Training seconds since the start of the run (evaluation included).
    pub seconds: f64,
    /// The model's probes after the epoch ([`crate::learner::Learner::probes`]), extra
    /// columns of `metrics.csv`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "nan_as_null::probes"
    )]
    pub probes: Vec<(String, f64)>,
}

/// The metrics of an [`EpochRecord`] that may be NaN (the initial model's row has no training
/// metrics): JSON has no NaN, so they are written as `null` and read back as NaN.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_none()
        } else {
            s.serialize_f64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }

    /// The same for the values of named probes (an NSE is NaN for a single unit).
    pub mod probes {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        pub fn serialize<S: Serializer>(v: &[(String, f64)], s: S) -> Result<S::Ok, S::Error> {
            let optional: Vec<(&str, Option<f64>)> = v
                .iter()
                .map(|(n, x)| (n.as_str(), (!x.is_nan()).then_some(*x)))
                .collect();
            optional.serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<(String, f64)>, D::Error> {
            let optional = Vec::<(String, Option<f64>)>::deserialize(d)?;
            Ok(optional
                .into_iter()
                .map(|(n, x)| (n, x.unwrap_or(f64::NAN)))
                .collect())
        }
    }
}

impl EpochRecord {
    /// The probe `name`, if recorded.
    pub fn probe(&self, name: &str) -> Option<f64> {
        self.probes.iter().find(|(n, _)| n == name).map(|&(_, v)| v)
    }
}

/// The CSV header of `metrics.csv`.
pub const METRICS_HEADER: &str =
    "epoch,step,train_loss,train_error,test_loss,test_error,lr,seconds";

/// Render records as `metrics.csv`: the base columns, then one column per probe of the first
/// record (every record of a run has the same probes). An initial-model row has epoch 0 and
/// `NaN` training metrics.
pub fn metrics_csv(records: &[EpochRecord]) -> String {
    let names: Vec<&str> = records
        .first()
        .map(|r| r.probes.iter().map(|(n, _)| n.as_str()).collect())
        .unwrap_or_default();
    let mut s = String::from(METRICS_HEADER);
    for n in &names {
        s.push(',');
        s.push_str(n);
    }
    s.push('\n');
    for r in records {
        let _ = write!(
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
        for n in &names {
            let _ = write!(s, ",{:.6}", r.probe(n).unwrap_or(f64::NAN));
        }
        s.push('\n');
    }
    s
}

/// Parse a `metrics.csv` written by [`metrics_csv`] (the initial-model row included).
pub fn read_metrics(path: &Path) -> Result<Vec<EpochRecord>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(extra) = header.strip_prefix(METRICS_HEADER) else {
        return Err(Error::config(
            path.display().to_string(),
            "(header)",
            format!("a metrics file starting with `{METRICS_HEADER}`"),
        ));
    };
    let names: Vec<String> = extra.split(',').skip(1).map(str::to_string).collect();
    csv_rows(path, lines, 8 + names.len(), |f| {
        Some(EpochRecord {
            epoch: f.get(0)?,
            step: f.get(1)?,
            train_loss: f.get(2)?,
            train_error: f.get(3)?,
            test_loss: f.get(4)?,
            test_error: f.get(5)?,
            lr: f.get(6)?,
            seconds: f.get(7)?,
            probes: names
                .iter()
                .enumerate()
                .map(|(k, name)| Some((name.clone(), f.get(8 + k)?)))
                .collect::<Option<_>>()?,
        })
    })
}

/// One evaluation between updates (`data.eval_every`), a row of `evaluations.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepEvaluation {
    /// Updates done.
    pub step: u64,
    /// The epoch it fell in (1-based).
    pub epoch: usize,
    /// Loss on the evaluation set.
    pub test_loss: f64,
    /// Error (%, or the mean squared error of a regression task).
    pub test_error: f64,
}

/// The header of `evaluations.csv`.
pub const EVALUATIONS_HEADER: &str = "step,epoch,test_loss,test_error";

/// Render evaluations as `evaluations.csv`.
pub fn evaluations_csv(evaluations: &[StepEvaluation]) -> String {
    let mut s = format!("{EVALUATIONS_HEADER}\n");
    for e in evaluations {
        let _ = writeln!(
            s,
            "{},{},{:.6},{:.4}",
            e.step, e.epoch, e.test_loss, e.test_error
        );
    }
    s
}

/// Parse an `evaluations.csv` written by [`evaluations_csv`].
pub fn read_evaluations(path: &Path) -> Result<Vec<StepEvaluation>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut lines = text.lines();
    if lines.next() != Some(EVALUATIONS_HEADER) {
        return Err(Error::config(
            path.display().to_string(),
            "(header)",
            format!("an evaluations file starting with `{EVALUATIONS_HEADER}`"),
        ));
    }
    csv_rows(path, lines, 4, |f| {
        Some(StepEvaluation {
            step: f.get(0)?,
            epoch: f.get(1)?,
            test_loss: f.get(2)?,
            test_error: f.get(3)?,
        })
    })
}

/// The comma-separated fields of one data row.
struct Fields<'a>(Vec<&'a str>);

impl Fields<'_> {
    /// Field `k` parsed, `None` when it does not parse.
    fn get<T: std::str::FromStr>(&self, k: usize) -> Option<T> {
        self.0[k].parse().ok()
    }
}

/// The data rows of the CSV file `path` (after its header line; blank lines skipped), each of
/// `columns` fields read by `parse`; a row with another number of fields or a field that does
/// not parse is an error naming the file, the line and the row.
fn csv_rows<'a, T>(
    path: &Path,
    lines: std::str::Lines<'a>,
    columns: usize,
    parse: impl Fn(&Fields<'a>) -> Option<T>,
) -> Result<Vec<T>> {
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let fields = Fields(line.split(',').collect());
            let row = if fields.0.len() == columns {
                parse(&fields)
            } else {
                None
            };
            row.ok_or_else(|| {
                Error::config(
                    format!("{}:{}", path.display(), i + 2),
                    line,
                    format!("{columns} comma-separated numbers"),
                )
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
