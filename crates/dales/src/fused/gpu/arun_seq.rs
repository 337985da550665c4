//! Whole ARUN sequences ([`ArunSequence`]) on the GPU, mirroring
//! `super::super::cpu::arun_seq`: the recurrence of `super::sequence` with the ARUN
//! controller as its cell ([`ArunCell`]): per step one product `g_{t−1} W_ggᵀ`, the controller
//! kernel of `super::controller` and one kernel per neuron for `n_t`, `s_t` and `h_t`
//! ([`arun_out`]); backward one kernel per neuron ([`arun_bwd`]) and four small products.
//! Controller states are kept, or checkpointed every `⌈√T⌉` steps and recomputed one segment
//! at a time, under the op's memory budget as on the host.

use std::sync::Arc;

use burn::backend::Cube;
use burn::backend::TensorMetadata;
use burn::backend::ops::FloatTensorOps;
use burn::tensor::Slice;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::controller::controller_state;
use super::sequence::{Cell, Main, Saved, floored_gamma, floored_partials};
use super::{add, buf, dims2, empty, grid, matmul, reshape, row, rows, t, zeros};
use crate::fused::autodiff::Kernel;
use crate::fused::checkpoints::Checkpoints;
use crate::fused::ops::ArunSequence;

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

/// One unit per neuron `r` of the `R = B·H`: from its controller state `g_r (K)`,
/// `n = b_gn + g_r·w_gn`, `s = b_gs + g_r·w_gs` and `h_r = γ(a_r; max(n, floor), s)`.
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
    floor: f32,
    k: usize,
) {
    let r = ABSOLUTE_POS;
    if r < out.len() {
        let (n, s) = readouts::<F>(g, r, k, w_gn, b_gn, w_gs, b_gs);
        out[r] = floored_gamma::<F>(a[r], n, s, F::cast_from(floor));
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
    floor: f32,
    k: usize,
) {
    let r = ABSOLUTE_POS;
    if r < da.len() {
        let (n, s) = readouts::<F>(g, r, k, w_gn, b_gn, w_gs, b_gs);
        let x = a[r];
        let d = dh[r];
        let (px, pn, ps) = floored_partials::<F>(x, n, s, F::cast_from(floor));
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
pub(crate) struct ArunCell {
    p: ControllerParams,
    floor: f32,
    rows: usize,
    k: usize,
    steps: usize,
    /// The states `g_t (R, K)` kept for the backward.
    states: Checkpoints<CubeTensor>,
    g_prev: Option<CubeTensor>,
    /// `∂L/∂g_t` carried from step `t + 1`.
    carry: Option<CubeTensor>,
    grads: Option<ControllerGrads>,
}

impl ArunCell {
    fn new(op: &ArunSequence, p: &[CubeTensor; 13], neurons: usize, steps: usize) -> Self {
        let [
            _,
            _,
            _,
            _,
            _,
            u_ag,
            u_ag_bias,
            w_gg,
            w_gg_bias,
            w_gn,
            b_gn,
            w_gs,
            b_gs,
        ] = p;
        let flat = |t: &CubeTensor| {
            let len = t.shape().num_elements();
            reshape(rows(t.clone()), &[len])
        };
        let p = ControllerParams {
            u_ag: flat(u_ag),
            w_gg: rows(w_gg.clone()),
            c: flat(&add(u_ag_bias.clone(), w_gg_bias.clone())),
            w_gn: flat(w_gn),
            b_gn: flat(b_gn),
            w_gs: flat(w_gs),
            b_gs: flat(b_gs),
        };
        let k = p.u_ag.shape().num_elements();
        ArunCell {
            p,
            floor: op.n_min,
            rows: neurons,
            k,
            steps,
            states: Checkpoints::new(steps, neurons * k, op.budget),
            g_prev: None,
            carry: None,
            grads: None,
        }
    }

    /// `g_t = tanh(a_t u + g_{t−1} W_ggᵀ + c)`.
    fn state(p: &ControllerParams, a: &CubeTensor, g_prev: &CubeTensor) -> CubeTensor {
        controller_state(a, g_prev, &p.u_ag, &p.w_gg, &p.c)
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
            self.states.start(save);
        }
        let g_prev = self.g_prev.take().expect("steps in order from 1");
        let g = Self::state(&self.p, a, &g_prev);
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
            self.floor,
            k,
        );
        // States not kept are dropped: the GPU's allocator reuses their memory.
        let _ = self.states.offer(step - 1, g_prev);
        if step == self.steps {
            let _ = self.states.offer(step, g);
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
        let p = &self.p;
        let recompute = |t: usize, prev: &CubeTensor| Self::state(p, &a[t - 1], prev);
        self.states.load(step, recompute, drop);
        let g = self.states.state(step).clone();
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
            self.floor,
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
            let g_prev = self.states.state(step - 1);
            acc.w_gg = add(acc.w_gg, matmul(t(&dp), g_prev.clone()));
            self.carry = Some(matmul(dp, self.p.w_gg.clone()));
        } else {
            self.states.finish(drop);
        }
        self.grads = Some(acc);
        da
    }
}

impl Kernel<Cube, 13> for ArunSequence {
    type Saved = Arc<Saved<ArunCell>>;

    fn forward(&self, inputs: [CubeTensor; 13], save: bool) -> (CubeTensor, Option<Self::Saved>) {
        let [xs, u, u_bias, w, w_bias, ..] = &inputs;
        let main = Main::new(xs, [u, u_bias, w, w_bias]);
        let [b, steps, _, h] = main.dims();
        let cell = ArunCell::new(self, &inputs, b * h, steps);
        Saved::run(main, cell, save, false)
    }

    fn backward(
        &self,
        saved: Self::Saved,
        dh: CubeTensor,
        need: [bool; 13],
    ) -> [Option<CubeTensor>; 13] {
        let ([dx, du, du_bias, dw, dw_bias], cell) = Saved::backward(saved, dh, need[0]);
        let [u_ag, c, w_gg, w_gn, b_gn, w_gs, b_gs] = cell.param_grads().map(Some);
        [
            dx,
            du,
            du_bias,
            dw,
            dw_bias,
            u_ag,
            c.clone(),
            w_gg,
            c,
            w_gn,
            b_gn,
            w_gs,
            b_gs,
        ]
    }
}
