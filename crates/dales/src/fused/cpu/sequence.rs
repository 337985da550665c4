//! A recurrent network rolled over a whole sequence as one forward pass and one hand-written
//! backward through time on host slices, instead of several framework ops per time step.
//!
//! Every cell of spec C2 shares the recurrence `a_t = x_t Uᵀ + h_{t−1} Wᵀ + b` (a
//! `B × H × H` GEMM per step, rayon-parallel) and differs in its nonlinearity
//! `h_t = φ_t(a_t)`, which a [`Cell`] supplies: a fixed or learned-gamma activation
//! ([`Pointwise`]), or the ARUN controller ([`super::arun_seq::Controller`]), which keeps its
//! own state from step to step.
//!
//! `h_T` leaves the op, or every `h_t` when the sequence feeds another layer. The tape keeps
//! `a_t` and `h_t` of every step (`B·H` each); the backward walks `t = T..1`, lets the cell
//! turn `∂L/∂h_t` into `∂L/∂a_t` (overwriting `a_t` on the tape), and carries
//! `∂L/∂h_{t−1} = ∂L/∂a_t · W` (plus the upstream gradient of `h_{t−1}` when every state is
//! an output). The weight gradient
//! `dW = Σ_t da_tᵀ h_{t−1}` is then one `H × TB × H` GEMM. The step-by-step tensor versions
//! (`crate::nn::rnn`, `crate::nn::arun`) are the references these are tested against.

use std::sync::Arc;

use burn::backend::NdArray;
use burn::backend::TensorMetadata;
use burn::backend::ndarray::NdArrayTensor;
use rayon::prelude::*;

use super::gamma::{floored_partials, floored_value, parts};
use super::gemm::{View, matmul};
use super::simd::{Fast, simd_fn, tanh_f32};
use super::{f32s, host};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::{Act, RnnSequence};

/// Sizes: batch `b`, steps `t`, inputs per step `d`, neurons `h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub b: usize,
    pub t: usize,
    pub d: usize,
    pub h: usize,
}

impl Dims {
    /// Neurons of all sequences, `B·H`.
    pub fn rows(&self) -> usize {
        self.b * self.h
    }
}

/// The recurrence's parameters: `U (H, d)`, `W (H, H)` and the summed bias `b (H)`.
#[derive(Debug, Clone)]
pub struct Main {
    pub u: Vec<f32>,
    pub w: Vec<f32>,
    pub bias: Vec<f32>,
}

impl Main {
    fn check(&self, d: Dims) {
        assert_eq!(self.u.len(), d.h * d.d, "U is (H, d)");
        assert_eq!(self.w.len(), d.h * d.h, "W is (H, H)");
        assert_eq!(self.bias.len(), d.h, "b is (H)");
    }
}

/// The nonlinearity of a recurrent cell, `h_t = φ_t(a_t)`, for all `B·H` neurons of a step
/// (row `b·H + i`).
pub trait Cell {
    /// `h = φ_t(a)` at step `t` (1-based, in order `1..=T`); with `save`, keep what
    /// [`Cell::backward`] needs.
    fn forward(&mut self, t: usize, a: &[f32], h: &mut [f32], save: bool);

    /// At step `t` (called in order `T..=1`): on entry `da` holds `a_t`, on exit `∂L/∂a_t`,
    /// given `dh = ∂L/∂h_t`. `earlier` holds `a_1..a_{t−1}` (`B·H` each), for cells that
    /// recompute their state.
    fn backward(&mut self, t: usize, earlier: &[f32], da: &mut [f32], dh: &[f32]);
}

/// What the backward needs from the forward.
#[derive(Debug, Clone)]
pub struct Tape {
    dims: Dims,
    /// `a_t (B, H)` for `t = 1..T`, at `(t − 1)·B·H`.
    a: Vec<f32>,
    /// `h_t (B, H)` for `t = 0..T`, at `t·B·H`.
    h: Vec<f32>,
}

impl Tape {
    /// The sizes of the sequence it recorded.
    pub fn dims(&self) -> Dims {
        self.dims
    }
}

/// Gradients of the recurrence's parameters (the cell keeps its own).
#[derive(Debug, Clone)]
pub struct MainGrads {
    pub u: Vec<f32>,
    pub w: Vec<f32>,
    /// Of the summed bias (each of the two biases gets it).
    pub bias: Vec<f32>,
    /// Of the inputs `xs (B, T, d)`, when asked for.
    pub x: Option<Vec<f32>>,
}

/// The input `x_t (B, d)` of step `t` (0-based) as a strided view of `xs (B, T, d)`.
fn input_at(xs: &[f32], t: usize, dims: Dims) -> View<'_> {
    View {
        data: &xs[t * dims.d..],
        rows: dims.b,
        cols: dims.d,
        row_stride: dims.t * dims.d,
        col_stride: 1,
    }
}

/// `a_t = x_t Uᵀ + h_{t−1} Wᵀ + b` into `a (B, H)`, with `t` 0-based and `wt = Wᵀ` stored
/// row-major (so that the product reads `Wᵀ`'s rows contiguously, as the packing-free
/// broadcast kernel needs).
fn preactivation(
    a: &mut [f32],
    (xs, t): (&[f32], usize),
    h_prev: &[f32],
    (m, wt): (&Main, &[f32]),
    dims: Dims,
) {
    let Dims { b, d, h, .. } = dims;
    matmul(a, View::new(h_prev, b, h), View::new(wt, h, h), false);
    matmul(a, input_at(xs, t, dims), View::new(&m.u, h, d).t(), true);
    for row in a.chunks_exact_mut(h) {
        for (v, &bi) in row.iter_mut().zip(&m.bias) {
            *v += bi;
        }
    }
}

/// The transpose of the row-major `n × n` matrix `w`.
fn transposed(w: &[f32], n: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; n * n];
    for (i, row) in w.chunks_exact(n).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            t[j * n + i] = v;
        }
    }
    t
}

/// `h_T (B, H)` for `xs (B, T, d)` from `h_0 = 0`, and the tape when `save`.
pub fn forward(
    dims: Dims,
    xs: &[f32],
    m: &Main,
    cell: &mut impl Cell,
    save: bool,
) -> (Vec<f32>, Option<Tape>) {
    m.check(dims);
    let Dims { b, t: steps, d, .. } = dims;
    assert_eq!(xs.len(), b * steps * d, "xs is (B, T, d)");
    let bh = dims.rows();
    let (a_slots, h_slots) = if save {
        (steps.max(1), steps + 1)
    } else {
        (1, 2)
    };
    let wt = transposed(&m.w, dims.h);
    let mut a_all = vec![0.0f32; a_slots * bh];
    let mut h_all = vec![0.0f32; h_slots * bh];
    for t in 1..=steps {
        let a_slot = if save { t - 1 } else { 0 };
        let (prev, next) = if save {
            (t - 1, t)
        } else {
            ((t - 1) % 2, t % 2)
        };
        let a = &mut a_all[a_slot * bh..(a_slot + 1) * bh];
        // h_{t−1} and h_t live in distinct slots of one buffer.
        let (h_prev, h_t): (&[f32], &mut [f32]) = if prev < next {
            let (lo, hi) = h_all.split_at_mut(next * bh);
            (&lo[prev * bh..], &mut hi[..bh])
        } else {
            let (lo, hi) = h_all.split_at_mut(prev * bh);
            (&hi[..bh], &mut lo[next * bh..(next + 1) * bh])
        };
        preactivation(a, (xs, t - 1), &h_prev[..bh], (m, &wt), dims);
        cell.forward(t, a, h_t, save);
    }
    let last = if save { steps } else { steps % 2 };
    let h_last = h_all[last * bh..(last + 1) * bh].to_vec();
    let tape = save.then_some(Tape {
        dims,
        a: a_all,
        h: h_all,
    });
    (h_last, tape)
}

/// The recurrence's gradients from the upstream gradient `dy`: of `h_T (B, H)`, or of every
/// state `(B, T, H)` (told apart by its length; they agree for `T = 1`). The cell accumulates
/// its own; `want_x` also returns the inputs' gradient.
pub fn backward(
    mut tape: Tape,
    xs: &[f32],
    m: &Main,
    cell: &mut impl Cell,
    dy: &[f32],
    want_x: bool,
) -> MainGrads {
    let dims = tape.dims;
    m.check(dims);
    let Dims { b, t: steps, d, h } = dims;
    let bh = dims.rows();
    let every = steps > 1 && dy.len() == steps * bh;
    assert!(every || dy.len() == bh, "dy is (B, H) or (B, T, H)");
    let mut dh = if every { vec![0.0; bh] } else { dy.to_vec() };
    for t in (1..=steps).rev() {
        if every {
            for (row, dh_row) in dh.chunks_exact_mut(h).enumerate() {
                let from = (row * steps + t - 1) * h;
                for (g, &u) in dh_row.iter_mut().zip(&dy[from..from + h]) {
                    *g += u;
                }
            }
        }
        let (earlier, rest) = tape.a.split_at_mut((t - 1) * bh);
        let da = &mut rest[..bh];
        cell.backward(t, earlier, da, &dh);
        if t > 1 {
            matmul(&mut dh, View::new(da, b, h), View::new(&m.w, h, h), false);
        }
    }
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
        let da_t = &tape.a[t * bh..(t + 1) * bh];
        matmul(
            &mut du,
            View::new(da_t, b, h).t(),
            input_at(xs, t, dims),
            true,
        );
        for row in da_t.chunks_exact(h) {
            for (s, &v) in dbias.iter_mut().zip(row) {
                *s += v;
            }
        }
    }
    let x = want_x.then(|| {
        let mut dx = vec![0.0f32; b * steps * d];
        let mut dx_t = vec![0.0f32; b * d];
        for t in 0..steps {
            let da_t = View::new(&tape.a[t * bh..(t + 1) * bh], b, h);
            matmul(&mut dx_t, da_t, View::new(&m.u, h, d), false);
            for (bi, row) in dx_t.chunks_exact(d).enumerate() {
                dx[(bi * steps + t) * d..(bi * steps + t + 1) * d].copy_from_slice(row);
            }
        }
        dx
    });
    MainGrads {
        u: du,
        w: dw,
        bias: dbias,
        x,
    }
}

/// The activation of a [`Pointwise`] cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Activation {
    Relu,
    Tanh,
    /// `ln(1 + e^a)`.
    Softplus,
    /// `γ(a; max(n, n_min), s)` with one `(n, s)` for all neurons (`n.len() == 1`) or one per
    /// neuron (`H`).
    Gamma {
        n: Vec<f32>,
        s: Vec<f32>,
        n_min: f32,
    },
}

/// The RNN cells of spec C2: `h_t = φ(a_t)` with a fixed activation or a learned gamma.
#[derive(Debug, Clone)]
pub struct Pointwise {
    /// With a gamma's `n`, `s` one per neuron.
    act: Activation,
    h: usize,
    /// Whether the gamma's `(n, s)` is one shared pair.
    homogeneous: bool,
    /// `∂L/∂n`, `∂L/∂s` of a gamma activation per neuron, one vector per rayon task (summed
    /// by [`Pointwise::gamma_grads`]).
    dn: Vec<Vec<f32>>,
    ds: Vec<Vec<f32>>,
}

/// Batch rows (`H` neurons each) per rayon task of a [`Pointwise`] cell.
const BATCH_ROWS: usize = 8;

impl Pointwise {
    /// The cell for `h` neurons per sequence. A homogeneous gamma's `(n, s)` is spread to
    /// every neuron (its gradients are folded back by [`Pointwise::gamma_grads`]).
    pub fn new(act: Activation, h: usize) -> Self {
        let (act, homogeneous) = match act {
            Activation::Gamma { n, s, n_min } => {
                assert!(
                    n.len() == s.len() && (n.len() == 1 || n.len() == h),
                    "n, s are (1) or (H)"
                );
                let spread = |v: Vec<f32>| if v.len() == 1 { vec![v[0]; h] } else { v };
                let homogeneous = n.len() == 1 && h > 1;
                let (n, s) = (spread(n), spread(s));
                (Activation::Gamma { n, s, n_min }, homogeneous)
            }
            other => (other, false),
        };
        Pointwise {
            act,
            h,
            homogeneous,
            dn: Vec::new(),
            ds: Vec::new(),
        }
    }
}

simd_fn! {
    /// `h = φ(a)` for whole batch rows (`H` neurons each).
    fn pointwise_forward(act: &Activation, a: &[f32], h: &mut [f32], width: usize) {
        match act {
            Activation::Relu => h.iter_mut().zip(a).for_each(|(h, &a)| *h = a.max(0.0)),
            Activation::Tanh => h.iter_mut().zip(a).for_each(|(h, &a)| *h = tanh_f32(a)),
            Activation::Softplus => h
                .iter_mut()
                .zip(a)
                .for_each(|(h, &a)| *h = parts(Fast(a), Fast(1.0)).0.0),
            Activation::Gamma { n, s, n_min } => {
                let n_min = Fast(*n_min);
                for (h, a) in h.chunks_exact_mut(width).zip(a.chunks_exact(width)) {
                    for (((h, &a), &n), &s) in h.iter_mut().zip(a).zip(n).zip(s) {
                        *h = floored_value(Fast(a), Fast(n), Fast(s), n_min).0;
                    }
                }
            }
        }
    }
}

simd_fn! {
    /// `da = dh ⊙ φ'(a)` in place (`da` holds `a` on entry) for whole batch rows, adding a
    /// gamma's `∂L/∂n`, `∂L/∂s` per neuron into `dn`, `ds` (`H` each).
    fn pointwise_backward(
        act: &Activation,
        da: &mut [f32],
        dh: &[f32],
        dn: &mut [f32],
        ds: &mut [f32],
        width: usize,
    ) {
        match act {
            Activation::Relu => da
                .iter_mut()
                .zip(dh)
                .for_each(|(a, &g)| *a = if *a > 0.0 { g } else { 0.0 }),
            Activation::Tanh => da.iter_mut().zip(dh).for_each(|(a, &g)| {
                let y = tanh_f32(*a);
                *a = g * (1.0 - y * y);
            }),
            Activation::Softplus => da
                .iter_mut()
                .zip(dh)
                .for_each(|(a, &g)| *a = g * parts(Fast(*a), Fast(1.0)).1.0),
            Activation::Gamma { n, s, n_min } => {
                let n_min = Fast(*n_min);
                for (da, dh) in da.chunks_exact_mut(width).zip(dh.chunks_exact(width)) {
                    let rows = da.iter_mut().zip(dh).zip(n.iter().zip(s)).zip(dn.iter_mut().zip(ds.iter_mut()));
                    for (((da, &g), (&n, &s)), (dn, ds)) in rows {
                        let (Fast(px), Fast(pn), Fast(ps)) =
                            floored_partials(Fast(*da), Fast(n), Fast(s), n_min);
                        *da = g * px;
                        *dn += g * pn;
                        *ds += g * ps;
                    }
                }
            }
        }
    }
}

impl Cell for Pointwise {
    fn forward(&mut self, _t: usize, a: &[f32], h: &mut [f32], _save: bool) {
        let (act, width) = (&self.act, self.h);
        h.par_chunks_mut(BATCH_ROWS * width)
            .zip(a.par_chunks(BATCH_ROWS * width))
            .for_each(|(h, a)| pointwise_forward(act, a, h, width));
    }

    fn backward(&mut self, _t: usize, _earlier: &[f32], da: &mut [f32], dh: &[f32]) {
        let (act, width) = (&self.act, self.h);
        let blocks = da.len().div_ceil(BATCH_ROWS * width);
        if self.dn.len() != blocks {
            self.dn = vec![vec![0.0; width]; blocks];
            self.ds = vec![vec![0.0; width]; blocks];
        }
        da.par_chunks_mut(BATCH_ROWS * width)
            .zip(dh.par_chunks(BATCH_ROWS * width))
            .zip(self.dn.par_iter_mut().zip(self.ds.par_iter_mut()))
            .for_each(|((da, dh), (dn, ds))| pointwise_backward(act, da, dh, dn, ds, width));
    }
}

impl Pointwise {
    /// `(∂L/∂n, ∂L/∂s)` of a gamma activation after [`backward`], shaped as `n` and `s` (a
    /// homogeneous gamma's per-neuron sums folded into one entry).
    pub fn gamma_grads(&self) -> (Vec<f32>, Vec<f32>) {
        let (dn, ds) = self.gamma_grads_per_neuron();
        if self.homogeneous {
            (vec![dn.iter().sum()], vec![ds.iter().sum()])
        } else {
            (dn, ds)
        }
    }

    fn gamma_grads_per_neuron(&self) -> (Vec<f32>, Vec<f32>) {
        let sum = |parts: &[Vec<f32>]| {
            let mut total = vec![0.0f32; self.h];
            for p in parts {
                for (t, &v) in total.iter_mut().zip(p) {
                    *t += v;
                }
            }
            total
        };
        (sum(&self.dn), sum(&self.ds))
    }
}

/// The sizes, host inputs and recurrence parameters of a fused sequence from its NdArray
/// inputs `xs (B, T, d)`, `U (H, d)`, `b_U`, `W (H, H)`, `b_W`.
pub(crate) fn main_host(
    xs: &NdArrayTensor,
    [u, u_bias, w, w_bias]: [&NdArrayTensor; 4],
) -> (Dims, Vec<f32>, Main) {
    let x = xs.shape();
    let dims = Dims {
        b: x[0],
        t: x[1],
        d: x[2],
        h: w.shape()[0],
    };
    let main = Main {
        u: f32s(u).into_owned(),
        w: f32s(w).into_owned(),
        bias: sum(&f32s(u_bias), &f32s(w_bias)),
    };
    (dims, f32s(xs).into_owned(), main)
}

/// `a + b` entry by entry.
pub(crate) fn sum(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// What a fused sequence's backward needs: the tape, the inputs, the parameters and the cell.
#[derive(Debug, Clone)]
pub(crate) struct Saved<C> {
    tape: Tape,
    xs: Vec<f32>,
    main: Main,
    cell: C,
}

/// Run a fused sequence forward: `h_T (B, H)`, or with `every` all states `(B, T, H)`, and
/// with `save` what its backward needs.
pub(crate) fn run<C: Cell>(
    dims: Dims,
    xs: Vec<f32>,
    main: Main,
    mut cell: C,
    save: bool,
    every: bool,
) -> (NdArrayTensor, Option<Arc<Saved<C>>>) {
    let (h_last, tape) = forward(dims, &xs, &main, &mut cell, save || every);
    let out = match (&tape, every) {
        (Some(tape), true) => host(
            batch_major(&tape.h[dims.rows()..], dims),
            &[dims.b, dims.t, dims.h],
        ),
        _ => host(h_last, &[dims.b, dims.h]),
    };
    let tape = if save { tape } else { None };
    let saved = tape.map(|tape| {
        Arc::new(Saved {
            tape,
            xs,
            main,
            cell,
        })
    });
    (out, saved)
}

/// States `h_1..h_T` stored time-major (`(T, B, H)`) as `(B, T, H)`.
fn batch_major(time_major: &[f32], dims: Dims) -> Vec<f32> {
    let Dims { b, t, h, .. } = dims;
    let mut out = vec![0.0f32; b * t * h];
    for (step, block) in time_major.chunks_exact(b * h).enumerate() {
        for (row, state) in block.chunks_exact(h).enumerate() {
            out[(row * t + step) * h..(row * t + step + 1) * h].copy_from_slice(state);
        }
    }
    out
}

/// The backward of a fused sequence from the gradient of its output (`h_T`, or every state):
/// the recurrence's gradients (with the inputs' when `want_x`), and the cell holding its own.
pub(crate) fn run_backward<C: Cell + Clone>(
    saved: Arc<Saved<C>>,
    dh: &NdArrayTensor,
    want_x: bool,
) -> (Dims, MainGrads, C) {
    let Saved {
        tape,
        xs,
        main,
        mut cell,
    } = Arc::try_unwrap(saved).unwrap_or_else(|shared| (*shared).clone());
    let dims = tape.dims();
    let g = backward(tape, &xs, &main, &mut cell, &f32s(dh), want_x);
    (dims, g, cell)
}

impl MainGrads {
    /// The recurrence's gradients as tensors `[xs, U, b_U, W, b_W]` (the two biases share
    /// one gradient).
    pub(crate) fn tensors(self, dims: Dims) -> [Option<NdArrayTensor>; 5] {
        let Dims { b, t, d, h } = dims;
        let bias = host(self.bias, &[h]);
        [
            self.x.map(|dx| host(dx, &[b, t, d])),
            Some(host(self.u, &[h, d])),
            Some(bias.clone()),
            Some(host(self.w, &[h, h])),
            Some(bias),
        ]
    }
}

impl Kernel<NdArray, 7> for RnnSequence {
    /// The sequence, and the shape of `n` and `s`.
    type Saved = (Arc<Saved<Pointwise>>, Vec<usize>);

    fn forward(
        &self,
        inputs: [NdArrayTensor; 7],
        save: bool,
    ) -> (NdArrayTensor, Option<Self::Saved>) {
        let [xs, u, u_bias, v, v_bias, n, s] = &inputs;
        let (dims, xs, main) = main_host(xs, [u, u_bias, v, v_bias]);
        let act = match self.act {
            Act::Relu => Activation::Relu,
            Act::Tanh => Activation::Tanh,
            Act::Softplus => Activation::Softplus,
            Act::Gamma => Activation::Gamma {
                n: f32s(n).into_owned(),
                s: f32s(s).into_owned(),
                n_min: self.n_min,
            },
        };
        let cell = Pointwise::new(act, dims.h);
        let (h, saved) = run(dims, xs, main, cell, save, self.every);
        (h, saved.map(|saved| (saved, n.shape().to_vec())))
    }

    fn backward(
        &self,
        (saved, ns_shape): Self::Saved,
        dh: NdArrayTensor,
        need: [bool; 7],
    ) -> [Option<NdArrayTensor>; 7] {
        let (dims, g, cell) = run_backward(saved, &dh, need[0]);
        let (dn, ds) = cell.gamma_grads();
        let [x, u, u_bias, v, v_bias] = g.tensors(dims);
        [
            x,
            u,
            u_bias,
            v,
            v_bias,
            // A fixed activation's dummy `n`, `s` need none.
            need[5].then(|| host(dn, &ns_shape)),
            need[6].then(|| host(ds, &ns_shape)),
        ]
    }
}
