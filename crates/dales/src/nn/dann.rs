//! Dale's ANN layers (Cornford et al., ICLR 2021; spec A1.1, A1.2, A2.1).
//!
//! Separate excitatory (E) and inhibitory (I) populations. The I units are feed-forward
//! interneurons internal to the layer: they see the layer's input through `Wix` and inhibit the
//! E units through `Wei`; only the `ne` E units are outputs.
//!
//! - [`EiDense`]: subtractive inhibition, z = (Wex − Wei Wix) x + b.
//! - [`DannDense`]: subtractive and divisive (shunting) inhibition, the DANN layer:
//!   ẑ = Wex x − Wei (Wix x), γ = (Wei ⊙ e^α)(Wix x) + ε, z = g ⊙ ẑ / γ + b, with ε = 1e-8.
//!
//! Initialised as in spec A2.1 these layers behave like layer norm: the subtraction removes the
//! mean excitatory drive and γ matches its spread (spec A2.2, tested below).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::init::{InitRng, column_means, dann_alpha_init, dann_target_std, filled, matrix};
use super::layer::{Layer, assert_same_shapes};
use super::param::{Fan, ParamEntry, ParamRole, ParamValue, param, set};
use crate::error::{Error, Result};

/// ε inside γ (spec A1.2, part of the checkpoint format).
pub const SHUNT_EPS: f64 = 1e-8;

/// Configuration of an [`EiDense`] or [`DannDense`] layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DannConfig {
    /// Number of inputs `d`.
    pub n_in: usize,
    /// Number of excitatory units (the layer's outputs).
    pub ne: usize,
    /// Number of inhibitory interneurons (≥ 1; the output layer uses 1).
    pub ni: usize,
    /// First layer of the network (raw pixels): σ_w = √(1/(2d)) instead of √(2π/(d(2π−1))).
    pub first_layer: bool,
}

/// Initial values of the shared E/I weights (spec A2.1).
struct EiInit {
    wex: Tensor<2>,
    wix: Tensor<2>,
    wei: Tensor<2>,
}

impl DannConfig {
    fn validate(&self) -> Result<()> {
        if self.n_in == 0 {
            return Err(Error::config("n_in", 0, "at least 1 input"));
        }
        if self.ne == 0 {
            return Err(Error::config("ne", 0, "at least 1 excitatory unit"));
        }
        if self.ni == 0 {
            return Err(Error::config(
                "ni",
                0,
                "at least 1 inhibitory unit (Wei is initialised to 1/ni)",
            ));
        }
        Ok(())
    }

    /// Wex ~ Exp(σ_w); ni = 1: Wix = the column mean of Wex and Wei = 1 (exact centring);
    /// ni > 1: Wix ~ Exp(σ_w) and Wei = 1/ni.
    fn ei_weights(&self, rng: &mut InitRng, device: &Device) -> EiInit {
        let (d, ne, ni) = (self.n_in, self.ne, self.ni);
        let sigma = dann_target_std(d, self.first_layer);
        let wex = rng.exponential(ne * d, sigma);
        let wix = if ni == 1 {
            column_means(&wex, ne, d)
        } else {
            rng.exponential(ni * d, sigma)
        };
        EiInit {
            wex: matrix(&wex, ne, d, device),
            wix: matrix(&wix, ni, d, device),
            wei: matrix(&vec![1.0 / ni as f64; ne * ni], ne, ni, device),
        }
    }

    /// A subtractive-only [`EiDense`] layer.
    pub fn init_subtractive(&self, rng: &mut InitRng, device: &Device) -> Result<EiDense> {
        self.validate()?;
        let w = self.ei_weights(rng, device);
        Ok(EiDense {
            wex: param(w.wex),
            wix: param(w.wix),
            wei: param(w.wei),
            bias: param(filled(self.ne, 0.0, device)),
        })
    }

    /// A [`DannDense`] layer with the layer-norm-like initialisation of spec A2.1:
    /// α = log √((2π−1)/d), g = 1, b = 0.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use dales::nn::{DannConfig, InitRng, Layer};
    ///
    /// let device = dales::device::cpu();
    /// let config = DannConfig { n_in: 784, ne: 500, ni: 50, first_layer: true };
    /// let layer = config.init(&mut InitRng::new(1), &device).unwrap();
    /// let z = layer.forward(Tensor::ones([8, 784], &device));
    /// assert_eq!(z.dims(), [8, 500]);
    /// ```
    pub fn init(&self, rng: &mut InitRng, device: &Device) -> Result<DannDense> {
        self.validate()?;
        let w = self.ei_weights(rng, device);
        Ok(DannDense {
            wex: param(w.wex),
            wix: param(w.wix),
            wei: param(w.wei),
            alpha: param(filled(self.ni, dann_alpha_init(self.n_in), device)),
            gain: param(filled(self.ne, 1.0, device)),
            bias: param(filled(self.ne, 0.0, device)),
        })
    }
}

/// Subtractive feed-forward inhibition (spec A1.1): z = x Wexᵀ − (x Wixᵀ) Weiᵀ + b.
#[derive(Module, Debug)]
pub struct EiDense {
    /// `Wex (ne, d)` ≥ 0.
    pub wex: Param<Tensor<2>>,
    /// `Wix (ni, d)` ≥ 0.
    pub wix: Param<Tensor<2>>,
    /// `Wei (ne, ni)` ≥ 0.
    pub wei: Param<Tensor<2>>,
    /// `b (ne)`.
    pub bias: Param<Tensor<1>>,
}

/// The intermediate quantities of a DANN layer's forward pass, batch-first.
#[derive(Debug, Clone)]
pub struct DannParts {
    /// Excitatory drive z_E = x Wexᵀ, `(B, ne)`.
    pub ze: Tensor<2>,
    /// Inhibitory drive z_I = x Wixᵀ, `(B, ni)`.
    pub zi: Tensor<2>,
    /// Subtractively inhibited drive ẑ = z_E − z_I Weiᵀ, `(B, ne)`.
    pub zhat: Tensor<2>,
    /// Divisive term γ = z_I (Wei ⊙ e^α)ᵀ + ε, `(B, ne)`.
    pub gamma: Tensor<2>,
    /// Output z = g ⊙ ẑ/γ + b, `(B, ne)`.
    pub z: Tensor<2>,
}

fn subtractive(x: Tensor<2>, wex: Tensor<2>, wix: Tensor<2>, wei: Tensor<2>) -> [Tensor<2>; 3] {
    let ze = x.clone().matmul(wex.transpose());
    let zi = x.matmul(wix.transpose());
    let zhat = ze.clone() - zi.clone().matmul(wei.transpose());
    [ze, zi, zhat]
}

impl Layer for EiDense {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [_, _, zhat] = subtractive(x, self.wex.val(), self.wix.val(), self.wei.val());
        zhat + self.bias.val().unsqueeze()
    }

    fn n_in(&self) -> usize {
        self.wex.dims()[1]
    }

    fn n_out(&self) -> usize {
        self.wex.dims()[0]
    }

    fn entries(&self) -> Vec<ParamEntry> {
        vec![
            ParamEntry::matrix("wex", ParamRole::Wex, &self.wex),
            ParamEntry::matrix("wix", ParamRole::Wix, &self.wix),
            ParamEntry::matrix("wei", ParamRole::Wei, &self.wei),
            ParamEntry::vector("bias", ParamRole::Bias, &self.bias),
        ]
    }

    fn with_values(self, values: Vec<ParamValue>) -> Self {
        assert_same_shapes(&self.entries(), &values);
        let mut v = values.into_iter();
        EiDense {
            wex: set(self.wex, v.next().unwrap().into_matrix()),
            wix: set(self.wix, v.next().unwrap().into_matrix()),
            wei: set(self.wei, v.next().unwrap().into_matrix()),
            bias: set(self.bias, v.next().unwrap().into_vector()),
        }
    }
}

/// The DANN layer (spec A1.2): subtractive and divisive (shunting) feed-forward inhibition.
///
/// `alpha (ni)` enters only through e^α and is unconstrained; `Wex`, `Wix`, `Wei` and `gain`
/// are kept ≥ 0 by the optimiser's projection.
#[derive(Module, Debug)]
pub struct DannDense {
    /// `Wex (ne, d)` ≥ 0.
    pub wex: Param<Tensor<2>>,
    /// `Wix (ni, d)` ≥ 0.
    pub wix: Param<Tensor<2>>,
    /// `Wei (ne, ni)` ≥ 0.
    pub wei: Param<Tensor<2>>,
    /// `alpha (ni)`, shunt log-weights.
    pub alpha: Param<Tensor<1>>,
    /// `g (ne)` ≥ 0.
    pub gain: Param<Tensor<1>>,
    /// `b (ne)`.
    pub bias: Param<Tensor<1>>,
}

impl DannParts {
    /// The forward pass of a DANN layer as plain tensor ops, for `x (B, d)` and the
    /// parameters `[Wex, Wix, Wei]`, `[α, g, b]`: the reference the fused op is tested against.
    pub fn of(
        x: Tensor<2>,
        [wex, wix, wei]: [Tensor<2>; 3],
        [alpha, gain, bias]: [Tensor<1>; 3],
    ) -> Self {
        let [ze, zi, zhat] = subtractive(x, wex, wix, wei.clone());
        let shunt = wei * alpha.exp().unsqueeze();
        let gamma = zi.clone().matmul(shunt.transpose()) + SHUNT_EPS;
        let z = zhat.clone() / gamma.clone() * gain.unsqueeze() + bias.unsqueeze();
        DannParts {
            ze,
            zi,
            zhat,
            gamma,
            z,
        }
    }
}

impl DannDense {
    /// `[Wex, Wix, Wei]` and `[α, g, b]`.
    fn values(&self) -> ([Tensor<2>; 3], [Tensor<1>; 3]) {
        (
            [self.wex.val(), self.wix.val(), self.wei.val()],
            [self.alpha.val(), self.gain.val(), self.bias.val()],
        )
    }

    /// All intermediate quantities of the forward pass (for tests and analyses).
    pub fn parts(&self, x: Tensor<2>) -> DannParts {
        let (w, v) = self.values();
        DannParts::of(x, w, v)
    }
}

impl Layer for DannDense {
    /// The fused op ([`crate::fused::dann_layer`]: host kernels on the CPU, CubeCL kernels on
    /// the GPU) where it runs, otherwise the plain tensor version ([`DannParts::of`]).
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let (w, v) = self.values();
        crate::fused::dann_layer(x, w, v, SHUNT_EPS, |x, w, v| DannParts::of(x, w, v).z)
    }

    fn n_in(&self) -> usize {
        self.wex.dims()[1]
    }

    fn n_out(&self) -> usize {
        self.wex.dims()[0]
    }

    fn fan(&self) -> Fan {
        Fan {
            d: self.n_in(),
            ne: self.n_out(),
        }
    }

    fn entries(&self) -> Vec<ParamEntry> {
        vec![
            ParamEntry::matrix("wex", ParamRole::Wex, &self.wex),
            ParamEntry::matrix("wix", ParamRole::Wix, &self.wix),
            ParamEntry::matrix("wei", ParamRole::Wei, &self.wei),
            ParamEntry::vector("alpha", ParamRole::Alpha, &self.alpha),
            ParamEntry::vector("gain", ParamRole::Gain, &self.gain),
            ParamEntry::vector("bias", ParamRole::Bias, &self.bias),
        ]
    }

    fn with_values(self, values: Vec<ParamValue>) -> Self {
        assert_same_shapes(&self.entries(), &values);
        let mut v = values.into_iter();
        DannDense {
            wex: set(self.wex, v.next().unwrap().into_matrix()),
            wix: set(self.wix, v.next().unwrap().into_matrix()),
            wei: set(self.wei, v.next().unwrap().into_matrix()),
            alpha: set(self.alpha, v.next().unwrap().into_vector()),
            gain: set(self.gain, v.next().unwrap().into_vector()),
            bias: set(self.bias, v.next().unwrap().into_vector()),
        }
    }
}
