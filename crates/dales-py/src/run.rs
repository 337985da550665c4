//! A run directory from Python: its configuration, summary and metrics, its checkpoint as
//! numpy arrays, its curves as a PNG image, and its model applied to numpy inputs.

use std::path::PathBuf;

use dales::checkpoint::decode;
use dales::run::{InputShape, RunDir, TrainedModel, files, read_metrics};
use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::error::{IntoPy, to_py};

/// A TOML text as a JSON object (the Python side's dictionaries).
pub fn toml_to_json(text: &str) -> String {
    let table: toml::Table = text.parse().expect("a config's TOML parses");
    serde_json::to_string(&table).expect("TOML values are JSON values")
}

/// The run's configuration (`config.toml`, validated) as a JSON object.
#[pyfunction]
pub fn run_config(dir: PathBuf) -> PyResult<String> {
    Ok(toml_to_json(&RunDir::open(&dir).py()?.config.to_toml()))
}

/// The run's `summary.json` as it is (`None` before the first save).
#[pyfunction]
pub fn run_summary(dir: PathBuf) -> PyResult<Option<String>> {
    let path = dir.join(files::SUMMARY);
    if !path.exists() {
        return Ok(None);
    }
    let summary = dales::run::Summary::read(&path).py()?;
    Ok(Some(
        serde_json::to_string(&summary).expect("a summary is JSON"),
    ))
}

/// The columns of the run's `metrics.csv`, every row (the initial model's, epoch 0, where the
/// run evaluated it): `[(name, values)]` in the file's order.
#[pyfunction]
pub fn run_metrics<'py>(
    py: Python<'py>,
    dir: PathBuf,
) -> PyResult<Vec<(String, Bound<'py, PyArray1<f64>>)>> {
    let path = dir.join(files::METRICS);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let records = read_metrics(&path).py()?;
    type Column = fn(&dales::run::EpochRecord) -> f64;
    let base: [(&str, Column); 8] = [
        ("epoch", |r| r.epoch as f64),
        ("step", |r| r.step as f64),
        ("train_loss", |r| r.train_loss),
        ("train_error", |r| r.train_error),
        ("test_loss", |r| r.test_loss),
        ("test_error", |r| r.test_error),
        ("lr", |r| r.lr),
        ("seconds", |r| r.seconds),
    ];
    let mut columns: Vec<(String, Vec<f64>)> = base
        .iter()
        .map(|(name, f)| (name.to_string(), records.iter().map(f).collect()))
        .collect();
    let probes = records
        .first()
        .map(|r| r.probes.clone())
        .unwrap_or_default();
    for (name, _) in probes {
        let values = records
            .iter()
            .map(|r| r.probe(&name).unwrap_or(f64::NAN))
            .collect();
        columns.push((name, values));
    }
    Ok(columns
        .into_iter()
        .map(|(name, values)| (name, PyArray1::from_vec(py, values)))
        .collect())
}

/// The tensors of `path` (a checkpoint) as float32 arrays by name, and its metadata.
#[pyfunction]
pub fn checkpoint<'py>(
    py: Python<'py>,
    path: PathBuf,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    let bytes = std::fs::read(&path).map_err(|e| to_py(dales::Error::io(&path, e)))?;
    let (tensors, metadata) = decode(&path, &bytes).py()?;
    let arrays = PyDict::new(py);
    for (name, (values, shape)) in tensors {
        arrays.set_item(name, PyArray1::from_vec(py, values).reshape(shape)?)?;
    }
    let meta = PyDict::new(py);
    for (k, v) in metadata {
        meta.set_item(k, v)?;
    }
    Ok((arrays, meta))
}

/// The run's learning curves (loss and error) as the bytes of a PNG image.
#[pyfunction]
pub fn plot_png<'py>(py: Python<'py>, dir: PathBuf) -> PyResult<Bound<'py, PyBytes>> {
    let run = RunDir::open(&dir).py()?;
    let panels = dales::plot::run_dir_curves(&run).py()?;
    let bytes = py.detach(|| dales::plot::png_bytes(&panels)).py()?;
    Ok(PyBytes::new(py, &bytes))
}

/// A run's trained model (see `dales.Model`).
#[pyclass(frozen, module = "dales._dales")]
pub struct Model {
    model: TrainedModel,
    dir: PathBuf,
}

#[pymethods]
impl Model {
    #[new]
    fn new(py: Python<'_>, dir: PathBuf) -> PyResult<Model> {
        let model = py
            .detach(|| TrainedModel::load(&RunDir::open(&dir)?))
            .py()?;
        Ok(Model { model, dir })
    }

    /// `("flat", n)`: examples of `n` numbers; `("sequence", d)`: sequences of `d` per step.
    #[getter]
    fn input_shape(&self) -> (&'static str, usize) {
        match self.model.input_shape() {
            InputShape::Flat(n) => ("flat", n),
            InputShape::Sequence(d) => ("sequence", d),
        }
    }

    /// Whether the logits have a row per step of each example.
    #[getter]
    fn every_step(&self) -> bool {
        self.model.every_step()
    }

    /// The run directory.
    #[getter]
    fn dir(&self) -> String {
        self.dir.display().to_string()
    }

    /// The logits `(rows, classes)` of a C-contiguous float32 batch.
    fn logits<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f32>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let shape = x.shape().to_vec();
        let values = x.as_slice()?.to_vec();
        let logits = py.detach(|| self.model.logits(&values, &shape)).py()?;
        PyArray1::from_vec(py, logits.values).reshape(vec![logits.rows, logits.classes])
    }
}
