//! Sequence classifiers for the sequential tasks of the adaptation paper (spec C2, C3): a
//! recurrent cell reads a sequence `(B, T, d)` one step at a time, and a linear readout maps
//! the last hidden state (or, for the copy task, every hidden state) to logits. The tasks that
//! make the sequences live in [`dales_data`]: images as pixel sequences
//! ([`dales_data::sequence::PixelSequences`]), the copy task ([`dales_data::copy::CopyTask`]).
//!
//! ```
//! use burn::tensor::Tensor;
//! use dales::nn::seq::{SeqConfig, SeqKind};
//!
//! let device = dales::device::cpu();
//! let config = SeqConfig { hidden: 16, pool: 4, ..SeqConfig::paper(SeqKind::RnnRelu) };
//! let model = config.init_seeded(1, &device).unwrap();
//! assert_eq!(model.steps(), 49); // 28 × 28 pooled 4 × 4
//! let xs = Tensor::<3>::full([2, 49, 1], 0.5, &device);
//! assert_eq!(model.forward(xs, &|_| None).dims(), [2, 10]);
//! ```

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, Tensor};
use dales_data::copy::{CopySpec, CopyTask};
use dales_data::sequence::SequenceSpec;
use serde::{Deserialize, Serialize};

use super::arun::{ArunCell, ArunConfig};
use super::dense::Dense;
use super::gated::{GruCell, GruConfig, LstmCell, LstmConfig};
use super::init::{InitRng, matrix};
use super::layer::Layer;
use super::param::{Fan, ParamLayer, ParamValue, Parameterised, param};
use super::recurrent::{Recurrent, outputs, run};
use super::rnn::{Activation, GammaShape, RnnCell, RnnConfig};
use crate::error::{Error, Result};

/// The recurrent models of spec C3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeqKind {
    /// RNN + ReLU.
    RnnRelu,
    /// RNN + tanh.
    RnnTanh,
    /// RNN + softplus.
    RnnSoftplus,
    /// RNN + gamma with one learned `(n, s)` ("RNN+gamma").
    RnnGamma,
    /// RNN + gamma with a learned `(n, s)` per neuron ("RNN+gamma2", heterogeneous).
    RnnGammaHet,
    /// The adaptive network with its controller.
    Arun,
    /// LSTM baseline.
    Lstm,
    /// GRU baseline.
    Gru,
}

impl SeqKind {
    /// Every kind, in table order.
    pub const ALL: [SeqKind; 8] = [
        SeqKind::RnnRelu,
        SeqKind::RnnTanh,
        SeqKind::RnnSoftplus,
        SeqKind::RnnGamma,
        SeqKind::RnnGammaHet,
        SeqKind::Arun,
        SeqKind::Lstm,
        SeqKind::Gru,
    ];

    /// The snake_case name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            SeqKind::RnnRelu => "rnn_relu",
            SeqKind::RnnTanh => "rnn_tanh",
            SeqKind::RnnSoftplus => "rnn_softplus",
            SeqKind::RnnGamma => "rnn_gamma",
            SeqKind::RnnGammaHet => "rnn_gamma_het",
            SeqKind::Arun => "arun",
            SeqKind::Lstm => "lstm",
            SeqKind::Gru => "gru",
        }
    }

    fn activation(self) -> Option<Activation> {
        match self {
            SeqKind::RnnRelu => Some(Activation::Relu),
            SeqKind::RnnTanh => Some(Activation::Tanh),
            SeqKind::RnnSoftplus => Some(Activation::Softplus),
            SeqKind::RnnGamma => Some(Activation::Gamma(GammaShape::Homogeneous)),
            SeqKind::RnnGammaHet => Some(Activation::Gamma(GammaShape::Heterogeneous)),
            SeqKind::Arun | SeqKind::Lstm | SeqKind::Gru => None,
        }
    }
}

impl fmt::Display for SeqKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SeqKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.replace('-', "_");
        SeqKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown sequence model `{s}`"))
    }
}

/// The `[model]` section of a sequence run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeqConfig {
    /// Which model.
    pub kind: SeqKind,
    /// Hidden units `H` (the paper: 400).
    pub hidden: usize,
    /// Controller units `K` of an ARUN (the paper: 50); ignored by the other kinds.
    #[serde(default = "default_controller")]
    pub controller: usize,
    /// Initial gain `n_0` (gamma RNNs) or `b_gn` (ARUN); absent: the paper's `5 + 2·U(0, 1)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n0: Option<f64>,
    /// Initial saturation `s_0` of the gamma RNNs (the paper: 0).
    #[serde(default)]
    pub s0: f64,
    /// Classes.
    #[serde(default = "default_n_out")]
    pub n_out: usize,
    /// Image rows and columns the sequences are made from.
    #[serde(default = "default_side")]
    pub rows: usize,
    /// See `rows`.
    #[serde(default = "default_side")]
    pub cols: usize,
    /// Average-pooling factor: 1 gives 784 steps for 28 × 28 images, 2 gives 196.
    #[serde(default = "default_pool")]
    pub pool: usize,
    /// Seed of the fixed pixel permutation (psMNIST); absent: row-major order (sMNIST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permutation_seed: Option<u64>,
    /// The copy task instead of image classification: one-hot symbol inputs, a readout at
    /// every step, the data generated from its seed (`rows`, `cols`, `pool` and
    /// `permutation_seed` are then unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<CopyConfig>,
}

/// The `[model.copy]` section: the copy task's sizes and its generated data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyConfig {
    /// Steps between the first symbol and the first recall step (the paper: 200).
    pub delay: usize,
    /// Symbols to copy (the paper: 10).
    #[serde(default = "default_copy_length")]
    pub length: usize,
    /// Alphabet size (the paper: 8).
    #[serde(default = "default_copy_symbols")]
    pub symbols: usize,
    /// Training sequences generated (one epoch).
    #[serde(default = "default_copy_train")]
    pub train: usize,
    /// Test sequences generated.
    #[serde(default = "default_copy_test")]
    pub test: usize,
    /// Seed of the generated sequences (the test set uses `seed + 1`).
    #[serde(default)]
    pub seed: u64,
}

fn default_copy_length() -> usize {
    10
}
fn default_copy_symbols() -> usize {
    8
}
fn default_copy_train() -> usize {
    10_000
}
fn default_copy_test() -> usize {
    1_000
}

impl CopyConfig {
    /// The paper's copy task (spec C3): delay 200, 10 symbols of 8, and 10,000 training and
    /// 1,000 test sequences.
    pub fn paper() -> Self {
        CopyConfig {
            delay: 200,
            length: default_copy_length(),
            symbols: default_copy_symbols(),
            train: default_copy_train(),
            test: default_copy_test(),
            seed: 0,
        }
    }

    /// The sizes.
    pub fn spec(&self) -> CopySpec {
        CopySpec {
            delay: self.delay,
            length: self.length,
            symbols: self.symbols,
        }
    }

    /// The generated training and test tasks (seeds `seed` and `seed + 1`).
    pub fn generate(&self) -> Result<(CopyTask, CopyTask)> {
        let spec = self.spec();
        let bad =
            |key: &str, v: usize, e: dales_data::DataError| Error::config(key, v, e.to_string());
        let train = spec
            .generate(self.train, self.seed)
            .map_err(|e| bad("model.copy.train", self.train, e))?;
        let test = spec
            .generate(self.test, self.seed + 1)
            .map_err(|e| bad("model.copy.test", self.test, e))?;
        Ok((train, test))
    }
}

fn default_controller() -> usize {
    50
}
fn default_n_out() -> usize {
    10
}
fn default_side() -> usize {
    28
}
fn default_pool() -> usize {
    1
}

impl SeqConfig {
    /// The paper's psMNIST model (spec C3): `H = 400`, `K = 50`, 784 steps, permutation seed 400.
    pub fn paper(kind: SeqKind) -> Self {
        SeqConfig {
            kind,
            hidden: 400,
            controller: default_controller(),
            n0: None,
            s0: 0.0,
            n_out: default_n_out(),
            rows: default_side(),
            cols: default_side(),
            pool: default_pool(),
            permutation_seed: Some(400),
            copy: None,
        }
    }

    /// The adaptation paper's copy task (spec C3): `H = 128`, delay 200, 10 symbols of 8.
    pub fn copy_paper(kind: SeqKind) -> Self {
        let copy = CopyConfig::paper();
        SeqConfig {
            hidden: 128,
            n_out: copy.spec().classes(),
            permutation_seed: None,
            copy: Some(copy),
            ..SeqConfig::paper(kind)
        }
    }

    /// Inputs per step: 1 pixel, or the copy task's one-hot symbol.
    pub fn n_in(&self) -> usize {
        self.copy.as_ref().map_or(1, |c| c.spec().input_size())
    }

    /// How images become sequences.
    pub fn sequence(&self) -> SequenceSpec {
        SequenceSpec {
            pool: self.pool,
            permutation_seed: self.permutation_seed,
        }
    }

    /// Steps per sequence.
    pub fn steps(&self) -> Result<usize> {
        if let Some(copy) = &self.copy {
            return Ok(copy.spec().steps());
        }
        self.sequence()
            .steps(self.rows, self.cols)
            .map_err(|_| self.pool_error())
    }

    fn pool_error(&self) -> Error {
        Error::config(
            "model.pool",
            self.pool,
            format!(
                "a factor ≥ 1 that divides the image size {} × {}",
                self.rows, self.cols
            ),
        )
    }

    /// Check every value; errors name the key.
    pub fn validate(&self) -> Result<()> {
        for (key, v) in [
            ("model.hidden", self.hidden),
            ("model.controller", self.controller),
            ("model.n_out", self.n_out),
            ("model.rows", self.rows),
            ("model.cols", self.cols),
        ] {
            if v == 0 {
                return Err(Error::config(key, 0, "at least 1"));
            }
        }
        if let Some(n0) = self.n0
            && !(n0 > 0.0 && n0.is_finite())
        {
            return Err(Error::config("model.n0", n0, "a finite gain n_0 > 0"));
        }
        if !self.s0.is_finite() {
            return Err(Error::config("model.s0", self.s0, "a finite saturation"));
        }
        self.steps()?;
        if let Some(copy) = &self.copy {
            let spec = copy.spec();
            spec.validate()
                .map_err(|e| Error::config("model.copy", format!("{spec:?}"), e.to_string()))?;
            for (key, n) in [
                ("model.copy.train", copy.train),
                ("model.copy.test", copy.test),
            ] {
                if n == 0 {
                    return Err(Error::config(key, 0, "at least 1 sequence"));
                }
            }
            if self.n_out != spec.classes() {
                return Err(Error::config(
                    "model.n_out",
                    self.n_out,
                    format!(
                        "{}: the copy task's blank and {} symbols",
                        spec.classes(),
                        spec.symbols
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The model, initialised from `seed` (cell first, then the readout, from one generator).
    pub fn init_seeded(&self, seed: u64, device: &Device) -> Result<SeqClassifier> {
        self.validate()?;
        let mut rng = InitRng::new(seed);
        let cell = match self.kind.activation() {
            Some(activation) => SeqCell::Rnn(Box::new(
                RnnConfig {
                    n0: self.n0,
                    s0: self.s0,
                    ..RnnConfig::new(self.n_in(), self.hidden, activation)
                }
                .init(&mut rng, device)?,
            )),
            None => match self.kind {
                SeqKind::Lstm => SeqCell::Lstm(Box::new(
                    LstmConfig {
                        n_in: self.n_in(),
                        hidden: self.hidden,
                    }
                    .init(&mut rng, device)?,
                )),
                SeqKind::Gru => SeqCell::Gru(Box::new(
                    GruConfig {
                        n_in: self.n_in(),
                        hidden: self.hidden,
                    }
                    .init(&mut rng, device)?,
                )),
                _ => SeqCell::Arun(Box::new(
                    ArunConfig {
                        n0: self.n0,
                        ..ArunConfig::new(self.n_in(), self.hidden, self.controller)
                    }
                    .init(&mut rng, device)?,
                )),
            },
        };
        // PyTorch's nn.Linear default: weight and bias U(±1/√H).
        let bound = 1.0 / (self.hidden as f64).sqrt();
        let w = rng.uniform(self.n_out * self.hidden, -bound, bound);
        let b = rng.uniform(self.n_out, -bound, bound);
        let readout = Dense {
            weight: param(matrix(&w, self.n_out, self.hidden, device)),
            bias: param(matrix(&b, 1, self.n_out, device).reshape([self.n_out])),
        };
        Ok(SeqClassifier {
            cell,
            readout,
            steps: self.steps()?,
            config: self.clone(),
        })
    }
}

/// The recurrent cell of a [`SeqClassifier`].
#[derive(Debug, Clone)]
pub enum SeqCell {
    /// RNN with a fixed or learned-gamma activation.
    Rnn(Box<RnnCell>),
    /// ARUN.
    Arun(Box<ArunCell>),
    /// LSTM.
    Lstm(Box<LstmCell>),
    /// GRU.
    Gru(Box<GruCell>),
}

/// A recurrent cell with a linear readout from its last hidden state.
#[derive(Debug, Clone)]
pub struct SeqClassifier {
    /// The recurrent cell.
    pub cell: SeqCell,
    /// `Linear(H → n_out)`.
    pub readout: Dense,
    config: SeqConfig,
    steps: usize,
}

impl SeqClassifier {
    /// The configuration the model was built from.
    pub fn config(&self) -> &SeqConfig {
        &self.config
    }

    /// Steps per sequence of the task it was configured for.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Hidden units `H`.
    pub fn hidden(&self) -> usize {
        self.config.hidden
    }

    /// The device the parameters live on.
    pub fn device(&self) -> Device {
        self.readout.weight.val().device()
    }

    /// The last hidden state `h_T (B, H)` for sequences `xs (B, T, in)` of any length and
    /// float type, with `drive(t)` added to every hidden pre-activation at step `t`.
    pub fn last_hidden(
        &self,
        xs: Tensor<3>,
        drive: &dyn Fn(usize) -> Option<Tensor<2>>,
    ) -> Tensor<2> {
        match &self.cell {
            SeqCell::Rnn(c) => c.last_hidden(xs, drive),
            SeqCell::Arun(c) => c.last_hidden(xs, drive),
            SeqCell::Lstm(c) => c.output(&run(c.as_ref(), xs, drive)),
            SeqCell::Gru(c) => c.output(&run(c.as_ref(), xs, drive)),
        }
    }

    /// Logits `(B, n_out)` read out of the last step of sequences `xs (B, T, in)` under
    /// `drive`.
    pub fn forward(&self, xs: Tensor<3>, drive: &dyn Fn(usize) -> Option<Tensor<2>>) -> Tensor<2> {
        self.readout.forward(self.last_hidden(xs, drive))
    }

    /// The readout of every step, `(B·T, n_out)` with row `b·T + t`, for sequences
    /// `xs (B, T, in)`: the copy task's outputs.
    pub fn step_logits(&self, xs: Tensor<3>) -> Tensor<2> {
        let hs = match &self.cell {
            SeqCell::Rnn(c) => outputs(c.as_ref(), xs),
            SeqCell::Arun(c) => outputs(c.as_ref(), xs),
            SeqCell::Lstm(c) => outputs(c.as_ref(), xs),
            SeqCell::Gru(c) => outputs(c.as_ref(), xs),
        };
        let steps = hs.len();
        let [b, h] = hs[0].dims();
        let hs = Tensor::stack::<3>(hs, 1).reshape([b * steps, h]);
        self.readout.forward(hs)
    }

    /// A copy without autodiff.
    pub fn inference(&self) -> Self {
        SeqClassifier {
            cell: match &self.cell {
                SeqCell::Rnn(c) => SeqCell::Rnn(Box::new(c.inference())),
                SeqCell::Arun(c) => SeqCell::Arun(Box::new(c.inference())),
                SeqCell::Lstm(c) => SeqCell::Lstm(Box::new(c.inference())),
                SeqCell::Gru(c) => SeqCell::Gru(Box::new(c.inference())),
            },
            readout: Dense {
                weight: super::param::detached(&self.readout.weight),
                bias: super::param::detached(&self.readout.bias),
            },
            config: self.config.clone(),
            steps: self.steps,
        }
    }
}

impl Parameterised for SeqClassifier {
    fn param_layers(&self) -> Vec<ParamLayer> {
        let cell = match &self.cell {
            SeqCell::Rnn(c) => c.entries(),
            SeqCell::Arun(c) => c.entries(),
            SeqCell::Lstm(c) => c.entries(),
            SeqCell::Gru(c) => c.entries(),
        };
        vec![
            ParamLayer {
                name: "cell".into(),
                fan: Fan {
                    d: 1,
                    ne: self.hidden(),
                },
                entries: cell,
            },
            ParamLayer {
                name: "readout".into(),
                fan: self.readout.fan(),
                entries: self.readout.entries(),
            },
        ]
    }

    fn with_layer_values(self, values: Vec<Vec<ParamValue>>) -> Self {
        let mut v = values.into_iter();
        let (cell, readout) = (v.next(), v.next());
        let (cell, readout) = cell.zip(readout).expect("two value lists: cell, readout");
        SeqClassifier {
            cell: match self.cell {
                SeqCell::Rnn(c) => SeqCell::Rnn(Box::new(c.with_values(cell))),
                SeqCell::Arun(c) => SeqCell::Arun(Box::new(c.with_values(cell))),
                SeqCell::Lstm(c) => SeqCell::Lstm(Box::new(c.with_values(cell))),
                SeqCell::Gru(c) => SeqCell::Gru(Box::new(c.with_values(cell))),
            },
            readout: self.readout.with_values(readout),
            config: self.config,
            steps: self.steps,
        }
    }
}
