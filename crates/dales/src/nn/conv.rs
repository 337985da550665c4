//! The baselines' convolutions (spec A4): the standard convolution with He-normal filters,
//! and the ColumnEI convolution, whose filters' signs are fixed per input channel.
//!
//! As for the conv DANN layer ([`super::conv_dann`]) each is a dense layer on every patch of
//! `d = C_in·kh·kw` inputs with its filters flattened to `(C_out, d)`, and takes that layer's
//! initialisation, rules and projection:
//! - standard: [`Dense`] with `W ~ N(0, 2/d)`, `b = 0` (He-normal in every layer);
//! - ColumnEI: [`ColumnEiDense`] with `sign` per input channel (`+1` for the image and the
//!   excitatory channels of the layer before, `−1` for its inhibitory ones): the first layer
//!   `w_pos ~ Exp(√(1/d))` with the centring bias, later layers the balanced scales of spec
//!   A2.3 on the fan-in counts `(ne_in·kh·kw, ni_in·kh·kw)`.

use burn::module::Module;
use burn::tensor::module::conv2d;
use burn::tensor::{Device, Tensor};

use super::column_ei::{ColumnEiConfig, ColumnEiDense};
use super::conv_dann::{filters, per_channel};
use super::dense::{Dense, DenseConfig};
use super::init::InitRng;
use super::layer::Layer;
use super::param::{Fan, ParamEntry, ParamValue};
use crate::error::Result;
use crate::fused::{Conv2d, Pool};

/// `conv(x, W) + b` with `W` flattened to `(C_out, d)`, then `pool`: the fused op on the CPU,
/// burn's `conv2d` (and [`Pool::plain`]) elsewhere.
pub(crate) fn conv_affine(
    x: Tensor<4>,
    weight: Tensor<2>,
    bias: Tensor<1>,
    conv: Conv2d,
    pool: Pool,
) -> Tensor<4> {
    crate::fused::conv_affine(x, weight, bias, conv, pool, |x, w, b| {
        pool.plain(conv_affine_plain(x, w, b, conv))
    })
}

/// `conv(x, W) + b` as burn's `conv2d`: the reference the fused op is tested against.
pub fn conv_affine_plain(
    x: Tensor<4>,
    weight: Tensor<2>,
    bias: Tensor<1>,
    conv: Conv2d,
) -> Tensor<4> {
    let c_in = x.dims()[1];
    conv2d(x, filters(weight, c_in, conv), None, conv.options()) + per_channel(bias)
}

/// A standard convolution: a [`Dense`] layer on every patch.
#[derive(Debug, Clone)]
pub struct StdConv {
    /// `W (C_out, d)`, `b (C_out)`.
    pub dense: Dense,
    /// The geometry.
    pub conv: Conv2d,
    /// Input channels.
    pub c_in: usize,
}

impl StdConv {
    /// He-normal filters `N(0, 2/d)` and zero bias.
    pub fn init(
        c_in: usize,
        c_out: usize,
        conv: Conv2d,
        rng: &mut InitRng,
        device: &Device,
    ) -> Result<StdConv> {
        let dense = DenseConfig {
            n_in: c_in * conv.kernel[0] * conv.kernel[1],
            n_out: c_out,
            first_layer: false,
        }
        .init(rng, device)?;
        Ok(StdConv { dense, conv, c_in })
    }

    /// `(B, C_out, OH, OW)` for `x (B, C_in, H, W)`, after `pool`.
    pub fn forward(&self, x: Tensor<4>, pool: Pool) -> Tensor<4> {
        let (w, b) = (self.dense.weight.val(), self.dense.bias.val());
        conv_affine(x, w, b, self.conv, pool)
    }

    /// Output channels.
    pub fn channels(&self) -> usize {
        self.dense.n_out()
    }

    /// Fan sizes (unused by its rules).
    pub fn fan(&self) -> Fan {
        self.dense.fan()
    }

    /// `weight`, `bias`.
    pub fn entries(&self) -> Vec<ParamEntry> {
        self.dense.entries()
    }

    /// The same layer holding `values`.
    pub fn with_values(self, values: Vec<ParamValue>) -> Self {
        StdConv {
            dense: self.dense.with_values(values),
            ..self
        }
    }

    /// A copy without autodiff.
    pub fn inference(&self) -> Self {
        StdConv {
            dense: self.dense.valid(),
            ..self.clone()
        }
    }
}

/// A ColumnEI convolution: a [`ColumnEiDense`] on every patch, its inputs' signs fixed per
/// input channel.
#[derive(Debug, Clone)]
pub struct ColumnEiConv {
    /// `w_pos (C_out, d)`, `sign (d)` (each input channel's repeated `kh·kw` times), `b`.
    pub dense: ColumnEiDense,
    /// The geometry.
    pub conv: Conv2d,
    /// Input channels.
    pub c_in: usize,
}

impl ColumnEiConv {
    /// The first layer (`inhibitory_in = 0`: every input channel excitatory, the centring
    /// bias from `pixel_mean`) or a later one whose last `inhibitory_in` input channels are
    /// inhibitory.
    pub fn init(
        [c_in, inhibitory_in, c_out]: [usize; 3],
        conv: Conv2d,
        pixel_mean: f64,
        rng: &mut InitRng,
        device: &Device,
    ) -> Result<ColumnEiConv> {
        let k = conv.kernel[0] * conv.kernel[1];
        let dense = ColumnEiConfig {
            n_in: c_in * k,
            n_out: c_out,
            ratio: 1,
            first_layer: inhibitory_in == 0,
            pixel_mean,
        }
        .init_split(((c_in - inhibitory_in) * k, inhibitory_in * k), rng, device)?;
        Ok(ColumnEiConv { dense, conv, c_in })
    }

    /// `(B, C_out, OH, OW)` for `x (B, C_in, H, W)`, after `pool`.
    pub fn forward(&self, x: Tensor<4>, pool: Pool) -> Tensor<4> {
        let (w, b) = (self.dense.weight(), self.dense.bias.val());
        conv_affine(x, w, b, self.conv, pool)
    }

    /// Output channels.
    pub fn channels(&self) -> usize {
        self.dense.n_out()
    }

    /// Fan sizes (unused by its rules).
    pub fn fan(&self) -> Fan {
        self.dense.fan()
    }

    /// Entries per patch column of one input channel.
    fn per_channel(&self) -> usize {
        self.conv.kernel[0] * self.conv.kernel[1]
    }

    /// `w_pos`, `sign (C_in)` (one per input channel, as in `dales-conv/1`), `bias`.
    pub fn entries(&self) -> Vec<ParamEntry> {
        let k = self.per_channel();
        self.dense
            .entries()
            .into_iter()
            .map(|e| {
                if e.role.is_some() {
                    return e;
                }
                let columns = e.value.flatten();
                let [d] = columns.dims();
                let channels = columns.reshape([d / k, k]).narrow(1, 0, 1).reshape([d / k]);
                ParamEntry::buffer(e.name, channels)
            })
            .collect()
    }

    /// The same layer holding `values` (in the order of [`ColumnEiConv::entries`]).
    pub fn with_values(self, values: Vec<ParamValue>) -> Self {
        let k = self.per_channel();
        let values = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                // The sign, one per input channel, repeated over the channel's patch columns.
                ParamValue::Vector(sign) if i == 1 => {
                    let [c] = sign.dims();
                    ParamValue::Vector(sign.reshape([c, 1]).repeat_dim(1, k).reshape([c * k]))
                }
                other => other,
            })
            .collect();
        ColumnEiConv {
            dense: self.dense.with_values(values),
            ..self
        }
    }

    /// A copy without autodiff.
    pub fn inference(&self) -> Self {
        ColumnEiConv {
            dense: self.dense.valid(),
            ..self.clone()
        }
    }
}
