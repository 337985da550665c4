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

use serde::{Deserialize, Serialize};

use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::learner::ModelSpec;
use crate::nn::seq::{SeqConfig, SeqKind};
use crate::nn::{MlpConfig, ModelKind, ParamRole};
use crate::optim::{Clip, GradScale, GroupRule, Method, Projection, RuleTable, UpdateRule};

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

fn default_seed() -> u64 {
    1
}
fn default_epochs() -> usize {
    50
}
fn default_batch() -> usize {
    32
}
fn default_device() -> DeviceChoice {
    DeviceChoice::Cpu
}

/// Where the data come from and what is evaluated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Directory of the four IDX files; absent: Fashion-MNIST from `dataset-fashion-mnist`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Training images held out for validation (0: evaluate on the test set every epoch).
    #[serde(default)]
    pub validation: usize,
}

/// Optimiser settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// `sgd` or `adam`.
    #[serde(default = "default_method")]
    pub method: MethodName,
    /// Learning rate.
    pub lr: f64,
    /// SGD momentum (SGD only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
    /// SGD dampening (SGD only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dampening: Option<f64>,
    /// SGD Nesterov momentum (SGD only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nesterov: Option<bool>,
    /// Adam β1 (Adam only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta1: Option<f64>,
    /// Adam β2 (Adam only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta2: Option<f64>,
    /// Adam ε (Adam only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps: Option<f64>,
    /// Gradient clipping.
    #[serde(default)]
    pub clip: Clip,
    /// Per-role overrides of the model kind's default rules.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<ParamRole, GroupOverride>,
    /// Divide the learning rate when the evaluation loss stops improving (absent: constant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plateau: Option<Plateau>,
}

/// PyTorch's `ReduceLROnPlateau` in `min` mode with a relative threshold: after each epoch,
/// the evaluation loss improves if it is below `best · (1 − threshold)`; after more than
/// `patience` epochs without improvement the learning rate is multiplied by `factor`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plateau {
    /// Multiplies the learning rate (PyTorch's default 0.1).
    #[serde(default = "default_factor")]
    pub factor: f64,
    /// Epochs without improvement tolerated (PyTorch's default 10).
    #[serde(default = "default_patience")]
    pub patience: usize,
    /// Relative improvement that counts (PyTorch's default 1e-4).
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_factor() -> f64 {
    0.1
}
fn default_patience() -> usize {
    10
}
fn default_threshold() -> f64 {
    1e-4
}

impl Default for Plateau {
    fn default() -> Self {
        Plateau {
            factor: default_factor(),
            patience: default_patience(),
            threshold: default_threshold(),
        }
    }
}

/// Where a [`Plateau`] schedule stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PlateauState {
    /// Lowest evaluation loss so far (none before the first epoch).
    pub best: Option<f64>,
    /// Epochs since it improved.
    pub bad_epochs: usize,
}

impl Plateau {
    /// Check the numbers.
    pub fn validate(&self) -> Result<()> {
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(Error::config(
                "optim.plateau.factor",
                self.factor,
                "a factor strictly between 0 and 1",
            ));
        }
        if !(self.threshold >= 0.0 && self.threshold < 1.0) {
            return Err(Error::config(
                "optim.plateau.threshold",
                self.threshold,
                "a relative threshold in [0, 1)",
            ));
        }
        Ok(())
    }

    /// The learning rate after an epoch that ended with evaluation loss `loss`.
    pub fn update(&self, state: &mut PlateauState, lr: f64, loss: f64) -> f64 {
        if state
            .best
            .is_none_or(|best| loss < best * (1.0 - self.threshold))
        {
            state.best = Some(loss);
            state.bad_epochs = 0;
            return lr;
        }
        state.bad_epochs += 1;
        if state.bad_epochs > self.patience {
            state.bad_epochs = 0;
            return lr * self.factor;
        }
        lr
    }
}

impl OptimConfig {
    /// `method` at learning rate `lr` with its defaults: no clipping, the kind's rules, a
    /// constant learning rate.
    pub fn new(method: MethodName, lr: f64) -> Self {
        OptimConfig {
            method,
            lr,
            momentum: None,
            dampening: None,
            nesterov: None,
            beta1: None,
            beta2: None,
            eps: None,
            clip: Clip::NONE,
            groups: BTreeMap::new(),
            plateau: None,
        }
    }
}

fn default_method() -> MethodName {
    MethodName::Sgd
}

/// The optimiser method's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodName {
    /// Stochastic gradient descent.
    Sgd,
    /// Adam.
    Adam,
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
}

/// The paper's learning rates (spec A5; the LayerNorm value comes from the reference's sweep,
/// `shared/reference/README.md`; the subtractive DANN uses the DANN value).
pub fn paper_lr(kind: ModelKind) -> f64 {
    match kind {
        ModelKind::Mlp => 0.2976,
        ModelKind::LayerNorm => 0.1107,
        ModelKind::ColumnEi => 0.05273,
        ModelKind::Dann => 0.1107,
        ModelKind::DannNocorr => 0.003981,
        ModelKind::DannSubtractive => 0.1107,
    }
}

/// Names accepted by [`TrainConfig::preset`].
pub const PRESETS: [&str; 6] = [
    "mlp",
    "layernorm",
    "columnei",
    "dann",
    "dann-nocorr",
    "dann-subtractive",
];

impl TrainConfig {
    /// The DANN paper's setting for `kind` (spec A5): 3 hidden layers of 500 (+50 I; ColumnEI
    /// 550), batch 32, plain SGD at the model's learning rate, no clipping, 50 epochs, seed 1.
    pub fn paper(kind: ModelKind) -> Self {
        TrainConfig {
            seed: default_seed(),
            epochs: default_epochs(),
            batch_size: default_batch(),
            device: DeviceChoice::Cpu,
            data: DataConfig::default(),
            model: MlpConfig::paper(kind),
            optim: OptimConfig::new(MethodName::Sgd, paper_lr(kind)),
        }
    }

    /// A preset by name (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self> {
        let kind: ModelKind = name.parse().map_err(|_| {
            Error::config(
                "preset",
                format!("{name:?}"),
                format!("one of {}", PRESETS.join(", ")),
            )
        })?;
        Ok(TrainConfig::paper(kind))
    }
}

/// Names accepted by [`TrainConfig::sequence_preset`]: each model at the paper's size
/// (`arun`, `rnn-relu`, …) and scaled down to train on a CPU (`arun-small`, …).
pub const SEQ_PRESETS: [&str; 16] = [
    "rnn-relu",
    "rnn-tanh",
    "rnn-softplus",
    "rnn-gamma",
    "rnn-gamma-het",
    "arun",
    "lstm",
    "gru",
    "rnn-relu-small",
    "rnn-tanh-small",
    "rnn-softplus-small",
    "rnn-gamma-small",
    "rnn-gamma-het-small",
    "arun-small",
    "lstm-small",
    "gru-small",
];

impl TrainConfig<SeqConfig> {
    /// The adaptation paper's psMNIST setting (spec C3) on the default dataset: 784 steps in a
    /// fixed permutation (seed 400), `H = 400` (ARUN: `K = 50`), Adam at 1e-4, batch 100,
    /// `ReduceLROnPlateau` on the validation loss, a 50k/10k train/validation split, 100
    /// epochs.
    pub fn sequence_paper(kind: SeqKind) -> Self {
        TrainConfig {
            seed: default_seed(),
            epochs: 100,
            batch_size: 100,
            device: DeviceChoice::Cpu,
            data: DataConfig {
                dir: None,
                validation: 10_000,
            },
            model: SeqConfig::paper(kind),
            optim: OptimConfig {
                plateau: Some(Plateau::default()),
                ..OptimConfig::new(MethodName::Adam, 1e-4)
            },
        }
    }

    /// The paper's setting scaled down to train on a 2-core CPU: 7 × 7 images (4 × 4
    /// pooling, 49 steps) in a fixed permutation, `H = 64` (ARUN: `K = 16`), Adam at 1e-3,
    /// batch 100, a 50k/10k split, `ReduceLROnPlateau` with patience 2, 6 epochs.
    pub fn sequence_small(kind: SeqKind) -> Self {
        let mut c = TrainConfig::sequence_paper(kind);
        c.epochs = 6;
        c.model.pool = 4;
        c.model.hidden = 64;
        c.model.controller = 16;
        c.optim.lr = 1e-3;
        c.optim.plateau = Some(Plateau {
            patience: 2,
            ..Plateau::default()
        });
        c
    }

    /// The adaptation paper's copy task (spec C3): `H = 128`, delay 200, 10 symbols of 8,
    /// batch 10, Adam at 1e-3, 100 epochs of 10,000 generated sequences (the paper's 100,000
    /// steps), evaluated on 1,000 others.
    pub fn copy_paper(kind: SeqKind) -> Self {
        TrainConfig {
            epochs: 100,
            batch_size: 10,
            data: DataConfig {
                dir: None,
                validation: 0,
            },
            model: SeqConfig::copy_paper(kind),
            optim: OptimConfig::new(MethodName::Adam, 1e-3),
            ..TrainConfig::sequence_paper(kind)
        }
    }

    /// The copy task scaled down for a 2-core CPU: delay 50 (70 steps), `H = 64` (ARUN:
    /// `K = 16`), batch 10, Adam at 1e-3, 10 epochs of 10,000 sequences.
    pub fn copy_small(kind: SeqKind) -> Self {
        let mut c = TrainConfig::copy_paper(kind);
        c.epochs = 10;
        c.model.hidden = 64;
        c.model.controller = 16;
        if let Some(copy) = &mut c.model.copy {
            copy.delay = 50;
        }
        c
    }

    /// A preset by name: one of [`SEQ_PRESETS`], or `copy-MODEL` and `copy-MODEL-small`
    /// for the copy task with any sequence model (`copy-arun`, `copy-rnn-relu-small`, …).
    pub fn sequence_preset(name: &str) -> Result<Self> {
        let unknown = || {
            Error::config(
                "preset",
                format!("{name:?}"),
                format!(
                    "one of {}, or copy-MODEL[-small] with MODEL one of the first eight",
                    SEQ_PRESETS.join(", ")
                ),
            )
        };
        let (copy, rest) = match name.strip_prefix("copy-") {
            Some(rest) => (true, rest),
            None => (false, name),
        };
        let (base, small) = match rest.strip_suffix("-small") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let kind: SeqKind = base.parse().map_err(|_| unknown())?;
        Ok(match (copy, small) {
            (false, false) => TrainConfig::sequence_paper(kind),
            (false, true) => TrainConfig::sequence_small(kind),
            (true, false) => TrainConfig::copy_paper(kind),
            (true, true) => TrainConfig::copy_small(kind),
        })
    }

    /// Whether `name` is a sequence-model preset.
    pub fn is_sequence_preset(name: &str) -> bool {
        TrainConfig::sequence_preset(name).is_ok()
    }
}

impl<M: ModelSpec> TrainConfig<M> {
    /// Parse and validate a TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        let de = toml::Deserializer::parse(text).map_err(|e| Error::ConfigFile {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
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
        self.model.validate()?;
        self.method()?.validate()?;
        if let Some(p) = &self.optim.plateau {
            p.validate()?;
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
        self.rules().validate()?;
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

    /// The optimiser method, rejecting options of the other method.
    pub fn method(&self) -> Result<Method> {
        let o = &self.optim;
        let misplaced = |key: &str, method: &str| {
            Err(Error::config(
                format!("optim.{key}"),
                "(set)",
                format!("no `{key}` with method = \"{method}\""),
            ))
        };
        match o.method {
            MethodName::Sgd => {
                for (key, set) in [("beta1", o.beta1), ("beta2", o.beta2), ("eps", o.eps)] {
                    if set.is_some() {
                        return misplaced(key, "sgd");
                    }
                }
                Ok(Method::Sgd {
                    momentum: o.momentum.unwrap_or(0.0),
                    dampening: o.dampening.unwrap_or(0.0),
                    nesterov: o.nesterov.unwrap_or(false),
                })
            }
            MethodName::Adam => {
                for (key, set) in [
                    ("momentum", o.momentum.is_some()),
                    ("dampening", o.dampening.is_some()),
                    ("nesterov", o.nesterov.is_some()),
                ] {
                    if set {
                        return misplaced(key, "adam");
                    }
                }
                let Method::Adam { beta1, beta2, eps } = Method::ADAM else {
                    unreachable!()
                };
                Ok(Method::Adam {
                    beta1: o.beta1.unwrap_or(beta1),
                    beta2: o.beta2.unwrap_or(beta2),
                    eps: o.eps.unwrap_or(eps),
                })
            }
        }
    }

    /// The kind's default rules with the configured overrides applied.
    pub fn rules(&self) -> RuleTable {
        let mut table = self.model.default_rules();
        for (role, o) in &self.optim.groups {
            if let Some(rule) = table.0.get_mut(role) {
                *rule = GroupRule {
                    lr_scale: o.lr_scale.unwrap_or(rule.lr_scale),
                    grad_scale: o.grad_scale.unwrap_or(rule.grad_scale),
                    update: o.update.unwrap_or(rule.update),
                    projection: o.projection.unwrap_or(rule.projection),
                };
            }
        }
        table
    }
}
