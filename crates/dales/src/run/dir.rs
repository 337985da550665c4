//! Run directories: their files, the configuration of any model family, and opening a
//! finished or interrupted run to read its records, load its model and its evaluation task.

use std::path::{Path, PathBuf};

use dales_data::MnistLike;
use dales_data::task::Task;

use super::metrics::{EpochRecord, StepEvaluation, Summary, read_evaluations, read_metrics};
use crate::checkpoint::load_mlp;
use crate::config::TrainConfig;
use crate::conv_run::load_conv;
use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::learner::{ModelSpec, load_seq};
use crate::nn::convnet::{ConvConfig, ConvNet};
use crate::nn::recurrent_net::{RecurrentConfig, RecurrentNet};
use crate::nn::seq::{SeqClassifier, SeqConfig, SeqKind};
use crate::nn::{Mlp, MlpConfig, ModelKind};
use crate::recurrent_run::load_recurrent;

/// File names inside a run directory.
pub mod files {
    /// Resolved configuration.
    pub const CONFIG: &str = "config.toml";
    /// Role → rule table.
    pub const RULES: &str = "rules.txt";
    /// Model, `dales-ff/1`, `dales-conv/1`, `dales-seq/1` or `dales-rnn/1`.
    pub const CHECKPOINT: &str = "checkpoint.safetensors";
    /// Model + optimiser + progress.
    pub const RESUME: &str = "resume.safetensors";
    /// Per-epoch metrics.
    pub const METRICS: &str = "metrics.csv";
    /// Evaluations every `data.eval_every` updates.
    pub const EVALUATIONS: &str = "evaluations.csv";
    /// Final (or latest) summary.
    pub const SUMMARY: &str = "summary.json";
    /// The learning curves, drawn by the CLI.
    pub const CURVES_PNG: &str = "curves.png";
    /// The learning curves as SVG.
    pub const CURVES_SVG: &str = "curves.svg";
    /// Every file a run writes: a directory holding any of them holds a run.
    pub const ALL: [&str; 9] = [
        CONFIG,
        RULES,
        CHECKPOINT,
        RESUME,
        METRICS,
        EVALUATIONS,
        SUMMARY,
        CURVES_PNG,
        CURVES_SVG,
    ];
}

/// A run configuration of either model family.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyConfig {
    /// Feed-forward networks on images.
    FeedForward(TrainConfig<MlpConfig>),
    /// Recurrent networks on sequences (the adaptation paper's models).
    Sequence(TrainConfig<SeqConfig>),
    /// The recurrent E/I networks of the spectral paper (`kind = "recurrent"`).
    Recurrent(TrainConfig<RecurrentConfig>),
    /// Convolutional networks on images (`kind = "conv"`).
    Conv(TrainConfig<ConvConfig>),
}

/// `$body` with `$c` bound to the [`TrainConfig`] of any family.
macro_rules! each_family {
    ($config:expr, $c:ident => $body:expr) => {
        match $config {
            AnyConfig::FeedForward($c) => $body,
            AnyConfig::Sequence($c) => $body,
            AnyConfig::Recurrent($c) => $body,
            AnyConfig::Conv($c) => $body,
        }
    };
}

/// The model family a configuration table belongs to, by its `model.kind`.
enum Family {
    FeedForward,
    Sequence,
    Recurrent,
    Conv,
}

impl Family {
    fn of(table: &toml::Table) -> Family {
        let kind = table
            .get("model")
            .and_then(|m| m.get("kind"))
            .and_then(|k| k.as_str());
        match kind {
            Some("conv") => Family::Conv,
            Some("recurrent") => Family::Recurrent,
            Some(k) if k.parse::<SeqKind>().is_ok() => Family::Sequence,
            _ => Family::FeedForward,
        }
    }
}

/// Settings given on top of a configuration (the command line's `--data`, `--epochs`, …).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// Data directory.
    pub data: Option<PathBuf>,
    /// Epochs.
    pub epochs: Option<usize>,
    /// Seed.
    pub seed: Option<u64>,
    /// Validation examples.
    pub validation: Option<usize>,
    /// Device.
    pub device: Option<DeviceChoice>,
}

impl AnyConfig {
    /// Read, parse and validate a TOML file; its `model.kind` says which family it is.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml(&text, path)
    }

    /// Parse and validate a TOML text (`origin` names it in errors); its `model.kind` says
    /// which family it is.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| Error::ConfigFile {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        match Family::of(&table) {
            Family::Conv => Ok(AnyConfig::Conv(TrainConfig::from_toml(text, path)?)),
            Family::Recurrent => Ok(AnyConfig::Recurrent(TrainConfig::from_toml(text, path)?)),
            Family::Sequence => Ok(AnyConfig::Sequence(TrainConfig::from_toml(text, path)?)),
            Family::FeedForward => Ok(AnyConfig::FeedForward(TrainConfig::from_toml(text, path)?)),
        }
    }

    /// Parse and validate a TOML table built in memory (`origin` names it in errors).
    pub fn from_table(table: toml::Table, path: &Path) -> Result<Self> {
        match Family::of(&table) {
            Family::Conv => Ok(AnyConfig::Conv(TrainConfig::from_table(table, path)?)),
            Family::Recurrent => Ok(AnyConfig::Recurrent(TrainConfig::from_table(table, path)?)),
            Family::Sequence => Ok(AnyConfig::Sequence(TrainConfig::from_table(table, path)?)),
            Family::FeedForward => Ok(AnyConfig::FeedForward(TrainConfig::from_table(
                table, path,
            )?)),
        }
    }

    /// This configuration with the dotted keys of `values` set (`optim.lr`, `model.hidden`),
    /// parsed and validated again as a config file; `origin` names it in errors.
    pub fn with_values(&self, values: &[(String, toml::Value)], origin: &Path) -> Result<Self> {
        let mut table: toml::Table = self.to_toml().parse().expect("a config's TOML parses");
        for (key, value) in values {
            set_key(&mut table, key, value.clone()).map_err(|e| Error::ConfigFile {
                path: origin.to_path_buf(),
                message: format!("`{key}` = {value}: {e}"),
            })?;
        }
        Self::from_table(table, origin)
    }

    /// The resolved configuration as TOML (what a run writes into its `config.toml`).
    pub fn to_toml(&self) -> String {
        each_family!(self, c => c.to_toml())
    }

    /// The model kind's name.
    pub fn name(&self) -> String {
        each_family!(self, c => c.name())
    }

    /// Where a run of this configuration goes when no directory is named.
    pub fn default_run_dir(&self) -> PathBuf {
        each_family!(self, c => c.default_run_dir())
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        each_family!(self, c => c.seed)
    }

    /// The number of epochs.
    pub fn epochs(&self) -> usize {
        each_family!(self, c => c.epochs)
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        each_family!(self, c => c.optim.lr)
    }

    /// The configured data directory.
    pub fn data_dir(&self) -> Option<&Path> {
        each_family!(self, c => c.data.dir.as_deref())
    }

    /// Apply `overrides` and validate the result.
    pub fn apply(&mut self, overrides: &Overrides) -> Result<()> {
        each_family!(self, c => c.apply(overrides))
    }
}

impl<M: ModelSpec> TrainConfig<M> {
    /// Apply `overrides` and validate the result. A relative data directory is made absolute
    /// (against the working directory), so that the run's `config.toml` still finds it from
    /// elsewhere (`dales eval`, `--resume`).
    pub fn apply(&mut self, o: &Overrides) -> Result<()> {
        if let Some(dir) = &o.data {
            self.data.dir = Some(std::path::absolute(dir).map_err(|e| Error::io(dir, e))?);
        }
        if let Some(e) = o.epochs {
            self.epochs = e;
        }
        if let Some(s) = o.seed {
            self.seed = s;
        }
        if let Some(v) = o.validation {
            self.data.validation = v;
        }
        if let Some(d) = o.device {
            self.device = d;
        }
        self.validate()
    }
}

/// A run directory, opened: its configuration, of either family.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The directory.
    pub dir: PathBuf,
    /// Its resolved configuration.
    pub config: AnyConfig,
}

impl RunDir {
    /// Open the run in `dir` (it must hold a `config.toml`).
    pub fn open(dir: &Path) -> Result<RunDir> {
        let path = dir.join(files::CONFIG);
        if !path.is_file() {
            return Err(Error::run(
                dir,
                format!("not a dales run directory (no {} in it)", files::CONFIG),
            ));
        }
        Ok(RunDir {
            dir: dir.to_path_buf(),
            config: AnyConfig::from_file(&path)?,
        })
    }

    /// Whether the run in `dir` has finished at least `epochs` epochs, read from its summary
    /// alone (no data or model is loaded).
    pub fn finished(dir: &Path, epochs: usize) -> bool {
        Summary::read(&dir.join(files::SUMMARY))
            .is_ok_and(|s| s.finished && s.epochs_done >= epochs)
    }

    /// Whether `dir` holds a run that can be resumed.
    pub fn resumable(dir: &Path) -> bool {
        dir.join(files::RESUME).exists()
    }

    /// The short label of the run: its directory's name.
    pub fn label(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.dir.display().to_string())
    }

    /// The run's `summary.json`.
    pub fn summary(&self) -> Result<Summary> {
        Summary::read(&self.dir.join(files::SUMMARY))
    }

    /// The run's completed epochs (`metrics.csv`, without the initial model's row).
    pub fn records(&self) -> Result<Vec<EpochRecord>> {
        let mut records = read_metrics(&self.dir.join(files::METRICS))?;
        records.retain(|r| r.epoch > 0);
        Ok(records)
    }

    /// The evaluations every `data.eval_every` updates (`evaluations.csv`; empty without).
    pub fn evaluations(&self) -> Result<Vec<StepEvaluation>> {
        let path = self.dir.join(files::EVALUATIONS);
        if !path.exists() {
            return Ok(Vec::new());
        }
        read_evaluations(&path)
    }

    /// The initial model's row of `metrics.csv` (epoch 0), written for models with probes.
    pub fn initial(&self) -> Result<Option<EpochRecord>> {
        let records = read_metrics(&self.dir.join(files::METRICS))?;
        Ok(records.into_iter().find(|r| r.epoch == 0))
    }

    /// Whether the run's task is a regression (its errors are mean squared errors, not %): the
    /// adding problem.
    pub fn is_regression(&self) -> bool {
        matches!(&self.config, AnyConfig::Recurrent(c) if c.model.adding.is_some())
    }

    /// The checkpoint of a feed-forward run and its kind.
    pub fn feed_forward(&self) -> Result<(&TrainConfig<MlpConfig>, Mlp, ModelKind)> {
        let AnyConfig::FeedForward(config) = &self.config else {
            return Err(self.not_a("feed-forward"));
        };
        let (model, kind) = load_mlp(&self.dir.join(files::CHECKPOINT), &config.device.device()?)?;
        if kind != config.model.kind {
            return Err(Error::checkpoint(
                self.dir.join(files::CHECKPOINT),
                format!(
                    "a `{kind}` model, while the run's config.toml has model.kind = `{}`",
                    config.model.kind
                ),
            ));
        }
        Ok((config, model, kind))
    }

    /// The checkpoint of a sequence run, checked against its configuration.
    pub fn sequence(&self) -> Result<(&TrainConfig<SeqConfig>, SeqClassifier)> {
        let AnyConfig::Sequence(config) = &self.config else {
            return Err(self.not_a("sequence-model"));
        };
        let device = config.device.device()?;
        let model = load_seq(
            &self.dir.join(files::CHECKPOINT),
            Some(&config.model),
            &device,
        )?;
        Ok((config, model))
    }

    /// The checkpoint of a recurrent E/I run, checked against its configuration.
    pub fn recurrent(&self) -> Result<(&TrainConfig<RecurrentConfig>, RecurrentNet)> {
        let AnyConfig::Recurrent(config) = &self.config else {
            return Err(self.not_a("recurrent E/I"));
        };
        let device = config.device.device()?;
        let path = self.dir.join(files::CHECKPOINT);
        let model = load_recurrent(&path, Some(&config.model), &device)?;
        Ok((config, model))
    }

    /// The checkpoint of a convolutional run, checked against its configuration.
    pub fn conv(&self) -> Result<(&TrainConfig<ConvConfig>, ConvNet)> {
        let AnyConfig::Conv(config) = &self.config else {
            return Err(self.not_a("convolutional"));
        };
        let device = config.device.device()?;
        let path = self.dir.join(files::CHECKPOINT);
        let model = load_conv(&path, Some(&config.model), &device)?;
        Ok((config, model))
    }

    /// The checkpoint of a sequence run on images (the robustness tests and the analyses are
    /// for these; a copy-task run is an error).
    pub fn image_sequence(&self) -> Result<(&TrainConfig<SeqConfig>, SeqClassifier)> {
        let (config, model) = self.sequence()?;
        if config.model.copy.is_some() {
            return Err(Error::run(
                &self.dir,
                "a copy-task run (its config has [model.copy]); the robustness tests and the \
                 analyses are for the image-classification runs",
            ));
        }
        Ok((config, model))
    }

    /// The test task of the run: its task on the test images of `data` (default: the run's
    /// data directory), or its generated test examples.
    pub fn test_task(&self, data: Option<&Path>) -> Result<Box<dyn Task>> {
        each_family!(&self.config, c => test_task(&c.model, data.or(c.data.dir.as_deref())))
    }

    fn not_a(&self, family: &str) -> Error {
        Error::run(
            &self.dir,
            format!(
                "not a {family} run (its model.kind is `{}`)",
                self.config.name()
            ),
        )
    }
}

/// The test task of a model: generated, or on the test images in `dir` (default:
/// Fashion-MNIST).
fn test_task<M: ModelSpec>(model: &M, dir: Option<&Path>) -> Result<Box<dyn Task>> {
    if let Some((_, test)) = model.generated()? {
        return Ok(test);
    }
    let data = match dir {
        Some(d) => MnistLike::load_dir(d)?,
        None => MnistLike::load_default()?,
    };
    model.check_data(&data)?;
    model.task(data.test)
}

/// Set the dotted `key` of `table` to `value`, making the tables on its way.
pub fn set_key(
    table: &mut toml::Table,
    key: &str,
    value: toml::Value,
) -> std::result::Result<(), String> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().expect("split gives one part at least");
    let mut at = table;
    for (i, part) in parts.iter().enumerate() {
        let entry = at
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(format!(
                    "`{}` is a value, not a table of settings",
                    parts[..=i].join(".")
                ));
            }
        };
    }
    at.insert(last.to_string(), value);
    Ok(())
}
