//! One ARUN controller step ([`ControllerStep`]) on the GPU, mirroring
//! `super::super::cpu::controller`: `g = tanh(a ⊗ u + g_prev W_ggᵀ + b)` as one product and
//! one kernel ([`controller_out`]); backward `dp = dg ⊙ (1 − g²)`, the column sums `db`, and
//! four products for `da`, `dg_prev`, `du`, `dW_gg`.

use burn::backend::Cube;
use burn::backend::ops::FloatTensorOps;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::tanh::tanh_backward;
use super::{buf, dims2, empty, grid, matmul, rows, t};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::ControllerStep;

/// `g = tanh(h + a ⊗ u + b)` for `h = g_prev W_ggᵀ (R, K)`, one unit per entry.
#[cube(launch)]
fn controller_out<F: Float>(h: &[F], a: &[F], u: &[F], bias: &[F], g: &mut [F], k: usize) {
    let i = ABSOLUTE_POS;
    if i < g.len() {
        let r = i / k;
        let c = i % k;
        g[i] = (h[i] + a[r] * u[c] + bias[c]).tanh();
    }
}

/// `g = tanh(a ⊗ u + g_prev W_ggᵀ + bias) (R, K)` for row-major `a (R)`, `u (K)` and
/// `bias (K)` (any shapes with those entries).
pub(super) fn controller_state(
    a: &CubeTensor,
    g_prev: &CubeTensor,
    u: &CubeTensor,
    w_gg: &CubeTensor,
    bias: &CubeTensor,
) -> CubeTensor {
    let h = matmul(g_prev.clone(), t(w_gg));
    let [r, k] = dims2(&h);
    let g = empty(&h, &[r, k]);
    let (count, dim) = grid(&g, r * k);
    controller_out::launch::<f32>(
        &h.client,
        count,
        dim,
        buf(&h),
        buf(a),
        buf(u),
        buf(bias),
        buf(&g),
        k,
    );
    g
}

impl Kernel<Cube, 5> for ControllerStep {
    /// `a (R, 1)`, `g_prev`, `u (K, 1)`, `W_gg` and the output `g`.
    type Saved = [CubeTensor; 5];

    fn forward(
        &self,
        [a, g_prev, u, w_gg, bias]: [CubeTensor; 5],
        save: bool,
    ) -> (CubeTensor, Option<Self::Saved>) {
        let [a_rows, u_rows, bias] = [a.clone(), u.clone(), bias].map(rows);
        let g = controller_state(&a_rows, &g_prev, &u_rows, &w_gg, &bias);
        let saved = save.then(|| [a, g_prev, u, w_gg, g.clone()]);
        (g, saved)
    }

    fn backward(
        &self,
        [a, g_prev, u, w_gg, g]: Self::Saved,
        dg: CubeTensor,
        _: [bool; 5],
    ) -> [Option<CubeTensor>; 5] {
        let dp = tanh_backward(&g, &rows(dg));
        let db = Cube::float_sum_dim(dp.clone(), 0);
        [
            matmul(dp.clone(), u),
            matmul(dp.clone(), w_gg),
            matmul(t(&dp), a),
            matmul(t(&dp), g_prev),
            db,
        ]
        .map(Some)
    }
}
