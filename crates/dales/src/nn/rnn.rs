//! The recurrent network of the adaptation paper (spec C2), one step at a time:
//!
//! `a_t = U x_t + b_U + V h_{t−1} + b_V + ext_t`, `h_t = φ(a_t)`, `h_0 = 0`,
//!
//! with `φ` a fixed ReLU, tanh or softplus, or the gamma activation with learned shape
//! ([`crate::nn::gamma`]): one `(n, s)` for all neurons (homogeneous) or one per neuron
//! (heterogeneous). `ext_t` is an external drive added to every pre-activation (the robustness
//! tests of spec C4).
//!
//! Sequences are built on [`RnnCell::step`]: [`RnnCell::run`] rolls it over a `(B, T, in)`
//! input and returns the last hidden state, which a readout layer maps to logits.
//!
//! ```
//! use dales::nn::InitRng;
//! use dales::nn::rnn::{Activation, GammaShape, RnnConfig};
//!
//! let device = dales::device::cpu();
//! let cell = RnnConfig::new(1, 16, Activation::Gamma(GammaShape::Heterogeneous))
//!     .init(&mut InitRng::new(1), &device)
//!     .unwrap();
//! let x = burn::tensor::Tensor::<3>::zeros([4, 10, 1], &device); // batch 4, 10 steps
//! let h = cell.run(x, |_| None);
//! assert_eq!(h.dims(), [4, 16]);
//! ```

use burn::module::Param;
use burn::tensor::activation::{log_sigmoid, relu};
use burn::tensor::{Device, Tensor};

use super::gamma::{N_MIN, gamma};
use super::init::{InitRng, henaff, kaiming_std, matrix};
use super::layer::assert_same_shapes;
use super::param::{ParamEntry, ParamRole, ParamValue, detached, param, set};
use super::recurrent::Recurrent;
use crate::error::{Error, Result};
use crate::fused::{RnnAct, RnnParams};

/// Which learned gamma shape a network has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GammaShape {
    /// One `(n, s)` shared by all neurons.
    Homogeneous,
    /// One `(n, s)` per neuron.
    Heterogeneous,
}

/// The activation `φ` of the recurrent units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Tanh,
    /// `ln(1 + e^a)`.
    Softplus,
    /// `γ(a; n, s)` with learned `n`, `s`.
    Gamma(GammaShape),
}

/// Sizes and initial shape of a recurrent network.
#[derive(Debug, Clone, PartialEq)]
pub struct RnnConfig {
    /// Input size per step (1 for pixel-by-pixel images).
    pub n_in: usize,
    /// Hidden units `H`.
    pub hidden: usize,
    pub activation: Activation,
    /// Initial gain `n_0` of a gamma activation; `None` draws the paper's `5 + 2·U(0, 1)` once
    /// from the seed (spec C2, `--random`).
    pub n0: Option<f64>,
    /// Initial saturation `s_0` of a gamma activation (the paper: 0).
    pub s0: f64,
}

impl RnnConfig {
    /// `n_in` inputs, `hidden` units, the paper's initial gamma shape.
    pub fn new(n_in: usize, hidden: usize, activation: Activation) -> Self {
        RnnConfig {
            n_in,
            hidden,
            activation,
            n0: None,
            s0: 0.0,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.n_in == 0 {
            return Err(Error::config("model.n_in", 0, "at least 1 input per step"));
        }
        if self.hidden == 0 {
            return Err(Error::config("model.hidden", 0, "at least 1 hidden unit"));
        }
        if let Some(n0) = self.n0
            && !(n0 > 0.0 && n0.is_finite())
        {
            return Err(Error::config("model.n0", n0, "a finite gain n_0 > 0"));
        }
        if !self.s0.is_finite() {
            return Err(Error::config(
                "model.s0",
                self.s0,
                "a finite saturation s_0",
            ));
        }
        Ok(())
    }

    /// The cell with spec C2's initialisation: `U` Kaiming-normal (std `√(2/n_in)`), `V` henaff
    /// (block-diagonal orthogonal), biases `U(±1/√fan_in)` as PyTorch's `nn.Linear` (fan-in
    /// `n_in` for `b_U`, `H` for `b_V`), `n = n_0` and `s = s_0` everywhere. Draw order: `U`,
    /// `b_U`, `V`, `b_V`, then `n_0` when it is drawn.
    pub fn init(&self, rng: &mut InitRng, device: &Device) -> Result<RnnCell> {
        self.validate()?;
        let (d, h) = (self.n_in, self.hidden);
        let u = rng.normal(h * d, kaiming_std(d));
        let bound_u = 1.0 / (d as f64).sqrt();
        let u_bias = rng.uniform(h, -bound_u, bound_u);
        let v = henaff(h, rng);
        let bound_v = 1.0 / (h as f64).sqrt();
        let v_bias = rng.uniform(h, -bound_v, bound_v);
        let shape = match self.activation {
            Activation::Gamma(GammaShape::Homogeneous) => Some(1),
            Activation::Gamma(GammaShape::Heterogeneous) => Some(h),
            _ => None,
        };
        let (n, s) = match shape {
            Some(cols) => {
                let n0 = self.n0.unwrap_or_else(|| 5.0 + 2.0 * rng.unit());
                let n = matrix(&vec![n0; cols], 1, cols, device);
                let s = matrix(&vec![self.s0; cols], 1, cols, device);
                (Some(param(n)), Some(param(s)))
            }
            None => (None, None),
        };
        Ok(RnnCell {
            u: param(matrix(&u, h, d, device)),
            u_bias: param(vector(&u_bias, device)),
            v: param(matrix(&v, h, h, device)),
            v_bias: param(vector(&v_bias, device)),
            n,
            s,
            activation: self.activation,
        })
    }
}

/// `tanh`: the fused op where it runs (burn's NdArray tanh goes through f64 per entry).
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    crate::fused::tanh(x, Tensor::tanh)
}

/// A float32 vector from f64 values.
fn vector(values: &[f64], device: &Device) -> Tensor<1> {
    matrix(values, 1, values.len(), device).reshape([values.len()])
}

/// One recurrent layer: the parameters of spec C2's `RNN`.
#[derive(Debug, Clone)]
pub struct RnnCell {
    /// Input weights `U (H, in)`.
    pub u: Param<Tensor<2>>,
    /// `b_U (H)`.
    pub u_bias: Param<Tensor<1>>,
    /// Recurrent weights `V (H, H)`.
    pub v: Param<Tensor<2>>,
    /// `b_V (H)`.
    pub v_bias: Param<Tensor<1>>,
    /// Gamma gain `n`, `(1, 1)` or `(1, H)`; `None` for fixed activations.
    pub n: Option<Param<Tensor<2>>>,
    /// Gamma saturation `s`, shaped as `n`.
    pub s: Option<Param<Tensor<2>>>,
    pub activation: Activation,
}

impl RnnCell {
    /// `h_0 = 0 (batch, H)`, in the parameters' dtype.
    pub fn zero_state(&self, batch: usize) -> Tensor<2> {
        let v = self.v.val();
        Tensor::zeros([batch, self.hidden()], (&v.device(), v.dtype()))
    }

    /// The pre-activation `a_t (B, H)` from the input `x_t (B, in)`, the previous state
    /// `h (B, H)` and an optional drive `ext_t (B, H)`.
    pub fn preactivation(
        &self,
        x_t: Tensor<2>,
        h: Tensor<2>,
        drive: Option<Tensor<2>>,
    ) -> Tensor<2> {
        preactivation(&self.prepare(), x_t, h, drive)
    }

    /// `φ(a)`.
    pub fn activate(&self, a: Tensor<2>) -> Tensor<2> {
        match self.activation {
            Activation::Relu => relu(a),
            Activation::Tanh => tanh(a),
            Activation::Softplus => log_sigmoid(a.neg()).neg(),
            Activation::Gamma(_) => {
                let (n, s) = (self.n.as_ref(), self.s.as_ref());
                let (n, s) = n.zip(s).expect("a gamma cell holds n and s");
                gamma(a, n.val(), s.val())
            }
        }
    }

    /// One step: `h_t = φ(U x_t + b_U + V h_{t−1} + b_V + ext_t)`.
    pub fn step(&self, x_t: Tensor<2>, h: Tensor<2>, drive: Option<Tensor<2>>) -> Tensor<2> {
        self.activate(self.preactivation(x_t, h, drive))
    }

    /// Roll the cell over `xs (B, T, in)` from `h_0 = 0`, with `drive(t)` the external drive
    /// at step `t` (or `None`), and return `h_T (B, H)`.
    pub fn run(&self, xs: Tensor<3>, drive: impl Fn(usize) -> Option<Tensor<2>>) -> Tensor<2> {
        super::recurrent::run(self, xs, drive)
    }

    /// `h_T (B, H)` over `xs (B, T, in)` from `h_0 = 0`: one fused sequence op with a
    /// hand-written backward through time where it applies (f32 on the CPU or GPU backend, no
    /// drive at any step), otherwise [`RnnCell::run`] step by step.
    pub fn last_hidden(
        &self,
        xs: Tensor<3>,
        drive: &dyn Fn(usize) -> Option<Tensor<2>>,
    ) -> Tensor<2> {
        let act = match (self.activation, &self.n, &self.s) {
            (Activation::Relu, ..) => RnnAct::Relu,
            (Activation::Tanh, ..) => RnnAct::Tanh,
            (Activation::Softplus, ..) => RnnAct::Softplus,
            (Activation::Gamma(_), Some(n), Some(s)) => RnnAct::Gamma {
                n: n.val(),
                s: s.val(),
                n_min: N_MIN,
            },
            (Activation::Gamma(_), ..) => unreachable!("a gamma cell holds n and s"),
        };
        let params = RnnParams {
            u: self.u.val(),
            u_bias: self.u_bias.val(),
            v: self.v.val(),
            v_bias: self.v_bias.val(),
            act,
        };
        crate::fused::rnn_sequence(xs, params, drive, |xs| self.run(xs, drive))
    }

    /// Parameters in checkpoint order: `u`, `u_bias`, `v`, `v_bias`, then `n`, `s` for a
    /// learned gamma.
    pub fn entries(&self) -> Vec<ParamEntry> {
        let mut e = vec![
            ParamEntry::matrix("u", ParamRole::Weight, &self.u),
            ParamEntry::vector("u_bias", ParamRole::Bias, &self.u_bias),
            ParamEntry::matrix("v", ParamRole::Weight, &self.v),
            ParamEntry::vector("v_bias", ParamRole::Bias, &self.v_bias),
        ];
        if let (Some(n), Some(s)) = (&self.n, &self.s) {
            e.push(ParamEntry::matrix("n", ParamRole::Shape, n));
            e.push(ParamEntry::matrix("s", ParamRole::Shape, s));
        }
        e
    }

    /// The same cell holding `values` (in the order of [`RnnCell::entries`]).
    pub fn with_values(self, values: Vec<ParamValue>) -> Self {
        assert_same_shapes(&self.entries(), &values);
        let mut v = values.into_iter();
        let mut next = || v.next().expect("checked length");
        RnnCell {
            u: set(self.u, next().into_matrix()),
            u_bias: set(self.u_bias, next().into_vector()),
            v: set(self.v, next().into_matrix()),
            v_bias: set(self.v_bias, next().into_vector()),
            n: self.n.map(|p| set(p, next().into_matrix())),
            s: self.s.map(|p| set(p, next().into_matrix())),
            activation: self.activation,
        }
    }

    /// A copy without autodiff, for evaluation and analysis.
    pub fn inference(&self) -> Self {
        RnnCell {
            u: detached(&self.u),
            u_bias: detached(&self.u_bias),
            v: detached(&self.v),
            v_bias: detached(&self.v_bias),
            n: self.n.as_ref().map(detached),
            s: self.s.as_ref().map(detached),
            activation: self.activation,
        }
    }
}

/// The input and recurrent maps of a cell with their biases summed once per sequence.
#[derive(Debug, Clone)]
pub struct Affine2 {
    /// `Uᵀ (in, H)`.
    pub u_t: Tensor<2>,
    /// `Vᵀ (H, H)`.
    pub v_t: Tensor<2>,
    /// `b_U + b_V (1, H)`.
    pub bias: Tensor<2>,
}

impl Affine2 {
    /// From the parameters `U (H, in)`, `b_U`, `V (H, H)`, `b_V`.
    pub fn new(u: Tensor<2>, u_bias: Tensor<1>, v: Tensor<2>, v_bias: Tensor<1>) -> Self {
        Affine2 {
            u_t: u.transpose(),
            v_t: v.transpose(),
            bias: (u_bias + v_bias).unsqueeze(),
        }
    }
}

/// `a = x Uᵀ + h Vᵀ + b_U + b_V (+ ext)`.
pub fn preactivation(
    p: &Affine2,
    x_t: Tensor<2>,
    h: Tensor<2>,
    drive: Option<Tensor<2>>,
) -> Tensor<2> {
    let a = x_t.matmul(p.u_t.clone()) + h.matmul(p.v_t.clone()) + p.bias.clone();
    match drive {
        Some(ext) => a + ext,
        None => a,
    }
}

impl Recurrent for RnnCell {
    type State = Tensor<2>;
    type Prepared = Affine2;

    fn hidden(&self) -> usize {
        self.v.dims()[0]
    }

    fn zero_state(&self, batch: usize) -> Tensor<2> {
        RnnCell::zero_state(self, batch)
    }

    fn prepare(&self) -> Affine2 {
        Affine2::new(
            self.u.val(),
            self.u_bias.val(),
            self.v.val(),
            self.v_bias.val(),
        )
    }

    fn step(
        &self,
        prepared: &Affine2,
        x_t: Tensor<2>,
        h: Tensor<2>,
        drive: Option<Tensor<2>>,
    ) -> Tensor<2> {
        self.activate(preactivation(prepared, x_t, h, drive))
    }

    fn output(&self, h: &Tensor<2>) -> Tensor<2> {
        h.clone()
    }
}
