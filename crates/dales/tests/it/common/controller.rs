//! One ARUN controller step for the fused-versus-plain tests, on any device.

use burn::tensor::{Device, Tensor, TensorData};
use dales::nn::arun::controller_plain;

use super::{host, uniform};

/// The names of [`grads`]' entries.
pub const NAMES: [&str; 6] = ["g", "da", "dg_prev", "du", "dW_gg", "db"];

/// `a (37, 1)`, `g_prev (37, 6)`, `u (6, 1)`, `W_gg (6, 6)`, `b (1, 6)` on `dev`: pre-activations
/// and states spread over the tanh's range, both signs.
pub fn inputs(dev: &Device) -> [Tensor<2>; 5] {
    let (r, k) = (37, 6);
    let shift = |t: Tensor<2>, scale: f64| (t - 0.5) * scale;
    [
        shift(uniform(r, 1, 1, dev), 6.0),
        shift(uniform(r, k, 2, dev), 2.0),
        shift(uniform(k, 1, 3, dev), 3.0),
        shift(uniform(k, k, 4, dev), 1.0),
        shift(uniform(1, k, 5, dev), 1.0),
    ]
}

/// Output and the gradients of `a, g_prev, u, w_gg, bias` of Σ g ⊙ R, through the fused op or
/// the plain one.
pub fn grads(inputs: &[Tensor<2>; 5], fused: bool) -> Vec<Vec<f64>> {
    let leaves: Vec<Tensor<2>> = inputs.iter().map(|t| t.clone().require_grad()).collect();
    let [a, g, u, w, b] = [0, 1, 2, 3, 4].map(|i| leaves[i].clone());
    let out = if fused {
        dales::fused::controller_step([a, g, u, w, b], |_| panic!("the fused op did not run"))
    } else {
        controller_plain(a, g, u, w, b)
    };
    let [r, k] = out.dims();
    let weights: Vec<f64> = (0..r * k)
        .map(|i| ((i * 7 % 13) as f64 - 6.0) / 6.0)
        .collect();
    let weights = Tensor::<2>::from_data(
        TensorData::new(weights, [r, k]),
        (&out.device(), out.dtype()),
    );
    let grads = (out.clone() * weights).sum().backward();
    let mut all = vec![host(out)];
    all.extend(leaves.iter().map(|t| host(t.grad(&grads).unwrap())));
    all
}
