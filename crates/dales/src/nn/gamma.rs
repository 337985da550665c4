//! The gamma activation of Geadah et al. (spec C1): a softplus with gain `n` blended with a
//! sigmoid by the saturation `s`,
//!
//! `γ(x; n, s) = (1 − s)·softplus_n(x) + s·σ(n x)`, `softplus_n(x) = ln(1 + e^{n x})/n`.
//!
//! `s = 0` is a softplus that tends to ReLU as `n → ∞`; `s = 1` a sigmoid that tends to a step.
//! The shape parameters broadcast against `x (B, H)`: `(1, 1)` (homogeneous: one shape for all
//! neurons), `(1, H)` (heterogeneous: one per neuron) or `(B, H)` (one per sample and neuron, as
//! the ARUN controller sets them at each step).
//!
//! **Keeping `n > 0`.** The gain is floored at [`N_MIN`] inside the activation: `γ` uses
//! `max(n, N_MIN)`, so `n` is never zero or negative where it divides, and the gradient of `n`
//! is zero where the floor is active (a learned `n` that is pushed below the floor stays
//! there until the gradient pushes it back up). `s` is not constrained, as in the paper's code.
//!
//! ```
//! use burn::tensor::{Tensor, TensorData};
//! use dales::nn::gamma::gamma;
//!
//! let device = dales::device::cpu();
//! let x = Tensor::<2>::from_data(TensorData::new(vec![-1.0f32, 0.0, 2.0], [1, 3]), &device);
//! let n = Tensor::<2>::from_data(TensorData::new(vec![5.0f32], [1, 1]), &device);
//! let s = Tensor::<2>::from_data(TensorData::new(vec![0.0f32], [1, 1]), &device);
//! let y = gamma(x, n, s).into_data().to_vec::<f32>().unwrap();
//! assert!((y[2] - 2.0).abs() < 1e-4); // softplus with gain 5 ≈ ReLU away from 0
//! ```

use burn::tensor::Tensor;
use burn::tensor::activation::log_sigmoid;

/// The floor of the gain `n` (see the module documentation).
pub const N_MIN: f64 = 1e-3;

/// `γ(x; n, s)`: the fused op with its analytic backward where it applies (NdArray in f32 or
/// f64, the GPU in f32), the plain tensor version ([`gamma_plain`]) elsewhere. `n` is floored
/// at [`N_MIN`].
///
/// # Panics
/// If `n` or `s` is not `(1, 1)`, `(1, H)` or `(B, H)` for `x (B, H)` (a programming error:
/// the models build these shapes).
pub fn gamma(x: Tensor<2>, n: Tensor<2>, s: Tensor<2>) -> Tensor<2> {
    check_shapes(&x, &n, &s);
    crate::fused::gamma(x, n.clamp_min(N_MIN), s, gamma_plain)
}

/// `γ(x; n, s)` for `n > 0` as burn tensor ops (gradients by autodiff), stable for any finite
/// `x`: `softplus_n(x) = −log σ(−n x)/n` and `σ(n x) = exp(log σ(n x))` through burn's
/// log-sum-exp `log_sigmoid`, whose gradient is right at `x = 0` too (burn 0.22's `sigmoid`
/// on the NdArray backend computes f64 inputs only to f32 precision, too coarse for
/// finite-difference checks). The reference the fused ops are tested against.
pub fn gamma_plain(x: Tensor<2>, n: Tensor<2>, s: Tensor<2>) -> Tensor<2> {
    let z = x * n.clone();
    let softplus = log_sigmoid(z.clone().neg()).neg() / n;
    let one_minus_s = s.clone().neg() + 1.0;
    one_minus_s * softplus + s * log_sigmoid(z).exp()
}

/// `γ(x; max(n, N_MIN), s)` of one entry, in f64, as the network computes it (the
/// analyses' activation; the host function the fused kernels share).
///
/// ```
/// use dales::nn::gamma::{N_MIN, value};
/// assert!((value(2.0, 50.0, 0.0) - 2.0).abs() < 1e-12); // ≈ ReLU for a large gain
/// assert_eq!(value(1.0, -3.0, 0.5), value(1.0, N_MIN, 0.5)); // the floor
/// ```
pub fn value(x: f64, n: f64, s: f64) -> f64 {
    crate::fused::floored_value(x, n, s, N_MIN)
}

/// `∂γ/∂x` at `(x; max(n, N_MIN), s)`, in f64: `(1 − s)·σ(n x) + s·n·σ(n x)(1 − σ(n x))`.
pub fn slope(x: f64, n: f64, s: f64) -> f64 {
    crate::fused::floored_partials(x, n, s, N_MIN).0
}

fn check_shapes(x: &Tensor<2>, n: &Tensor<2>, s: &Tensor<2>) {
    let [b, h] = x.dims();
    for (name, t) in [("n", n), ("s", s)] {
        let d = t.dims();
        assert!(
            crate::fused::Broadcast::of(d, [b, h]).is_some(),
            "gamma: {name} has shape {d:?}; for x of shape [{b}, {h}] it must be [1, 1], [1, {h}] or [{b}, {h}]"
        );
    }
}
