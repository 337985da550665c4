//! The sweep directory's manifest, `sweep.json`: every run's id, setting, seed, directory and
//! configuration. `dales sweep task DIR ID` trains run `ID` from it alone (a scheduler's task
//! needs neither the sweep file nor its working directory), and `collect` reads it.
//!
//! A run's state is read from its directory: finished (its summary says so), diverged (a
//! `diverged.txt`: a result, not retried), failed (an `error.txt` with the error; retried),
//! started (a resumable state) or pending.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::file::{Metric, SweepFile};
use super::plan::{Plan, value_text};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::run::{AnyConfig, Outcome, RunDir};

/// The manifest's file name in a sweep directory.
pub const MANIFEST: &str = "sweep.json";

/// The file in a run directory that records why the run failed.
pub const ERROR_FILE: &str = "error.txt";

/// The file in a run directory that records that its training diverged.
pub const DIVERGED_FILE: &str = "diverged.txt";

const FORMAT: &str = "dales-sweep/1";

/// `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// `dales-sweep/1`.
    pub format: String,
    /// The sweep's name.
    pub name: String,
    /// The sweep file it was planned from.
    pub source: PathBuf,
    /// What ranks the settings.
    pub metric: Metric,
    /// The swept keys.
    pub keys: Vec<String>,
    /// Every run, by id.
    pub runs: Vec<ManifestRun>,
}

/// One run of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestRun {
    /// Its id (its index).
    pub id: usize,
    /// Its setting's name.
    pub point: String,
    /// Its model's name.
    pub model: String,
    /// Its seed.
    pub seed: u64,
    /// Its directory, relative to the sweep directory.
    pub dir: String,
    /// The swept keys' values, as they read.
    pub settings: Vec<(String, String)>,
    /// Its configuration (TOML).
    pub config: String,
}

/// Where a run of a sweep stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Not started.
    Pending,
    /// Started and resumable.
    Started,
    /// Failed with this error.
    Failed(String),
    /// Its training diverged (a result of its setting: not trained again).
    Diverged(String),
    /// All epochs done.
    Finished,
}

impl Status {
    /// Whether the run is done: finished, or diverged.
    pub fn done(&self) -> bool {
        matches!(self, Status::Finished | Status::Diverged(_))
    }
}

impl Manifest {
    /// The manifest of `plan`, planned from `file`.
    pub fn new(file: &SweepFile, plan: &Plan) -> Manifest {
        let runs = plan
            .runs
            .iter()
            .map(|r| ManifestRun {
                id: r.id,
                point: r.point.clone(),
                model: r.config.name(),
                seed: r.seed,
                dir: r.dir.clone(),
                settings: r
                    .settings
                    .iter()
                    .map(|(k, v)| (k.clone(), value_text(v)))
                    .collect(),
                config: r.config.to_toml(),
            })
            .collect();
        Manifest {
            format: FORMAT.to_string(),
            name: file.name.clone(),
            source: std::path::absolute(&file.path).unwrap_or_else(|_| file.path.clone()),
            metric: file.metric,
            keys: plan.keys.clone(),
            runs,
        }
    }

    /// Read `DIR/sweep.json`.
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            Error::run(&path, format!("not a dales sweep manifest ({FORMAT}): {e}"))
        })?;
        if manifest.format != FORMAT {
            return Err(Error::run(
                &path,
                format!(
                    "a `{}` manifest; this dales reads {FORMAT}",
                    manifest.format
                ),
            ));
        }
        Ok(manifest)
    }

    /// Write this manifest into `dir` (created), after checking that a sweep already there is
    /// part of this one: every run it planned must be planned here with the same
    /// configuration (more seeds or values may be added; nothing may change under a run that
    /// has started).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(MANIFEST);
        if path.exists() {
            let old = Manifest::read(dir)?;
            for run in &old.runs {
                let Some(new) = self.runs.iter().find(|r| r.dir == run.dir) else {
                    return Err(Error::run(
                        &path,
                        format!(
                            "holds sweep `{}`, whose run {} this sweep does not plan; choose \
                             another --out",
                            old.name, run.dir
                        ),
                    ));
                };
                let origin = path.join(&run.dir);
                let (a, b) = (
                    AnyConfig::from_toml(&run.config, &origin),
                    AnyConfig::from_toml(&new.config, &origin),
                );
                if !matches!((a, b), (Ok(a), Ok(b)) if a == b) {
                    return Err(Error::run(
                        &path,
                        format!(
                            "holds sweep `{}`, whose run {} has another configuration than \
                             this sweep plans for it; choose another --out",
                            old.name, run.dir
                        ),
                    ));
                }
            }
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let json = serde_json::to_string_pretty(self).expect("a manifest serialises");
        write_atomic(&path, json.as_bytes())
    }

    /// Run `id`; the error names the manifest.
    pub fn run(&self, dir: &Path, id: usize) -> Result<&ManifestRun> {
        self.runs.get(id).ok_or_else(|| {
            Error::run(
                dir.join(MANIFEST),
                format!(
                    "has runs 0 … {}, no run {id}",
                    self.runs.len().saturating_sub(1)
                ),
            )
        })
    }
}

impl ManifestRun {
    /// Its configuration, parsed and validated.
    pub fn config(&self, sweep_dir: &Path) -> Result<AnyConfig> {
        let origin = sweep_dir.join(MANIFEST).join(&self.dir);
        AnyConfig::from_toml(&self.config, &origin)
    }

    /// Where it stands, read from its directory inside `sweep_dir`.
    pub fn status(&self, sweep_dir: &Path) -> Status {
        status(&sweep_dir.join(&self.dir))
    }
}

/// Where the run in `dir` stands (finished: its summary says all its configured epochs are
/// done).
pub fn status(dir: &Path) -> Status {
    if RunDir::finished(dir, 0) {
        return Status::Finished;
    }
    if let Ok(error) = std::fs::read_to_string(dir.join(DIVERGED_FILE)) {
        return Status::Diverged(error.trim_end().to_string());
    }
    if let Ok(error) = std::fs::read_to_string(dir.join(ERROR_FILE)) {
        return Status::Failed(error.trim_end().to_string());
    }
    if RunDir::resumable(dir) {
        Status::Started
    } else {
        Status::Pending
    }
}

/// Record in `dir` (created) that its run failed with `error`; `diverged`: its training
/// diverged, a result that is not retried.
pub fn record_failure(dir: &Path, error: &str, diverged: bool) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let file = if diverged { DIVERGED_FILE } else { ERROR_FILE };
    write_atomic(&dir.join(file), format!("{error}\n").as_bytes())
}

/// Forget a recorded failure of the run in `dir` (before it is tried again).
pub fn clear_failure(dir: &Path) -> Result<()> {
    let path = dir.join(ERROR_FILE);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&path, e)),
        _ => Ok(()),
    }
}

/// How a run of a sweep ended, as [`settle`] recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// All its epochs are done (now or before).
    Finished,
    /// Stopped on request; it resumes when the sweep runs again.
    Interrupted,
    /// Another process trains it (a task of the same sweep): not this run's fault, nothing
    /// recorded.
    InUse(String),
    /// Its training diverged: a result of its setting (recorded, not trained again).
    Diverged(String),
    /// Anything else: recorded in its `error.txt`, tried again by the next run of the sweep.
    Failed(String),
}

/// Record how the run in `dir` ended — a divergence or a failure goes into its directory —
/// and say which it was; the second value is the error of recording it, if that failed.
pub fn settle(dir: &Path, result: Result<Outcome>) -> (Ended, Option<Error>) {
    let error = match result {
        Ok(Outcome::Finished) => return (Ended::Finished, None),
        Ok(Outcome::Interrupted) => return (Ended::Interrupted, None),
        Err(e) => e,
    };
    let text = error.message();
    let ended = match error {
        Error::InUse { .. } => return (Ended::InUse(text), None),
        Error::Diverged { .. } => Ended::Diverged(text.clone()),
        _ => Ended::Failed(text.clone()),
    };
    let diverged = matches!(ended, Ended::Diverged(_));
    (ended, record_failure(dir, &text, diverged).err())
}
