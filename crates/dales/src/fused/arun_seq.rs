//! A whole ARUN sequence (spec C2) as one forward pass and one hand-written backward through
//! time on host slices, instead of a dozen framework ops per time step.
//!
//! Forward, for `t = 1..T`, with `R = B·H` neurons and `K` controller units:
//! - `a_t = x_t Uᵀ + h_{t−1} Wᵀ + b` (`B × H × H` GEMM, rayon-parallel);
//! - per neuron, in row blocks on rayon tasks: `g_t = tanh(a_t u + g_{t−1} W_ggᵀ + c)`,
//!   `n_t = w_gn·g_t + b_gn`, `s_t = w_gs·g_t + b_gs`, `h_t = γ(a_t; max(n_t, N_MIN), s_t)`.
//!
//! Only `h_T` leaves the op. The tape keeps every `a_t` and `h_t` (`B·H` each) and the
//! controller states `g_t` (`R·K` each, 8 MB per step at the paper's size). When all of them
//! fit in [`memory_budget`] they are all kept; otherwise only every `C`-th (`C = ⌈√T⌉`) is,
//! and the backward recomputes one segment of `C` states at a time from its checkpoint (the
//! controller alone, from the stored `a_t`): one extra controller forward for `O(√T)` memory.
//! The recomputed states are bit-identical to the forward's.
//!
//! Backward, for `t = T..1`, from `dh_t`:
//! - the gamma partials give `∂a` directly and `dn`, `ds` (`dn = 0` where `n_t < N_MIN`);
//! - `dg_t = dg_carry + dn w_gn + ds w_gs`, `dp = dg_t ⊙ (1 − g_t²)`, `da_t += dp·u`;
//! - per row block: `dg_carry ← dp W_gg`, `dW_gg += dpᵀ g_{t−1}` (block accumulators, summed
//!   at the end);
//! - `dh_{t−1} = da_t W`.
//!
//! `dW = Σ_t da_tᵀ h_{t−1}` is one `H × TB × H` GEMM at the end (each `a_t` on the tape is
//! overwritten by `da_t` once used). The step-by-step tensor version ([`crate::nn::arun`]) is
//! the reference this is tested against (`tests/arun.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::gemm::{View, matmul, matmul_serial};
use super::math::{dot, parts_fast, simd_fn, tanh_f32};
use crate::nn::gamma::N_MIN;

/// Rows (neurons) per rayon task.
const BLOCK: usize = 512;

static BUDGET: AtomicUsize = AtomicUsize::new(1 << 30);

/// Bytes of controller states the tape may keep before it switches to checkpoints and
/// recomputation (1 GiB by default).
pub fn memory_budget() -> usize {
    BUDGET.load(Ordering::Relaxed)
}

/// Set [`memory_budget`] for the whole process. Results do not depend on it.
pub fn set_memory_budget(bytes: usize) {
    BUDGET.store(bytes, Ordering::Relaxed);
}

/// Sizes: batch `b`, steps `t`, inputs per step `d`, neurons `h`, controller units `k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub b: usize,
    pub t: usize,
    pub d: usize,
    pub h: usize,
    pub k: usize,
}

impl Dims {
    fn rows(&self) -> usize {
        self.b * self.h
    }
}

/// The parameters, with the bias pairs summed: `bias = b_xh + b_hh`, `c = b_ag + b_gg`.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    /// `U_xh (H, d)`.
    pub u: &'a [f32],
    /// `W_hh (H, H)`.
    pub w: &'a [f32],
    /// `b_xh + b_hh (H)`.
    pub bias: &'a [f32],
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

impl Tape {
    /// The sizes of the sequence it recorded.
    pub fn dims(&self) -> Dims {
        self.dims
    }
}

impl Params<'_> {
    fn check(&self, d: Dims) {
        assert_eq!(self.u.len(), d.h * d.d, "U_xh is (H, d)");
        assert_eq!(self.w.len(), d.h * d.h, "W_hh is (H, H)");
        assert_eq!(self.bias.len(), d.h, "b is (H)");
        for (name, v) in [
            ("U_ag", self.u_ag),
            ("c", self.c),
            ("W_gn", self.w_gn),
            ("W_gs", self.w_gs),
        ] {
            assert_eq!(v.len(), d.k, "{name} has K entries");
        }
        assert_eq!(self.w_gg.len(), d.k * d.k, "W_gg is (K, K)");
    }
}

/// [`Params`] owning their values.
#[derive(Debug, Clone)]
pub struct OwnedParams {
    pub u: Vec<f32>,
    pub w: Vec<f32>,
    pub bias: Vec<f32>,
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
            u: &self.u,
            w: &self.w,
            bias: &self.bias,
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

/// What the backward needs from the forward.
#[derive(Debug, Clone)]
pub struct Tape {
    dims: Dims,
    /// `a_t (B, H)` for `t = 1..T`, at `(t − 1)·B·H`.
    a: Vec<f32>,
    /// `h_t (B, H)` for `t = 0..T`, at `t·B·H`.
    h: Vec<f32>,
    /// `g_t (R, K)` for `t = 0..T` where kept (every step, or every `segment`-th).
    g: Vec<Option<Vec<f32>>>,
    segment: usize,
}

/// Gradients of every input.
#[derive(Debug, Clone)]
pub struct Grads {
    pub u: Vec<f32>,
    pub w: Vec<f32>,
    /// Of `b_xh + b_hh` (each of the two gets it).
    pub bias: Vec<f32>,
    pub u_ag: Vec<f32>,
    pub w_gg: Vec<f32>,
    /// Of `b_ag + b_gg` (each of the two gets it).
    pub c: Vec<f32>,
    pub w_gn: Vec<f32>,
    pub b_gn: f32,
    pub w_gs: Vec<f32>,
    pub b_gs: f32,
    /// Of the inputs `xs (B, T, d)`, when asked for.
    pub x: Option<Vec<f32>>,
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
                *n = (p.b_gn + dot(row, p.w_gn)).max(N_MIN as f32);
                *s = p.b_gs + dot(row, p.w_gs);
            }
            for i in 0..rows {
                let (softplus, sigma) = parts_fast(a[i], n[i]);
                h[i] = (1.0 - s[i]) * softplus + s[i] * sigma;
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
fn preactivation(a: &mut [f32], xs: &[f32], t: usize, h_prev: &[f32], p: &Params, dims: Dims) {
    let Dims {
        b, t: steps, d, h, ..
    } = dims;
    matmul(a, View::new(h_prev, b, h), View::new(p.w, h, h).t(), false);
    let x_t = View {
        data: &xs[t * d..],
        rows: b,
        cols: d,
        row_stride: steps * d,
        col_stride: 1,
    };
    matmul(a, x_t, View::new(p.u, h, d).t(), true);
    for row in a.chunks_exact_mut(h) {
        for (v, &bi) in row.iter_mut().zip(p.bias) {
            *v += bi;
        }
    }
}

/// The checkpoint interval for `dims` under the current [`memory_budget`]: `T` (keep every
/// state) when they fit, else `⌈√T⌉`.
fn segment_for(dims: Dims) -> usize {
    let bytes = (dims.t + 1) * dims.rows() * dims.k * std::mem::size_of::<f32>();
    if bytes <= memory_budget() {
        dims.t.max(1)
    } else {
        (dims.t as f64).sqrt().ceil().max(1.0) as usize
    }
}

/// `h_T (B, H)` for `xs (B, T, d)`, and the tape when `save`.
pub fn forward(dims: Dims, xs: &[f32], p: &Params, save: bool) -> (Vec<f32>, Option<Tape>) {
    p.check(dims);
    let Dims {
        b, t: steps, d, k, ..
    } = dims;
    assert_eq!(xs.len(), b * steps * d, "xs is (B, T, d)");
    let (rows, bh) = (dims.rows(), dims.rows());
    let segment = segment_for(dims);
    let (a_slots, h_slots) = if save {
        (steps.max(1), steps + 1)
    } else {
        (1, 2)
    };
    let mut a_all = vec![0.0f32; a_slots * bh];
    let mut h_all = vec![0.0f32; h_slots * bh];
    let mut kept: Vec<Option<Vec<f32>>> = vec![None; if save { steps + 1 } else { 0 }];
    let keep = |t: usize| save && (t.is_multiple_of(segment) || segment == steps);
    let mut g_prev = pool::take(rows * k);
    g_prev.fill(0.0);
    for t in 1..=steps {
        let a_slot = if save { t - 1 } else { 0 };
        let (h_prev_slot, h_slot) = if save {
            (t - 1, t)
        } else {
            ((t - 1) % 2, t % 2)
        };
        let a = &mut a_all[a_slot * bh..(a_slot + 1) * bh];
        // h_{t−1} and h_t live in distinct slots of one buffer.
        let (h_prev, h_t) = if h_prev_slot < h_slot {
            let (lo, hi) = h_all.split_at_mut(h_slot * bh);
            (&lo[h_prev_slot * bh..], &mut hi[..bh])
        } else {
            let (lo, hi) = h_all.split_at_mut(h_prev_slot * bh);
            (&hi[..bh] as &[f32], &mut lo[h_slot * bh..(h_slot + 1) * bh])
        };
        preactivation(a, xs, t - 1, &h_prev[..bh], p, dims);
        let mut g = pool::take(rows * k);
        controller_step(a, &g_prev, &mut g, Some(h_t), p, k);
        let old = std::mem::replace(&mut g_prev, g);
        if keep(t - 1) {
            kept[t - 1] = Some(old);
        } else {
            pool::give_back(old);
        }
    }
    if keep(steps) {
        kept[steps] = Some(g_prev);
    } else {
        pool::give_back(g_prev);
    }
    let last = if save { steps } else { steps % 2 };
    let h_last = h_all[last * bh..(last + 1) * bh].to_vec();
    let tape = save.then_some(Tape {
        dims,
        a: a_all,
        h: h_all,
        g: kept,
        segment,
    });
    (h_last, tape)
}

/// Recycled controller-state buffers: a training step's tape reuses the pages of the last
/// one's instead of faulting in fresh zeroed memory (8 MB per time step at the paper's
/// size). The pool holds at most [`memory_budget`] bytes.
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
#[derive(Clone)]
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
            let (ai, dhi, si) = (a[i], dh[i], s[i]);
            let n = n_raw[i].max(N_MIN as f32);
            let (softplus, sigma) = parts_fast(ai, n);
            let slope = sigma * (1.0 - sigma);
            da[i] = dhi * ((1.0 - si) * sigma + si * n * slope);
            let dni = dhi * ((1.0 - si) * (ai * sigma - softplus) / n + si * ai * slope);
            dn[i] = if n_raw[i] < N_MIN as f32 { 0.0 } else { dni };
            ds[i] = dhi * (sigma - softplus);
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

/// Recompute `g_{base+1..=end}` from `g_base` and the stored `a_t`; returns `g_base..=end`.
fn segment_states(tape: &mut Tape, base: usize, end: usize, p: &Params) -> Vec<Vec<f32>> {
    let Dims { k, .. } = tape.dims;
    let bh = tape.dims.rows();
    let mut out: Vec<Vec<f32>> = Vec::with_capacity(end - base + 1);
    out.push(
        tape.g[base]
            .take()
            .expect("every segment starts at a kept state"),
    );
    for t in base + 1..=end {
        let g = match tape.g[t].take() {
            Some(g) => g,
            None => {
                let mut g = pool::take(bh * k);
                let a = &tape.a[(t - 1) * bh..t * bh];
                controller_step(a, &out[out.len() - 1], &mut g, None, p, k);
                g
            }
        };
        out.push(g);
    }
    out
}

/// All gradients from `dh_T (B, H)`; `want_x` also returns the inputs' gradient.
pub fn backward(mut tape: Tape, xs: &[f32], p: &Params, dh_last: &[f32], want_x: bool) -> Grads {
    let dims = tape.dims;
    p.check(dims);
    let Dims {
        b,
        t: steps,
        d,
        h,
        k,
    } = dims;
    let bh = dims.rows();
    assert_eq!(dh_last.len(), bh, "dh_T is (B, H)");
    let blocks = bh.div_ceil(BLOCK);
    let mut accs = vec![Accum::new(k); blocks];
    let mut dh = dh_last.to_vec();
    let mut carry = pool::take(bh * k);
    carry.fill(0.0);
    let mut end = steps;
    while end > 0 {
        let base = (end - 1) / tape.segment * tape.segment;
        let states = segment_states(&mut tape, base, end, p);
        for t in (base + 1..=end).rev() {
            let g = &states[t - base];
            let g_prev = (t > 1).then(|| states[t - 1 - base].as_slice());
            let da_t = &mut tape.a[(t - 1) * bh..t * bh];
            da_t.par_chunks_mut(BLOCK)
                .zip(carry.par_chunks_mut(BLOCK * k))
                .zip(accs.par_iter_mut())
                .enumerate()
                .for_each(|(i, ((da, carry), acc))| {
                    let rows = i * BLOCK..i * BLOCK + da.len();
                    let gk = rows.start * k..rows.end * k;
                    block_backward(
                        da,
                        &dh[rows],
                        &g[gk.clone()],
                        g_prev.map(|g| &g[gk]),
                        carry,
                        acc,
                        p,
                        k,
                    );
                });
            if t > 1 {
                matmul(&mut dh, View::new(da_t, b, h), View::new(p.w, h, h), false);
            }
        }
        states.into_iter().for_each(pool::give_back);
        end = base;
    }
    pool::give_back(carry);
    // The tape's a-slots now hold da_t for t = 1..T, and its h-slots h_0..h_T.
    let da = View::new(&tape.a, steps * b, h);
    let mut dw = vec![0.0f32; h * h];
    matmul(
        &mut dw,
        da.t(),
        View::new(&tape.h[..steps * bh], steps * b, h),
        false,
    );
    let mut du = vec![0.0f32; h * d];
    let mut dbias = vec![0.0f32; h];
    for t in 0..steps {
        let da_t = View::new(&tape.a[t * bh..(t + 1) * bh], b, h);
        let x_t = View {
            data: &xs[t * d..],
            rows: b,
            cols: d,
            row_stride: steps * d,
            col_stride: 1,
        };
        matmul(&mut du, da_t.t(), x_t, true);
        for row in tape.a[t * bh..(t + 1) * bh].chunks_exact(h) {
            for (s, &v) in dbias.iter_mut().zip(row) {
                *s += v;
            }
        }
    }
    let dx = want_x.then(|| {
        let mut dx = vec![0.0f32; b * steps * d];
        for t in 0..steps {
            let mut dx_t = vec![0.0f32; b * d];
            let da_t = View::new(&tape.a[t * bh..(t + 1) * bh], b, h);
            matmul(&mut dx_t, da_t, View::new(p.u, h, d), false);
            for (bi, row) in dx_t.chunks_exact(d).enumerate() {
                dx[(bi * steps + t) * d..(bi * steps + t + 1) * d].copy_from_slice(row);
            }
        }
        dx
    });
    let mut total = Accum::new(k);
    for acc in &accs {
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
    Grads {
        u: du,
        w: dw,
        bias: dbias,
        u_ag: total.u_ag,
        w_gg: total.w_gg,
        c: total.c,
        w_gn: total.w_gn,
        b_gn: total.b_gn,
        w_gs: total.w_gs,
        b_gs: total.b_gs,
        x: dx,
    }
}
