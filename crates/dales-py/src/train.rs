//! Training from Python: the configuration as the CLI builds it, the run without the GIL,
//! progress events for the Python side's bar, and Ctrl-C between steps.
//!
//! A run trains on a worker thread without the GIL while the calling thread runs Python's
//! signal handlers ([`crate::pump`]). A `KeyboardInterrupt` (Ctrl-C, a notebook's stop
//! button) stops the run as the CLI's SIGINT does: the state is saved, the run directory is
//! resumable, and the exception is raised once the save is done.

use std::path::{Path, PathBuf};

use dales::config::TrainConfig;
use dales::device::DeviceChoice;
use dales::learner::ModelSpec;
use dales::nn::MlpConfig;
use dales::nn::convnet::ConvConfig;
use dales::nn::recurrent_net::RecurrentConfig;
use dales::nn::seq::SeqConfig;
use dales::queue::run_watched;
use dales::run::{AnyConfig, Dataset, Outcome, Overrides, RunDir, StartOptions, Trainer};
use pyo3::prelude::*;

use crate::error::{IntoPy, config};
use crate::pump::pump;
use crate::queue::PyWatch;

/// Where overrides and dictionaries are named in errors.
const ORIGIN: &str = "dales.train";

/// The configuration of `preset`, the TOML file `config_path` or the JSON object
/// `config_json` (else the `dann` preset), with the dotted keys of `values` (JSON texts)
/// set on it; validated.
fn build(
    preset: Option<&str>,
    config_path: Option<&str>,
    config_json: Option<&str>,
    values: &[(String, String)],
) -> PyResult<AnyConfig> {
    let origin = Path::new(ORIGIN);
    let base = match (preset, config_path, config_json) {
        (_, Some(path), _) => AnyConfig::from_file(Path::new(path)).py()?,
        (_, _, Some(json)) => {
            let table: toml::Table = serde_json::from_str(json)
                .map_err(|e| config("config", "(the dictionary)", &format!("TOML values: {e}")))?;
            AnyConfig::from_table(table, Path::new("config")).py()?
        }
        (Some(name), _, _) => AnyConfig::preset(name).py()?,
        (None, None, None) => AnyConfig::preset("dann").py()?,
    };
    let values = values
        .iter()
        .map(|(key, json)| {
            serde_json::from_str::<toml::Value>(json)
                .map(|v| (key.clone(), v))
                .map_err(|e| config(key, json, &format!("a TOML value ({e})")))
        })
        .collect::<PyResult<Vec<_>>>()?;
    if values.is_empty() {
        return Ok(base);
    }
    base.with_values(&values, origin).py()
}

/// The resolved configuration (JSON) of a preset, file or dictionary with `values` set.
#[pyfunction]
#[pyo3(signature = (preset=None, config_path=None, config_json=None, values=Vec::new()))]
pub fn resolve(
    preset: Option<&str>,
    config_path: Option<&str>,
    config_json: Option<&str>,
    values: Vec<(String, String)>,
) -> PyResult<String> {
    let config = build(preset, config_path, config_json, &values)?;
    Ok(crate::run::toml_to_json(&config.to_toml()))
}

/// Start a run; returns its directory.
#[pyfunction]
#[pyo3(signature = (
    preset=None, config_path=None, config_json=None, values=Vec::new(), data=None, epochs=None,
    seed=None, validation=None, out=None, device=None, overwrite=false, max_memory=None,
    progress=None,
))]
#[allow(clippy::too_many_arguments)]
pub fn train(
    py: Python<'_>,
    preset: Option<&str>,
    config_path: Option<&str>,
    config_json: Option<&str>,
    values: Vec<(String, String)>,
    data: Option<PathBuf>,
    epochs: Option<usize>,
    seed: Option<u64>,
    validation: Option<usize>,
    out: Option<PathBuf>,
    device: Option<&str>,
    overwrite: bool,
    max_memory: Option<&str>,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let mut config = build(preset, config_path, config_json, &values)?;
    let device = match device {
        None | Some("cpu") => DeviceChoice::Cpu,
        Some("gpu") => DeviceChoice::Gpu,
        Some(other) => return Err(config_error_device(other)),
    };
    config
        .apply(&Overrides {
            data,
            epochs,
            seed,
            validation,
            device: Some(device),
        })
        .py()?;
    let options = StartOptions {
        overwrite,
        max_memory: max_memory
            .map(dales::run::memory::parse_size)
            .transpose()
            .py()?,
    };
    let dir = out.unwrap_or_else(|| config.default_run_dir());
    match config {
        AnyConfig::FeedForward(c) => start(py, c, &dir, options, progress),
        AnyConfig::Sequence(c) => start(py, c, &dir, options, progress),
        AnyConfig::Recurrent(c) => start(py, c, &dir, options, progress),
        AnyConfig::Conv(c) => start(py, c, &dir, options, progress),
    }
}

fn config_error_device(value: &str) -> PyErr {
    config("device", format!("{value:?}"), "\"cpu\" or \"gpu\"")
}

/// Continue the interrupted run in `dir` (to `epochs` epochs, if given); returns `dir`.
#[pyfunction]
#[pyo3(signature = (dir, epochs=None, data=None, progress=None))]
pub fn resume(
    py: Python<'_>,
    dir: PathBuf,
    epochs: Option<usize>,
    data: Option<PathBuf>,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    match RunDir::open(&dir).py()?.config {
        AnyConfig::FeedForward(_) => resume_as::<MlpConfig>(py, &dir, epochs, data, progress),
        AnyConfig::Sequence(_) => resume_as::<SeqConfig>(py, &dir, epochs, data, progress),
        AnyConfig::Recurrent(_) => resume_as::<RecurrentConfig>(py, &dir, epochs, data, progress),
        AnyConfig::Conv(_) => resume_as::<ConvConfig>(py, &dir, epochs, data, progress),
    }
}

fn resume_as<M: ModelSpec + Send>(
    py: Python<'_>,
    dir: &Path,
    epochs: Option<usize>,
    data: Option<PathBuf>,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let trainer = py.detach(|| Trainer::<M>::resume(dir, data, epochs)).py()?;
    drive(py, trainer, dir, progress)
}

fn start<M: ModelSpec + Send>(
    py: Python<'_>,
    config: TrainConfig<M>,
    dir: &Path,
    options: StartOptions,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let trainer = py
        .detach(|| {
            let data = Dataset::load(&config)?;
            Trainer::start(config, data, dir, options)
        })
        .py()?;
    drive(py, trainer, dir, progress)
}

/// Run `trainer` to its end without the GIL, reporting to `progress` and stopping on a
/// Python exception (from a signal handler or the progress callback); then draw its curves.
fn drive<M: ModelSpec + Send>(
    py: Python<'_>,
    mut trainer: Trainer<M>,
    dir: &Path,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let (outcome, raised) = pump(py, progress.as_ref(), |sink| {
        let outcome = run_watched(0, &mut trainer, dir, &PyWatch::single(sink));
        // The run directory's lock goes with the trainer, before Python hears of the end.
        drop(trainer);
        outcome
    });
    let outcome = outcome.py()?;
    match (outcome, raised) {
        (_, Some(e)) => Err(e),
        (Outcome::Finished | Outcome::Interrupted, None) => Ok(dir.display().to_string()),
    }
}
