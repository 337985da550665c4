//! Whole RNN sequences ([`RnnSequence`]) on the GPU, and the recurrence they share with the
//! ARUN sequences (`super::arun_seq`): the same recurrence, cells and hand-written backward
//! through time as the host versions (`super::super::cpu::sequence`), with each step a few
//! kernels on the device and no autodiff graph.
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
//! The RNN cells: a fixed activation or a learned gamma ([`pointwise_fwd`],
//! [`pointwise_bwd`]; the per-entry `dn`, `ds` accumulate over the steps in place and are
//! summed to their shape at the end).

use std::sync::Arc;

use burn::backend::Cube;
use burn::backend::TensorMetadata;
use burn::backend::ops::FloatTensorOps;
use burn::tensor::Slice;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::gamma::{gamma_partials, gamma_parts, gamma_value};
use super::{add, buf, dims2, empty, grid, matmul, reshape, rows, sum_to, t, zeros};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::{Act, RnnSequence};

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

/// The codes of [`Act`] in the kernels.
fn act_code(act: Act) -> u32 {
    match act {
        Act::Relu => 0,
        Act::Tanh => 1,
        Act::Softplus => 2,
        Act::Gamma => 3,
    }
}

/// `γ(x; max(n, floor), s)`; mirrors the host `floored_value`.
#[cube]
pub(super) fn floored_gamma<F: Float>(x: F, n: F, s: F, floor: F) -> F {
    gamma_value::<F>(x, n.max(floor), s)
}

/// The partials `(∂γ/∂x, ∂γ/∂n, ∂γ/∂s)` of [`floored_gamma`]; `∂γ/∂n` is 0 where the floor
/// is active; mirrors the host `floored_partials`.
#[cube]
pub(super) fn floored_partials<F: Float>(x: F, n: F, s: F, floor: F) -> (F, F, F) {
    let (px, pn, ps) = gamma_partials::<F>(x, n.max(floor), s);
    (px, select(n < floor, F::new(0.0), pn), ps)
}

/// `h = φ(a)`, one unit per entry of `a (B, H)`: ReLU (`act` 0), tanh (1), softplus (2) or
/// the gamma (3) with `n`, `s` of `width` 1 or `H`, floored at `floor`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn pointwise_fwd<F: Float>(
    a: &[F],
    n: &[F],
    s: &[F],
    out: &mut [F],
    h: usize,
    width: usize,
    floor: f32,
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
            out[i] = floored_gamma::<F>(x, n[j], s[j], F::cast_from(floor));
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
    floor: f32,
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
            let (px, pn, ps) = floored_partials::<F>(x, n[j], s[j], F::cast_from(floor));
            da[i] = g * px;
            dn[i] += g * pn;
            ds[i] += g * ps;
        }
    }
}

/// The nonlinearity of a recurrent cell on the GPU, `h_t = φ_t(a_t)` over `a_t (B, H)`.
pub(crate) trait Cell {
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
pub(super) struct Main {
    xs: CubeTensor,
    u: CubeTensor,
    w: CubeTensor,
    bias: CubeTensor,
}

impl Main {
    pub(super) fn new(xs: &CubeTensor, [u, u_bias, w, w_bias]: [&CubeTensor; 4]) -> Self {
        Main {
            xs: rows(xs.clone()),
            u: rows(u.clone()),
            w: rows(w.clone()),
            bias: rows(add(u_bias.clone(), w_bias.clone())),
        }
    }

    /// `[B, T, d, H]`.
    pub(super) fn dims(&self) -> [usize; 4] {
        let x = self.xs.shape();
        [x[0], x[1], x[2], self.w.shape()[0]]
    }
}

/// `a_t` for `t = 1..T` and `h_{t−1}` for `t = 1..T`, each `(B, H)`.
#[derive(Debug, Clone, Default)]
pub(super) struct Tape {
    a: Vec<CubeTensor>,
    h_prev: Vec<CubeTensor>,
}

/// `h_T (B, H)` from `h_0 = 0`, or with `every` all states `(B, T, H)`, and the tape when
/// `save`.
pub(super) fn forward(
    m: &Main,
    cell: &mut impl Cell,
    save: bool,
    every: bool,
) -> (CubeTensor, Tape) {
    let [b, steps, d, h] = m.dims();
    let xu = matmul(reshape(m.xs.clone(), &[b * steps, d]), t(&m.u));
    let w_t = t(&m.w);
    let mut h_prev = zeros(&m.xs, &[b, h]);
    let mut tape = Tape::default();
    let mut states = Vec::new();
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
        if every {
            states.push(h_t.clone());
        }
        h_prev = h_t;
    }
    if every && steps > 0 {
        let time_major = reshape(Cube::float_cat(states, 0), &[steps, b, h]);
        return (rows(Cube::float_swap_dims(time_major, 0, 1)), tape);
    }
    if every {
        return (zeros(&m.xs, &[b, 0, h]), tape);
    }
    (h_prev, tape)
}

/// The recurrence's gradients `[x, U, b, W]` (`x`'s only when `want_x`; `b` is the gradient
/// of each of the two biases) from the upstream gradient `dy`: of `h_T (B, H)`, or of every
/// state `(B, T, H)`; the cell accumulates its own.
pub(super) fn backward(
    m: &Main,
    tape: Tape,
    cell: &mut impl Cell,
    dy: CubeTensor,
    want_x: bool,
) -> [Option<CubeTensor>; 4] {
    let [b, steps, d, h] = m.dims();
    if steps == 0 {
        let x = want_x.then(|| zeros(&m.xs, &[b, 0, d]));
        let [u, bias, w] = [&[h, d][..], &[h][..], &[h, h][..]].map(|s| Some(zeros(&m.xs, s)));
        return [x, u, bias, w];
    }
    // Every state's gradient, time-major `(T·B, H)`, when every state is an output.
    let upstream = (dy.shape().num_dims() == 3).then(|| {
        let time_major = rows(Cube::float_swap_dims(dy.clone(), 0, 1));
        reshape(time_major, &[steps * b, h])
    });
    let mut dh = match &upstream {
        Some(_) => zeros(&m.xs, &[b, h]),
        None => rows(dy),
    };
    let mut da = vec![None; steps];
    for step in (1..=steps).rev() {
        if let Some(up) = &upstream {
            let block = [
                Slice::new(((step - 1) * b) as isize, Some((step * b) as isize), 1),
                Slice::full(),
            ];
            dh = rows(add(dh, rows(Cube::float_slice(up.clone(), &block))));
        }
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
pub(crate) struct Pointwise {
    act: Act,
    floor: f32,
    n: CubeTensor,
    s: CubeTensor,
    /// Per-entry `dn`, `ds (B, H)` summed over the steps (for a fixed activation, an unused
    /// `(1)` each).
    dn: Option<CubeTensor>,
    ds: Option<CubeTensor>,
}

impl Pointwise {
    fn new(op: &RnnSequence, n: &CubeTensor, s: &CubeTensor) -> Self {
        Pointwise {
            act: op.act,
            floor: op.n_min,
            n: rows(n.clone()),
            s: rows(s.clone()),
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
            Some(g) if self.act == Act::Gamma => sum_to(g.clone(), shape),
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
            self.floor,
            act_code(self.act),
        );
        out
    }

    fn backward(&mut self, t: usize, a: &[CubeTensor], dh: &CubeTensor) -> CubeTensor {
        let a = &a[t - 1];
        let [b, h] = dims2(a);
        let gamma = self.act == Act::Gamma;
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
            self.floor,
            act_code(self.act),
        );
        da
    }
}

/// What a sequence's backward needs from its forward.
#[derive(Debug, Clone)]
pub(crate) struct Saved<C> {
    pub(super) main: Main,
    pub(super) tape: Tape,
    pub(super) cell: C,
}

impl<C: Cell + Clone> Saved<C> {
    /// Run a sequence forward: `h_T` (or with `every` all states), and with `save` what its
    /// backward needs.
    pub(super) fn run(
        main: Main,
        mut cell: C,
        save: bool,
        every: bool,
    ) -> (CubeTensor, Option<Arc<Self>>) {
        let (h, tape) = forward(&main, &mut cell, save, every);
        (h, save.then(|| Arc::new(Saved { main, tape, cell })))
    }

    /// The recurrence's gradients `[xs, U, b_U, W, b_W]` (see [`backward`]; the two biases
    /// share one) and the cell after its backward.
    pub(super) fn backward(
        saved: Arc<Self>,
        dh: CubeTensor,
        want_x: bool,
    ) -> ([Option<CubeTensor>; 5], C) {
        let Saved {
            main,
            tape,
            mut cell,
        } = Arc::try_unwrap(saved).unwrap_or_else(|shared| (*shared).clone());
        let [dx, du, dbias, dw] = backward(&main, tape, &mut cell, dh, want_x);
        ([dx, du, dbias.clone(), dw, dbias], cell)
    }
}

impl Kernel<Cube, 7> for RnnSequence {
    type Saved = Arc<Saved<Pointwise>>;

    fn forward(&self, inputs: [CubeTensor; 7], save: bool) -> (CubeTensor, Option<Self::Saved>) {
        let [xs, u, u_bias, v, v_bias, n, s] = &inputs;
        let cell = Pointwise::new(self, n, s);
        Saved::run(
            Main::new(xs, [u, u_bias, v, v_bias]),
            cell,
            save,
            self.every,
        )
    }

    fn backward(
        &self,
        saved: Self::Saved,
        dh: CubeTensor,
        need: [bool; 7],
    ) -> [Option<CubeTensor>; 7] {
        let ([dx, du, du_bias, dv, dv_bias], cell) = Saved::backward(saved, dh, need[0]);
        let (dn, ds) = cell.gamma_grads();
        [dx, du, du_bias, dv, dv_bias, Some(dn), Some(ds)]
    }
}
