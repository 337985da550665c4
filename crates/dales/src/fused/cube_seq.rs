//! Whole RNN and ARUN sequences on the `gpu` feature's CubeCL backend: the same recurrence,
//! cells and hand-written backward through time as the host versions ([`super::sequence`],
//! [`super::arun_seq`]), with each step a few kernels on the device and no autodiff graph.
//!
//! Forward: `x Uᵀ` for all steps is one product before the loop; then per step one product
//! `h_{t−1} Wᵀ`, one kernel for `a_t = x_t Uᵀ + h_{t−1} Wᵀ + b` ([`preactivation`]) and the
//! cell's kernels for `h_t = φ_t(a_t)`. The tape keeps `a_t` and `h_{t−1}`.
//!
//! Backward: per step `t = T..1` the cell turns `∂L/∂h_t` into `∂L/∂a_t`, and one product
//! carries `∂L/∂h_{t−1} = ∂L/∂a_t W`. The parameter gradients then come from all steps at
//! once: `dW = Σ_t da_tᵀ h_{t−1}`, `dU = Σ_t da_tᵀ x_t` and `dx = da U` are one product each
//! over the `T·B` rows, and `db` one reduction.
//!
//! Cells: a fixed activation or a learned gamma ([`pointwise_fwd`], [`pointwise_bwd`]; the
//! per-entry `dn`, `ds` accumulate over the steps in place and are summed to their shape at
//! the end), or the ARUN controller ([`ArunCell`]): per step one product `g_{t−1} W_ggᵀ`, the
//! controller kernel of [`super::cube`] and one kernel per neuron for `n_t`, `s_t` and `h_t`
//! ([`arun_out`]); backward one kernel per neuron ([`arun_bwd`]) and four small products.
//! Controller states are kept, or checkpointed every `⌈√T⌉` steps and recomputed one
//! segment at a time, under the same [`super::arun_seq::memory_budget`] as on the host.
//!
//! Tested against the step-by-step cells on the GPU and the f64 CPU truth (`tests/gpu.rs`).

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Cube, TensorMetadata};
use burn::tensor::{FloatDType, Shape, Slice};
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::cube::{
    buf, controller_state, dims2, empty, gamma_partials, gamma_parts, grid, matmul, register,
    reshape, rows, sum_to, t,
};
use super::{ArunSeqInputs, ArunSeqKernels, RnnAct, RnnSeqInputs, RnnSeqKernels, record};
use crate::nn::gamma::N_MIN;

/// The gamma's floor on `n` in f32.
const FLOOR: f32 = N_MIN as f32;

/// `a = hw + x_t Uᵀ + b` at step `t` (0-based), one unit per entry of `a (B, H)`; `xu (B·T, H)`
/// holds `x Uᵀ` with row `b·T + t`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn preactivation<F: Float>(
    hw: &[F],
    xu: &[F],
    bias: &[F],
    a: &mut [F],
    t: usize,
    steps: usize,
    h: usize,
) {
    let i = ABSOLUTE_POS;
    if i < a.len() {
        let row = i / h;
        let j = i % h;
        a[i] = hw[i] + xu[(row * steps + t) * h + j] + bias[j];
    }
}

/// The codes of [`RnnAct`] in the kernels.
fn act_code(act: RnnAct) -> u32 {
    match act {
        RnnAct::Relu => 0,
        RnnAct::Tanh => 1,
        RnnAct::Softplus => 2,
        RnnAct::Gamma => 3,
    }
}

/// `γ(x; max(n, N_MIN), s)`.
#[cube]
fn floored_gamma<F: Float>(x: F, n: F, s: F) -> F {
    let (softplus, sigma) = gamma_parts::<F>(x, n.max(F::new(FLOOR)));
    (F::new(1.0) - s) * softplus + s * sigma
}

/// The partials `(∂γ/∂x, ∂γ/∂n, ∂γ/∂s)` of [`floored_gamma`]; `∂γ/∂n` is 0 where the floor
/// is active.
#[cube]
fn floored_partials<F: Float>(x: F, n: F, s: F) -> (F, F, F) {
    let (px, pn, ps) = gamma_partials::<F>(x, n.max(F::new(FLOOR)), s);
    (px, select(n < F::new(FLOOR), F::new(0.0), pn), ps)
}

/// The controller's readouts of neuron `r`, `n = b_gn + g_r·w_gn` and `s = b_gs + g_r·w_gs`,
/// from its state `g_r (K)` in row `r` of `g (R, K)`.
#[cube]
#[allow(clippy::too_many_arguments)]
fn readouts<F: Float>(
    g: &[F],
    r: usize,
    k: usize,
    w_gn: &[F],
    b_gn: &[F],
    w_gs: &[F],
    b_gs: &[F],
) -> (F, F) {
    let mut n = b_gn[0];
    let mut s = b_gs[0];
    for j in 0..k {
        let v = g[r * k + j];
        n += v * w_gn[j];
        s += v * w_gs[j];
    }
    (n, s)
}

/// `h = φ(a)`, one unit per entry of `a (B, H)`: ReLU (`act` 0), tanh (1), softplus (2) or
/// the gamma (3) with `n`, `s` of `width` 1 or `H`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn pointwise_fwd<F: Float>(
    a: &[F],
    n: &[F],
    s: &[F],
    out: &mut [F],
    h: usize,
    width: usize,
    #[comptime] act: u32,
) {
    let i = ABSOLUTE_POS;
    if i < out.len() {
        let x = a[i];
        if act == 0 {
            out[i] = x.max(F::new(0.0));
        } else if act == 1 {
            out[i] = x.tanh();
        } else if act == 2 {
            let (softplus, _sigma) = gamma_parts::<F>(x, F::new(1.0));
            out[i] = softplus;
        } else {
            let j = (i % h) % width;
            out[i] = floored_gamma::<F>(x, n[j], s[j]);
        }
    }
}

/// `da = dh ⊙ φ'(a)`, one unit per entry; for the gamma also `dn += dh ∂γ/∂n` (0 under the
/// floor) and `ds += dh ∂γ/∂s` per entry, accumulated over the steps.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn pointwise_bwd<F: Float>(
    a: &[F],
    dh: &[F],
    n: &[F],
    s: &[F],
    da: &mut [F],
    dn: &mut [F],
    ds: &mut [F],
    h: usize,
    width: usize,
    #[comptime] act: u32,
) {
    let i = ABSOLUTE_POS;
    if i < da.len() {
        let x = a[i];
        let g = dh[i];
        if act == 0 {
            da[i] = select(x > F::new(0.0), g, F::new(0.0));
        } else if act == 1 {
            let y = x.tanh();
            da[i] = g * (F::new(1.0) - y * y);
        } else if act == 2 {
            let (_softplus, sigma) = gamma_parts::<F>(x, F::new(1.0));
            da[i] = g * sigma;
        } else {
            let j = (i % h) % width;
            let (px, pn, ps) = floored_partials::<F>(x, n[j], s[j]);
            da[i] = g * px;
            dn[i] += g * pn;
            ds[i] += g * ps;
        }
    }
}

/// One unit per neuron `r` of the `R = B·H`: from its controller state `g_r (K)`,
/// `n = b_gn + g_r·w_gn`, `s = b_gs + g_r·w_gs` and `h_r = γ(a_r; max(n, N_MIN), s)`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn arun_out<F: Float>(
    g: &[F],
    a: &[F],
    w_gn: &[F],
    b_gn: &[F],
    w_gs: &[F],
    b_gs: &[F],
    out: &mut [F],
    k: usize,
) {
    let r = ABSOLUTE_POS;
    if r < out.len() {
        let (n, s) = readouts::<F>(g, r, k, w_gn, b_gn, w_gs, b_gs);
        out[r] = floored_gamma::<F>(a[r], n, s);
    }
}

/// One unit per neuron `r` at step `t`, from `dh_r` and the controller-state gradient
/// `carry_r (K)` of step `t + 1`: the gamma partials give `da_r` and `dn`, `ds`; then
/// `dp_r = (carry_r + dn w_gn + ds w_gs) ⊙ (1 − g_r²)` and `da_r += dp_r·u`. Writes
/// `left_r = [dn, ds, a_r, 1]`, the left factors of the parameter gradients.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn arun_bwd<F: Float>(
    g: &[F],
    a: &[F],
    dh: &[F],
    carry: &[F],
    u: &[F],
    w_gn: &[F],
    b_gn: &[F],
    w_gs: &[F],
    b_gs: &[F],
    da: &mut [F],
    dp: &mut [F],
    left: &mut [F],
    k: usize,
) {
    let r = ABSOLUTE_POS;
    if r < da.len() {
        let (n, s) = readouts::<F>(g, r, k, w_gn, b_gn, w_gs, b_gs);
        let x = a[r];
        let d = dh[r];
        let (px, pn, ps) = floored_partials::<F>(x, n, s);
        let dn = d * pn;
        let ds = d * ps;
        let mut dx = d * px;
        for j in 0..k {
            let v = g[r * k + j];
            let p = (carry[r * k + j] + dn * w_gn[j] + ds * w_gs[j]) * (F::new(1.0) - v * v);
            dp[r * k + j] = p;
            dx += p * u[j];
        }
        da[r] = dx;
        left[r * 4] = dn;
        left[r * 4 + 1] = ds;
        left[r * 4 + 2] = x;
        left[r * 4 + 3] = F::new(1.0);
    }
}

/// Zeros of `shape` on `like`'s device.
fn zeros(like: &CubeTensor, shape: &[usize]) -> CubeTensor {
    Cube::float_zeros(Shape::from(shape.to_vec()), &like.device, FloatDType::F32)
}

/// Row `i` of `x (m, n)`, as `(1, n)`.
fn row(x: &CubeTensor, i: usize) -> CubeTensor {
    let slices = [
        Slice::new(i as isize, Some(i as isize + 1), 1),
        Slice::full(),
    ];
    rows(Cube::float_slice(x.clone(), &slices))
}

fn add(a: CubeTensor, b: CubeTensor) -> CubeTensor {
    Cube::float_add(a, b)
}

/// The nonlinearity of a recurrent cell on the GPU, `h_t = φ_t(a_t)` over `a_t (B, H)`.
trait Cell {
    /// `h_t` at step `t` (1-based, in order `1..=T`); with `save`, keep what the backward
    /// needs.
    fn forward(&mut self, t: usize, a: &CubeTensor, save: bool) -> CubeTensor;

    /// `∂L/∂a_t` from `dh = ∂L/∂h_t` at step `t` (called in order `T..=1`); `a` holds
    /// `a_1..a_T`.
    fn backward(&mut self, t: usize, a: &[CubeTensor], dh: &CubeTensor) -> CubeTensor;
}

/// The recurrence `a_t = x_t Uᵀ + h_{t−1} Wᵀ + b`: `xs (B, T, d)`, `U (H, d)`, `W (H, H)`
/// and the summed bias `b (H)`.
#[derive(Debug, Clone)]
struct Main {
    xs: CubeTensor,
    u: CubeTensor,
    w: CubeTensor,
    bias: CubeTensor,
}

impl Main {
    fn new(xs: &CubeTensor, [u, u_bias, w, w_bias]: [&CubeTensor; 4]) -> Self {
        Main {
            xs: rows(xs.clone()),
            u: rows(u.clone()),
            w: rows(w.clone()),
            bias: rows(add(u_bias.clone(), w_bias.clone())),
        }
    }

    /// `[B, T, d, H]`.
    fn dims(&self) -> [usize; 4] {
        let x = self.xs.shape();
        [x[0], x[1], x[2], self.w.shape()[0]]
    }
}

/// `a_t` for `t = 1..T` and `h_{t−1}` for `t = 1..T`, each `(B, H)`.
#[derive(Debug, Clone, Default)]
struct Tape {
    a: Vec<CubeTensor>,
    h_prev: Vec<CubeTensor>,
}

/// `h_T (B, H)` from `h_0 = 0`, and the tape when `save`.
fn forward(m: &Main, cell: &mut impl Cell, save: bool) -> (CubeTensor, Tape) {
    let [b, steps, d, h] = m.dims();
    let xu = matmul(reshape(m.xs.clone(), &[b * steps, d]), t(&m.u));
    let w_t = t(&m.w);
    let mut h_prev = zeros(&m.xs, &[b, h]);
    let mut tape = Tape::default();
    for step in 0..steps {
        let hw = matmul(h_prev.clone(), w_t.clone());
        let a = empty(&hw, &[b, h]);
        let (count, dim) = grid(&a, b * h);
        preactivation::launch::<f32>(
            &a.client,
            count,
            dim,
            buf(&hw),
            buf(&xu),
            buf(&m.bias),
            buf(&a),
            step,
            steps,
            h,
        );
        let h_t = cell.forward(step + 1, &a, save);
        if save {
            tape.a.push(a);
            tape.h_prev.push(h_prev);
        }
        h_prev = h_t;
    }
    (h_prev, tape)
}

/// The recurrence's gradients `[x, U, b, W]` (`x`'s only when `want_x`; `b` is the gradient
/// of each of the two biases) from `dh_T`; the cell accumulates its own.
fn backward(
    m: &Main,
    tape: Tape,
    cell: &mut impl Cell,
    dh_last: CubeTensor,
    want_x: bool,
) -> [Option<CubeTensor>; 4] {
    let [b, steps, d, h] = m.dims();
    if steps == 0 {
        let x = want_x.then(|| zeros(&m.xs, &[b, 0, d]));
        let [u, bias, w] = [&[h, d][..], &[h][..], &[h, h][..]].map(|s| Some(zeros(&m.xs, s)));
        return [x, u, bias, w];
    }
    let mut dh = rows(dh_last);
    let mut da = vec![None; steps];
    for step in (1..=steps).rev() {
        let da_t = cell.backward(step, &tape.a, &dh);
        if step > 1 {
            dh = matmul(da_t.clone(), m.w.clone());
        }
        da[step - 1] = Some(da_t);
    }
    drop(tape.a);
    // Rows `t·B + b` of the time-major layout, for all steps at once.
    let da = rows(Cube::float_cat(da.into_iter().flatten().collect(), 0));
    let h_prev = rows(Cube::float_cat(tape.h_prev, 0));
    let dw = matmul(t(&da), h_prev);
    let dbias = reshape(Cube::float_sum_dim(da.clone(), 0), &[h]);
    let xs_time_major = reshape(
        rows(Cube::float_swap_dims(m.xs.clone(), 0, 1)),
        &[steps * b, d],
    );
    let du = matmul(t(&da), xs_time_major);
    let dx = want_x.then(|| {
        let dx = reshape(matmul(da, m.u.clone()), &[steps, b, d]);
        rows(Cube::float_swap_dims(dx, 0, 1))
    });
    [dx, Some(du), Some(dbias), Some(dw)]
}

/// The RNN cells: a fixed activation or a learned gamma with `n`, `s` of shape `(1, 1)` or
/// `(1, H)`.
#[derive(Debug, Clone)]
struct Pointwise {
    act: RnnAct,
    n: CubeTensor,
    s: CubeTensor,
    /// Per-entry `dn`, `ds (B, H)` summed over the steps (for a fixed activation, an unused
    /// `(1)` each).
    dn: Option<CubeTensor>,
    ds: Option<CubeTensor>,
}

impl Pointwise {
    fn new(p: &RnnSeqInputs<Cube>) -> Self {
        Pointwise {
            act: p.act,
            n: rows(p.n.clone()),
            s: rows(p.s.clone()),
            dn: None,
            ds: None,
        }
    }

    /// The width of `n` and `s` (1 or `H`).
    fn width(&self) -> usize {
        self.n.shape().num_elements()
    }

    /// `(dn, ds)` in the shape of `n` and `s` after the backward (zeros for a fixed
    /// activation).
    fn gamma_grads(&self) -> (CubeTensor, CubeTensor) {
        let shape = dims2(&self.n);
        let sum = |g: &Option<CubeTensor>| match g {
            Some(g) if self.act == RnnAct::Gamma => sum_to(g.clone(), shape),
            _ => zeros(&self.n, &shape),
        };
        (sum(&self.dn), sum(&self.ds))
    }
}

impl Cell for Pointwise {
    fn forward(&mut self, _t: usize, a: &CubeTensor, _save: bool) -> CubeTensor {
        let [b, h] = dims2(a);
        let out = empty(a, &[b, h]);
        let (count, dim) = grid(a, b * h);
        pointwise_fwd::launch::<f32>(
            &a.client,
            count,
            dim,
            buf(a),
            buf(&self.n),
            buf(&self.s),
            buf(&out),
            h,
            self.width(),
            act_code(self.act),
        );
        out
    }

    fn backward(&mut self, t: usize, a: &[CubeTensor], dh: &CubeTensor) -> CubeTensor {
        let a = &a[t - 1];
        let [b, h] = dims2(a);
        let gamma = self.act == RnnAct::Gamma;
        let acc_shape: &[usize] = if gamma { &[b, h] } else { &[1] };
        let dn = self.dn.get_or_insert_with(|| zeros(a, acc_shape)).clone();
        let ds = self.ds.get_or_insert_with(|| zeros(a, acc_shape)).clone();
        let da = empty(a, &[b, h]);
        let (count, dim) = grid(a, b * h);
        pointwise_bwd::launch::<f32>(
            &a.client,
            count,
            dim,
            buf(a),
            buf(dh),
            buf(&self.n),
            buf(&self.s),
            buf(&da),
            buf(&dn),
            buf(&ds),
            h,
            self.width(),
            act_code(self.act),
        );
        da
    }
}

/// The controller's parameters: `U_ag (K)`, `W_gg (K, K)`, `c = b_ag + b_gg (K)`,
/// `W_gn (K)`, `b_gn (1)`, `W_gs (K)`, `b_gs (1)`.
#[derive(Debug, Clone)]
struct ControllerParams {
    u_ag: CubeTensor,
    w_gg: CubeTensor,
    c: CubeTensor,
    w_gn: CubeTensor,
    b_gn: CubeTensor,
    w_gs: CubeTensor,
    b_gs: CubeTensor,
}

/// Sums over the steps of the controller's gradients.
#[derive(Debug, Clone)]
struct ControllerGrads {
    /// `Σ dpᵀ g_{t−1} (K, K)`.
    w_gg: CubeTensor,
    /// `Σ leftᵀ g_t (4, K)`: rows `dW_gn`, `dW_gs`.
    by_state: CubeTensor,
    /// `Σ leftᵀ dp (4, K)`: rows 2 and 3 are `dU_ag` and `dc`.
    by_dp: CubeTensor,
    /// `Σ left (1, 4)`: `db_gn`, `db_gs`.
    sums: CubeTensor,
}

/// The ARUN controller as the [`Cell`] of a sequence over `rows = B·H` neurons.
#[derive(Debug, Clone)]
struct ArunCell {
    p: ControllerParams,
    rows: usize,
    k: usize,
    steps: usize,
    segment: usize,
    /// Kept states `g_t (R, K)`, `t = 0..=T` (every step, or every `segment`-th).
    kept: Vec<Option<CubeTensor>>,
    g_prev: Option<CubeTensor>,
    /// The backward's states `g_base..=g_end` of the current segment.
    states: Vec<CubeTensor>,
    base: usize,
    /// `∂L/∂g_t` carried from step `t + 1`.
    carry: Option<CubeTensor>,
    grads: Option<ControllerGrads>,
}

impl ArunCell {
    fn new(p: &ArunSeqInputs<Cube>, neurons: usize, steps: usize) -> Self {
        let flat = |t: &CubeTensor| {
            let len = t.shape().num_elements();
            reshape(rows(t.clone()), &[len])
        };
        let p = ControllerParams {
            u_ag: flat(&p.u_ag),
            w_gg: rows(p.w_gg.clone()),
            c: flat(&add(p.u_ag_bias.clone(), p.w_gg_bias.clone())),
            w_gn: flat(&p.w_gn),
            b_gn: flat(&p.b_gn),
            w_gs: flat(&p.w_gs),
            b_gs: flat(&p.b_gs),
        };
        let k = p.u_ag.shape().num_elements();
        let segment = super::arun_seq::segment_length(steps, neurons * k);
        ArunCell {
            p,
            rows: neurons,
            k,
            steps,
            segment,
            kept: Vec::new(),
            g_prev: None,
            states: Vec::new(),
            base: 0,
            carry: None,
            grads: None,
        }
    }

    fn keeps(&self, t: usize) -> bool {
        t.is_multiple_of(self.segment) || self.segment == self.steps
    }

    /// `g_t = tanh(a_t u + g_{t−1} W_ggᵀ + c)`.
    fn state(&self, a: &CubeTensor, g_prev: &CubeTensor) -> CubeTensor {
        let p = &self.p;
        controller_state(a, g_prev, &p.u_ag, &p.w_gg, &p.c)
    }

    /// Load the states `g_base..=g_end` of the segment ending at `end`, recomputing those not
    /// kept from `a_{base+1..=end}`.
    fn load_segment(&mut self, end: usize, a: &[CubeTensor]) {
        // The last segment's first state is this one's last.
        let mut old = std::mem::take(&mut self.states);
        let mut reuse = (!old.is_empty() && self.base == end).then(|| old.swap_remove(0));
        let base = (end - 1) / self.segment * self.segment;
        self.base = base;
        let first = self.kept[base]
            .take()
            .expect("every segment starts at a kept state");
        self.states.push(first);
        for step in base + 1..=end {
            let kept = if step == end { reuse.take() } else { None };
            let g = match kept.or_else(|| self.kept[step].take()) {
                Some(g) => g,
                None => self.state(&a[step - 1], &self.states[self.states.len() - 1]),
            };
            self.states.push(g);
        }
    }

    /// The controller's gradients after the backward, shaped as its parameters:
    /// `[U_ag (K, 1), c (K), W_gg (K, K), W_gn (1, K), b_gn (1), W_gs (1, K), b_gs (1)]`,
    /// with `c` the gradient of each of `b_ag` and `b_gg`.
    fn param_grads(&self) -> [CubeTensor; 7] {
        let k = self.k;
        let g = self.grads.clone().expect("after the backward");
        let sums = reshape(g.sums, &[4]);
        let entry = |i: usize| {
            let slices = [Slice::new(i as isize, Some(i as isize + 1), 1)];
            rows(Cube::float_slice(sums.clone(), &slices))
        };
        [
            reshape(row(&g.by_dp, 2), &[k, 1]),
            reshape(row(&g.by_dp, 3), &[k]),
            g.w_gg,
            row(&g.by_state, 0),
            entry(0),
            row(&g.by_state, 1),
            entry(1),
        ]
    }
}

impl Cell for ArunCell {
    fn forward(&mut self, step: usize, a: &CubeTensor, save: bool) -> CubeTensor {
        let (r, k) = (self.rows, self.k);
        if step == 1 {
            self.g_prev = Some(zeros(a, &[r, k]));
            self.kept = vec![None; if save { self.steps + 1 } else { 0 }];
        }
        let g_prev = self.g_prev.take().expect("steps in order from 1");
        let g = self.state(a, &g_prev);
        let out = empty(a, &dims2(a));
        let (count, dim) = grid(a, r);
        arun_out::launch::<f32>(
            &a.client,
            count,
            dim,
            buf(&g),
            buf(a),
            buf(&self.p.w_gn),
            buf(&self.p.b_gn),
            buf(&self.p.w_gs),
            buf(&self.p.b_gs),
            buf(&out),
            k,
        );
        if save && self.keeps(step - 1) {
            self.kept[step - 1] = Some(g_prev);
        }
        if step == self.steps {
            if save && self.keeps(step) {
                self.kept[step] = Some(g);
            }
        } else {
            self.g_prev = Some(g);
        }
        out
    }

    fn backward(&mut self, step: usize, a: &[CubeTensor], dh: &CubeTensor) -> CubeTensor {
        let (r, k) = (self.rows, self.k);
        let a_t = &a[step - 1];
        if step == self.steps {
            self.carry = Some(zeros(a_t, &[r, k]));
            self.grads = Some(ControllerGrads {
                w_gg: zeros(a_t, &[k, k]),
                by_state: zeros(a_t, &[4, k]),
                by_dp: zeros(a_t, &[4, k]),
                sums: zeros(a_t, &[1, 4]),
            });
        }
        if self.states.is_empty() || step <= self.base {
            self.load_segment(step, a);
        }
        let g = self.states[step - self.base].clone();
        let carry = self.carry.take().expect("set at step T");
        let da = empty(a_t, &dims2(a_t));
        let dp = empty(a_t, &[r, k]);
        let left = empty(a_t, &[r, 4]);
        let (count, dim) = grid(a_t, r);
        arun_bwd::launch::<f32>(
            &a_t.client,
            count,
            dim,
            buf(&g),
            buf(a_t),
            buf(dh),
            buf(&carry),
            buf(&self.p.u_ag),
            buf(&self.p.w_gn),
            buf(&self.p.b_gn),
            buf(&self.p.w_gs),
            buf(&self.p.b_gs),
            buf(&da),
            buf(&dp),
            buf(&left),
            k,
        );
        let acc = self.grads.take().expect("set at step T");
        let left_t = t(&left);
        let mut acc = ControllerGrads {
            by_state: add(acc.by_state, matmul(left_t.clone(), g)),
            by_dp: add(acc.by_dp, matmul(left_t, dp.clone())),
            sums: add(acc.sums, Cube::float_sum_dim(left, 0)),
            w_gg: acc.w_gg,
        };
        if step > 1 {
            let g_prev = &self.states[step - 1 - self.base];
            acc.w_gg = add(acc.w_gg, matmul(t(&dp), g_prev.clone()));
            self.carry = Some(matmul(dp, self.p.w_gg.clone()));
        } else {
            self.states.clear();
        }
        self.grads = Some(acc);
        da
    }
}

/// What a sequence's backward needs from its forward.
#[derive(Debug, Clone)]
struct Saved<C> {
    main: Main,
    tape: Tape,
    cell: C,
}

impl<C: Cell + Clone> Saved<C> {
    /// The recurrence's gradients (see [`backward`]) and the cell after its backward.
    fn backward(saved: Arc<Self>, dh: CubeTensor, want_x: bool) -> ([Option<CubeTensor>; 4], C) {
        let Saved {
            main,
            tape,
            mut cell,
        } = Arc::try_unwrap(saved).unwrap_or_else(|shared| (*shared).clone());
        let g = backward(&main, tape, &mut cell, dh, want_x);
        (g, cell)
    }
}

/// Record a sequence op on the autodiff graph; `run(save)` runs it, keeping what its
/// backward needs when `save`.
fn record_sequence<C, O, S, const N: usize>(
    op: O,
    nodes: [NodeGuard; N],
    run: impl Fn(bool) -> (CubeTensor, Saved<S>),
) -> FloatTensor<Autodiff<Cube, C>>
where
    C: CheckpointStrategy,
    O: Backward<Cube, N, State = Arc<Saved<S>>>,
{
    let tracked = || {
        let (h, saved) = run(true);
        (h, Arc::new(saved))
    };
    record::<_, C, _, N>(op, nodes, tracked, || run(false).0)
}

fn rnn_run(p: &RnnSeqInputs<Cube>, save: bool) -> (CubeTensor, Saved<Pointwise>) {
    let main = Main::new(&p.xs, [&p.u, &p.u_bias, &p.v, &p.v_bias]);
    let mut cell = Pointwise::new(p);
    let (h, tape) = forward(&main, &mut cell, save);
    (h, Saved { main, tape, cell })
}

impl RnnSeqKernels for Cube {
    fn rnn_sequence(p: RnnSeqInputs<Self>) -> FloatTensor<Self> {
        rnn_run(&p, false).0
    }
}

#[derive(Debug)]
struct RnnSeqCubeBackward;

impl Backward<Cube, 7> for RnnSeqCubeBackward {
    type State = Arc<Saved<Pointwise>>;

    fn backward(self, ops: Ops<Self::State, 7>, grads: &mut Gradients, _: &mut Checkpointer) {
        let nodes = ops.parents.map(|n| n.map(|n| n.id));
        let dh = grads.consume::<Cube>(&ops.node);
        let ([dx, du, dbias, dw], cell) = Saved::backward(ops.state, dh, nodes[0].is_some());
        let (dn, ds) = cell.gamma_grads();
        let values = [dx, du, dbias.clone(), dw, dbias, Some(dn), Some(ds)];
        register(grads, nodes, values);
    }
}

impl<C: CheckpointStrategy> RnnSeqKernels for Autodiff<Cube, C> {
    fn rnn_sequence(p: RnnSeqInputs<Self>) -> FloatTensor<Self> {
        let (nodes, inner) = p.split();
        record_sequence::<C, _, _, 7>(RnnSeqCubeBackward, nodes, |save| rnn_run(&inner, save))
    }
}

fn arun_run(p: &ArunSeqInputs<Cube>, save: bool) -> (CubeTensor, Saved<ArunCell>) {
    let main = Main::new(&p.xs, [&p.u, &p.u_bias, &p.w, &p.w_bias]);
    let [b, steps, _, h] = main.dims();
    let mut cell = ArunCell::new(p, b * h, steps);
    let (h, tape) = forward(&main, &mut cell, save);
    (h, Saved { main, tape, cell })
}

impl ArunSeqKernels for Cube {
    fn arun_sequence(p: ArunSeqInputs<Self>) -> FloatTensor<Self> {
        arun_run(&p, false).0
    }
}

#[derive(Debug)]
struct ArunSeqCubeBackward;

impl Backward<Cube, 13> for ArunSeqCubeBackward {
    type State = Arc<Saved<ArunCell>>;

    fn backward(self, ops: Ops<Self::State, 13>, grads: &mut Gradients, _: &mut Checkpointer) {
        let nodes = ops.parents.map(|n| n.map(|n| n.id));
        let dh = grads.consume::<Cube>(&ops.node);
        let ([dx, du, dbias, dw], cell) = Saved::backward(ops.state, dh, nodes[0].is_some());
        let [u_ag, c, w_gg, w_gn, b_gn, w_gs, b_gs] = cell.param_grads().map(Some);
        let values = [
            dx,
            du,
            dbias.clone(),
            dw,
            dbias,
            u_ag,
            c.clone(),
            w_gg,
            c,
            w_gn,
            b_gn,
            w_gs,
            b_gs,
        ];
        register(grads, nodes, values);
    }
}

impl<C: CheckpointStrategy> ArunSeqKernels for Autodiff<Cube, C> {
    fn arun_sequence(p: ArunSeqInputs<Self>) -> FloatTensor<Self> {
        let (nodes, inner) = p.split();
        record_sequence::<C, _, _, 13>(ArunSeqCubeBackward, nodes, |save| arun_run(&inner, save))
    }
}
