//! ARUN, the adaptive recurrent unit network (Geadah et al., spec C2): a recurrent network of
//! gamma neurons whose shapes `(n, s)` are set at every step by a small controller RNN that is
//! shared by all neurons but keeps one state per neuron.
//!
//! For neuron `i` at step `t`:
//! - `a_t^i = U_xh^{i,:} x_t + W_hh^{i,:} h_{t−1} + b_xh^i + b_hh^i + ext_t^i`
//! - `g_t^i = tanh(U_ag a_t^i + b_ag + W_gg g_{t−1}^i + b_gg)` (`g ∈ R^K`, fed the scalar `a_t^i`)
//! - `n_t^i = W_gn g_t^i + b_gn`, `s_t^i = W_gs g_t^i + b_gs` (linear readouts, as in the code)
//! - `h_t^i = γ(a_t^i; n_t^i, s_t^i)`, with `n` floored at [`crate::nn::gamma::N_MIN`].
//!
//! `h_0 = 0`, `g_0 = 0`. The controller state is stored as `(B·H, K)`: one row per neuron of
//! every sequence.
//!
//! ```
//! use dales::nn::InitRng;
//! use dales::nn::arun::ArunConfig;
//!
//! let device = dales::device::cpu();
//! let cell = ArunConfig::new(1, 16, 5).init(&mut InitRng::new(1), &device).unwrap();
//! let xs = burn::tensor::Tensor::<3>::zeros([2, 10, 1], &device);
//! let h = cell.run(xs, |_| None).h;
//! assert_eq!(h.dims(), [2, 16]);
//! ```

use burn::module::Param;
use burn::tensor::{Device, Tensor};

use super::gamma::{N_MIN, gamma};
use super::init::{InitRng, henaff, kaiming_std, matrix};
use super::layer::assert_same_shapes;
use super::param::{ParamEntry, ParamRole, ParamValue, detached, param, set};
use super::recurrent::{Recurrent, run};
use super::rnn::{Affine2, preactivation, tanh};
use crate::error::{Error, Result};
use crate::fused::ArunParams;

/// Sizes and initial gain of an ARUN.
#[derive(Debug, Clone, PartialEq)]
pub struct ArunConfig {
    /// Input size per step.
    pub n_in: usize,
    /// Neurons `H` of the main network.
    pub hidden: usize,
    /// Controller units `K` (the paper: 50).
    pub controller: usize,
    /// Initial gain readout bias `b_gn`; `None` draws the paper's `5 + 2·U(0, 1)` once.
    pub n0: Option<f64>,
}

impl ArunConfig {
    /// `n_in` inputs, `hidden` neurons, `controller` controller units, the paper's `b_gn`.
    pub fn new(n_in: usize, hidden: usize, controller: usize) -> Self {
        ArunConfig {
            n_in,
            hidden,
            controller,
            n0: None,
        }
    }

    fn validate(&self) -> Result<()> {
        for (key, v) in [
            ("model.n_in", self.n_in),
            ("model.hidden", self.hidden),
            ("model.controller", self.controller),
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
        Ok(())
    }

    /// The cell with spec C2's initialisation: `U_xh` and `U_ag` Kaiming-normal (std
    /// `√(2/n_in)` and `√2`), `W_hh` and `W_gg` henaff, the biases of `U_xh`, `W_hh`, `U_ag`,
    /// `W_gg` zero, `W_gn` Xavier-normal with gain 0.1 (std `0.1·√(2/(K+1))`), `b_gn = n_0`,
    /// `W_gs` Xavier-normal with gain 0.01, `b_gs = 0`. Draw order: `U_xh`, `W_hh`, `U_ag`,
    /// `W_gg`, `W_gn`, `W_gs`, then `n_0` when it is drawn.
    pub fn init(&self, rng: &mut InitRng, device: &Device) -> Result<ArunCell> {
        self.validate()?;
        let (d, h, k) = (self.n_in, self.hidden, self.controller);
        let u = rng.normal(h * d, kaiming_std(d));
        let w = henaff(h, rng);
        let u_ag = rng.normal(k, kaiming_std(1));
        let w_gg = henaff(k, rng);
        let xavier = (2.0 / (k as f64 + 1.0)).sqrt();
        let w_gn = rng.normal(k, 0.1 * xavier);
        let w_gs = rng.normal(k, 0.01 * xavier);
        let n0 = self.n0.unwrap_or_else(|| 5.0 + 2.0 * rng.unit());
        let zeros = |n: usize| param(matrix(&vec![0.0; n], 1, n, device).reshape([n]));
        Ok(ArunCell {
            u: param(matrix(&u, h, d, device)),
            u_bias: zeros(h),
            w: param(matrix(&w, h, h, device)),
            w_bias: zeros(h),
            u_ag: param(matrix(&u_ag, k, 1, device)),
            u_ag_bias: zeros(k),
            w_gg: param(matrix(&w_gg, k, k, device)),
            w_gg_bias: zeros(k),
            w_gn: param(matrix(&w_gn, 1, k, device)),
            b_gn: param(matrix(&[n0], 1, 1, device).reshape([1])),
            w_gs: param(matrix(&w_gs, 1, k, device)),
            b_gs: zeros(1),
        })
    }
}

/// The parameters of an ARUN: the main network's and the shared controller's.
#[derive(Debug, Clone)]
pub struct ArunCell {
    /// `U_xh (H, in)`.
    pub u: Param<Tensor<2>>,
    /// `b_xh (H)`.
    pub u_bias: Param<Tensor<1>>,
    /// `W_hh (H, H)`.
    pub w: Param<Tensor<2>>,
    /// `b_hh (H)`.
    pub w_bias: Param<Tensor<1>>,
    /// `U_ag (K, 1)`.
    pub u_ag: Param<Tensor<2>>,
    /// `b_ag (K)`.
    pub u_ag_bias: Param<Tensor<1>>,
    /// `W_gg (K, K)`.
    pub w_gg: Param<Tensor<2>>,
    /// `b_gg (K)`.
    pub w_gg_bias: Param<Tensor<1>>,
    /// `W_gn (1, K)`.
    pub w_gn: Param<Tensor<2>>,
    /// `b_gn (1)`.
    pub b_gn: Param<Tensor<1>>,
    /// `W_gs (1, K)`.
    pub w_gs: Param<Tensor<2>>,
    /// `b_gs (1)`.
    pub b_gs: Param<Tensor<1>>,
}

/// The state of an ARUN between steps.
#[derive(Debug, Clone)]
pub struct ArunState {
    /// Hidden activity `h (B, H)`.
    pub h: Tensor<2>,
    /// Controller states `g (B·H, K)`, row `b·H + i` for neuron `i` of sequence `b`.
    pub g: Tensor<2>,
    /// The shape `n_t (B, H)` used at the last step (before the floor at `N_MIN`).
    pub n: Tensor<2>,
    /// The shape `s_t (B, H)` used at the last step.
    pub s: Tensor<2>,
}

/// Per-sequence precomputation of an ARUN.
#[derive(Debug, Clone)]
pub struct ArunPrepared {
    main: Affine2,
    /// `b_ag + b_gg (1, K)`.
    g_bias: Tensor<2>,
    /// `[W_gn; W_gs]ᵀ (K, 2)`.
    readout_t: Tensor<2>,
    /// `[b_gn, b_gs] (1, 2)`.
    readout_bias: Tensor<2>,
}

impl ArunCell {
    /// Controller units `K`.
    pub fn controller(&self) -> usize {
        self.w_gg.dims()[0]
    }

    /// Roll over `xs (B, T, in)` from the zero state; see [`run`].
    pub fn run(&self, xs: Tensor<3>, drive: impl Fn(usize) -> Option<Tensor<2>>) -> ArunState {
        run(self, xs, drive)
    }

    /// The last hidden state `h_T (B, H)` over `xs (B, T, in)` from the zero state: one fused
    /// sequence op with a hand-written backward through time where it applies (f32 on the CPU
    /// or GPU backend, no drive at any step), otherwise [`ArunCell::run`] step by step.
    pub fn last_hidden(
        &self,
        xs: Tensor<3>,
        drive: &dyn Fn(usize) -> Option<Tensor<2>>,
    ) -> Tensor<2> {
        crate::fused::arun_sequence(xs, self.fused_params(), N_MIN, drive, |xs| {
            self.run(xs, drive).h
        })
    }

    /// The parameters as the fused sequence takes them.
    fn fused_params(&self) -> ArunParams {
        ArunParams {
            u: self.u.val(),
            u_bias: self.u_bias.val(),
            w: self.w.val(),
            w_bias: self.w_bias.val(),
            u_ag: self.u_ag.val(),
            u_ag_bias: self.u_ag_bias.val(),
            w_gg: self.w_gg.val(),
            w_gg_bias: self.w_gg_bias.val(),
            w_gn: self.w_gn.val(),
            b_gn: self.b_gn.val(),
            w_gs: self.w_gs.val(),
            b_gs: self.b_gs.val(),
        }
    }

    /// The controller alone for one step: `(g_t, n_t, s_t)` from the pre-activations
    /// `a (B, H)` and the previous controller states `g (B·H, K)`.
    pub fn control(
        &self,
        p: &ArunPrepared,
        a: Tensor<2>,
        g: Tensor<2>,
    ) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
        let [b, h] = a.dims();
        let a_col = a.reshape([b * h, 1]);
        let w_gg = self.w_gg.val();
        let u_ag = self.u_ag.val();
        let inputs = [a_col, g, u_ag, w_gg, p.g_bias.clone()];
        let g = crate::fused::controller_step(inputs, |[a, g, u, w, b]| {
            controller_plain(a, g, u, w, b)
        });
        let ns = g.clone().matmul(p.readout_t.clone()) + p.readout_bias.clone();
        let n = ns.clone().slice([0..b * h, 0..1]).reshape([b, h]);
        let s = ns.slice([0..b * h, 1..2]).reshape([b, h]);
        (g, n, s)
    }

    /// One step, also returning the pre-activations `a_t (B, H)` (for the analyses).
    pub fn step_traced(
        &self,
        p: &ArunPrepared,
        x_t: Tensor<2>,
        state: ArunState,
        drive: Option<Tensor<2>>,
    ) -> (ArunState, Tensor<2>) {
        let a = preactivation(&p.main, x_t, state.h, drive);
        let (g, n, s) = self.control(p, a.clone(), state.g);
        let h = gamma(a.clone(), n.clone(), s.clone());
        (ArunState { h, g, n, s }, a)
    }

    /// Parameters in checkpoint order.
    pub fn entries(&self) -> Vec<ParamEntry> {
        use ParamRole::{Bias, Weight};
        vec![
            ParamEntry::matrix("u", Weight, &self.u),
            ParamEntry::vector("u_bias", Bias, &self.u_bias),
            ParamEntry::matrix("w", Weight, &self.w),
            ParamEntry::vector("w_bias", Bias, &self.w_bias),
            ParamEntry::matrix("u_ag", Weight, &self.u_ag),
            ParamEntry::vector("u_ag_bias", Bias, &self.u_ag_bias),
            ParamEntry::matrix("w_gg", Weight, &self.w_gg),
            ParamEntry::vector("w_gg_bias", Bias, &self.w_gg_bias),
            ParamEntry::matrix("w_gn", Weight, &self.w_gn),
            ParamEntry::vector("b_gn", Bias, &self.b_gn),
            ParamEntry::matrix("w_gs", Weight, &self.w_gs),
            ParamEntry::vector("b_gs", Bias, &self.b_gs),
        ]
    }

    /// The same cell holding `values` (in the order of [`ArunCell::entries`]).
    pub fn with_values(self, values: Vec<ParamValue>) -> Self {
        assert_same_shapes(&self.entries(), &values);
        let mut v = values.into_iter();
        let mut m = || v.next().expect("checked length");
        ArunCell {
            u: set(self.u, m().into_matrix()),
            u_bias: set(self.u_bias, m().into_vector()),
            w: set(self.w, m().into_matrix()),
            w_bias: set(self.w_bias, m().into_vector()),
            u_ag: set(self.u_ag, m().into_matrix()),
            u_ag_bias: set(self.u_ag_bias, m().into_vector()),
            w_gg: set(self.w_gg, m().into_matrix()),
            w_gg_bias: set(self.w_gg_bias, m().into_vector()),
            w_gn: set(self.w_gn, m().into_matrix()),
            b_gn: set(self.b_gn, m().into_vector()),
            w_gs: set(self.w_gs, m().into_matrix()),
            b_gs: set(self.b_gs, m().into_vector()),
        }
    }

    /// A copy without autodiff, for evaluation and analysis.
    pub fn inference(&self) -> Self {
        ArunCell {
            u: detached(&self.u),
            u_bias: detached(&self.u_bias),
            w: detached(&self.w),
            w_bias: detached(&self.w_bias),
            u_ag: detached(&self.u_ag),
            u_ag_bias: detached(&self.u_ag_bias),
            w_gg: detached(&self.w_gg),
            w_gg_bias: detached(&self.w_gg_bias),
            w_gn: detached(&self.w_gn),
            b_gn: detached(&self.b_gn),
            w_gs: detached(&self.w_gs),
            b_gs: detached(&self.b_gs),
        }
    }
}

/// One controller step as burn tensor ops: `g = tanh(a ⊗ U_agᵀ + g_prev W_ggᵀ + b)` with
/// `a (R, 1)`, `g_prev (R, K)`, `U_ag (K, 1)`, `W_gg (K, K)`, `b (1, K)`. The reference of the
/// fused op, and the version the GPU runs.
pub fn controller_plain(
    a: Tensor<2>,
    g_prev: Tensor<2>,
    u_ag: Tensor<2>,
    w_gg: Tensor<2>,
    bias: Tensor<2>,
) -> Tensor<2> {
    tanh(a * u_ag.transpose() + g_prev.matmul(w_gg.transpose()) + bias)
}

impl Recurrent for ArunCell {
    type State = ArunState;
    type Prepared = ArunPrepared;

    fn hidden(&self) -> usize {
        self.w.dims()[0]
    }

    fn zero_state(&self, batch: usize) -> ArunState {
        let w = self.w.val();
        let (device, dtype) = (w.device(), w.dtype());
        let h = self.hidden();
        let zeros = |rows, cols| Tensor::zeros([rows, cols], (&device, dtype));
        ArunState {
            h: zeros(batch, h),
            g: zeros(batch * h, self.controller()),
            n: zeros(batch, h),
            s: zeros(batch, h),
        }
    }

    fn prepare(&self) -> ArunPrepared {
        ArunPrepared {
            main: Affine2::new(
                self.u.val(),
                self.u_bias.val(),
                self.w.val(),
                self.w_bias.val(),
            ),
            g_bias: (self.u_ag_bias.val() + self.w_gg_bias.val()).unsqueeze(),
            readout_t: Tensor::cat(vec![self.w_gn.val(), self.w_gs.val()], 0).transpose(),
            readout_bias: Tensor::cat(vec![self.b_gn.val(), self.b_gs.val()], 0).unsqueeze(),
        }
    }

    fn step(
        &self,
        p: &ArunPrepared,
        x_t: Tensor<2>,
        state: ArunState,
        drive: Option<Tensor<2>>,
    ) -> ArunState {
        self.step_traced(p, x_t, state, drive).0
    }

    fn output(&self, state: &ArunState) -> Tensor<2> {
        state.h.clone()
    }
}
