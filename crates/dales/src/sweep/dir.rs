//! A sweep set up in its directory: the sweep file planned, its manifest written, and the
//! runs still to train; a SLURM job array for them written and submitted. The command line
//! and the Python package start every sweep here.

use std::path::{Path, PathBuf};

use super::file::SweepFile;
use super::manifest::{Manifest, clear_failure, status};
use super::plan::{Plan, PlannedRun};
use super::slurm::{SlurmOptions, script};
use crate::error::{Error, Result};
use crate::io::write_atomic;

/// A sweep with its manifest written.
#[derive(Debug, Clone)]
pub struct SweepDir {
    /// The sweep file.
    pub file: SweepFile,
    /// Its runs.
    pub plan: Plan,
    /// The manifest written into `dir`.
    pub manifest: Manifest,
    /// The sweep directory (absolute).
    pub dir: PathBuf,
}

impl SweepDir {
    /// Plan the sweep file `file` (`data`: every run's data directory) into `out` (default
    /// `runs/<sweep name>`) and write its manifest there.
    pub fn create(file: &Path, data: Option<&Path>, out: Option<&Path>) -> Result<SweepDir> {
        let file = SweepFile::read(file)?;
        let plan = file.plan(data)?;
        let manifest = Manifest::new(&file, &plan);
        let out = out.map_or_else(|| PathBuf::from("runs").join(&file.name), Path::to_path_buf);
        let dir = std::path::absolute(&out).map_err(|e| Error::io(&out, e))?;
        manifest.write(&dir)?;
        Ok(SweepDir {
            file,
            plan,
            manifest,
            dir,
        })
    }

    /// The runs neither finished nor diverged, with their directories; their recorded
    /// failures are cleared, as they are about to be tried again.
    pub fn pending(&self) -> Result<Vec<(&PlannedRun, PathBuf)>> {
        let mut pending = Vec::new();
        for run in &self.plan.runs {
            let dir = self.dir.join(&run.dir);
            if !status(&dir).done() {
                clear_failure(&dir)?;
                pending.push((run, dir));
            }
        }
        Ok(pending)
    }

    /// Write `slurm/sweep.sbatch`, the job array of the runs not yet done, each task running
    /// `dales` (the command-line tool's path); `None` when every run is done.
    pub fn write_slurm(&self, dales: &Path, options: &SlurmOptions) -> Result<Option<SlurmScript>> {
        let ids: Vec<usize> = self
            .manifest
            .runs
            .iter()
            .filter(|r| !r.status(&self.dir).done())
            .map(|r| r.id)
            .collect();
        if ids.is_empty() {
            return Ok(None);
        }
        let text = script(&self.manifest.name, &self.dir, dales, &ids, options);
        let logs = self.dir.join("slurm");
        std::fs::create_dir_all(&logs).map_err(|e| Error::io(&logs, e))?;
        let path = logs.join("sweep.sbatch");
        write_atomic(&path, text.as_bytes())?;
        Ok(Some(SlurmScript {
            path,
            tasks: ids.len(),
        }))
    }
}

/// A sweep's written sbatch script.
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmScript {
    /// Its path.
    pub path: PathBuf,
    /// Its array tasks: the runs not yet done.
    pub tasks: usize,
}

impl SlurmScript {
    /// Submit it with `sbatch`; returns the job array's id.
    pub fn submit(&self) -> Result<String> {
        let output = std::process::Command::new("sbatch")
            .arg("--parsable")
            .arg(&self.path)
            .output()
            .map_err(|e| {
                let hint = "running sbatch (is SLURM installed and on PATH?)";
                Error::io(
                    Path::new("sbatch"),
                    std::io::Error::new(e.kind(), format!("{hint}: {e}")),
                )
            })?;
        if !output.status.success() {
            return Err(Error::run(
                &self.path,
                format!(
                    "sbatch failed ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            ));
        }
        let reply = String::from_utf8_lossy(&output.stdout);
        Ok(reply
            .trim()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string())
    }
}
