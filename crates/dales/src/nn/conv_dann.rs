//! The convolutional DANN layer (Cornford et al., ICLR 2021, Appendix B; spec A4).
//!
//! Excitatory and inhibitory convolutions of the same geometry, `E = conv(x, e_weight)` with
//! `C_e` channels and `I = conv(x, i_weight)` with `C_i`, then per pixel the DANN layer's
//! subtractive and divisive inhibition as 1×1 channel maps:
//! `z = g ⊙ (E − Wei I) / ((Wei ⊙ e^α) I + ε) + b`.
//!
//! Under every output pixel this is the dense DANN layer ([`DannDense`]) applied to the patch
//! of `d = C_in·kh·kw` inputs, with the filters flattened to `(C, d)` matrices. The layer is
//! therefore one [`DannDense`] and a geometry: the same parameters, the same initialisation
//! (spec A4 = A2.1 without a first-layer rule, fan-in `d`), the same corrections with fan
//! sizes `(d, C_e)` (`∇i_weight/√C_e`, `∇Wei/d`, `∇α/(√C_e·d)`) and projections.

use burn::module::Module;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

use super::dann::{DannConfig, DannDense, SHUNT_EPS};
use super::init::InitRng;
use super::layer::Layer;
use super::param::{Fan, ParamEntry, ParamValue};
use crate::error::{Error, Result};
use crate::fused::{Conv2d, Pool};

/// Configuration of a [`ConvDann`] layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvDannConfig {
    /// Input channels `C_in`.
    pub c_in: usize,
    /// Excitatory channels `C_e` (the layer's outputs).
    pub c_e: usize,
    /// Inhibitory channels `C_i`.
    pub c_i: usize,
    /// Kernel, stride, padding, dilation.
    pub conv: Conv2d,
}

impl ConvDannConfig {
    /// The fan-in `d = C_in·kh·kw`.
    pub fn fan_in(&self) -> usize {
        self.c_in * self.conv.kernel[0] * self.conv.kernel[1]
    }

    /// A [`ConvDann`] layer initialised as in spec A4: `e_weight ~ Exp(σ)` with
    /// `σ = √(2π/(d(2π−1)))` in every layer; `C_i = 1`: `i_weight` = the mean filter of
    /// `e_weight` and `Wei = 1`; else `i_weight ~ Exp(σ)` and `Wei = 1/C_i`;
    /// `α = log √((2π−1)/d)`, `g = 1`, `b = 0`.
    pub fn init(&self, rng: &mut InitRng, device: &Device) -> Result<ConvDann> {
        for (key, n, what) in [
            ("c_in", self.c_in, "input channel"),
            ("c_e", self.c_e, "excitatory channel"),
            ("c_i", self.c_i, "inhibitory channel"),
        ] {
            if n == 0 {
                return Err(Error::config(key, 0, format!("at least 1 {what}")));
            }
        }
        let dense = DannConfig {
            n_in: self.fan_in(),
            ne: self.c_e,
            ni: self.c_i,
            first_layer: false,
        }
        .init(rng, device)?;
        Ok(ConvDann {
            dense,
            conv: self.conv,
            c_in: self.c_in,
        })
    }
}

/// The intermediate quantities of a conv DANN layer's forward pass, `(B, C, OH, OW)` each.
#[derive(Debug, Clone)]
pub struct ConvDannParts {
    /// `E = conv(x, e_weight)`, `C_e` channels.
    pub e: Tensor<4>,
    /// `I = conv(x, i_weight)`, `C_i` channels.
    pub i: Tensor<4>,
    /// `E − Wei I`.
    pub zhat: Tensor<4>,
    /// `(Wei ⊙ e^α) I + ε`.
    pub gamma: Tensor<4>,
    /// `z = g ⊙ ẑ / γ + b`.
    pub z: Tensor<4>,
}

/// A 1×1 channel map: `y[b, o] = Σ_c m[o, c]·x[b, c]` at every pixel.
fn channel_map(x: Tensor<4>, m: Tensor<2>) -> Tensor<4> {
    let [o, c] = m.dims();
    conv2d(
        x,
        m.reshape([o, c, 1, 1]),
        None,
        ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
    )
}

/// A per-channel vector `(C)` shaped to broadcast over `(B, C, H, W)`.
pub(crate) fn per_channel(v: Tensor<1>) -> Tensor<4> {
    let [c] = v.dims();
    v.reshape([1, c, 1, 1])
}

/// Filters flattened to `(C_out, C_in·kh·kw)`, as burn's `(C_out, C_in, kh, kw)`.
pub(crate) fn filters(w: Tensor<2>, c_in: usize, conv: Conv2d) -> Tensor<4> {
    let [c_out, _] = w.dims();
    w.reshape([c_out, c_in, conv.kernel[0], conv.kernel[1]])
}

impl ConvDannParts {
    /// The forward pass as burn's tensor ops (its `conv2d`), for `x (B, C_in, H, W)` and the
    /// parameters `[Wex, Wix, Wei]`, `[α, g, b]` (filters flattened): the reference the fused
    /// op is tested against, and the GPU's path.
    pub fn of(
        x: Tensor<4>,
        [wex, wix, wei]: [Tensor<2>; 3],
        [alpha, gain, bias]: [Tensor<1>; 3],
        conv: Conv2d,
    ) -> Self {
        let c_in = x.dims()[1];
        let e = conv2d(x.clone(), filters(wex, c_in, conv), None, conv.options());
        let i = conv2d(x, filters(wix, c_in, conv), None, conv.options());
        let zhat = e.clone() - channel_map(i.clone(), wei.clone());
        let shunt = wei * alpha.exp().unsqueeze();
        let gamma = channel_map(i.clone(), shunt) + SHUNT_EPS;
        let z = zhat.clone() / gamma.clone() * per_channel(gain) + per_channel(bias);
        ConvDannParts {
            e,
            i,
            zhat,
            gamma,
            z,
        }
    }
}

/// The convolutional DANN layer: a [`DannDense`] on every patch.
#[derive(Debug, Clone)]
pub struct ConvDann {
    /// The dense layer on patches: `Wex (C_e, d)`, `Wix (C_i, d)`, `Wei`, `α`, `g`, `b`.
    pub dense: DannDense,
    /// The geometry.
    pub conv: Conv2d,
    /// Input channels.
    pub c_in: usize,
}

/// The checkpoint names of the filters (spec A4's `e_conv`, `i_conv`), for the dense layer's.
const NAMES: [(&str, &str); 2] = [("wex", "e_weight"), ("wix", "i_weight")];

impl ConvDann {
    fn values(&self) -> ([Tensor<2>; 3], [Tensor<1>; 3]) {
        let d = &self.dense;
        (
            [d.wex.val(), d.wix.val(), d.wei.val()],
            [d.alpha.val(), d.gain.val(), d.bias.val()],
        )
    }

    /// All intermediate quantities of the forward pass (for tests and analyses).
    pub fn parts(&self, x: Tensor<4>) -> ConvDannParts {
        let (w, v) = self.values();
        ConvDannParts::of(x, w, v, self.conv)
    }

    /// `z (B, C_e, OH, OW)` for `x (B, C_in, H, W)`, after `pool`: the fused op on the CPU,
    /// burn's convolutions elsewhere.
    pub fn forward(&self, x: Tensor<4>, pool: Pool) -> Tensor<4> {
        let (w, v) = self.values();
        let conv = self.conv;
        crate::fused::conv_dann_layer(x, w, v, conv, SHUNT_EPS, pool, |x, w, v| {
            pool.plain(ConvDannParts::of(x, w, v, conv).z)
        })
    }

    /// Output channels `C_e`.
    pub fn channels(&self) -> usize {
        self.dense.n_out()
    }

    /// Fan sizes of the corrections: `d = C_in·kh·kw`, `ne = C_e`.
    pub fn fan(&self) -> Fan {
        self.dense.fan()
    }

    /// The dense layer's entries, the filters named as in `dales-conv/1`.
    pub fn entries(&self) -> Vec<ParamEntry> {
        self.dense
            .entries()
            .into_iter()
            .map(|e| match NAMES.iter().find(|(dense, _)| *dense == e.name) {
                Some((_, conv)) => ParamEntry { name: conv, ..e },
                None => e,
            })
            .collect()
    }

    /// The same layer holding `values` (in the order of [`ConvDann::entries`]).
    pub fn with_values(self, values: Vec<ParamValue>) -> Self {
        ConvDann {
            dense: self.dense.with_values(values),
            ..self
        }
    }

    /// A copy without autodiff.
    pub fn inference(&self) -> Self {
        ConvDann {
            dense: self.dense.valid(),
            ..self.clone()
        }
    }
}
