//! The unconstrained baselines: `Dense` (the MLP layer) and `DenseLayerNorm` (spec A1.3).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::init::{InitRng, dense_std, filled, matrix};
use super::layer::{Layer, assert_same_shapes};
use super::param::{ParamEntry, ParamRole, ParamValue, param, set};
use crate::error::{Error, Result};

/// Configuration of a [`Dense`] or [`DenseLayerNorm`] layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenseConfig {
    /// Number of inputs `d`.
    pub n_in: usize,
    /// Number of outputs.
    pub n_out: usize,
    /// First layer of the network: He gain 1 instead of 2 (spec A2.4).
    pub first_layer: bool,
}

impl DenseConfig {
    fn validate(&self) -> Result<()> {
        if self.n_in == 0 {
            return Err(Error::config("n_in", 0, "at least 1 input"));
        }
        if self.n_out == 0 {
            return Err(Error::config("n_out", 0, "at least 1 output"));
        }
        Ok(())
    }

    fn weight(&self, rng: &mut InitRng, device: &Device) -> Tensor<2> {
        let std = dense_std(self.n_in, self.first_layer);
        matrix(
            &rng.normal(self.n_out * self.n_in, std),
            self.n_out,
            self.n_in,
            device,
        )
    }

    /// A [`Dense`] layer: W ~ N(0, gain/d), b = 0.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use dales::nn::{DenseConfig, InitRng, Layer};
    ///
    /// let device = dales::device::cpu();
    /// let layer = DenseConfig { n_in: 4, n_out: 3, first_layer: true }
    ///     .init(&mut InitRng::new(0), &device)
    ///     .unwrap();
    /// let z = layer.forward(Tensor::zeros([2, 4], &device));
    /// assert_eq!(z.dims(), [2, 3]);
    /// ```
    pub fn init(&self, rng: &mut InitRng, device: &Device) -> Result<Dense> {
        self.validate()?;
        Ok(Dense {
            weight: param(self.weight(rng, device)),
            bias: param(filled(self.n_out, 0.0, device)),
        })
    }

    /// A [`DenseLayerNorm`] layer: W as [`Dense`], b = 0, ln_gain = 1, ln_bias = 0.
    pub fn init_layer_norm(&self, rng: &mut InitRng, device: &Device) -> Result<DenseLayerNorm> {
        self.validate()?;
        if self.n_out < 2 {
            return Err(Error::config(
                "n_out",
                self.n_out,
                "at least 2 units for layer norm (unbiased std over units)",
            ));
        }
        Ok(DenseLayerNorm {
            weight: param(self.weight(rng, device)),
            bias: param(filled(self.n_out, 0.0, device)),
            ln_gain: param(filled(self.n_out, 1.0, device)),
            ln_bias: param(filled(self.n_out, 0.0, device)),
        })
    }
}

/// z = x Wᵀ + b, with W `(n_out, n_in)` and b `(n_out)`.
#[derive(Module, Debug)]
pub struct Dense {
    /// `W`, shape `(n_out, n_in)`.
    pub weight: Param<Tensor<2>>,
    /// `b`, shape `(n_out)`.
    pub bias: Param<Tensor<1>>,
}

/// `x Wᵀ + b` for a batch: the fused op ([`crate::fused::affine`]) where it runs, otherwise
/// the plain tensor version ([`affine_plain`]).
pub(crate) fn affine(x: Tensor<2>, weight: Tensor<2>, bias: Tensor<1>) -> Tensor<2> {
    crate::fused::affine(x, weight, bias, affine_plain)
}

/// `x Wᵀ + b` as burn tensor ops: the reference the fused op is tested against.
pub fn affine_plain(x: Tensor<2>, weight: Tensor<2>, bias: Tensor<1>) -> Tensor<2> {
    x.matmul(weight.transpose()) + bias.unsqueeze()
}

impl Layer for Dense {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        affine(x, self.weight.val(), self.bias.val())
    }

    fn n_in(&self) -> usize {
        self.weight.dims()[1]
    }

    fn n_out(&self) -> usize {
        self.weight.dims()[0]
    }

    fn entries(&self) -> Vec<ParamEntry> {
        vec![
            ParamEntry::matrix("weight", ParamRole::Weight, &self.weight),
            ParamEntry::vector("bias", ParamRole::Bias, &self.bias),
        ]
    }

    fn with_values(self, values: Vec<ParamValue>) -> Self {
        assert_same_shapes(&self.entries(), &values);
        let mut v = values.into_iter();
        Dense {
            weight: set(self.weight, v.next().unwrap().into_matrix()),
            bias: set(self.bias, v.next().unwrap().into_vector()),
        }
    }
}

/// Layer-norm baseline (spec A1.3): ẑ = x Wᵀ + b, z = ln_gain ⊙ (ẑ − μ)/σ + ln_bias.
///
/// μ and σ are taken over the layer's units for each example; σ is the unbiased (N − 1)
/// estimator with no epsilon, as in the original baseline. The bias before normalisation and
/// `ln_bias` after it are separate parameters (checkpoint contract).
#[derive(Module, Debug)]
pub struct DenseLayerNorm {
    /// `W`, shape `(n_out, n_in)`.
    pub weight: Param<Tensor<2>>,
    /// Bias before normalisation, `(n_out)`.
    pub bias: Param<Tensor<1>>,
    /// Gain after normalisation, `(n_out)`.
    pub ln_gain: Param<Tensor<1>>,
    /// Bias after normalisation, `(n_out)`.
    pub ln_bias: Param<Tensor<1>>,
}

impl Layer for DenseLayerNorm {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let zhat = affine(x, self.weight.val(), self.bias.val());
        let n = zhat.dims()[1] as f64;
        let centred = zhat.clone() - zhat.mean_dim(1);
        let var = centred.clone().square().sum_dim(1) / (n - 1.0);
        centred / var.sqrt() * self.ln_gain.val().unsqueeze() + self.ln_bias.val().unsqueeze()
    }

    fn n_in(&self) -> usize {
        self.weight.dims()[1]
    }

    fn n_out(&self) -> usize {
        self.weight.dims()[0]
    }

    fn entries(&self) -> Vec<ParamEntry> {
        vec![
            ParamEntry::matrix("weight", ParamRole::Weight, &self.weight),
            ParamEntry::vector("bias", ParamRole::Bias, &self.bias),
            ParamEntry::vector("ln_gain", ParamRole::LnGain, &self.ln_gain),
            ParamEntry::vector("ln_bias", ParamRole::LnBias, &self.ln_bias),
        ]
    }

    fn with_values(self, values: Vec<ParamValue>) -> Self {
        assert_same_shapes(&self.entries(), &values);
        let mut v = values.into_iter();
        DenseLayerNorm {
            weight: set(self.weight, v.next().unwrap().into_matrix()),
            bias: set(self.bias, v.next().unwrap().into_vector()),
            ln_gain: set(self.ln_gain, v.next().unwrap().into_vector()),
            ln_bias: set(self.ln_bias, v.next().unwrap().into_vector()),
        }
    }
}
