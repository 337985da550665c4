//! What the training loop needs from a model, so that one [`crate::run::Trainer`] trains the
//! feed-forward networks and the sequence models alike.
//!
//! A [`ModelSpec`] is the `[model]` section of a run's configuration: it validates itself,
//! names its default update rules, checks the dataset, builds the model and writes its
//! checkpoint. The model it builds is a [`Learner`]: a [`Parameterised`] model that turns a
//! batch of dataset examples into logits.

use std::collections::HashMap;
use std::fmt::Debug;
use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use dales_data::{MnistLike, Split};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checkpoint::{self, encode};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::nn::seq::{SeqClassifier, SeqConfig};
use crate::nn::{Mlp, MlpConfig, ParamRole, Parameterised};
use crate::optim::{GroupRule, RuleTable};

/// A trainable classifier of dataset examples.
pub trait Learner: Parameterised + Clone + Send + Sync {
    /// Logits of `split`'s examples `idx`, on `device`: `(B, n_out)`, or more rows per
    /// example for tasks with an output at every step (see [`Learner::targets`]).
    fn logits(&self, split: &Split, idx: &[usize], device: &Device) -> Tensor<2>;

    /// The class of every row of [`Learner::logits`]: by default each example's label.
    fn targets(&self, split: &Split, idx: &[usize]) -> Vec<usize> {
        idx.iter().map(|&i| usize::from(split.label(i))).collect()
    }

    /// A copy without autodiff, for evaluation.
    fn inference(&self) -> Self;
}

/// The `[model]` section of a run: everything that builds and describes a [`Learner`].
pub trait ModelSpec: Clone + Debug + PartialEq + Serialize + DeserializeOwned {
    /// The model it builds.
    type Model: Learner;

    /// The kind's name, for run directories and messages (`dann`, `arun`).
    fn name(&self) -> String;

    /// Check every value; errors name the key.
    fn validate(&self) -> Result<()>;

    /// The update rule of every parameter role of the model.
    fn default_rules(&self) -> RuleTable;

    /// Check that the model fits the data: image size and number of classes.
    fn check_data(&self, train: &Split, n_classes: usize) -> Result<()>;

    /// Data the task generates itself (the copy task) instead of reading a dataset.
    fn generated_data(&self) -> Result<Option<MnistLike>> {
        Ok(None)
    }

    /// What [`ModelSpec::generated_data`] generates, for messages (`None`: a dataset is read).
    fn generated_description(&self) -> Option<String> {
        None
    }

    /// Fill in settings measured on the training data (the MLP's pixel mean).
    fn prepare(&mut self, _train: &Split) {}

    /// The model, initialised from `seed`.
    fn init_seeded(&self, seed: u64, device: &Device) -> Result<Self::Model>;

    /// Write the model's checkpoint (atomically).
    fn save_checkpoint(&self, model: &Self::Model, path: &Path) -> Result<()>;
}

impl Learner for Mlp {
    fn logits(&self, split: &Split, idx: &[usize], device: &Device) -> Tensor<2> {
        let mut x = Vec::new();
        split.gather_f32(idx, &mut x);
        let input = Tensor::from_data(
            TensorData::new(x, [idx.len(), split.pixels_per_image()]),
            device,
        );
        self.forward(input)
    }

    fn inference(&self) -> Self {
        self.valid()
    }
}

impl ModelSpec for MlpConfig {
    type Model = Mlp;

    fn name(&self) -> String {
        self.kind.to_string()
    }

    fn validate(&self) -> Result<()> {
        MlpConfig::validate(self)
    }

    fn default_rules(&self) -> RuleTable {
        RuleTable::for_kind(self.kind)
    }

    fn check_data(&self, train: &Split, n_classes: usize) -> Result<()> {
        let pixels = train.pixels_per_image();
        if pixels != self.n_in {
            return Err(Error::config(
                "model.n_in",
                self.n_in,
                format!("{pixels}, the number of pixels of the dataset's images"),
            ));
        }
        check_classes(self.n_out, n_classes)
    }

    fn prepare(&mut self, train: &Split) {
        if self.pixel_mean.is_none() {
            self.pixel_mean = Some(train.pixel_mean());
        }
    }

    fn init_seeded(&self, seed: u64, device: &Device) -> Result<Mlp> {
        MlpConfig::init_seeded(self, seed, device)
    }

    fn save_checkpoint(&self, model: &Mlp, path: &Path) -> Result<()> {
        checkpoint::save_mlp(model, self.kind, path)
    }
}

fn check_classes(n_out: usize, n_classes: usize) -> Result<()> {
    if n_classes > n_out {
        return Err(Error::config(
            "model.n_out",
            n_out,
            format!("at least {n_classes}, the dataset's number of classes"),
        ));
    }
    Ok(())
}

impl Learner for SeqClassifier {
    fn logits(&self, split: &Split, idx: &[usize], _device: &Device) -> Tensor<2> {
        let mut xs = Vec::new();
        self.sequences(split, idx, &mut xs);
        if self.config().copy.is_some() {
            return self.step_logits(xs, idx.len());
        }
        self.forward_sequences(xs, idx.len(), &|_| None)
    }

    fn targets(&self, split: &Split, idx: &[usize]) -> Vec<usize> {
        self.step_targets(split, idx)
            .unwrap_or_else(|| idx.iter().map(|&i| usize::from(split.label(i))).collect())
    }

    fn inference(&self) -> Self {
        SeqClassifier::inference(self)
    }
}

/// The `format` metadata of a sequence-model checkpoint.
pub const SEQ_FORMAT: &str = "dales-seq/1";

impl ModelSpec for SeqConfig {
    type Model = SeqClassifier;

    fn name(&self) -> String {
        self.kind.to_string()
    }

    fn validate(&self) -> Result<()> {
        SeqConfig::validate(self)
    }

    /// Plain gradient descent (through the configured method, Adam in the paper) for every
    /// role: the paper constrains nothing.
    fn default_rules(&self) -> RuleTable {
        let roles = [ParamRole::Weight, ParamRole::Bias, ParamRole::Shape];
        RuleTable(roles.into_iter().map(|r| (r, GroupRule::PLAIN)).collect())
    }

    fn generated_data(&self) -> Result<Option<MnistLike>> {
        self.copy.as_ref().map(|c| c.generate()).transpose()
    }

    fn generated_description(&self) -> Option<String> {
        self.copy.as_ref().map(|c| {
            format!(
                "generated copy task (delay {}, {} of {} symbols; {} training and {} test \
                 sequences from seed {})",
                c.delay, c.length, c.symbols, c.train, c.test, c.seed
            )
        })
    }

    fn check_data(&self, train: &Split, n_classes: usize) -> Result<()> {
        if self.copy.is_some() {
            return Ok(()); // generated by the task itself
        }
        if (train.rows(), train.cols()) != (self.rows, self.cols) {
            return Err(Error::config(
                "model.rows, model.cols",
                format!("{} × {}", self.rows, self.cols),
                format!(
                    "{} × {}, the size of the dataset's images",
                    train.rows(),
                    train.cols()
                ),
            ));
        }
        check_classes(self.n_out, n_classes)
    }

    fn init_seeded(&self, seed: u64, device: &Device) -> Result<SeqClassifier> {
        SeqConfig::init_seeded(self, seed, device)
    }

    fn save_checkpoint(&self, model: &SeqClassifier, path: &Path) -> Result<()> {
        let tensors = checkpoint::named_tensors(model, "");
        let meta = HashMap::from([
            ("format".to_string(), SEQ_FORMAT.to_string()),
            ("kind".to_string(), self.kind.to_string()),
            (
                "config".to_string(),
                serde_json::to_string(model.config()).expect("config serialises"),
            ),
        ]);
        write_atomic(path, &encode(&tensors, meta)?)
    }
}

/// Read a `dales-seq/1` checkpoint. With `expected`, the checkpoint's sequence settings
/// (steps, pooling, permutation seed, sizes) must equal it, or the error names the first that
/// differs.
pub fn load_seq(
    path: &Path,
    expected: Option<&SeqConfig>,
    device: &Device,
) -> Result<SeqClassifier> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (tensors, meta) = checkpoint::decode(path, &bytes)?;
    if meta.get("format").map(String::as_str) != Some(SEQ_FORMAT) {
        return Err(Error::checkpoint(
            path,
            format!("not a sequence-model checkpoint (format metadata is not `{SEQ_FORMAT}`)"),
        ));
    }
    let config: SeqConfig = meta
        .get("config")
        .and_then(|c| serde_json::from_str(c).ok())
        .ok_or_else(|| Error::checkpoint(path, "no readable `config` metadata"))?;
    if let Some(want) = expected {
        let fields: [(&str, String, String); 6] = [
            ("kind", config.kind.to_string(), want.kind.to_string()),
            (
                "permutation_seed",
                format!("{:?}", config.permutation_seed),
                format!("{:?}", want.permutation_seed),
            ),
            ("pool", config.pool.to_string(), want.pool.to_string()),
            (
                "image size",
                format!("{}×{}", config.rows, config.cols),
                format!("{}×{}", want.rows, want.cols),
            ),
            ("hidden", config.hidden.to_string(), want.hidden.to_string()),
            (
                "sequence length",
                config.steps().map(|s| s.to_string()).unwrap_or_default(),
                want.steps().map(|s| s.to_string()).unwrap_or_default(),
            ),
        ];
        for (key, have, want) in fields {
            if have != want {
                return Err(Error::checkpoint(
                    path,
                    format!("the checkpoint has {key} {have}, the configuration {want}"),
                ));
            }
        }
    }
    let model = config.init_seeded(0, device)?;
    checkpoint::fill(model, tensors, path, device)
}
