//! The gamma activation ([`Gamma`]) on the GPU: one pass forward ([`gamma_fwd`]) and one
//! backward ([`gamma_bwd`]) over `x (B, H)`, with `n` and `s` indexed in place as `(1, 1)`,
//! `(1, H)` or `(B, H)`; the per-entry `dn`, `ds` are then summed to their parameter's shape.
//!
//! [`gamma_parts`], [`gamma_value`] and [`gamma_partials`] mirror the host functions of the
//! same names in `super::super::cpu::gamma` line by line (`tests/it/gpu.rs` compares them).

use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::{buf, dims2, empty, grid, rows, sum_to};
use crate::fused::Broadcast;
use crate::fused::autodiff::Kernel;
use crate::fused::ops::Gamma;
use burn::backend::Cube;

/// The width of `x (B, h)` and the shapes `(rows, cols)` of `n` and `s`, each 1 or the full
/// size.
#[derive(CubeLaunch, CubeType)]
struct GammaShape {
    h: usize,
    n_rows: usize,
    n_cols: usize,
    s_rows: usize,
    s_cols: usize,
}

/// `n` and `s` at entry `i` of `x`.
#[cube]
fn params_at<F: Float>(n: &[F], s: &[F], i: usize, shape: &GammaShape) -> (F, F) {
    let row = i / shape.h;
    let col = i % shape.h;
    let nv = n[(row % shape.n_rows) * shape.n_cols + col % shape.n_cols];
    let sv = s[(row % shape.s_rows) * shape.s_cols + col % shape.s_cols];
    (nv, sv)
}

/// `ln(1 + e)` for `e ∈ [0, 1]` to within 3e-7 relative: `2 atanh(w)` with `w = e/(2 + e)` by
/// its odd series to `w¹³/13`; mirrors the host `simd::ln_1p_unit`. (lavapipe's `log1p` of a
/// tiny `e` is `ln(1 + e)` with `1 + e` rounded, off by tens of per cent below 1e-6.)
#[cube]
fn ln_1p_unit<F: Float>(e: F) -> F {
    let w = e / (F::new(2.0) + e);
    let w2 = w * w;
    let inner = F::new(1.0 / 11.0) + w2 * F::new(1.0 / 13.0);
    let inner = F::new(1.0 / 9.0) + w2 * inner;
    let inner = F::new(1.0 / 7.0) + w2 * inner;
    let inner = F::new(1.0 / 5.0) + w2 * inner;
    let inner = F::new(1.0 / 3.0) + w2 * inner;
    F::new(2.0) * w * (F::new(1.0) + w2 * inner)
}

/// `(softplus_n(x), σ(n x))`, stable for `n > 0`; mirrors the host `parts` (with
/// [`ln_1p_unit`] for `ln(1 + e)`).
#[cube]
pub(super) fn gamma_parts<F: Float>(x: F, n: F) -> (F, F) {
    let z = n * x;
    let e = (F::new(0.0) - z.abs()).exp();
    let softplus = (z.max(F::new(0.0)) + ln_1p_unit::<F>(e)) / n;
    let q = F::new(1.0) / (F::new(1.0) + e);
    let sigma = select(z >= F::new(0.0), q, e * q);
    (softplus, sigma)
}

/// `γ(x; n, s)` for `n > 0`; mirrors the host `gamma_value`.
#[cube]
pub(super) fn gamma_value<F: Float>(x: F, n: F, s: F) -> F {
    let (softplus, sigma) = gamma_parts::<F>(x, n);
    (F::new(1.0) - s) * softplus + s * sigma
}

/// The partials `(∂γ/∂x, ∂γ/∂n, ∂γ/∂s)` of `γ(x; n, s)`; mirrors the host `gamma_partials`.
#[cube]
pub(super) fn gamma_partials<F: Float>(x: F, n: F, s: F) -> (F, F, F) {
    let (softplus, sigma) = gamma_parts::<F>(x, n);
    let slope = sigma * (F::new(1.0) - sigma);
    let one_minus_s = F::new(1.0) - s;
    let px = one_minus_s * sigma + s * n * slope;
    let pn = one_minus_s * (x * sigma - softplus) / n + s * x * slope;
    (px, pn, sigma - softplus)
}

/// `γ(x; n, s)`, one unit per entry of `x (B, H)`.
#[cube(launch)]
fn gamma_fwd<F: Float>(x: &[F], n: &[F], s: &[F], y: &mut [F], shape: GammaShape) {
    let i = ABSOLUTE_POS;
    if i < y.len() {
        let (nv, sv) = params_at(n, s, i, &shape);
        y[i] = gamma_value::<F>(x[i], nv, sv);
    }
}

/// `dx`, and the per-entry `dn`, `ds` (each `(B, H)`), from `dy`; one unit per entry.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn gamma_bwd<F: Float>(
    x: &[F],
    n: &[F],
    s: &[F],
    dy: &[F],
    dx: &mut [F],
    dn: &mut [F],
    ds: &mut [F],
    shape: GammaShape,
) {
    let i = ABSOLUTE_POS;
    if i < dx.len() {
        let (nv, sv) = params_at(n, s, i, &shape);
        let g = dy[i];
        let (px, pn, ps) = gamma_partials::<F>(x[i], nv, sv);
        dx[i] = g * px;
        dn[i] = g * pn;
        ds[i] = g * ps;
    }
}

/// A gamma activation's inputs laid out in rows.
#[derive(Debug, Clone)]
pub(crate) struct GammaArgs {
    x: CubeTensor,
    n: CubeTensor,
    s: CubeTensor,
}

impl GammaArgs {
    fn new(inputs: [CubeTensor; 3]) -> Self {
        let [x, n, s] = inputs.map(rows);
        let [b, h] = dims2(&x);
        for (name, t) in [("n", &n), ("s", &s)] {
            let d = dims2(t);
            assert!(
                Broadcast::of(d, [b, h]).is_some(),
                "gamma: {name} has shape {d:?}; for x of shape [{b}, {h}] it must be [1, 1], \
                 [1, {h}] or [{b}, {h}]"
            );
        }
        GammaArgs { x, n, s }
    }

    /// The launch argument of [`GammaShape`].
    fn shape(&self) -> GammaShapeLaunch {
        let [_, h] = dims2(&self.x);
        let [nr, nc] = dims2(&self.n);
        let [sr, sc] = dims2(&self.s);
        GammaShapeLaunch::new(h, nr, nc, sr, sc)
    }
}

impl Kernel<Cube, 3> for Gamma {
    type Saved = GammaArgs;

    fn forward(&self, inputs: [CubeTensor; 3], save: bool) -> (CubeTensor, Option<GammaArgs>) {
        let a = GammaArgs::new(inputs);
        let [b, h] = dims2(&a.x);
        let y = empty(&a.x, &[b, h]);
        let (count, dim) = grid(&a.x, b * h);
        gamma_fwd::launch::<f32>(
            &a.x.client,
            count,
            dim,
            buf(&a.x),
            buf(&a.n),
            buf(&a.s),
            buf(&y),
            a.shape(),
        );
        (y, save.then_some(a))
    }

    fn backward(&self, a: GammaArgs, dy: CubeTensor, _: [bool; 3]) -> [Option<CubeTensor>; 3] {
        let dy = rows(dy);
        let [b, h] = dims2(&a.x);
        let [dx, dn, ds] = [0; 3].map(|_| empty(&a.x, &[b, h]));
        let (count, dim) = grid(&a.x, b * h);
        gamma_bwd::launch::<f32>(
            &a.x.client,
            count,
            dim,
            buf(&a.x),
            buf(&a.n),
            buf(&a.s),
            buf(&dy),
            buf(&dx),
            buf(&dn),
            buf(&ds),
            a.shape(),
        );
        let dn = sum_to(dn, dims2(&a.n));
        let ds = sum_to(ds, dims2(&a.s));
        [dx, dn, ds].map(Some)
    }
}
