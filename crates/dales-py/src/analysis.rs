//! The analyses from Python: robustness sweeps of trained sequence runs (spec C4), the driven
//! analyses of the adaptation paper (spec C5) and the spectra of recurrent E/I networks (spec
//! B5), returned as numpy arrays in dictionaries instead of files.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use dales::analysis::driven::{driven_traces, jacobian_vs_drive, lyapunov_vs_drive, response};
use dales::analysis::spectra::{self, MatrixSpectrum};
use dales::analysis::trace::{StepProtocol, Trace};
use dales::nn::recurrent_net::CellKind;
use dales::nn::seq::SeqClassifier;
use dales::robustness::{DriveKind, Sweep};
use dales::run::RunDir;
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::{IntoPy, config};

fn array<'py>(py: Python<'py>, v: Vec<f64>) -> Bound<'py, PyArray1<f64>> {
    PyArray1::from_vec(py, v)
}

/// Rows of equal length as a 2-D array.
fn rows<'py>(py: Python<'py>, rows: Vec<Vec<f64>>) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let n = rows.len();
    let m = rows.first().map_or(0, Vec::len);
    let flat: Vec<f64> = rows.into_iter().flatten().collect();
    PyArray1::from_vec(py, flat).reshape([n, m])
}

/// Accuracy (%) of each run under the drive at each amplitude, and under the sin transform.
#[pyfunction]
#[pyo3(signature = (runs, xi, drive="step", cov=2.0, limit=None, data=None))]
pub fn robustness<'py>(
    py: Python<'py>,
    runs: Vec<PathBuf>,
    xi: Vec<f64>,
    drive: &str,
    cov: f64,
    limit: Option<usize>,
    data: Option<PathBuf>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let drive = DriveKind::from_str(drive)
        .map_err(|e| config("drive", format!("{drive:?}"), &e.to_string()))?;
    let sweep = Sweep {
        xi,
        drive,
        limit,
        data,
    }
    .cov(cov);
    sweep.validate().py()?;
    let mut out = Vec::new();
    for dir in &runs {
        let r = py.detach(|| sweep.run(dir, |_, _| {})).py()?;
        let d = PyDict::new(py);
        d.set_item("run", r.dir.display().to_string())?;
        d.set_item("kind", r.kind)?;
        d.set_item("seed", r.seed)?;
        d.set_item("xi", array(py, sweep.xi.clone()))?;
        d.set_item("accuracy", array(py, r.accuracy))?;
        d.set_item("sin_accuracy", r.sin)?;
        out.push(d);
    }
    Ok(out)
}

/// One matrix's spectrum as a dictionary.
fn spectrum_dict<'py>(py: Python<'py>, s: MatrixSpectrum) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("label", s.label)?;
    d.set_item("seed", s.seed)?;
    d.set_item("matrix", s.matrix)?;
    d.set_item("n", s.n)?;
    let re = s.eigenvalues.iter().map(|e| e.re).collect();
    let im = s.eigenvalues.iter().map(|e| e.im).collect();
    d.set_item("eigenvalues_re", array(py, re))?;
    d.set_item("eigenvalues_im", array(py, im))?;
    d.set_item("singular_values", array(py, s.singular_values))?;
    d.set_item("nse", s.nse)?;
    d.set_item("spectral_radius", s.spectral_radius)?;
    d.set_item("circular_radius", s.circular_radius)?;
    Ok(d)
}

/// Spectra of sampled initialisations (`dales spectrum`).
#[pyfunction]
#[pyo3(signature = (models, hidden=100, ratio=9.0, radius=None, seeds=20))]
pub fn spectrum<'py>(
    py: Python<'py>,
    models: Vec<String>,
    hidden: usize,
    ratio: f64,
    radius: Option<f64>,
    seeds: u64,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let cells = models
        .iter()
        .map(|m| {
            CellKind::from_str(m).map_err(|e| config("models", format!("{m:?}"), &e.to_string()))
        })
        .collect::<PyResult<Vec<_>>>()?;
    let found = py
        .detach(|| spectra::sample_models(&cells, hidden, ratio, radius, seeds))
        .py()?;
    found.into_iter().map(|s| spectrum_dict(py, s)).collect()
}

/// Spectra of a recurrent E/I run at init and trained (`dales analyze spectrum`).
#[pyfunction]
pub fn analyze_spectrum(py: Python<'_>, run: PathBuf) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let found = py.detach(|| spectra::of_run(&RunDir::open(&run)?)).py()?;
    found.into_iter().map(|s| spectrum_dict(py, s)).collect()
}

/// The sequence run's model and its traces under each drive amplitude.
fn traced(
    run: &Path,
    xi: &[f64],
    sequences: usize,
    data: Option<&Path>,
) -> dales::Result<(SeqClassifier, Vec<(f64, Trace)>)> {
    let run = RunDir::open(run)?;
    let (_, model) = run.image_sequence()?;
    let task = run.test_task(data)?;
    let traces = driven_traces(&model, task.as_ref(), sequences, xi)?;
    Ok((model, traces))
}

/// Population means per step of the gain, saturation and activity under each drive.
#[pyfunction]
#[pyo3(signature = (run, xi, sequences=100, data=None))]
pub fn analyze_traces(
    py: Python<'_>,
    run: PathBuf,
    xi: Vec<f64>,
    sequences: usize,
    data: Option<PathBuf>,
) -> PyResult<Bound<'_, PyDict>> {
    let (_, traces) = py
        .detach(|| traced(&run, &xi, sequences, data.as_deref()))
        .py()?;
    let mean = |f: fn(&Trace) -> &Vec<f64>| -> Vec<Vec<f64>> {
        traces
            .iter()
            .map(|(_, t)| t.population_mean(f(t)))
            .collect()
    };
    let d = PyDict::new(py);
    d.set_item("xi", array(py, xi.clone()))?;
    d.set_item("n_mean", rows(py, mean(|t| &t.n))?)?;
    d.set_item("s_mean", rows(py, mean(|t| &t.s))?)?;
    d.set_item("h_mean", rows(py, mean(|t| &t.h))?)?;
    Ok(d)
}

/// Lyapunov spectra (bits per step) under each drive amplitude.
#[pyfunction]
#[pyo3(signature = (run, xi, sequences=100, data=None, iterations=1000))]
pub fn analyze_lyapunov(
    py: Python<'_>,
    run: PathBuf,
    xi: Vec<f64>,
    sequences: usize,
    data: Option<PathBuf>,
    iterations: usize,
) -> PyResult<Bound<'_, PyDict>> {
    let found = py
        .detach(|| {
            let (model, traces) = traced(&run, &xi, sequences, data.as_deref())?;
            lyapunov_vs_drive(&model, &traces, iterations)
        })
        .py()?;
    let d = PyDict::new(py);
    d.set_item("xi", array(py, xi.clone()))?;
    d.set_item(
        "exponents",
        rows(py, found.into_iter().map(|(_, les)| les).collect())?,
    )?;
    Ok(d)
}

/// Mean norms of the recurrent Jacobian under each drive amplitude.
#[pyfunction]
#[pyo3(signature = (run, xi, sequences=100, data=None))]
pub fn analyze_jacobian(
    py: Python<'_>,
    run: PathBuf,
    xi: Vec<f64>,
    sequences: usize,
    data: Option<PathBuf>,
) -> PyResult<Bound<'_, PyDict>> {
    let found = py
        .detach(|| {
            let (model, traces) = traced(&run, &xi, sequences, data.as_deref())?;
            jacobian_vs_drive(&model, &traces)
        })
        .py()?;
    let d = PyDict::new(py);
    d.set_item("xi", array(py, found.iter().map(|j| j.xi).collect()))?;
    d.set_item("inf_norm", array(py, found.iter().map(|j| j.inf).collect()))?;
    d.set_item(
        "spectral_norm",
        array(py, found.iter().map(|j| j.spectral).collect()),
    )?;
    Ok(d)
}

/// Step responses, adaptation indices and the fractional-order fit.
#[pyfunction]
#[pyo3(signature = (run, xi, isolated=false, trials=5))]
pub fn analyze_response(
    py: Python<'_>,
    run: PathBuf,
    xi: Vec<f64>,
    isolated: bool,
    trials: usize,
) -> PyResult<Bound<'_, PyDict>> {
    let protocol = StepProtocol {
        isolated,
        trials,
        ..StepProtocol::FIG3
    };
    let r = py
        .detach(|| {
            let (_, model) = RunDir::open(&run)?.image_sequence()?;
            response(&model, &protocol, &xi)
        })
        .py()?;
    let d = PyDict::new(py);
    d.set_item("xi", array(py, xi.clone()))?;
    let population = r.population.into_iter().map(|(_, p)| p).collect();
    d.set_item("population", rows(py, population)?)?;
    let adaptation = r.adaptation.into_iter().map(|(_, a)| a).collect();
    d.set_item("adaptation_index", rows(py, adaptation)?)?;
    d.set_item("alphas", array(py, r.fit.alphas))?;
    d.set_item("mse", array(py, r.fit.mse))?;
    d.set_item("best_alpha", r.fit.best_alpha)?;
    d.set_item("neuron_alpha", array(py, r.neuron_alpha))?;
    Ok(d)
}
