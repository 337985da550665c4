//! `tanh` ([`Tanh`]) on the GPU: burn's kernel forward, and one kernel ([`tanh_grad`]) for
//! `dy ⊙ (1 − y²)` backward, as `super::super::cpu::tanh`.

use burn::backend::ops::FloatTensorOps;
use burn::backend::{Cube, TensorMetadata};
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::{buf, empty, grid, rows};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::Tanh;

/// `dp = dg ⊙ (1 − g²)` for `g = tanh(·)`, one unit per entry.
#[cube(launch)]
pub(super) fn tanh_grad<F: Float>(g: &[F], dg: &[F], dp: &mut [F]) {
    let i = ABSOLUTE_POS;
    if i < dp.len() {
        dp[i] = dg[i] * (F::new(1.0) - g[i] * g[i]);
    }
}

/// `dy ⊙ (1 − y²)` for `y = tanh(·)` of any shape.
pub(super) fn tanh_backward(y: &CubeTensor, dy: &CubeTensor) -> CubeTensor {
    let dx = empty(y, &y.shape().to_vec());
    let (count, dim) = grid(y, y.shape().num_elements());
    tanh_grad::launch::<f32>(&y.client, count, dim, buf(y), buf(dy), buf(&dx));
    dx
}

impl Kernel<Cube, 1> for Tanh {
    /// The output `y = tanh(x)`.
    type Saved = CubeTensor;

    fn forward(&self, [x]: [CubeTensor; 1], save: bool) -> (CubeTensor, Option<CubeTensor>) {
        let y = Cube::float_tanh(x);
        let saved = save.then(|| y.clone());
        (y, saved)
    }

    fn backward(&self, y: CubeTensor, dy: CubeTensor, _: [bool; 1]) -> [Option<CubeTensor>; 1] {
        [Some(tanh_backward(&rows(y), &rows(dy)))]
    }
}
