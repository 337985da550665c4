//! The affine map ([`Affine`]) on the GPU, mirroring `super::super::cpu::affine`: `x Wᵀ` by
//! burn's matmul and one kernel ([`add_bias`]) for `+ b`; backward `dx = dy W`,
//! `dW = dyᵀ x` and the column sums `db`.

use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::{buf, column_sums, dims2, grid, matmul, rows, t};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::Affine;
use burn::backend::Cube;

/// `y += b` down every row of `y (B, n)`, one unit per entry.
#[cube(launch)]
fn add_bias<F: Float>(y: &mut [F], bias: &[F], n: usize) {
    let i = ABSOLUTE_POS;
    if i < y.len() {
        y[i] += bias[i % n];
    }
}

impl Kernel<Cube, 3> for Affine {
    /// The input `x` and the weight `W`.
    type Saved = (CubeTensor, CubeTensor);

    fn forward(
        &self,
        [x, weight, bias]: [CubeTensor; 3],
        save: bool,
    ) -> (CubeTensor, Option<Self::Saved>) {
        let y = matmul(rows(x.clone()), t(&weight));
        let bias = rows(bias);
        let [b, n] = dims2(&y);
        let (count, dim) = grid(&y, b * n);
        add_bias::launch::<f32>(&y.client, count, dim, buf(&y), buf(&bias), n);
        (y, save.then_some((x, weight)))
    }

    fn backward(
        &self,
        (x, w): Self::Saved,
        dy: CubeTensor,
        need: [bool; 3],
    ) -> [Option<CubeTensor>; 3] {
        let dy = rows(dy);
        [
            need[0].then(|| matmul(dy.clone(), w)),
            Some(matmul(t(&dy), x)),
            Some(column_sums(dy)),
        ]
    }
}
