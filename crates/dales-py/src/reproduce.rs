//! Paper reproductions from Python: the runs trained (or resumed, or kept) as `dales
//! reproduce` trains them, then the report written.

use std::path::PathBuf;

use dales::reproduce::{Options, Reproduction};
use pyo3::prelude::*;

use crate::error::{DalesError, IntoPy};
use crate::pump::pump;
use crate::queue::{check_jobs, train_runs};

/// Train reproduction `name` (unless `report_only`) and write its report; returns the
/// report as JSON: `dir`, `runs` (directories), `markdown`, `results`, `files`.
#[pyfunction]
#[pyo3(signature = (
    name, out=None, epochs=None, seeds=None, full=false, data=None, jobs=1, report_only=false,
    progress=None,
))]
#[allow(clippy::too_many_arguments)]
pub fn reproduce(
    py: Python<'_>,
    name: &str,
    out: Option<PathBuf>,
    epochs: Option<usize>,
    seeds: Option<u64>,
    full: bool,
    data: Option<PathBuf>,
    jobs: usize,
    report_only: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    check_jobs(jobs)?;
    let out = out.unwrap_or_else(|| PathBuf::from("runs").join(name));
    let options = Options {
        full,
        seeds,
        epochs,
        data,
    };
    let reproduction = Reproduction::plan(name, &out, &options).py()?;
    let jobs_list = reproduction.jobs();
    if !report_only {
        std::fs::create_dir_all(&out)
            .map_err(|e| dales::Error::io(&out, e))
            .py()?;
        let runs: Vec<_> = jobs_list
            .iter()
            .zip(reproduction.queued())
            .map(|(j, q)| (j.name(), q))
            .collect();
        let (ends, raised) = train_runs(py, jobs, &runs, progress.as_ref());
        if let Some(e) = raised {
            return Err(e);
        }
        let failures: Vec<String> = ends
            .into_iter()
            .zip(&runs)
            .filter_map(|(end, (name, _))| match end {
                Some(Err(e)) => Some(format!("{name}: {}", e.message())),
                _ => None,
            })
            .collect();
        if !failures.is_empty() {
            return Err(DalesError::new_err(format!(
                "{} runs failed (the others are kept; call again to retry):\n{}",
                failures.len(),
                failures.join("\n")
            )));
        }
    }
    let (written, raised) = pump(py, progress.as_ref(), |sink| {
        reproduction.report(&mut |line| sink.line(line.to_string()))
    });
    if let Some(e) = raised {
        return Err(e);
    }
    let written = written.py()?;
    let runs: Vec<String> = jobs_list
        .iter()
        .map(|j| j.dir.display().to_string())
        .collect();
    let report = serde_json::json!({
        "name": name,
        "dir": out.display().to_string(),
        "runs": runs,
        "markdown": written.markdown,
        "results": written.results,
        "files": written.files,
    });
    Ok(report.to_string())
}
