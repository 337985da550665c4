//! The affine map `y = x Wᵀ + b` of a dense layer (spec A1.1) as one forward product and an
//! analytic backward on host slices.
//!
//! Backward, from `dy (B, n)`: `db = Σ_b dy`, `dW = dyᵀ · x`, `dx = dy · W` (only when asked).
//! The plain tensor version, `x.matmul(Wᵀ) + b`, is the reference these are tested against
//! (`tests/it/fused.rs`).

use burn::backend::NdArray;
use burn::backend::ndarray::NdArrayTensor;

use super::gemm::{View, matmul, product_new};
use super::{dims2, f32s, host};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::Affine;

/// Gradients of one affine map.
#[derive(Debug, Clone, PartialEq)]
pub struct Grads {
    /// `dx (B, d)`, when asked for.
    pub x: Option<Vec<f32>>,
    /// `dW (n, d)`.
    pub weight: Vec<f32>,
    /// `db (n)`.
    pub bias: Vec<f32>,
}

/// `y (B, n) = x (B, d) · Wᵀ + b` with `W (n, d)`.
pub fn forward(x: &[f32], weight: &[f32], bias: &[f32], b: usize, d: usize) -> Vec<f32> {
    let n = bias.len();
    assert_eq!(weight.len(), n * d, "W is (n, d)");
    let mut y: Vec<f32> = bias.iter().copied().cycle().take(b * n).collect();
    matmul(
        &mut y,
        View::new(x, b, d),
        View::new(weight, n, d).t(),
        true,
    );
    y
}

/// Gradients of `W (n, d)`, `b` (and `x (B, d)` when `need_x`) from `dy (B, n)`.
pub fn backward(
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    [b, d, n]: [usize; 3],
    need_x: bool,
) -> Grads {
    assert_eq!(x.len(), b * d, "x is (B, d)");
    assert_eq!(dy.len(), b * n, "dy is (B, n)");
    assert_eq!(weight.len(), n * d, "W is (n, d)");
    let mut bias = vec![0.0; n];
    for row in dy.chunks_exact(n.max(1)) {
        for (acc, v) in bias.iter_mut().zip(row) {
            *acc += v;
        }
    }
    let dw = product_new(View::new(dy, b, n).t(), View::new(x, b, d));
    let dx = need_x.then(|| product_new(View::new(dy, b, n), View::new(weight, n, d)));
    Grads {
        x: dx,
        weight: dw,
        bias,
    }
}

impl Kernel<NdArray, 3> for Affine {
    /// The input `x` and the weight `W`.
    type Saved = (NdArrayTensor, NdArrayTensor);

    fn forward(
        &self,
        [x, weight, bias]: [NdArrayTensor; 3],
        save: bool,
    ) -> (NdArrayTensor, Option<Self::Saved>) {
        let [b, d] = dims2(&x);
        let n = dims2(&weight)[0];
        let y = forward(&f32s(&x), &f32s(&weight), &f32s(&bias), b, d);
        (host(y, &[b, n]), save.then_some((x, weight)))
    }

    fn backward(
        &self,
        (x, w): Self::Saved,
        dy: NdArrayTensor,
        need: [bool; 3],
    ) -> [Option<NdArrayTensor>; 3] {
        let [b, d] = dims2(&x);
        let n = dims2(&w)[0];
        let g = backward(&f32s(&x), &f32s(&w), &f32s(&dy), [b, d, n], need[0]);
        [
            g.x.map(|dx| host(dx, &[b, d])),
            Some(host(g.weight, &[n, d])),
            Some(host(g.bias, &[n])),
        ]
    }
}
