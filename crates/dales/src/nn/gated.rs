//! The gated baselines of the adaptation paper (spec C2, "Other baselines"): a single-layer
//! LSTM and GRU on the same recurrent core as the RNN and ARUN.
//!
//! LSTM, gates in PyTorch's order `i, f, g, o` on `[x, h]`, the external drive added to the
//! output gate's pre-activation (as the authors' LSTM does):
//! `c_t = σ(f)·c_{t−1} + σ(i)·tanh(g)`, `h_t = σ(o + ext_t)·tanh(c_t)`; Xavier-normal weights
//! per gate (std `√(2/(in + 2H))`), zero biases.
//!
//! GRU, PyTorch's equations and default initialisation (every weight and bias `U(±1/√H)`):
//! `r = σ(x_r + h_r)`, `z = σ(x_z + h_z)`, `n = tanh(x_n + r·h_n + ext_t)`,
//! `h_t = (1 − z)·n + z·h_{t−1}`. The spec leaves the GRU's drive open; dales adds it to the
//! candidate, the pre-activation that plays the RNN's role.
//!
//! ```
//! use dales::nn::InitRng;
//! use dales::nn::gated::{GruConfig, LstmConfig};
//!
//! let device = dales::device::cpu();
//! let xs = burn::tensor::Tensor::<3>::zeros([2, 5, 1], &device);
//! let lstm = LstmConfig { n_in: 1, hidden: 8 }.init(&mut InitRng::new(1), &device).unwrap();
//! assert_eq!(lstm.run(xs.clone(), |_| None).h.dims(), [2, 8]);
//! let gru = GruConfig { n_in: 1, hidden: 8 }.init(&mut InitRng::new(1), &device).unwrap();
//! assert_eq!(gru.run(xs, |_| None).dims(), [2, 8]);
//! ```

use burn::module::Param;
use burn::tensor::activation::log_sigmoid;
use burn::tensor::{Device, Tensor};

use super::init::{InitRng, matrix};
use super::layer::assert_same_shapes;
use super::param::{ParamEntry, ParamRole, ParamValue, detached, param, set};
use super::recurrent::{Recurrent, run};
use super::rnn::tanh;
use crate::error::{Error, Result};

/// `σ(x)` through `log σ`, exact in f64 too (burn 0.22's NdArray sigmoid is f32-precise).
fn sigmoid(x: Tensor<2>) -> Tensor<2> {
    log_sigmoid(x).exp()
}

fn check(n_in: usize, hidden: usize) -> Result<()> {
    if n_in == 0 {
        return Err(Error::config("model.n_in", 0, "at least 1"));
    }
    if hidden == 0 {
        return Err(Error::config("model.hidden", 0, "at least 1"));
    }
    Ok(())
}

/// Columns `k·H .. (k+1)·H` of a `(B, m·H)` tensor.
fn chunk(t: &Tensor<2>, k: usize, h: usize) -> Tensor<2> {
    let b = t.dims()[0];
    t.clone().slice([0..b, k * h..(k + 1) * h])
}

/// Sizes of an LSTM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LstmConfig {
    /// Input size per step.
    pub n_in: usize,
    /// Hidden units `H`.
    pub hidden: usize,
}

impl LstmConfig {
    /// The cell; draw order `W_x`, `W_h`.
    pub fn init(&self, rng: &mut InitRng, device: &Device) -> Result<LstmCell> {
        check(self.n_in, self.hidden)?;
        let (d, h) = (self.n_in, self.hidden);
        let std = (2.0 / (d + 2 * h) as f64).sqrt();
        Ok(LstmCell {
            w_x: param(matrix(&rng.normal(4 * h * d, std), 4 * h, d, device)),
            w_h: param(matrix(&rng.normal(4 * h * h, std), 4 * h, h, device)),
            bias: param(matrix(&vec![0.0; 4 * h], 1, 4 * h, device).reshape([4 * h])),
        })
    }
}

/// An LSTM: input weights `W_x (4H, in)`, recurrent weights `W_h (4H, H)`, bias `(4H)`, gates
/// `i, f, g, o`.
#[derive(Debug, Clone)]
pub struct LstmCell {
    /// `W_x (4H, in)`.
    pub w_x: Param<Tensor<2>>,
    /// `W_h (4H, H)`.
    pub w_h: Param<Tensor<2>>,
    /// `b (4H)`.
    pub bias: Param<Tensor<1>>,
}

/// The state of an LSTM.
#[derive(Debug, Clone)]
pub struct LstmState {
    /// Hidden activity `h (B, H)`.
    pub h: Tensor<2>,
    /// Cell state `c (B, H)`.
    pub c: Tensor<2>,
}

impl LstmCell {
    /// Roll over `xs (B, T, in)` from the zero state.
    pub fn run(&self, xs: Tensor<3>, drive: impl Fn(usize) -> Option<Tensor<2>>) -> LstmState {
        run(self, xs, drive)
    }

    /// Parameters in checkpoint order.
    pub fn entries(&self) -> Vec<ParamEntry> {
        vec![
            ParamEntry::matrix("w_x", ParamRole::Weight, &self.w_x),
            ParamEntry::matrix("w_h", ParamRole::Weight, &self.w_h),
            ParamEntry::vector("bias", ParamRole::Bias, &self.bias),
        ]
    }

    /// The same cell holding `values`.
    pub fn with_values(self, values: Vec<ParamValue>) -> Self {
        assert_same_shapes(&self.entries(), &values);
        let mut v = values.into_iter();
        let mut m = || v.next().expect("checked length");
        LstmCell {
            w_x: set(self.w_x, m().into_matrix()),
            w_h: set(self.w_h, m().into_matrix()),
            bias: set(self.bias, m().into_vector()),
        }
    }

    /// A copy without autodiff.
    pub fn inference(&self) -> Self {
        LstmCell {
            w_x: detached(&self.w_x),
            w_h: detached(&self.w_h),
            bias: detached(&self.bias),
        }
    }
}

impl Recurrent for LstmCell {
    type State = LstmState;
    /// `(W_xᵀ, W_hᵀ, b (1, 4H))`.
    type Prepared = (Tensor<2>, Tensor<2>, Tensor<2>);

    fn hidden(&self) -> usize {
        self.w_h.dims()[1]
    }

    fn zero_state(&self, batch: usize) -> LstmState {
        let w = self.w_h.val();
        let z = Tensor::zeros([batch, self.hidden()], (&w.device(), w.dtype()));
        LstmState { h: z.clone(), c: z }
    }

    fn prepare(&self) -> Self::Prepared {
        (
            self.w_x.val().transpose(),
            self.w_h.val().transpose(),
            self.bias.val().unsqueeze(),
        )
    }

    fn step(
        &self,
        (wx, wh, b): &Self::Prepared,
        x_t: Tensor<2>,
        state: LstmState,
        drive: Option<Tensor<2>>,
    ) -> LstmState {
        let h = self.hidden();
        let pre = x_t.matmul(wx.clone()) + state.h.matmul(wh.clone()) + b.clone();
        let (i, f, g) = (chunk(&pre, 0, h), chunk(&pre, 1, h), chunk(&pre, 2, h));
        let o = chunk(&pre, 3, h);
        let o = match drive {
            Some(ext) => o + ext,
            None => o,
        };
        let c = sigmoid(f) * state.c + sigmoid(i) * tanh(g);
        let h = sigmoid(o) * tanh(c.clone());
        LstmState { h, c }
    }

    fn output(&self, state: &LstmState) -> Tensor<2> {
        state.h.clone()
    }
}

/// Sizes of a GRU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GruConfig {
    /// Input size per step.
    pub n_in: usize,
    /// Hidden units `H`.
    pub hidden: usize,
}

impl GruConfig {
    /// The cell with PyTorch's default initialisation; draw order `W_x`, `W_h`, `b_x`, `b_h`.
    pub fn init(&self, rng: &mut InitRng, device: &Device) -> Result<GruCell> {
        check(self.n_in, self.hidden)?;
        let (d, h) = (self.n_in, self.hidden);
        let k = 1.0 / (h as f64).sqrt();
        let w_x = rng.uniform(3 * h * d, -k, k);
        let w_h = rng.uniform(3 * h * h, -k, k);
        let b_x = rng.uniform(3 * h, -k, k);
        let b_h = rng.uniform(3 * h, -k, k);
        let vector = |v: &[f64]| matrix(v, 1, v.len(), device).reshape([v.len()]);
        Ok(GruCell {
            w_x: param(matrix(&w_x, 3 * h, d, device)),
            w_h: param(matrix(&w_h, 3 * h, h, device)),
            b_x: param(vector(&b_x)),
            b_h: param(vector(&b_h)),
        })
    }
}

/// A GRU: `W_x (3H, in)`, `W_h (3H, H)`, biases `b_x`, `b_h (3H)`, gates `r, z, n`.
#[derive(Debug, Clone)]
pub struct GruCell {
    /// `W_x (3H, in)`.
    pub w_x: Param<Tensor<2>>,
    /// `W_h (3H, H)`.
    pub w_h: Param<Tensor<2>>,
    /// `b_x (3H)`.
    pub b_x: Param<Tensor<1>>,
    /// `b_h (3H)`.
    pub b_h: Param<Tensor<1>>,
}

impl GruCell {
    /// Roll over `xs (B, T, in)` from the zero state and return `h_T`.
    pub fn run(&self, xs: Tensor<3>, drive: impl Fn(usize) -> Option<Tensor<2>>) -> Tensor<2> {
        run(self, xs, drive)
    }

    /// Parameters in checkpoint order.
    pub fn entries(&self) -> Vec<ParamEntry> {
        vec![
            ParamEntry::matrix("w_x", ParamRole::Weight, &self.w_x),
            ParamEntry::matrix("w_h", ParamRole::Weight, &self.w_h),
            ParamEntry::vector("b_x", ParamRole::Bias, &self.b_x),
            ParamEntry::vector("b_h", ParamRole::Bias, &self.b_h),
        ]
    }

    /// The same cell holding `values`.
    pub fn with_values(self, values: Vec<ParamValue>) -> Self {
        assert_same_shapes(&self.entries(), &values);
        let mut v = values.into_iter();
        let mut m = || v.next().expect("checked length");
        GruCell {
            w_x: set(self.w_x, m().into_matrix()),
            w_h: set(self.w_h, m().into_matrix()),
            b_x: set(self.b_x, m().into_vector()),
            b_h: set(self.b_h, m().into_vector()),
        }
    }

    /// A copy without autodiff.
    pub fn inference(&self) -> Self {
        GruCell {
            w_x: detached(&self.w_x),
            w_h: detached(&self.w_h),
            b_x: detached(&self.b_x),
            b_h: detached(&self.b_h),
        }
    }
}

impl Recurrent for GruCell {
    type State = Tensor<2>;
    /// `(W_xᵀ, W_hᵀ, b_x (1, 3H), b_h (1, 3H))`.
    type Prepared = (Tensor<2>, Tensor<2>, Tensor<2>, Tensor<2>);

    fn hidden(&self) -> usize {
        self.w_h.dims()[1]
    }

    fn zero_state(&self, batch: usize) -> Tensor<2> {
        let w = self.w_h.val();
        Tensor::zeros([batch, self.hidden()], (&w.device(), w.dtype()))
    }

    fn prepare(&self) -> Self::Prepared {
        (
            self.w_x.val().transpose(),
            self.w_h.val().transpose(),
            self.b_x.val().unsqueeze(),
            self.b_h.val().unsqueeze(),
        )
    }

    fn step(
        &self,
        (wx, wh, bx, bh): &Self::Prepared,
        x_t: Tensor<2>,
        h_prev: Tensor<2>,
        drive: Option<Tensor<2>>,
    ) -> Tensor<2> {
        let h = self.hidden();
        let gx = x_t.matmul(wx.clone()) + bx.clone();
        let gh = h_prev.clone().matmul(wh.clone()) + bh.clone();
        let r = sigmoid(chunk(&gx, 0, h) + chunk(&gh, 0, h));
        let z = sigmoid(chunk(&gx, 1, h) + chunk(&gh, 1, h));
        let n_pre = chunk(&gx, 2, h) + r * chunk(&gh, 2, h);
        let n = tanh(match drive {
            Some(ext) => n_pre + ext,
            None => n_pre,
        });
        (z.clone().neg() + 1.0) * n + z * h_prev
    }

    fn output(&self, h: &Tensor<2>) -> Tensor<2> {
        h.clone()
    }
}
