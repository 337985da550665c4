//! Multi-layer perceptrons of the five paper models (spec A5) and the subtractive-only DANN.
//!
//! `hidden.0 … hidden.{L−1}` with ReLU between layers, then a linear `output` layer, as in the
//! checkpoint contract (`shared/reference/CHECKPOINT_FORMAT.md`).

use std::fmt;
use std::str::FromStr;

use burn::module::Module;
use burn::tensor::{Device, Tensor, activation::relu};
use serde::{Deserialize, Serialize};

use super::column_ei::{ColumnEiConfig, ColumnEiDense};
use super::dann::{DannConfig, DannDense, EiDense};
use super::dense::{Dense, DenseConfig, DenseLayerNorm};
use super::init::InitRng;
use super::layer::Layer;
use super::param::{Fan, ParamEntry, ParamLayer, ParamValue, Parameterised};
use crate::error::{Error, Result};

/// Fashion-MNIST training-set pixel mean (spec A2.3), dales' default dataset.
pub const FASHION_MNIST_PIXEL_MEAN: f64 = 0.2860;

/// Which model: the five of the DANN paper's comparison, plus DANN without the shunt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Plain MLP, He init.
    Mlp,
    /// MLP with layer norm in every layer.
    #[serde(rename = "layernorm", alias = "layer_norm")]
    LayerNorm,
    /// Sign-constrained columns (Song et al.).
    #[serde(rename = "columnei", alias = "column_ei")]
    ColumnEi,
    /// DANN with corrected ("Fisher") inhibitory updates.
    Dann,
    /// DANN trained without the corrections.
    #[serde(alias = "dann-nocorr")]
    DannNocorr,
    /// DANN layers without the divisive shunt (corrected updates).
    #[serde(alias = "dann-subtractive")]
    DannSubtractive,
}

impl ModelKind {
    /// Every kind.
    pub const ALL: [ModelKind; 6] = [
        ModelKind::Mlp,
        ModelKind::LayerNorm,
        ModelKind::ColumnEi,
        ModelKind::Dann,
        ModelKind::DannNocorr,
        ModelKind::DannSubtractive,
    ];

    /// The name used in configs and in checkpoint metadata (`dann_nocorr`).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::LayerNorm => "layernorm",
            ModelKind::ColumnEi => "columnei",
            ModelKind::Dann => "dann",
            ModelKind::DannNocorr => "dann_nocorr",
            ModelKind::DannSubtractive => "dann_subtractive",
        }
    }

    /// Whether the layers are DANN (E/I) layers.
    pub fn is_dann(self) -> bool {
        matches!(
            self,
            ModelKind::Dann | ModelKind::DannNocorr | ModelKind::DannSubtractive
        )
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = Error;

    /// Accepts the config names and their dashed forms (`dann-nocorr`).
    fn from_str(s: &str) -> Result<Self> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        ModelKind::ALL
            .into_iter()
            .find(|k| k.name() == norm || (norm == "layer_norm" && *k == ModelKind::LayerNorm))
            .ok_or_else(|| {
                Error::config(
                    "model.kind",
                    format!("{s:?}"),
                    "one of mlp, layernorm, columnei, dann, dann_nocorr, dann_subtractive",
                )
            })
    }
}

/// Configuration of an [`Mlp`].
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use dales::nn::{MlpConfig, ModelKind};
///
/// let device = dales::device::cpu();
/// let model = MlpConfig::paper(ModelKind::Dann).init(&device).unwrap();
/// let logits = model.forward(Tensor::zeros([2, 784], &device));
/// assert_eq!(logits.dims(), [2, 10]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    /// Model kind.
    pub kind: ModelKind,
    /// Number of inputs (784 for 28×28 images).
    #[serde(default = "default_n_in")]
    pub n_in: usize,
    /// Hidden widths. DANN kinds: excitatory units per layer (the I units come on top);
    /// ColumnEI: total units (E + I) per layer; others: units.
    pub hidden: Vec<usize>,
    /// Number of outputs (classes).
    #[serde(default = "default_n_out")]
    pub n_out: usize,
    /// E:I ratio. DANN hidden layers get ni = max(ne / ratio, 1) inhibitory units (the output
    /// layer always 1); ColumnEI layers split their inputs in this ratio.
    #[serde(default = "default_ratio")]
    pub ei_ratio: usize,
    /// Inhibitory units per DANN hidden layer, overriding `ei_ratio`.
    #[serde(default)]
    pub ni: Option<usize>,
    /// Mean input pixel of the training data, for the ColumnEI first-layer bias
    /// (Fashion-MNIST 0.2860, MNIST 0.1307, KMNIST 0.1918). Unset in a training run: measured
    /// on the training images and written into the run's resolved config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixel_mean: Option<f64>,
}

fn default_n_in() -> usize {
    784
}
fn default_n_out() -> usize {
    10
}
fn default_ratio() -> usize {
    10
}

impl MlpConfig {
    /// The paper's architecture (spec A5): 784 → 3 × 500 (ColumnEI 550 = 500 E + 50 I) → 10,
    /// DANN hidden layers with 50 I units.
    pub fn paper(kind: ModelKind) -> Self {
        let width = if kind == ModelKind::ColumnEi {
            550
        } else {
            500
        };
        MlpConfig {
            kind,
            n_in: 784,
            hidden: vec![width; 3],
            n_out: 10,
            ei_ratio: 10,
            ni: None,
            pixel_mean: None,
        }
    }

    /// Layer sizes `[n_in, hidden…, n_out]`.
    pub fn sizes(&self) -> Vec<usize> {
        let mut s = vec![self.n_in];
        s.extend(&self.hidden);
        s.push(self.n_out);
        s
    }

    /// Inhibitory units of DANN layer `i` (of `n_layers`) with `ne` E units.
    pub fn inhibitory_units(&self, i: usize, n_layers: usize, ne: usize) -> usize {
        if i + 1 == n_layers {
            1
        } else {
            self.ni.unwrap_or((ne / self.ei_ratio.max(1)).max(1))
        }
    }

    /// Check every size before anything is built; errors name the key.
    pub fn validate(&self) -> Result<()> {
        if self.n_in == 0 {
            return Err(Error::config("model.n_in", 0, "at least 1 input"));
        }
        if self.n_out < 2 {
            return Err(Error::config(
                "model.n_out",
                self.n_out,
                "at least 2 classes",
            ));
        }
        for (i, &h) in self.hidden.iter().enumerate() {
            if h == 0 {
                return Err(Error::config(
                    format!("model.hidden[{i}]"),
                    0,
                    "at least 1 unit",
                ));
            }
        }
        if self.ei_ratio == 0 {
            return Err(Error::config(
                "model.ei_ratio",
                0,
                "an E:I ratio of at least 1",
            ));
        }
        if self.ni == Some(0) {
            return Err(Error::config(
                "model.ni",
                0,
                "at least 1 inhibitory unit (Wei is initialised to 1/ni)",
            ));
        }
        if let Some(m) = self.pixel_mean
            && !(m.is_finite() && (0.0..=1.0).contains(&m))
        {
            return Err(Error::config(
                "model.pixel_mean",
                m,
                "a mean pixel value in [0, 1]",
            ));
        }
        Ok(())
    }

    /// Build the model with a seeded initialisation: one seed fixes every weight.
    pub fn init_seeded(&self, seed: u64, device: &Device) -> Result<Mlp> {
        self.validate()?;
        let mut rng = InitRng::new(seed);
        let sizes = self.sizes();
        let n_layers = sizes.len() - 1;
        let mut layers = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let (d, n) = (sizes[i], sizes[i + 1]);
            let first_layer = i == 0;
            let at = format!("model layer {i}");
            let key = |e: Error| e.under(&at);
            let dense = DenseConfig {
                n_in: d,
                n_out: n,
                first_layer,
            };
            let layer = match self.kind {
                ModelKind::Mlp => AnyLayer::Dense(dense.init(&mut rng, device).map_err(key)?),
                ModelKind::LayerNorm => {
                    AnyLayer::LayerNorm(dense.init_layer_norm(&mut rng, device).map_err(key)?)
                }
                ModelKind::ColumnEi => AnyLayer::ColumnEi(
                    ColumnEiConfig {
                        n_in: d,
                        n_out: n,
                        ratio: self.ei_ratio,
                        first_layer,
                        pixel_mean: self.pixel_mean.ok_or_else(|| {
                            Error::config(
                                "model.pixel_mean",
                                "(unset)",
                                "the training images' mean pixel value, which the ColumnEI \
                                 first-layer bias centres (Fashion-MNIST 0.2860, MNIST 0.1307)",
                            )
                        })?,
                    }
                    .init(&mut rng, device)
                    .map_err(key)?,
                ),
                ModelKind::Dann | ModelKind::DannNocorr | ModelKind::DannSubtractive => {
                    let config = DannConfig {
                        n_in: d,
                        ne: n,
                        ni: self.inhibitory_units(i, n_layers, n),
                        first_layer,
                    };
                    if self.kind == ModelKind::DannSubtractive {
                        AnyLayer::EiDense(config.init_subtractive(&mut rng, device).map_err(key)?)
                    } else {
                        AnyLayer::Dann(config.init(&mut rng, device).map_err(key)?)
                    }
                }
            };
            layers.push(layer);
        }
        Ok(Mlp { layers })
    }

    /// Build the model with seed 0 (see [`MlpConfig::init_seeded`]).
    pub fn init(&self, device: &Device) -> Result<Mlp> {
        self.init_seeded(0, device)
    }
}

/// One layer of an [`Mlp`], any kind.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum AnyLayer {
    /// [`Dense`].
    Dense(Dense),
    /// [`DenseLayerNorm`].
    LayerNorm(DenseLayerNorm),
    /// [`ColumnEiDense`].
    ColumnEi(ColumnEiDense),
    /// [`DannDense`].
    Dann(DannDense),
    /// [`EiDense`].
    EiDense(EiDense),
}

macro_rules! each_layer {
    ($self:expr, $l:ident => $body:expr) => {
        match $self {
            AnyLayer::Dense($l) => $body,
            AnyLayer::LayerNorm($l) => $body,
            AnyLayer::ColumnEi($l) => $body,
            AnyLayer::Dann($l) => $body,
            AnyLayer::EiDense($l) => $body,
        }
    };
}

impl Layer for AnyLayer {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        each_layer!(self, l => l.forward(x))
    }
    fn n_in(&self) -> usize {
        each_layer!(self, l => l.n_in())
    }
    fn n_out(&self) -> usize {
        each_layer!(self, l => l.n_out())
    }
    fn fan(&self) -> Fan {
        each_layer!(self, l => l.fan())
    }
    fn entries(&self) -> Vec<ParamEntry> {
        each_layer!(self, l => l.entries())
    }
    fn with_values(self, values: Vec<ParamValue>) -> Self {
        match self {
            AnyLayer::Dense(l) => AnyLayer::Dense(l.with_values(values)),
            AnyLayer::LayerNorm(l) => AnyLayer::LayerNorm(l.with_values(values)),
            AnyLayer::ColumnEi(l) => AnyLayer::ColumnEi(l.with_values(values)),
            AnyLayer::Dann(l) => AnyLayer::Dann(l.with_values(values)),
            AnyLayer::EiDense(l) => AnyLayer::EiDense(l.with_values(values)),
        }
    }
}

/// A feed-forward network: ReLU hidden layers and a linear output layer.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `hidden.0 … hidden.{L−1}`, then `output`.
    pub layers: Vec<AnyLayer>,
}

impl Mlp {
    /// Logits `(B, n_out)` for inputs `(B, n_in)`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |h, (i, layer)| {
            let z = layer.forward(h);
            if i == last { z } else { relu(z) }
        })
    }

    /// Checkpoint name of layer `i`: `hidden.{i}` or `output`.
    pub fn layer_name(&self, i: usize) -> String {
        if i + 1 == self.layers.len() {
            "output".to_string()
        } else {
            format!("hidden.{i}")
        }
    }

    /// Every parameter and buffer as (`layer.param` name, entry), in forward order.
    pub fn named_entries(&self) -> Vec<(String, ParamEntry)> {
        Parameterised::named_entries(self)
    }

    /// Number of trainable scalars.
    pub fn num_trainable(&self) -> usize {
        self.named_entries()
            .iter()
            .filter(|(_, e)| e.role.is_some())
            .map(|(_, e)| e.value.numel())
            .sum()
    }
}

impl Parameterised for Mlp {
    fn param_layers(&self) -> Vec<ParamLayer> {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, layer)| ParamLayer {
                name: self.layer_name(i),
                fan: layer.fan(),
                entries: layer.entries(),
            })
            .collect()
    }

    fn with_layer_values(self, values: Vec<Vec<ParamValue>>) -> Self {
        assert_eq!(values.len(), self.layers.len(), "one value list per layer");
        Mlp {
            layers: self
                .layers
                .into_iter()
                .zip(values)
                .map(|(layer, v)| layer.with_values(v))
                .collect(),
        }
    }
}
