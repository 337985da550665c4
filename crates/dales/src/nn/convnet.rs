//! Convolutional networks of spec A4: the small convnet for 28×28 grey images and the VGGs,
//! in four families that share one architecture description (`dales-conv/1`'s `arch`).
//!
//! Conv layers `conv.0 … conv.{K−1}`, each followed by ReLU and, where its `pool` is set,
//! max-pooling of that size (kernel = stride, floor); an adaptive average pool to `head_pool`
//! after the last (the VGGs); flattening in `(C, H, W)` order; dense layers `dense.0 …` (ReLU,
//! dropout in training); a linear `output`. The families:
//! - `dann`, `dann-nocorr`: [`ConvDann`] layers of `c_e` E / `c_i` I channels, a DANN head
//!   (`[ne, ni]` per hidden layer, `out_ni` I units in the output layer); the same model, with
//!   or without the corrections;
//! - `standard`: [`StdConv`] layers of `c_e` channels, a He-normal dense head of `ne` units;
//! - `columnei`: [`ColumnEiConv`] layers of `c_e + c_i` channels (the last `c_i` inhibitory
//!   inputs of the next layer), a ColumnEI head of `ne + ni` units.

use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::column_ei::ColumnEiConfig;
use super::conv::{ColumnEiConv, StdConv};
use super::conv_dann::{ConvDann, ConvDannConfig};
use super::dann::DannConfig;
use super::dense::DenseConfig;
use super::init::InitRng;
use super::layer::Layer;
use super::mlp::{AnyLayer, ModelKind};
use super::param::{Fan, ParamEntry, ParamLayer, ParamValue, Parameterised};
use crate::error::{Error, Result};
use crate::fused::{Conv2d, Pool, Settings};
use crate::host::tensor;

/// The family tag of a `[model]` section of this kind (`kind = "conv"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tag {
    /// A convolutional network.
    Conv,
}

/// The layers' family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConvFamily {
    /// Conv DANN layers and a DANN head, corrected updates.
    Dann,
    /// The same model without the corrections.
    DannNocorr,
    /// Standard convolutions and dense layers.
    Standard,
    /// Sign-constrained convolutions and dense layers.
    #[serde(rename = "columnei")]
    ColumnEi,
}

impl ConvFamily {
    /// Every family.
    pub const ALL: [ConvFamily; 4] = [
        ConvFamily::Dann,
        ConvFamily::DannNocorr,
        ConvFamily::Standard,
        ConvFamily::ColumnEi,
    ];

    /// The name in configs (`dann-nocorr`).
    pub fn name(self) -> &'static str {
        match self {
            ConvFamily::Dann => "dann",
            ConvFamily::DannNocorr => "dann-nocorr",
            ConvFamily::Standard => "standard",
            ConvFamily::ColumnEi => "columnei",
        }
    }

    /// The dense model kind with the same layers and rules.
    pub fn dense_kind(self) -> ModelKind {
        match self {
            ConvFamily::Dann => ModelKind::Dann,
            ConvFamily::DannNocorr => ModelKind::DannNocorr,
            ConvFamily::Standard => ModelKind::Mlp,
            ConvFamily::ColumnEi => ModelKind::ColumnEi,
        }
    }

    /// Whether the layers have inhibitory units of their own (`c_i`, `ni` are used).
    pub fn has_inhibition(self) -> bool {
        self != ConvFamily::Standard
    }
}

/// One conv layer of the architecture (the fields of `dales-conv/1`'s `arch.conv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvSpec {
    /// Excitatory (DANN, ColumnEI) or all (standard) output channels.
    pub c_e: usize,
    /// Inhibitory channels (unused by the standard family).
    #[serde(default)]
    pub c_i: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride.
    #[serde(default = "ones")]
    pub stride: [usize; 2],
    /// Zero padding on each side.
    #[serde(default)]
    pub padding: [usize; 2],
    /// Dilation.
    #[serde(default = "ones")]
    pub dilation: [usize; 2],
    /// Max-pooling size after the layer's ReLU (0: none).
    #[serde(default)]
    pub pool: usize,
}

fn ones() -> [usize; 2] {
    [1, 1]
}

impl ConvSpec {
    /// The convolution's settings.
    pub fn conv(&self) -> Conv2d {
        Conv2d {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
        }
    }

    /// A 3×3 convolution, stride 1, padding 1, with max-pooling `pool` after it.
    pub fn same3(c_e: usize, c_i: usize, pool: usize) -> ConvSpec {
        ConvSpec {
            c_e,
            c_i,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            pool,
        }
    }
}

/// The `[model]` section of a convolutional run; its architecture fields are `dales-conv/1`'s
/// `arch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvConfig {
    /// `"conv"`.
    pub kind: Tag,
    /// `dann`, `dann-nocorr`, `standard` or `columnei`.
    pub family: ConvFamily,
    /// The architecture's name in run and checkpoint names: `conv` (the small convnet),
    /// `vgg16`, `vgg19`, or another of lower-case letters and digits.
    #[serde(default = "default_net")]
    pub net: String,
    /// Input channels, height, width.
    #[serde(default = "default_in_shape")]
    pub in_shape: [usize; 3],
    /// The conv layers.
    pub conv: Vec<ConvSpec>,
    /// Adaptive average pooling after the last conv layer (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_pool: Option<[usize; 2]>,
    /// Hidden dense layers, `[ne, ni]` each (standard: `ni` unused).
    #[serde(default)]
    pub dense: Vec<[usize; 2]>,
    /// Classes.
    #[serde(default = "default_n_out")]
    pub n_out: usize,
    /// Inhibitory units of the DANN output layer.
    #[serde(default = "default_out_ni")]
    pub out_ni: usize,
    /// Dropout probability after each hidden dense layer, in training.
    #[serde(default)]
    pub dropout: f64,
    /// Mean training pixel, the ColumnEI first layer's centring (set from the data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixel_mean: Option<f64>,
}

fn default_net() -> String {
    "conv".to_string()
}
fn default_in_shape() -> [usize; 3] {
    [1, 28, 28]
}
fn default_n_out() -> usize {
    10
}
fn default_out_ni() -> usize {
    1
}

/// Conv blocks of the VGGs of spec A4: (convolutions, `C_e`, `C_i`) per block.
const VGG_BLOCKS: [[usize; 3]; 5] = [
    [2, 64, 10],
    [2, 128, 20],
    [4, 256, 40],
    [4, 512, 80],
    [4, 512, 80],
];

impl ConvConfig {
    /// The small convnet for 28×28 grey images (the reference's `small_arch`): conv 32 E /
    /// 3 I, pool 2, conv 64 E / 6 I, pool 2, dense 256 E / 25 I, output 10 / 1 I.
    pub fn small(family: ConvFamily) -> ConvConfig {
        ConvConfig {
            kind: Tag::Conv,
            family,
            net: default_net(),
            in_shape: default_in_shape(),
            conv: vec![ConvSpec::same3(32, 3, 2), ConvSpec::same3(64, 6, 2)],
            head_pool: None,
            dense: vec![[256, 25]],
            n_out: 10,
            out_ni: 1,
            dropout: 0.0,
            pixel_mean: None,
        }
    }

    /// The E/I (or standard) VGG16 or VGG19 of spec A4 for 32×32 colour images: 3×3 convs in
    /// five blocks, max-pool 2 after each; adaptive average pool 4×4; dense 4096 E / 409 I
    /// twice; output `n_out` / 1 I; dropout 0.5 (not published). VGG16 drops the last conv
    /// of blocks 3–5.
    pub fn vgg(depth: usize, family: ConvFamily, n_out: usize) -> ConvConfig {
        let mut conv = Vec::new();
        for (b, [n, c_e, c_i]) in VGG_BLOCKS.into_iter().enumerate() {
            let n = if depth == 16 && b >= 2 { n - 1 } else { n };
            conv.extend((0..n).map(|k| ConvSpec::same3(c_e, c_i, if k + 1 == n { 2 } else { 0 })));
        }
        ConvConfig {
            kind: Tag::Conv,
            family,
            net: format!("vgg{depth}"),
            in_shape: [3, 32, 32],
            conv,
            head_pool: Some([4, 4]),
            dense: vec![[4096, 409], [4096, 409]],
            n_out,
            out_ni: 1,
            dropout: 0.5,
            pixel_mean: None,
        }
    }

    /// The run's and the checkpoint's kind name: `conv_dann`, `vgg16_standard`, ….
    pub fn name(&self) -> String {
        format!("{}_{}", self.net, self.family.name().replace('-', "_"))
    }

    /// Output channels of conv layer `k` (ColumnEI: E and I channels).
    pub fn channels(&self, k: usize) -> usize {
        let c = &self.conv[k];
        match self.family {
            ConvFamily::ColumnEi => c.c_e + c.c_i,
            _ => c.c_e,
        }
    }

    /// The shape `(C, H, W)` after conv layer `k` and its pooling (`k = conv.len()`: after
    /// the head pool), or the key and value that make it empty.
    pub fn shapes(&self) -> Result<Vec<[usize; 3]>> {
        let [_, mut h, mut w] = self.in_shape;
        let mut out = Vec::with_capacity(self.conv.len() + 1);
        for (k, c) in self.conv.iter().enumerate() {
            let [oh, ow] = c.conv().output_size([h, w]);
            if oh == 0 || ow == 0 {
                return Err(Error::config(
                    format!("model.conv[{k}].kernel"),
                    format!("{:?}", c.kernel),
                    format!(
                        "a (dilated) kernel that fits the layer's {h} × {w} input with padding {:?}",
                        c.padding
                    ),
                ));
            }
            (h, w) = (oh, ow);
            if c.pool > 0 {
                if c.pool > h || c.pool > w {
                    return Err(Error::config(
                        format!("model.conv[{k}].pool"),
                        c.pool,
                        format!("at most the layer's output size {h} × {w}"),
                    ));
                }
                (h, w) = (h / c.pool, w / c.pool);
            }
            out.push([self.channels(k), h, w]);
        }
        if let Some([ph, pw]) = self.head_pool {
            out.push([out.last().map_or(0, |s| s[0]), ph, pw]);
        }
        Ok(out)
    }

    /// The number of features the dense head reads.
    fn flat(&self) -> Result<usize> {
        let shapes = self.shapes()?;
        let [c, h, w] = *shapes.last().expect("validated: at least one conv layer");
        Ok(c * h * w)
    }

    /// Check every value; errors name the key.
    pub fn validate(&self) -> Result<()> {
        if self.net.is_empty()
            || !self
                .net
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(Error::config(
                "model.net",
                format!("\"{}\"", self.net),
                "a name of lower-case letters and digits (conv, vgg16)",
            ));
        }
        if self.in_shape.contains(&0) {
            return Err(Error::config(
                "model.in_shape",
                format!("{:?}", self.in_shape),
                "channels, height and width of at least 1",
            ));
        }
        if self.conv.is_empty() {
            return Err(Error::config("model.conv", "[]", "at least one conv layer"));
        }
        let inhibition = self.family.has_inhibition();
        for (k, c) in self.conv.iter().enumerate() {
            let key = |f: &str| format!("model.conv[{k}].{f}");
            if c.c_e == 0 {
                return Err(Error::config(key("c_e"), 0, "at least 1 channel"));
            }
            if inhibition && c.c_i == 0 {
                return Err(Error::config(
                    key("c_i"),
                    0,
                    format!(
                        "at least 1 inhibitory channel for the {} family",
                        self.family.name()
                    ),
                ));
            }
            for (f, v) in [
                ("kernel", c.kernel),
                ("stride", c.stride),
                ("dilation", c.dilation),
            ] {
                if v.contains(&0) {
                    return Err(Error::config(
                        key(f),
                        format!("{v:?}"),
                        "entries of at least 1",
                    ));
                }
            }
        }
        if let Some(p) = self.head_pool
            && p.contains(&0)
        {
            return Err(Error::config(
                "model.head_pool",
                format!("{p:?}"),
                "an output size of at least 1 × 1",
            ));
        }
        for (k, &[ne, ni]) in self.dense.iter().enumerate() {
            if ne == 0 || (inhibition && ni == 0) {
                return Err(Error::config(
                    format!("model.dense[{k}]"),
                    format!("[{ne}, {ni}]"),
                    "[ne, ni] with ne ≥ 1 units and (DANN, ColumnEI) ni ≥ 1 inhibitory units",
                ));
            }
        }
        if self.n_out == 0 {
            return Err(Error::config("model.n_out", 0, "at least 1 class"));
        }
        if inhibition && self.out_ni == 0 {
            return Err(Error::config(
                "model.out_ni",
                0,
                "at least 1 inhibitory unit in the output layer",
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config(
                "model.dropout",
                self.dropout,
                "a probability in [0, 1)",
            ));
        }
        self.flat().map(|_| ())
    }

    /// The model, initialised from `seed`.
    pub fn init_seeded(&self, seed: u64, device: &Device) -> Result<ConvNet> {
        self.validate()?;
        let mut rng = InitRng::new(seed);
        let shapes = self.shapes()?;
        let mut convs = Vec::with_capacity(self.conv.len());
        let (mut c_in, mut inhibitory_in) = (self.in_shape[0], 0);
        for (k, spec) in self.conv.iter().enumerate() {
            let key = format!("model.conv[{k}]");
            let at = |e: Error| e.under(&key);
            let conv = spec.conv();
            let layer = match self.family {
                ConvFamily::Dann | ConvFamily::DannNocorr => ConvUnit::Dann(
                    ConvDannConfig {
                        c_in,
                        c_e: spec.c_e,
                        c_i: spec.c_i,
                        conv,
                    }
                    .init(&mut rng, device)
                    .map_err(at)?,
                ),
                ConvFamily::Standard => ConvUnit::Standard(
                    StdConv::init(c_in, spec.c_e, conv, &mut rng, device).map_err(at)?,
                ),
                ConvFamily::ColumnEi => ConvUnit::ColumnEi(
                    ColumnEiConv::init(
                        [c_in, inhibitory_in, self.channels(k)],
                        conv,
                        self.column_ei_mean()?,
                        &mut rng,
                        device,
                    )
                    .map_err(at)?,
                ),
            };
            convs.push(layer);
            (c_in, inhibitory_in) = (self.channels(k), spec.c_i);
        }
        let [c, h, w] = *shapes.last().expect("at least one conv layer");
        // ColumnEI: the last `c_i·h·w` flattened features are inhibitory.
        let mut split = (
            c.saturating_sub(inhibitory_in) * h * w,
            inhibitory_in * h * w,
        );
        let mut d = c * h * w;
        let mut dense = Vec::with_capacity(self.dense.len() + 1);
        let widths = self
            .dense
            .iter()
            .copied()
            .chain([[self.n_out, self.out_ni]]);
        let last = self.dense.len();
        for (k, [ne, ni]) in widths.enumerate() {
            let output = k == last;
            let key = if output {
                "model.n_out".to_string()
            } else {
                format!("model.dense[{k}]")
            };
            let at = |e: Error| e.under(&key);
            let n = if self.family == ConvFamily::ColumnEi && !output {
                ne + ni
            } else {
                ne
            };
            let layer = match self.family {
                ConvFamily::Dann | ConvFamily::DannNocorr => AnyLayer::Dann(
                    DannConfig {
                        n_in: d,
                        ne,
                        ni,
                        first_layer: false,
                    }
                    .init(&mut rng, device)
                    .map_err(at)?,
                ),
                ConvFamily::Standard => AnyLayer::Dense(
                    DenseConfig {
                        n_in: d,
                        n_out: ne,
                        first_layer: false,
                    }
                    .init(&mut rng, device)
                    .map_err(at)?,
                ),
                ConvFamily::ColumnEi => AnyLayer::ColumnEi(
                    ColumnEiConfig {
                        n_in: d,
                        n_out: n,
                        ratio: 1,
                        first_layer: false,
                        pixel_mean: 0.0,
                    }
                    .init_split(split, &mut rng, device)
                    .map_err(at)?,
                ),
            };
            dense.push(layer);
            split = (ne, ni);
            d = n;
        }
        Ok(ConvNet {
            convs,
            dense,
            config: self.clone(),
        })
    }

    fn column_ei_mean(&self) -> Result<f64> {
        self.pixel_mean.ok_or_else(|| {
            Error::config(
                "model.pixel_mean",
                "(unset)",
                "the training images' mean pixel value, which the ColumnEI first layer's bias \
                 centres (Fashion-MNIST 0.2860)",
            )
        })
    }
}

/// One conv layer of any family.
#[derive(Debug, Clone)]
pub enum ConvUnit {
    /// [`ConvDann`].
    Dann(ConvDann),
    /// [`StdConv`].
    Standard(StdConv),
    /// [`ColumnEiConv`].
    ColumnEi(ColumnEiConv),
}

macro_rules! each_unit {
    ($self:expr, $l:ident => $body:expr) => {
        match $self {
            ConvUnit::Dann($l) => $body,
            ConvUnit::Standard($l) => $body,
            ConvUnit::ColumnEi($l) => $body,
        }
    };
}

impl ConvUnit {
    /// The layer's maps before its ReLU, after `pool`.
    pub fn forward(&self, x: Tensor<4>, pool: Pool) -> Tensor<4> {
        each_unit!(self, l => l.forward(x, pool))
    }

    /// Fan sizes of the corrections.
    pub fn fan(&self) -> Fan {
        each_unit!(self, l => l.fan())
    }

    /// Parameters and buffers, checkpoint names.
    pub fn entries(&self) -> Vec<ParamEntry> {
        each_unit!(self, l => l.entries())
    }

    /// The filter tensors' names with their shape in a checkpoint, `(C_out, C_in, kh, kw)`.
    pub fn filter_shapes(&self) -> Vec<(&'static str, [usize; 4])> {
        let (c_in, conv) = each_unit!(self, l => (l.c_in, l.conv));
        let [kh, kw] = conv.kernel;
        self.entries()
            .into_iter()
            .filter(|e| matches!(e.name, "e_weight" | "i_weight" | "weight" | "w_pos"))
            .map(|e| (e.name, [e.value.shape()[0], c_in, kh, kw]))
            .collect()
    }

    fn with_values(self, values: Vec<ParamValue>) -> Self {
        match self {
            ConvUnit::Dann(l) => ConvUnit::Dann(l.with_values(values)),
            ConvUnit::Standard(l) => ConvUnit::Standard(l.with_values(values)),
            ConvUnit::ColumnEi(l) => ConvUnit::ColumnEi(l.with_values(values)),
        }
    }

    fn inference(&self) -> Self {
        match self {
            ConvUnit::Dann(l) => ConvUnit::Dann(l.inference()),
            ConvUnit::Standard(l) => ConvUnit::Standard(l.inference()),
            ConvUnit::ColumnEi(l) => ConvUnit::ColumnEi(l.inference()),
        }
    }
}

/// A convolutional network: conv layers, then dense layers.
#[derive(Debug, Clone)]
pub struct ConvNet {
    /// `conv.0 … conv.{K−1}`.
    pub convs: Vec<ConvUnit>,
    /// `dense.0 … dense.{L−1}`, then `output`.
    pub dense: Vec<AnyLayer>,
    config: ConvConfig,
}

impl ConvNet {
    /// The configuration the model was built from.
    pub fn config(&self) -> &ConvConfig {
        &self.config
    }

    /// Logits `(B, n_out)` of images `(B, C, H, W)`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = x;
        for (layer, spec) in self.convs.iter().zip(&self.config.conv) {
            h = match spec.pool {
                0 => relu(layer.forward(h, Pool::None)),
                p => layer.forward(h, Pool::ReluMax(p)),
            };
        }
        if let Some(size) = self.config.head_pool {
            h = adaptive_avg_pool2d(h, size);
        }
        let [b, c, hh, ww] = h.dims();
        let mut h = h.reshape([b, c * hh * ww]);
        let last = self.dense.len() - 1;
        let seed = Settings::current().noise_seed;
        for (k, layer) in self.dense.iter().enumerate() {
            h = layer.forward(h);
            if k < last {
                h = relu(h);
                if let Some(seed) = seed.filter(|_| self.config.dropout > 0.0) {
                    h = self.dropout(h, seed, k);
                }
            }
        }
        h
    }

    /// Inverted dropout with probability `p` on the units of hidden dense layer `k`: each kept
    /// with probability `1 − p` and scaled by `1/(1 − p)`, from a stream of the update's seed
    /// (so a resumed run draws the same masks).
    fn dropout(&self, h: Tensor<2>, seed: u64, k: usize) -> Tensor<2> {
        let p = self.config.dropout;
        let dims = h.dims();
        let mut rng = InitRng::new(seed ^ (k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let scale = (1.0 / (1.0 - p)) as f32;
        let mask = (0..dims[0] * dims[1])
            .map(|_| if rng.unit() < p { 0.0 } else { scale })
            .collect();
        let mask = tensor(mask, dims, &h.device());
        h * mask
    }

    /// A copy without autodiff, for evaluation.
    pub fn inference(&self) -> Self {
        ConvNet {
            convs: self.convs.iter().map(ConvUnit::inference).collect(),
            dense: self.dense.iter().map(|l| l.valid()).collect(),
            config: self.config.clone(),
        }
    }

    /// Checkpoint name of dense layer `k`: `dense.{k}` or `output`.
    fn dense_name(&self, k: usize) -> String {
        if k + 1 == self.dense.len() {
            "output".to_string()
        } else {
            format!("dense.{k}")
        }
    }
}

impl Parameterised for ConvNet {
    fn param_layers(&self) -> Vec<ParamLayer> {
        let convs = self.convs.iter().enumerate().map(|(k, l)| ParamLayer {
            name: format!("conv.{k}"),
            fan: l.fan(),
            entries: l.entries(),
        });
        let dense = self.dense.iter().enumerate().map(|(k, l)| ParamLayer {
            name: self.dense_name(k),
            fan: l.fan(),
            entries: l.entries(),
        });
        convs.chain(dense).collect()
    }

    fn with_layer_values(self, values: Vec<Vec<ParamValue>>) -> Self {
        let k = self.convs.len();
        assert_eq!(
            values.len(),
            k + self.dense.len(),
            "one value list per layer"
        );
        let mut values = values.into_iter();
        let convs = self
            .convs
            .into_iter()
            .zip(values.by_ref().take(k))
            .map(|(l, v)| l.with_values(v))
            .collect();
        let dense = self
            .dense
            .into_iter()
            .zip(values)
            .map(|(l, v)| l.with_values(v))
            .collect();
        ConvNet {
            convs,
            dense,
            config: self.config,
        }
    }
}
