//! The ARUN controller (spec C2) as the [`Cell`] of a fused sequence ([`super::sequence`]):
//! the recurrence `a_t = x_t Uᵀ + h_{t−1} Wᵀ + b` is the shared driver's, and this supplies
//! `h_t = φ_t(a_t)` for all `R = B·H` neurons, in row blocks on rayon tasks:
//! `g_t = tanh(a_t u + g_{t−1} W_ggᵀ + c)`, `n_t = w_gn·g_t + b_gn`, `s_t = w_gs·g_t + b_gs`,
//! `h_t = γ(a_t; max(n_t, N_MIN), s_t)`, with `K` controller units per neuron.
//!
//! The controller states `g_t` take `R·K` floats per step (8 MB at the paper's size). When
//! all `T + 1` fit in [`memory_budget`] they are all kept; otherwise only every `C`-th
//! (`C = ⌈√T⌉`) is, and the backward recomputes one segment of `C` states at a time from its
//! checkpoint (the controller alone, from the stored `a_t`): one extra controller forward for
//! `O(√T)` memory. The recomputed states are bit-identical to the forward's.
//!
//! Backward at step `t`, from `dh_t`:
//! - the gamma partials give `∂a` directly and `dn`, `ds` (`dn = 0` where `n_t < N_MIN`);
//! - `dg_t = dg_carry + dn w_gn + ds w_gs`, `dp = dg_t ⊙ (1 − g_t²)`, `da_t += dp·u`;
//! - per row block: `dg_carry ← dp W_gg`, `dW_gg += dpᵀ g_{t−1}` (block accumulators, summed
//!   by [`Controller::grads`]).
//!
//! The step-by-step tensor version ([`crate::nn::arun`]) is the reference this is tested
//! against (`tests/arun.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::gemm::{View, matmul_serial};
use super::math::{dot, gamma_fast, gamma_partials_fast, simd_fn, tanh_f32};
use super::sequence::Cell;

/// Rows (neurons) per rayon task.
const BLOCK: usize = 512;

static BUDGET: AtomicUsize = AtomicUsize::new(4 << 30);

/// Bytes of controller states a sequence may keep before it switches to checkpoints and
/// recomputation (4 GiB by default: the paper-size ARUN keeps every state up to T = 535 and
/// checkpoints beyond, staying within 8 GiB at T = 784).
pub fn memory_budget() -> usize {
    BUDGET.load(Ordering::Relaxed)
}

/// Set [`memory_budget`] for the whole process. Results do not depend on it.
pub fn set_memory_budget(bytes: usize) {
    BUDGET.store(bytes, Ordering::Relaxed);
}

/// The steps between kept controller states of `len` floats each over a sequence of `steps`:
/// all of them (`steps`) when the `steps + 1` states fit in [`memory_budget`], else `⌈√T⌉`.
pub(crate) fn segment_length(steps: usize, len: usize) -> usize {
    let bytes = (steps + 1) * len * std::mem::size_of::<f32>();
    if bytes <= memory_budget() {
        steps.max(1)
    } else {
        (steps as f64).sqrt().ceil().max(1.0) as usize
    }
}

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
    /// Borrowed.
    pub fn view(&self) -> Params<'_> {
        Params {
            u_ag: &self.u_ag,
            w_gg: &self.w_gg,
            c: &self.c,
            w_gn: &self.w_gn,
            b_gn: self.b_gn,
            w_gs: &self.w_gs,
            b_gs: self.b_gs,
        }
    }
}

/// The ARUN nonlinearity of a sequence of `steps` steps over `rows = B·H` neurons.
#[derive(Debug, Clone)]
pub struct Controller {
    p: OwnedParams,
    rows: usize,
    steps: usize,
    segment: usize,
    /// Kept states `g_t`, `t = 0..=T` (every step, or every `segment`-th).
    kept: Vec<Option<Vec<f32>>>,
    /// `g_{t−1}` during the forward.
    g_prev: Option<Vec<f32>>,
    /// The backward's states `g_base..=g_end` of the current segment.
    states: Vec<Vec<f32>>,
    base: usize,
    /// `∂L/∂g_t` carried from step `t + 1`.
    carry: Vec<f32>,
    accs: Vec<Accum>,
}

impl Controller {
    /// The controller for `rows` neurons over `steps` steps.
    pub fn new(p: OwnedParams, rows: usize, steps: usize) -> Self {
        p.view().check();
        let segment = segment_length(steps, rows * p.view().k());
        Controller {
            p,
            rows,
            steps,
            segment,
            kept: Vec::new(),
            g_prev: None,
            states: Vec::new(),
            base: 0,
            carry: Vec::new(),
            accs: Vec::new(),
        }
    }

    fn keeps(&self, t: usize) -> bool {
        t.is_multiple_of(self.segment) || self.segment == self.steps
    }

    /// The gradients accumulated by the backward.
    pub fn grads(&self) -> OwnedParams {
        let k = self.p.view().k();
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

    /// Load the states `g_base..=g_end` of the segment ending at `end`, recomputing those not
    /// kept from `a_{base+1..=end}` (`earlier` holds `a_1..a_{end−1}`, `a_end` is `a_end`).
    fn load_segment(&mut self, end: usize, earlier: &[f32], a_end: &[f32]) {
        let (rows, p) = (self.rows, self.p.view());
        let k = p.k();
        // The last segment's first state is this one's last.
        let mut old = std::mem::take(&mut self.states);
        let mut reuse = (!old.is_empty() && self.base == end).then(|| old.swap_remove(0));
        old.into_iter().for_each(pool::give_back);
        let base = (end - 1) / self.segment * self.segment;
        self.base = base;
        let first = self.kept[base]
            .take()
            .expect("every segment starts at a kept state");
        self.states.push(first);
        for t in base + 1..=end {
            let kept = if t == end { reuse.take() } else { None };
            let g = match kept.or_else(|| self.kept[t].take()) {
                Some(g) => g,
                None => {
                    let a = if t == end {
                        a_end
                    } else {
                        &earlier[(t - 1) * rows..t * rows]
                    };
                    let mut g = pool::take(rows * k);
                    let prev = &self.states[self.states.len() - 1];
                    controller_step(a, prev, &mut g, None, &p, k);
                    g
                }
            };
            self.states.push(g);
        }
    }
}

impl Cell for Controller {
    fn forward(&mut self, t: usize, a: &[f32], h: &mut [f32], save: bool) {
        let (rows, k) = (self.rows, self.p.view().k());
        if t == 1 {
            let mut g0 = pool::take(rows * k);
            g0.fill(0.0);
            self.g_prev = Some(g0);
            self.kept = vec![None; if save { self.steps + 1 } else { 0 }];
        }
        let g_prev = self.g_prev.take().expect("steps in order from 1");
        let mut g = pool::take(rows * k);
        controller_step(a, &g_prev, &mut g, Some(h), &self.p.view(), k);
        if save && self.keeps(t - 1) {
            self.kept[t - 1] = Some(g_prev);
        } else {
            pool::give_back(g_prev);
        }
        if t == self.steps {
            if save && self.keeps(t) {
                self.kept[t] = Some(g);
            } else {
                pool::give_back(g);
            }
        } else {
            self.g_prev = Some(g);
        }
    }

    fn backward(&mut self, t: usize, earlier: &[f32], da: &mut [f32], dh: &[f32]) {
        let (rows, k) = (self.rows, self.p.view().k());
        if t == self.steps {
            self.carry = pool::take(rows * k);
            self.carry.fill(0.0);
            self.accs = vec![Accum::new(k); rows.div_ceil(BLOCK)];
        }
        if self.states.is_empty() || t <= self.base {
            self.load_segment(t, earlier, da);
        }
        let base = self.base;
        let g = &self.states[t - base];
        let g_prev = (t > 1).then(|| self.states[t - 1 - base].as_slice());
        let p = &self.p.view();
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
            self.states.drain(..).for_each(pool::give_back);
            pool::give_back(std::mem::take(&mut self.carry));
        }
    }
}

simd_fn! {
    /// The element-wise part of a controller step: on entry `g` holds `g_{t−1} W_ggᵀ`, on
    /// exit `g_t = tanh(g + a u + c)`; with `h`, also `h = γ(a; max(n, N_MIN), s)`.
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
            for i in 0..rows {
                h[i] = gamma_fast(a[i], n[i], s[i]);
            }
        }
    }
}

/// One controller step for the rows of `a`: `g_out = tanh(a u + g_prev W_ggᵀ + c)`, and
/// `h = γ(a; max(n, N_MIN), s)` when asked for.
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

/// `a_t = x_t Uᵀ + h_{t−1} Wᵀ + b` into `a (B, H)`, with `xs (B, T, d)` and `t` 0-based.
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

    /// Return a buffer for reuse (dropped when the pool is full).
    pub fn give_back(v: Vec<f32>) {
        let mut free = FREE.lock().unwrap_or_else(|p| p.into_inner());
        let held: usize = free.iter().map(|v| v.len()).sum();
        if (held + v.len()) * std::mem::size_of::<f32>() <= super::memory_budget() {
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
        for i in 0..rows {
            let (px, pn, ps) = gamma_partials_fast(a[i], n_raw[i], s[i]);
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
