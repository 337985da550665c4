//! One step of the ARUN controller (spec C2) as one forward pass and an analytic backward on
//! host slices, for all `R = B·H` neurons at once:
//!
//! `g = tanh(a ⊗ u + g_prev · W_ggᵀ + b)`, with `a (R)` each neuron's pre-activation,
//! `u = U_ag (K)`, `W_gg (K, K)`, `b = b_ag + b_gg (K)` and `g_prev, g (R, K)`.
//!
//! Backward, from `dg (R, K)`: `dp = dg ⊙ (1 − g²)`, `da = dp · u`, `du = dpᵀ · a`,
//! `db = Σ_r dp`, `dg_prev = dp · W_gg`, `dW_gg = dpᵀ · g_prev`. The plain tensor version
//! (`crate::nn::arun::controller_plain`) is the reference these are tested against
//! (`tests/it/arun.rs`).

use burn::backend::NdArray;
use burn::backend::ndarray::NdArrayTensor;

use super::gemm::{View, matmul};
use super::simd::tanh_f32;
use super::{dims2, f32s, host};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::ControllerStep;

/// Sizes: `r = B·H` neurons, `k` controller units.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    pub r: usize,
    pub k: usize,
}

/// `g (R, K)`.
pub fn forward(
    a: &[f32],
    g_prev: &[f32],
    u: &[f32],
    w_gg: &[f32],
    bias: &[f32],
    Dims { r, k }: Dims,
) -> Vec<f32> {
    assert!(a.len() == r && g_prev.len() == r * k && u.len() == k && bias.len() == k);
    assert_eq!(w_gg.len(), k * k, "W_gg is (K, K)");
    let mut g = vec![0.0f32; r * k];
    matmul(
        &mut g,
        View::new(g_prev, r, k),
        View::new(w_gg, k, k).t(),
        false,
    );
    for (row, &ai) in g.chunks_exact_mut(k).zip(a) {
        for ((v, &uk), &bk) in row.iter_mut().zip(u).zip(bias) {
            *v = tanh_f32(*v + ai * uk + bk);
        }
    }
    g
}

/// Gradients of one controller step.
#[derive(Debug, Clone)]
pub struct Grads {
    /// `da (R)`.
    pub a: Vec<f32>,
    /// `dg_prev (R, K)`.
    pub g_prev: Vec<f32>,
    /// `du (K)`.
    pub u: Vec<f32>,
    /// `dW_gg (K, K)`.
    pub w_gg: Vec<f32>,
    /// `db (K)`.
    pub bias: Vec<f32>,
}

/// The gradients from `dg (R, K)`, given the inputs and the output `g`.
pub fn backward(
    a: &[f32],
    g_prev: &[f32],
    u: &[f32],
    w_gg: &[f32],
    g: &[f32],
    dg: &[f32],
    Dims { r, k }: Dims,
) -> Grads {
    assert!(g.len() == r * k && dg.len() == r * k);
    let dp: Vec<f32> = g.iter().zip(dg).map(|(g, d)| d * (1.0 - g * g)).collect();
    let mut da = vec![0.0f32; r];
    let (mut du, mut db) = (vec![0.0f32; k], vec![0.0f32; k]);
    for ((row, dai), &ai) in dp.chunks_exact(k).zip(&mut da).zip(a) {
        let mut acc = 0.0f32;
        for (((&p, &uk), duk), dbk) in row.iter().zip(u).zip(&mut du).zip(&mut db) {
            acc += p * uk;
            *duk += p * ai;
            *dbk += p;
        }
        *dai = acc;
    }
    let mut dg_prev = vec![0.0f32; r * k];
    matmul(
        &mut dg_prev,
        View::new(&dp, r, k),
        View::new(w_gg, k, k),
        false,
    );
    let mut dw = vec![0.0f32; k * k];
    matmul(
        &mut dw,
        View::new(&dp, r, k).t(),
        View::new(g_prev, r, k),
        false,
    );
    Grads {
        a: da,
        g_prev: dg_prev,
        u: du,
        w_gg: dw,
        bias: db,
    }
}

impl Kernel<NdArray, 5> for ControllerStep {
    /// `a`, `g_prev`, `u`, `W_gg` and the output `g`.
    type Saved = [NdArrayTensor; 5];

    fn forward(
        &self,
        inputs: [NdArrayTensor; 5],
        save: bool,
    ) -> (NdArrayTensor, Option<Self::Saved>) {
        let [r, k] = dims2(&inputs[1]);
        let g = {
            let [a, g_prev, u, w_gg, bias] = inputs.each_ref().map(f32s);
            host(
                forward(&a, &g_prev, &u, &w_gg, &bias, Dims { r, k }),
                &[r, k],
            )
        };
        let [a, g_prev, u, w_gg, _] = inputs;
        let saved = save.then(|| [a, g_prev, u, w_gg, g.clone()]);
        (g, saved)
    }

    fn backward(
        &self,
        saved: Self::Saved,
        dg: NdArrayTensor,
        _: [bool; 5],
    ) -> [Option<NdArrayTensor>; 5] {
        let [r, k] = dims2(&saved[1]);
        let [a, g_prev, u, w_gg, g] = saved.each_ref().map(f32s);
        let d = backward(&a, &g_prev, &u, &w_gg, &g, &f32s(&dg), Dims { r, k });
        [
            (d.a, vec![r, 1]),
            (d.g_prev, vec![r, k]),
            (d.u, vec![k, 1]),
            (d.w_gg, vec![k, k]),
            (d.bias, vec![1, k]),
        ]
        .map(|(v, shape)| Some(host(v, &shape)))
    }
}
