//! The ARUN controller (spec C2) as the [`Cell`] of a fused sequence ([`super::sequence`]):
//! the recurrence `a_t = x_t Uᵀ + h_{t−1} Wᵀ + b` is the shared driver's, and this supplies
//! `h_t = φ_t(a_t)` for all `R = B·H` neurons, in row blocks on rayon tasks:
//! `g_t = tanh(a_t u + g_{t−1} W_ggᵀ + c)`, `n_t = w_gn·g_t + b_gn`, `s_t = w_gs·g_t + b_gs`,
//! `h_t = γ(a_t; max(n_t, n_min), s_t)`, with `K` controller units per neuron.
//!
//! The controller states `g_t` take `R·K` floats per step (8 MB at the paper's size). When
//! all `T + 1` fit in the op's memory budget (`crate::fused::Settings::memory_budget`) they
//! are all kept; otherwise only every `C`-th
//! (`C = ⌈√T⌉`) is, and the backward recomputes one segment of `C` states at a time from its
//! checkpoint (the controller alone, from the stored `a_t`): one extra controller forward for
//! `O(√T)` memory. The recomputed states are bit-identical to the forward's.
//!
//! Backward at step `t`, from `dh_t`:
//! - the gamma partials give `∂a` directly and `dn`, `ds` (`dn = 0` where `n_t < n_min`);
//! - `dg_t = dg_carry + dn w_gn + ds w_gs`, `dp = dg_t ⊙ (1 − g_t²)`, `da_t += dp·u`;
//! - per row block: `dg_carry ← dp W_gg`, `dW_gg += dpᵀ g_{t−1}` (block accumulators, summed
//!   by [`Controller::grads`]).
//!
//! The step-by-step tensor version (`crate::nn::arun`) is the reference this is tested
//! against (`tests/it/arun.rs`).

use std::sync::Arc;

use burn::backend::NdArray;
use burn::backend::ndarray::NdArrayTensor;
use rayon::prelude::*;

use super::gamma::{floored_partials, floored_value};
use super::gemm::{View, matmul_serial};
use super::sequence::{Cell, Saved, main_host, run, run_backward, sum};
use super::simd::{Fast, dot, simd_fn, tanh_f32};
use super::{f32s, host};
use crate::fused::autodiff::Kernel;
use crate::fused::checkpoints::Checkpoints;
use crate::fused::ops::ArunSequence;

/// Rows (neurons) per rayon task.
const BLOCK: usize = 512;

/// The controller's parameters, with `c = b_ag + b_gg`, borrowed by the kernels.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    /// `U_ag (K)`.
    pub u_ag: &'a [f32],
    /// `W_gg (K, K)`.
    pub w_gg: &'a [f32],
    /// `b_ag + b_gg (K)`.
    pub c: &'a [f32],
    /// `W_gn (K)`.
    pub w_gn: &'a [f32],
    pub b_gn: f32,
    /// `W_gs (K)`.
    pub w_gs: &'a [f32],
    pub b_gs: f32,
    /// The floor of `n`.
    pub n_min: f32,
}

impl Params<'_> {
    /// Controller units `K`.
    pub fn k(&self) -> usize {
        self.u_ag.len()
    }

    fn check(&self) {
        let k = self.k();
        for (name, v) in [("c", self.c), ("W_gn", self.w_gn), ("W_gs", self.w_gs)] {
            assert_eq!(v.len(), k, "{name} has K entries");
        }
        assert_eq!(self.w_gg.len(), k * k, "W_gg is (K, K)");
    }
}

/// [`Params`] owning their values; also the controller's gradients ([`Controller::grads`],
/// where `c` is the gradient of each of `b_ag` and `b_gg`).
#[derive(Debug, Clone)]
pub struct OwnedParams {
    pub u_ag: Vec<f32>,
    pub w_gg: Vec<f32>,
    pub c: Vec<f32>,
    pub w_gn: Vec<f32>,
    pub b_gn: f32,
    pub w_gs: Vec<f32>,
    pub b_gs: f32,
}

impl OwnedParams {
    /// Borrowed, with the floor `n_min`.
    pub fn view(&self, n_min: f32) -> Params<'_> {
        Params {
            u_ag: &self.u_ag,
            w_gg: &self.w_gg,
            c: &self.c,
            w_gn: &self.w_gn,
            b_gn: self.b_gn,
            w_gs: &self.w_gs,
            b_gs: self.b_gs,
            n_min,
        }
    }
}

/// The ARUN nonlinearity of a sequence of `steps` steps over `rows = B·H` neurons.
#[derive(Debug, Clone)]
pub struct Controller {
    p: OwnedParams,
    n_min: f32,
    /// Bytes of states kept for the backward, and of buffers pooled.
    budget: usize,
    rows: usize,
    steps: usize,
    /// The states `g_t` kept for the backward.
    states: Checkpoints<Vec<f32>>,
    /// `g_{t−1}` during the forward.
    g_prev: Option<Vec<f32>>,
    /// `∂L/∂g_t` carried from step `t + 1`.
    carry: Vec<f32>,
    accs: Vec<Accum>,
}

impl Controller {
    /// The controller for `rows` neurons over `steps` steps, with the floor `n_min` of `n`
    /// and `budget` bytes for the states kept for the backward.
    pub fn new(p: OwnedParams, rows: usize, steps: usize, n_min: f32, budget: usize) -> Self {
        p.view(n_min).check();
        let states = Checkpoints::new(steps, rows * p.view(n_min).k(), budget);
        Controller {
            p,
            n_min,
            budget,
            rows,
            steps,
            states,
            g_prev: None,
            carry: Vec::new(),
            accs: Vec::new(),
        }
    }

    /// The gradients accumulated by the backward.
    pub fn grads(&self) -> OwnedParams {
        let k = self.p.view(self.n_min).k();
        let mut total = Accum::new(k);
        for acc in &self.accs {
            let pairs: [(&mut Vec<f32>, &Vec<f32>); 5] = [
                (&mut total.u_ag, &acc.u_ag),
                (&mut total.c, &acc.c),
                (&mut total.w_gg, &acc.w_gg),
                (&mut total.w_gn, &acc.w_gn),
                (&mut total.w_gs, &acc.w_gs),
            ];
            for (sum, part) in pairs {
                for (s, &v) in sum.iter_mut().zip(part) {
                    *s += v;
                }
            }
            total.b_gn += acc.b_gn;
            total.b_gs += acc.b_gs;
        }
        OwnedParams {
            u_ag: total.u_ag,
            w_gg: total.w_gg,
            c: total.c,
            w_gn: total.w_gn,
            b_gn: total.b_gn,
            w_gs: total.w_gs,
            b_gs: total.b_gs,
        }
    }
}

impl Cell for Controller {
    fn forward(&mut self, t: usize, a: &[f32], h: &mut [f32], save: bool) {
        let (rows, k) = (self.rows, self.p.view(self.n_min).k());
        if t == 1 {
            let mut g0 = pool::take(rows * k);
            g0.fill(0.0);
            self.g_prev = Some(g0);
            self.states.start(save);
        }
        let g_prev = self.g_prev.take().expect("steps in order from 1");
        let mut g = pool::take(rows * k);
        controller_step(a, &g_prev, &mut g, Some(h), &self.p.view(self.n_min), k);
        if let Some(unkept) = self.states.offer(t - 1, g_prev) {
            pool::give_back(unkept, self.budget);
        }
        if t == self.steps {
            if let Some(unkept) = self.states.offer(t, g) {
                pool::give_back(unkept, self.budget);
            }
        } else {
            self.g_prev = Some(g);
        }
    }

    fn backward(&mut self, t: usize, earlier: &[f32], da: &mut [f32], dh: &[f32]) {
        let (rows, k) = (self.rows, self.p.view(self.n_min).k());
        if t == self.steps {
            self.carry = pool::take(rows * k);
            self.carry.fill(0.0);
            self.accs = vec![Accum::new(k); rows.div_ceil(BLOCK)];
        }
        let (p, budget) = (&self.p.view(self.n_min), self.budget);
        // A state not kept is recomputed from its predecessor and `a_t` (`da` holds `a_t`).
        let recompute = |step: usize, prev: &Vec<f32>| {
            let a = if step == t {
                &*da
            } else {
                &earlier[(step - 1) * rows..step * rows]
            };
            let mut g = pool::take(rows * k);
            controller_step(a, prev, &mut g, None, p, k);
            g
        };
        self.states
            .load(t, recompute, |v| pool::give_back(v, budget));
        let g = self.states.state(t);
        let g_prev = (t > 1).then(|| self.states.state(t - 1).as_slice());
        da.par_chunks_mut(BLOCK)
            .zip(self.carry.par_chunks_mut(BLOCK * k))
            .zip(self.accs.par_iter_mut())
            .enumerate()
            .for_each(|(i, ((da, carry), acc))| {
                let r = i * BLOCK..i * BLOCK + da.len();
                let gk = r.start * k..r.end * k;
                block_backward(
                    da,
                    &dh[r],
                    &g[gk.clone()],
                    g_prev.map(|g| &g[gk]),
                    carry,
                    acc,
                    p,
                    k,
                );
            });
        if t == 1 {
            self.states.finish(|v| pool::give_back(v, budget));
            pool::give_back(std::mem::take(&mut self.carry), budget);
        }
    }
}

simd_fn! {
    /// The element-wise part of a controller step: on entry `g` holds `g_{t−1} W_ggᵀ`, on
    /// exit `g_t = tanh(g + a u + c)`; with `h`, also `h = γ(a; max(n, n_min), s)`.
    fn controller_rows(a: &[f32], g: &mut [f32], h: Option<&mut [f32]>, p: &Params, k: usize) {
        for (row, &ai) in g.chunks_exact_mut(k).zip(a) {
            for ((v, &uj), &cj) in row.iter_mut().zip(p.u_ag).zip(p.c) {
                *v += ai * uj + cj;
            }
        }
        // One flat pass, so that no row leaves a scalar remainder.
        for v in g.iter_mut() {
            *v = tanh_f32(*v);
        }
        if let Some(h) = h {
            let rows = a.len();
            let mut n = [0.0f32; BLOCK];
            let mut s = [0.0f32; BLOCK];
            for ((row, n), s) in g.chunks_exact(k).zip(&mut n).zip(&mut s) {
                *n = p.b_gn + dot(row, p.w_gn);
                *s = p.b_gs + dot(row, p.w_gs);
            }
            let n_min = Fast(p.n_min);
            for i in 0..rows {
                h[i] = floored_value(Fast(a[i]), Fast(n[i]), Fast(s[i]), n_min).0;
            }
        }
    }
}

/// One controller step for the rows of `a`: `g_out = tanh(a u + g_prev W_ggᵀ + c)`, and
/// `h = γ(a; max(n, n_min), s)` when asked for.
fn block_forward(
    a: &[f32],
    g_prev: &[f32],
    g_out: &mut [f32],
    h: Option<&mut [f32]>,
    p: &Params,
    k: usize,
) {
    let rows = a.len();
    matmul_serial(
        g_out,
        View::new(g_prev, rows, k),
        View::new(p.w_gg, k, k).t(),
        false,
    );
    controller_rows(a, g_out, h, p, k);
}

/// The controller step for all rows, in parallel blocks.
fn controller_step(
    a: &[f32],
    g_prev: &[f32],
    g_out: &mut [f32],
    h: Option<&mut [f32]>,
    p: &Params,
    k: usize,
) {
    match h {
        Some(h) => g_out
            .par_chunks_mut(BLOCK * k)
            .zip(h.par_chunks_mut(BLOCK))
            .enumerate()
            .for_each(|(i, (g, h))| {
                let rows = i * BLOCK..i * BLOCK + h.len();
                let prev = &g_prev[rows.start * k..rows.end * k];
                block_forward(&a[rows], prev, g, Some(h), p, k);
            }),
        None => g_out
            .par_chunks_mut(BLOCK * k)
            .enumerate()
            .for_each(|(i, g)| {
                let rows = i * BLOCK..i * BLOCK + g.len() / k;
                let prev = &g_prev[rows.start * k..rows.end * k];
                block_forward(&a[rows], prev, g, None, p, k);
            }),
    }
}

/// A pool of state buffers, reused from sequence to sequence.
mod pool {
    use std::sync::Mutex;

    static FREE: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

    /// A buffer of `len` entries with unspecified contents.
    pub fn take(len: usize) -> Vec<f32> {
        let mut free = FREE.lock().unwrap_or_else(|p| p.into_inner());
        match free.iter().position(|v| v.len() == len) {
            Some(i) => free.swap_remove(i),
            None => vec![0.0; len],
        }
    }

    /// Return a buffer for reuse (dropped when the pool would hold more than `budget` bytes).
    pub fn give_back(v: Vec<f32>, budget: usize) {
        let mut free = FREE.lock().unwrap_or_else(|p| p.into_inner());
        let held: usize = free.iter().map(|v| v.len()).sum();
        if (held + v.len()) * std::mem::size_of::<f32>() <= budget {
            free.push(v);
        }
    }
}

/// Per-block sums of the controller's gradients.
#[derive(Debug, Clone)]
struct Accum {
    u_ag: Vec<f32>,
    c: Vec<f32>,
    w_gg: Vec<f32>,
    w_gn: Vec<f32>,
    w_gs: Vec<f32>,
    b_gn: f32,
    b_gs: f32,
    /// Scratch for the block's `dp (rows, K)`.
    dp: Vec<f32>,
}

impl Accum {
    fn new(k: usize) -> Self {
        Accum {
            dp: vec![0.0; BLOCK * k],
            u_ag: vec![0.0; k],
            c: vec![0.0; k],
            w_gg: vec![0.0; k * k],
            w_gn: vec![0.0; k],
            w_gs: vec![0.0; k],
            b_gn: 0.0,
            b_gs: 0.0,
        }
    }
}

simd_fn! {
    /// The element-wise part of one block's backward at step `t`. On entry `da` holds `a_t`
    /// and `carry` the controller-state gradient from step `t + 1`; on exit `da` holds
    /// `∂L/∂a_t` and `acc.dp` holds `(carry + dn w_gn + ds w_gs) ⊙ (1 − g²)`. Adds to every
    /// accumulator but `w_gg`.
    fn backward_rows(
        da: &mut [f32],
        dh: &[f32],
        g: &[f32],
        carry: &[f32],
        acc: &mut Accum,
        p: &Params,
        k: usize,
    ) {
        let rows = da.len();
        let Accum { u_ag, c, w_gn, w_gs, b_gn, b_gs, dp, .. } = acc;
        let dp = &mut dp[..rows * k];
        let mut n_raw = [0.0f32; BLOCK];
        let mut s = [0.0f32; BLOCK];
        let mut dn = [0.0f32; BLOCK];
        let mut ds = [0.0f32; BLOCK];
        for ((row, n), s) in g.chunks_exact(k).zip(&mut n_raw).zip(&mut s) {
            *n = p.b_gn + dot(row, p.w_gn);
            *s = p.b_gs + dot(row, p.w_gs);
        }
        let mut a = [0.0f32; BLOCK];
        a[..rows].copy_from_slice(da);
        // The gamma partials, vectorised across neurons.
        let n_min = Fast(p.n_min);
        for i in 0..rows {
            let (Fast(px), Fast(pn), Fast(ps)) =
                floored_partials(Fast(a[i]), Fast(n_raw[i]), Fast(s[i]), n_min);
            da[i] = dh[i] * px;
            dn[i] = dh[i] * pn;
            ds[i] = dh[i] * ps;
        }
        *b_gn += dn[..rows].iter().sum::<f32>();
        *b_gs += ds[..rows].iter().sum::<f32>();
        for i in 0..rows {
            let (g, carry) = (&g[i * k..(i + 1) * k], &carry[i * k..(i + 1) * k]);
            let dp = &mut dp[i * k..(i + 1) * k];
            let (dn, ds, ai) = (dn[i], ds[i], a[i]);
            for j in 0..k {
                let gj = g[j];
                let pj = (carry[j] + dn * p.w_gn[j] + ds * p.w_gs[j]) * (1.0 - gj * gj);
                dp[j] = pj;
                w_gn[j] += dn * gj;
                w_gs[j] += ds * gj;
                u_ag[j] += pj * ai;
                c[j] += pj;
            }
            da[i] += dot(dp, p.u_ag);
        }
    }
}

/// The backward of one block of rows at step `t` (see [`backward_rows`]); then `carry`
/// becomes `dp W_gg`, the carry into step `t − 1`, and `dW_gg += dpᵀ g_{t−1}`.
#[allow(clippy::too_many_arguments)]
fn block_backward(
    da: &mut [f32],
    dh: &[f32],
    g: &[f32],
    g_prev: Option<&[f32]>,
    carry: &mut [f32],
    acc: &mut Accum,
    p: &Params,
    k: usize,
) {
    backward_rows(da, dh, g, carry, acc, p, k);
    let Some(g_prev) = g_prev else {
        return; // t = 1: g_0 = 0, and nothing flows further back.
    };
    let dp = View::new(&acc.dp[..da.len() * k], da.len(), k);
    matmul_serial(carry, dp, View::new(p.w_gg, k, k), false);
    matmul_serial(&mut acc.w_gg, dp.t(), View::new(g_prev, da.len(), k), true);
}

impl Kernel<NdArray, 13> for ArunSequence {
    type Saved = Arc<Saved<Controller>>;

    fn forward(
        &self,
        inputs: [NdArrayTensor; 13],
        save: bool,
    ) -> (NdArrayTensor, Option<Self::Saved>) {
        let [
            xs,
            u,
            u_bias,
            w,
            w_bias,
            u_ag,
            u_ag_bias,
            w_gg,
            w_gg_bias,
            w_gn,
            b_gn,
            w_gs,
            b_gs,
        ] = &inputs;
        let (dims, xs, main) = main_host(xs, [u, u_bias, w, w_bias]);
        let params = OwnedParams {
            u_ag: f32s(u_ag).into_owned(),
            w_gg: f32s(w_gg).into_owned(),
            c: sum(&f32s(u_ag_bias), &f32s(w_gg_bias)),
            w_gn: f32s(w_gn).into_owned(),
            b_gn: f32s(b_gn)[0],
            w_gs: f32s(w_gs).into_owned(),
            b_gs: f32s(b_gs)[0],
        };
        let cell = Controller::new(params, dims.rows(), dims.t, self.n_min, self.budget);
        run(dims, xs, main, cell, save, false)
    }

    fn backward(
        &self,
        saved: Self::Saved,
        dh: NdArrayTensor,
        need: [bool; 13],
    ) -> [Option<NdArrayTensor>; 13] {
        let (dims, g, cell) = run_backward(saved, &dh, need[0]);
        let c = cell.grads();
        let k = c.u_ag.len();
        let [x, u, u_bias, w, w_bias] = g.tensors(dims);
        let c_grad = host(c.c, &[k]);
        [
            x,
            u,
            u_bias,
            w,
            w_bias,
            Some(host(c.u_ag, &[k, 1])),
            Some(c_grad.clone()),
            Some(host(c.w_gg, &[k, k])),
            Some(c_grad),
            Some(host(c.w_gn, &[1, k])),
            Some(host(vec![c.b_gn], &[1])),
            Some(host(c.w_gs, &[1, k])),
            Some(host(vec![c.b_gs], &[1])),
        ]
    }
}
