//! The TOML configuration of a training run: every setting, validated before anything starts.
//!
//! ```toml
//! seed = 1
//! epochs = 50
//! batch_size = 32
//! device = "cpu"
//!
//! [data]
//! dir = "/usr/share/datasets/fashion-mnist"
//! validation = 0          # > 0: hold this many training images out and evaluate on them
//!
//! [model]
//! kind = "dann"
//! hidden = [500, 500, 500]
//!
//! [optim]
//! method = "sgd"
//! lr = 0.1107
//! clip = { scope = "layer", max_norm = 0.0 }
//!
//! [optim.groups.wix]      # optional overrides of the kind's default rules
//! update = "eg"
//! ```
//!
//! Unknown keys, wrong types and out-of-range values are errors naming the key path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dales_data::augment::Augment;
use serde::{Deserialize, Serialize};

use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::learner::ModelSpec;
use crate::nn::{MlpConfig, ParamRole};
use crate::optim::{
    Clip, GradScale, GroupRule, Method, Plateau, Projection, RuleTable, StepDecay, UpdateRule,
};

/// Everything a training run needs; `M` is the `[model]` section ([`MlpConfig`] for the
/// feed-forward networks, [`crate::nn::seq::SeqConfig`] for the sequence models).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig<M = MlpConfig> {
    /// Seeds the initialisation, the validation split and every epoch's batch order.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Number of passes over the training set.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Examples per update.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// `cpu` or `gpu`.
    #[serde(default = "default_device")]
    pub device: DeviceChoice,
    /// Dataset.
    #[serde(default)]
    pub data: DataConfig,
    /// Model.
    pub model: M,
    /// Optimiser.
    pub optim: OptimConfig,
}

pub(crate) fn default_seed() -> u64 {
    1
}
pub(crate) fn default_epochs() -> usize {
    50
}
pub(crate) fn default_batch() -> usize {
    32
}
fn default_device() -> DeviceChoice {
    DeviceChoice::Cpu
}

/// Where the data come from, in which order they are visited, and what is evaluated.
///
/// `eval_every = N` also evaluates every `N` updates (the spectral paper's learning curves:
/// every 100), into `evaluations.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Directory of the four IDX files; absent: Fashion-MNIST from `dataset-fashion-mnist`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Training images held out for validation (0: evaluate on the test set every epoch).
    #[serde(default)]
    pub validation: usize,
    /// Visit the training examples in a new seeded order every epoch (`true`, the default), or
    /// in the same order every epoch (`false`, as the adaptation paper's loader,
    /// `shuffle=False`).
    #[serde(default = "default_shuffle")]
    pub shuffle: bool,
    /// Also evaluate every this many updates (absent: after every epoch only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_every: Option<u64>,
    /// Augment the training images: `{ crop_padding = 4, flip = true }` (absent: none, as
    /// the DANN paper's loader).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<Augment>,
    /// Train on the first this many training images only (after the validation split; absent:
    /// all), as the reference's `--limit-train`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_train: Option<usize>,
}

fn default_shuffle() -> bool {
    true
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dir: None,
            validation: 0,
            shuffle: default_shuffle(),
            eval_every: None,
            augment: None,
            limit_train: None,
        }
    }
}

/// Optimiser settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimConfig {
    /// Learning rate.
    pub lr: f64,
    /// `method` (`sgd` or `adam`) and its settings, keys of this table beside the others.
    #[serde(flatten)]
    pub method: Method,
    /// Gradient clipping.
    #[serde(default)]
    pub clip: Clip,
    /// Per-role overrides of the model kind's default rules.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<ParamRole, GroupOverride>,
    /// Divide the learning rate when the evaluation loss stops improving (absent: constant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plateau: Option<Plateau>,
    /// Multiply the learning rate by a factor every so many updates (absent: constant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decay: Option<StepDecay>,
    /// Weight decay λ of every parameter group whose own `weight_decay` is not set (0: none;
    /// how it enters depends on the method and the group's rule, see
    /// [`GroupRule::weight_decay`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weight_decay: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl OptimConfig {
    /// `method` at learning rate `lr`: no clipping, the kind's rules, a constant learning
    /// rate.
    pub fn new(method: Method, lr: f64) -> Self {
        OptimConfig {
            lr,
            method,
            clip: Clip::NONE,
            groups: BTreeMap::new(),
            plateau: None,
            decay: None,
            weight_decay: 0.0,
        }
    }
}

/// Fields of a [`GroupRule`] to change; the others keep the kind's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupOverride {
    /// Learning-rate scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_scale: Option<f64>,
    /// Gradient scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_scale: Option<GradScale>,
    /// `gd` or `eg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateRule>,
    /// `none` or `non_negative`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection: Option<Projection>,
    /// Weight decay λ of this group (default: `optim.weight_decay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
}

impl<M: ModelSpec> TrainConfig<M> {
    /// Parse and validate a TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        let de = toml::Deserializer::parse(text).map_err(|e| Error::ConfigFile {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::deserialize_checked(de, origin)
    }

    /// Parse and validate a TOML table (built in memory: errors name the key, not a line);
    /// `origin` names it in errors.
    pub fn from_table(table: toml::Table, origin: &Path) -> Result<Self> {
        Self::deserialize_checked(toml::Value::Table(table), origin)
    }

    fn deserialize_checked<'de, D>(de: D, origin: &Path) -> Result<Self>
    where
        D: serde::Deserializer<'de>,
        D::Error: std::fmt::Display,
    {
        let config: TrainConfig<M> = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            Error::ConfigFile {
                path: origin.to_path_buf(),
                message: format!("at `{path}`: {}", e.into_inner()),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Read, parse and validate a TOML file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml(&text, path)
    }

    /// The resolved configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a validated config serialises")
    }

    /// Check every value; errors name the key.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::config("epochs", 0, "at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", 0, "at least 1"));
        }
        if self.data.limit_train == Some(0) {
            return Err(Error::config("data.limit_train", 0, "at least 1 image"));
        }
        if self.data.eval_every == Some(0) {
            return Err(Error::config("data.eval_every", 0, "at least 1 update"));
        }
        self.model.validate()?;
        self.optim.method.validate()?;
        if let Some(p) = &self.optim.plateau {
            p.validate()?;
        }
        if let Some(d) = &self.optim.decay {
            d.validate()?;
        }
        let lr = self.optim.lr;
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::config(
                "optim.lr",
                lr,
                "a positive, finite learning rate",
            ));
        }
        self.optim.clip.validate()?;
        let decay = self.optim.weight_decay;
        if !(decay.is_finite() && decay >= 0.0) {
            return Err(Error::config(
                "optim.weight_decay",
                decay,
                "a finite, non-negative number",
            ));
        }
        self.rules().validate()?;
        if let Method::Dngd { .. } = self.optim.method {
            self.model.check_dngd()?;
            for (role, rule) in &self.rules().0 {
                if rule.grad_scale != GradScale::One {
                    return Err(Error::config(
                        format!("optim.groups.{}.grad_scale", role.name()),
                        format!("{:?}", rule.grad_scale),
                        "one: d-NGD replaces the corrections (spec A3.7)",
                    ));
                }
            }
        }
        for role in self.optim.groups.keys() {
            if self.model.default_rules().get(*role).is_none() {
                return Err(Error::config(
                    format!("optim.groups.{}", role.name()),
                    role.name(),
                    format!("a parameter role of a {} model", self.model.name()),
                ));
            }
        }
        Ok(())
    }

    /// Where a run of this configuration goes when no directory is named:
    /// `runs/<name>-seed<seed>`.
    pub fn default_run_dir(&self) -> std::path::PathBuf {
        std::path::Path::new("runs").join(format!("{}-seed{}", self.name(), self.seed))
    }

    /// The run's name: the model kind's, or `dann_dngd` for a DANN trained by d-NGD.
    pub fn name(&self) -> String {
        match self.optim.method {
            Method::Dngd { .. } => "dann_dngd".to_string(),
            _ => self.model.name(),
        }
    }

    /// The kind's default rules with the configured overrides applied.
    pub fn rules(&self) -> RuleTable {
        let mut table = self.model.default_rules();
        for rule in table.0.values_mut() {
            rule.weight_decay = self.optim.weight_decay;
        }
        for (role, o) in &self.optim.groups {
            if let Some(rule) = table.0.get_mut(role) {
                *rule = GroupRule {
                    lr_scale: o.lr_scale.unwrap_or(rule.lr_scale),
                    grad_scale: o.grad_scale.unwrap_or(rule.grad_scale),
                    update: o.update.unwrap_or(rule.update),
                    projection: o.projection.unwrap_or(rule.projection),
                    weight_decay: o.weight_decay.unwrap_or(rule.weight_decay),
                };
            }
        }
        table
    }
}
