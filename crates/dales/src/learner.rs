//! What a run needs from a model, so that one [`crate::run::Trainer`] trains the feed-forward
//! networks and the sequence models alike.
//!
//! A [`ModelSpec`] is the `[model]` section of a run's configuration: it validates itself,
//! names its default update rules, says which task it learns on the run's data, builds the
//! model and writes its checkpoint. The model it builds is a [`Learner`]: a
//! [`Parameterised`] model that maps a batch of inputs `(B, T, d)` to logits. Models never
//! read data: tasks ([`dales_data::task`]) make the batches.

use std::collections::HashMap;
use std::fmt::Debug;
use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use dales_data::sequence::PixelSequences;
use dales_data::task::{Batch, Images, Task};
use dales_data::{MnistLike, Split};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checkpoint::{self, encode};
use crate::error::{Error, Result};
use crate::host::tensor;
use crate::io::write_atomic;
use crate::nn::seq::{SeqClassifier, SeqConfig, SeqKind};
use crate::nn::{Mlp, MlpConfig, ModelKind, ParamRole, Parameterised};
use crate::optim::dngd::{self, Named};
use crate::optim::{GroupRule, RuleTable};
use crate::train::Targets;

/// Where a model reads its logits out of a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readout {
    /// One row of logits per example, from its last step.
    Last,
    /// One row per step, row `b·T + t`.
    Every,
}

impl Readout {
    /// A batch as a model with this readout takes it: the inputs `(B, T, d)` on `device`, and
    /// the target of every row of its logits (the last step's of each example, or every
    /// step's).
    pub fn apply(self, batch: Batch, device: &Device) -> (Tensor<3>, Targets) {
        let Batch {
            size,
            steps,
            width,
            inputs,
            targets,
            mask,
            values,
        } = batch;
        let inputs = tensor(inputs, [size, steps, width], device);
        let targets = match self {
            Readout::Every => Targets {
                classes: targets,
                scored: mask,
                values,
            },
            Readout::Last => {
                let k = values.len() / (size * steps).max(1);
                let values = (0..size)
                    .flat_map(|b| values[((b + 1) * steps - 1) * k..(b + 1) * steps * k].iter())
                    .copied()
                    .collect();
                Targets {
                    classes: last_steps(&targets, size, steps),
                    scored: last_steps(&mask, size, steps),
                    values,
                }
            }
        };
        (inputs, targets)
    }

    /// Check that `task` scores only steps this readout reads out.
    pub fn check(self, task: &dyn Task) -> Result<()> {
        if self == Readout::Every || task.steps() == 1 || task.is_empty() {
            return Ok(());
        }
        let batch = task.batch(&[0]);
        if batch.mask[..batch.steps - 1].iter().any(|&m| m) {
            return Err(Error::config(
                "model",
                "a readout at the last step",
                "a model that reads out every step: the task scores earlier steps too",
            ));
        }
        Ok(())
    }
}

/// The entries of the last step of each of `size` examples of `steps` steps.
fn last_steps<T: Copy>(v: &[T], size: usize, steps: usize) -> Vec<T> {
    (0..size).map(|b| v[(b + 1) * steps - 1]).collect()
}

/// A trainable classifier of input tensors.
pub trait Learner: Parameterised + Clone + Send + Sync {
    /// Logits of inputs `(B, T, d)`: `(B, C)` read out at the last step, or `(B·T, C)` at
    /// every step (see [`Learner::readout`]).
    fn logits(&self, inputs: Tensor<3>) -> Tensor<2>;

    /// Where the logits are read out.
    fn readout(&self) -> Readout;

    /// A copy without autodiff, for evaluation.
    fn inference(&self) -> Self;

    /// Named scalars that describe the model's state, logged with every epoch's metrics (the
    /// spectral entropy of recurrent matrices); none by default.
    fn probes(&self) -> Vec<(String, f64)> {
        Vec::new()
    }

    /// d-NGD's mean squared per-example gradients on `inputs` at targets sampled with `seed`
    /// ([`crate::optim::dngd::mean_squares`]); models it does not apply to say so.
    fn dngd_squares(&self, inputs: Tensor<3>, seed: u64) -> Result<Named> {
        let _ = (inputs, seed);
        Err(Error::config(
            "optim.method",
            "\"dngd\"",
            "a method for feed-forward DANN networks",
        ))
    }

    /// The device the parameters live on.
    fn device(&self) -> Device {
        self.param_layers()
            .first()
            .and_then(|l| l.entries.first())
            .map(|e| e.value.flatten().device())
            .expect("a model has parameters")
    }
}

/// The two tasks of a run that generates its own data: training and test.
pub type GeneratedTasks = (Box<dyn Task>, Box<dyn Task>);

/// How big a model is, for the memory estimate made before a run allocates it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ModelSize {
    /// Trainable numbers.
    pub parameters: f64,
    /// Activations per example and step that training keeps for the backward pass.
    pub units: f64,
}

impl ModelSize {
    /// A dense layer of `fan_in` inputs and `n` units, with `ni` inhibitory units (DANN; 0
    /// for the others) and three vectors per unit (bias, gain, shift).
    pub fn dense(fan_in: usize, n: usize, ni: usize) -> ModelSize {
        let (fan_in, n, ni) = (fan_in as f64, n as f64, ni as f64);
        ModelSize {
            parameters: fan_in * (n + ni) + n * ni + 3.0 * n + ni,
            units: n + ni,
        }
    }
}

impl std::ops::Add for ModelSize {
    type Output = ModelSize;
    fn add(self, o: ModelSize) -> ModelSize {
        ModelSize {
            parameters: self.parameters + o.parameters,
            units: self.units + o.units,
        }
    }
}

impl std::iter::Sum for ModelSize {
    fn sum<I: Iterator<Item = ModelSize>>(iter: I) -> ModelSize {
        iter.fold(ModelSize::default(), |a, b| a + b)
    }
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

    /// The model's size on inputs of `width` numbers per step (arithmetic on the
    /// configuration, nothing is allocated).
    fn size(&self, width: usize) -> ModelSize;

    /// Check that d-NGD (`optim.method = "dngd"`, spec A3.7) can train the model: a DANN MLP
    /// with divisive inhibition, one inhibitory unit per layer, no corrections.
    fn check_dngd(&self) -> Result<()> {
        Err(Error::config(
            "optim.method",
            "\"dngd\"",
            "a method for feed-forward DANN networks (model.kind = \"dann-nocorr\")",
        ))
    }

    /// Check that the model fits the images of a dataset: their size and number of classes.
    fn check_data(&self, data: &MnistLike) -> Result<()>;

    /// The task the model learns on a split of image data.
    fn task(&self, split: Split) -> Result<Box<dyn Task>>;

    /// Whether a training step at `batch` examples is too small to split across threads
    /// ([`crate::fused::Settings::serial`]); by default not.
    fn serial_steps(&self, batch: usize) -> bool {
        let _ = batch;
        false
    }

    /// Examples per evaluation batch: 1000 by default; fewer for models whose activations per
    /// example are large (a convnet's feature maps), to keep the evaluation's memory in step
    /// with training's.
    fn eval_batch(&self) -> usize {
        1000
    }

    /// Tasks that generate their own examples (the copy task) instead of reading a dataset.
    fn generated(&self) -> Result<Option<GeneratedTasks>> {
        Ok(None)
    }

    /// What [`ModelSpec::generated`] generates, for messages (`None`: a dataset is read).
    fn generated_description(&self) -> Option<String> {
        None
    }

    /// Fill in settings measured on the training images (the mean pixel a ColumnEI network
    /// centres).
    fn prepare(&mut self, _pixel_mean: Option<f64>) {}

    /// The model, initialised from `seed`.
    fn init_seeded(&self, seed: u64, device: &Device) -> Result<Self::Model>;

    /// Write the model's checkpoint (atomically).
    fn save_checkpoint(&self, model: &Self::Model, path: &Path) -> Result<()>;
}

impl Learner for Mlp {
    fn logits(&self, inputs: Tensor<3>) -> Tensor<2> {
        let [b, t, d] = inputs.dims();
        self.forward(inputs.reshape([b, t * d]))
    }

    fn readout(&self) -> Readout {
        Readout::Last
    }

    fn inference(&self) -> Self {
        self.valid()
    }

    fn dngd_squares(&self, inputs: Tensor<3>, seed: u64) -> Result<Named> {
        let [b, t, d] = inputs.dims();
        dngd::mean_squares(self, inputs.reshape([b, t * d]), None, seed)
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

    fn check_dngd(&self) -> Result<()> {
        match self.kind {
            ModelKind::DannNocorr => {}
            ModelKind::Dann => {
                return Err(Error::config(
                    "model.kind",
                    "\"dann\"",
                    "\"dann-nocorr\" with optim.method = \"dngd\": d-NGD replaces the corrected \
                     updates (spec A3.7; the original refuses both together)",
                ));
            }
            other => {
                return Err(Error::config(
                    "model.kind",
                    format!("\"{other}\""),
                    "\"dann-nocorr\" for optim.method = \"dngd\", a method for DANN networks \
                     with divisive inhibition",
                ));
            }
        }
        let sizes = self.sizes();
        let layers = sizes.len() - 1;
        for i in 0..layers {
            let ni = self.inhibitory_units(i, layers, sizes[i + 1]);
            if ni != 1 {
                return Err(Error::config(
                    "model.ni",
                    ni,
                    "1 for d-NGD: its per-example gradients are exact for one inhibitory unit \
                     per layer only (spec A3.7)",
                ));
            }
        }
        Ok(())
    }

    fn size(&self, _width: usize) -> ModelSize {
        let sizes = self.sizes();
        let layers = sizes.len() - 1;
        (0..layers)
            .map(|i| {
                let ni = if self.kind.is_dann() {
                    self.inhibitory_units(i, layers, sizes[i + 1])
                } else {
                    0
                };
                ModelSize::dense(sizes[i], sizes[i + 1], ni)
            })
            .sum()
    }

    fn check_data(&self, data: &MnistLike) -> Result<()> {
        let train = &data.train;
        let pixels = train.pixels_per_image();
        if pixels != self.n_in {
            return Err(Error::config(
                "model.n_in",
                self.n_in,
                format!("{pixels}, the number of pixels of the dataset's images"),
            ));
        }
        check_classes(self.n_out, data)
    }

    fn task(&self, split: Split) -> Result<Box<dyn Task>> {
        Ok(Box::new(Images::new(split)))
    }

    fn prepare(&mut self, pixel_mean: Option<f64>) {
        if self.pixel_mean.is_none() {
            self.pixel_mean = pixel_mean;
        }
    }

    fn init_seeded(&self, seed: u64, device: &Device) -> Result<Mlp> {
        MlpConfig::init_seeded(self, seed, device)
    }

    fn save_checkpoint(&self, model: &Mlp, path: &Path) -> Result<()> {
        checkpoint::save_mlp(model, self.kind, path)
    }
}

/// Check that a sequence model's images are grey: it reads them pixel by pixel or row by row.
pub(crate) fn check_grey(train: &Split) -> Result<()> {
    if train.channels() != 1 {
        return Err(Error::config(
            "data.dir",
            format!("images of {} colour channels", train.channels()),
            "grey images (one channel) for a sequence model, which reads pixels or rows",
        ));
    }
    Ok(())
}

/// Check that `n_out` outputs cover the labels of `data`; the error names the label that
/// sets the number of classes, with its file and index.
pub(crate) fn check_classes(n_out: usize, data: &MnistLike) -> Result<()> {
    let n_classes = data.n_classes();
    if n_classes > n_out {
        return Err(Error::config(
            "model.n_out",
            n_out,
            format!(
                "at least {n_classes}, the dataset's number of classes (its largest label: {})",
                data.largest_label
            ),
        ));
    }
    Ok(())
}

impl Learner for SeqClassifier {
    fn logits(&self, inputs: Tensor<3>) -> Tensor<2> {
        match self.readout() {
            Readout::Every => self.step_logits(inputs),
            Readout::Last => self.forward(inputs, &|_| None),
        }
    }

    fn readout(&self) -> Readout {
        if self.config().copy.is_some() {
            Readout::Every
        } else {
            Readout::Last
        }
    }

    fn inference(&self) -> Self {
        SeqClassifier::inference(self)
    }

    fn device(&self) -> Device {
        SeqClassifier::device(self)
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

    /// `g` gate blocks of `H × (width + H)` (LSTM 4, GRU 3, the others 1), the ARUN's
    /// controller (`K` units shared by the neurons; its fused op keeps a gain and a shift per
    /// neuron and step for the backward pass, not the `K` states), the readout.
    fn size(&self, width: usize) -> ModelSize {
        let gates = match self.kind {
            SeqKind::Lstm => 4,
            SeqKind::Gru => 3,
            _ => 1,
        };
        let controller = if self.kind == SeqKind::Arun {
            let k = self.controller;
            let shared = ModelSize::dense(1 + k, k, 0) + ModelSize::dense(k, 2, 0);
            ModelSize {
                units: self.hidden as f64,
                ..shared
            }
        } else {
            ModelSize::default()
        };
        ModelSize::dense(width + self.hidden, gates * self.hidden, 0)
            + controller
            + ModelSize::dense(self.hidden, self.n_out, 0)
    }

    fn generated(&self) -> Result<Option<GeneratedTasks>> {
        let Some(copy) = &self.copy else {
            return Ok(None);
        };
        let (train, test) = copy.generate()?;
        Ok(Some((Box::new(train), Box::new(test))))
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

    fn check_data(&self, data: &MnistLike) -> Result<()> {
        let train = &data.train;
        check_grey(train)?;
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
        check_classes(self.n_out, data)
    }

    fn task(&self, split: Split) -> Result<Box<dyn Task>> {
        let task = PixelSequences::new(split, self.sequence())
            .map_err(|e| Error::config("model.pool", self.pool, e.to_string()))?;
        Ok(Box::new(task))
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
