//! Sweeps from Python: a sweep file's plan, its runs trained here or as a SLURM job array,
//! and the results of a sweep directory (or any directory of runs).

use std::path::PathBuf;

use dales::queue::QueuedRun;
use dales::sweep::slurm::SlurmOptions;
use dales::sweep::{Ended, Metric, SweepDir, SweepFile, collect as collect_runs, settle};
use pyo3::prelude::*;

use crate::error::{DalesError, IntoPy};
use crate::queue::{check_jobs, train_runs};

/// What `dales sweep collect` finds in `dir`, as JSON (`metric`: the ranking metric's name).
#[pyfunction]
#[pyo3(signature = (dir, metric=None))]
pub fn collect(py: Python<'_>, dir: PathBuf, metric: Option<&str>) -> PyResult<String> {
    let metric = metric
        .map(|m| Metric::parse(m, "metric"))
        .transpose()
        .py()?;
    let found = py.detach(|| collect_runs(&dir, metric)).py()?;
    Ok(serde_json::to_string(&found).expect("a collection is JSON"))
}

/// The runs of the sweep file `file`, as JSON: `name`, `metric`, `keys` and `runs` (`id`,
/// `dir`, `point`, `seed`, `settings`).
#[pyfunction]
#[pyo3(signature = (file, data=None))]
pub fn sweep_plan(file: PathBuf, data: Option<PathBuf>) -> PyResult<String> {
    let sweep = SweepFile::read(&file).py()?;
    let plan = sweep.plan(data.as_deref()).py()?;
    let runs: Vec<serde_json::Value> = plan
        .runs
        .iter()
        .map(|r| {
            let settings: serde_json::Map<String, serde_json::Value> = r
                .settings
                .iter()
                .map(|(k, v)| {
                    let v = serde_json::to_value(v).expect("TOML values are JSON values");
                    (k.clone(), v)
                })
                .collect();
            serde_json::json!({
                "id": r.id, "dir": r.dir, "point": r.point, "seed": r.seed, "settings": settings,
            })
        })
        .collect();
    let json = serde_json::json!({
        "name": sweep.name, "metric": sweep.metric.name(), "keys": plan.keys, "runs": runs,
    });
    Ok(json.to_string())
}

/// Train the runs of sweep file `file` here, `jobs` at a time, into `out`, then collect
/// them (writing the collection's files); returns the collection as JSON.
#[pyfunction]
#[pyo3(signature = (file, out=None, data=None, jobs=1, progress=None))]
pub fn sweep_run(
    py: Python<'_>,
    file: PathBuf,
    out: Option<PathBuf>,
    data: Option<PathBuf>,
    jobs: usize,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    check_jobs(jobs)?;
    let sweep = SweepDir::create(&file, data.as_deref(), out.as_deref()).py()?;
    let pending = sweep.pending().py()?;
    let runs: Vec<(String, QueuedRun)> = pending
        .iter()
        .map(|(r, dir)| {
            let run = QueuedRun {
                config: &r.config,
                dir,
            };
            (r.dir.clone(), run)
        })
        .collect();
    let (ends, raised) = train_runs(py, jobs, &runs, progress.as_ref());
    let mut failures = Vec::new();
    for (end, (name, run)) in ends.into_iter().zip(&runs) {
        let Some(result) = end else { continue };
        let (ended, unrecorded) = settle(run.dir, result);
        if let Some(e) = unrecorded {
            failures.push(format!("{name}: recording its end: {}", e.message()));
        }
        if let Ended::Failed(error) = ended {
            failures.push(format!("{name}: {error}"));
        }
    }
    if let Some(e) = raised {
        return Err(e);
    }
    let collection = py.detach(|| collect_runs(&sweep.dir, None)).py()?;
    collection.write().py()?;
    if !failures.is_empty() {
        return Err(DalesError::new_err(format!(
            "{} runs failed (their errors are in their error.txt; the others are collected in \
             {}):\n{}",
            failures.len(),
            sweep.dir.display(),
            failures.join("\n")
        )));
    }
    Ok(serde_json::to_string(&collection).expect("a collection is JSON"))
}

/// Write the sbatch script of sweep file `file`'s job array into `out/slurm`, each task
/// running the command-line tool `dales`; with `submit`, submit it. Returns JSON: `dir`,
/// `script` (null when every run is done), `tasks`, `job` (the job id when submitted).
#[pyfunction]
#[pyo3(signature = (
    file, dales, out=None, data=None, partition=None, time=None, cpus_per_task=1, mem=None,
    gpus_per_task=None, max_concurrent=None, term_before=120, sbatch_args=Vec::new(),
    submit=false,
))]
#[allow(clippy::too_many_arguments)]
pub fn sweep_slurm(
    file: PathBuf,
    dales: PathBuf,
    out: Option<PathBuf>,
    data: Option<PathBuf>,
    partition: Option<String>,
    time: Option<String>,
    cpus_per_task: usize,
    mem: Option<String>,
    gpus_per_task: Option<u32>,
    max_concurrent: Option<usize>,
    term_before: u32,
    sbatch_args: Vec<String>,
    submit: bool,
) -> PyResult<String> {
    let sweep = SweepDir::create(&file, data.as_deref(), out.as_deref()).py()?;
    let options = SlurmOptions {
        partition,
        time,
        cpus_per_task,
        mem,
        gpus_per_task,
        max_concurrent,
        term_before,
        extra: sbatch_args,
    };
    let script = sweep.write_slurm(&dales, &options).py()?;
    let job = match (&script, submit) {
        (Some(s), true) => Some(s.submit().py()?),
        _ => None,
    };
    let json = serde_json::json!({
        "dir": sweep.dir,
        "script": script.as_ref().map(|s| &s.path),
        "tasks": script.as_ref().map_or(0, |s| s.tasks),
        "job": job,
    });
    Ok(json.to_string())
}
