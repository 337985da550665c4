//! The plain-SGD update ([`SgdStep`]) on the GPU, as `super::super::cpu::update`: one kernel
//! for the rule and the projection.

use burn::backend::{Cube, TensorMetadata};
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::{buf, empty, grid, rows};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::SgdStep;

/// One plain-SGD update entry by entry: `p − lr g`, or exponentiated gradient
/// `p · exp(−lr · sign(p) · g)`, then optionally the projection onto `[0, ∞)` (NaN passes).
#[cube(launch)]
fn sgd_update(
    p: &[f32],
    g: &[f32],
    out: &mut [f32],
    lr: f32,
    #[comptime] exponentiated: bool,
    #[comptime] nonneg: bool,
) {
    let i = ABSOLUTE_POS;
    if i < out.len() {
        let pv = p[i];
        let mut v = pv - lr * g[i];
        if exponentiated {
            let sign = select(pv > 0.0, 1.0f32, select(pv < 0.0, -1.0f32, 0.0f32));
            v = pv * (sign * g[i] * (0.0 - lr)).exp();
        }
        if nonneg {
            v = select(v < 0.0, 0.0f32, v);
        }
        out[i] = v;
    }
}

impl Kernel<Cube, 2> for SgdStep {
    type Saved = ();

    fn forward(&self, [p, g]: [CubeTensor; 2], _: bool) -> (CubeTensor, Option<()>) {
        let (p, g) = (rows(p), rows(g));
        let out = empty(&p, &p.shape().to_vec());
        let (count, dim) = grid(&out, out.shape().num_elements());
        sgd_update::launch(
            &p.client,
            count,
            dim,
            buf(&p),
            buf(&g),
            buf(&out),
            self.lr,
            self.exponentiated,
            self.nonneg,
        );
        (out, None)
    }

    fn backward(&self, _: (), _: CubeTensor, _: [bool; 2]) -> [Option<CubeTensor>; 2] {
        unreachable!("the SGD update runs without autodiff")
    }
}
