//! Sweeps from Python: the results of a sweep directory (or any directory of runs).

use std::path::PathBuf;

use dales::sweep::{Metric, collect as collect_runs};
use pyo3::prelude::*;

use crate::error::IntoPy;

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
