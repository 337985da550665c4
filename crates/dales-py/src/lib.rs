//! `dales._dales`: the extension module under the `dales` Python package (python/dales).
//!
//! The functions here take and return plain Python values (strings, numbers, JSON texts,
//! numpy arrays); the Python side turns them into `dales.train`, `dales.Run` and
//! `dales.Model`. Library errors become the package's exceptions ([`error`]).

use pyo3::prelude::*;

mod analysis;
mod error;
mod pump;
mod queue;
mod reproduce;
mod run;
mod sweep;
mod train;

/// The extension module.
#[pymodule]
fn _dales(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // The same allocator settings as the command-line tool: a training step's buffers are
    // reused instead of mapped afresh (docs/benchmarks.md).
    dales::alloc::keep_freed_memory();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(train::train, m)?)?;
    m.add_function(wrap_pyfunction!(train::resume, m)?)?;
    m.add_function(wrap_pyfunction!(train::resolve, m)?)?;
    m.add_function(wrap_pyfunction!(run::run_config, m)?)?;
    m.add_function(wrap_pyfunction!(run::run_summary, m)?)?;
    m.add_function(wrap_pyfunction!(run::run_metrics, m)?)?;
    m.add_function(wrap_pyfunction!(run::checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(run::plot_png, m)?)?;
    m.add_class::<run::Model>()?;
    m.add_function(wrap_pyfunction!(sweep::collect, m)?)?;
    m.add_function(wrap_pyfunction!(sweep::sweep_plan, m)?)?;
    m.add_function(wrap_pyfunction!(sweep::sweep_run, m)?)?;
    m.add_function(wrap_pyfunction!(sweep::sweep_slurm, m)?)?;
    m.add_function(wrap_pyfunction!(reproduce::reproduce, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::robustness, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::spectrum, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::analyze_spectrum, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::analyze_traces, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::analyze_lyapunov, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::analyze_jacobian, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::analyze_response, m)?)?;
    Ok(())
}
