//! The gamma activation of spec C1 in `f64`, for host-side analyses:
//!
//! `γ(x; n, s) = (1 − s)·softplus_n(x) + s·σ(n x)`, with `softplus_n(x) = ln(1 + e^{n x})/n`,
//!
//! and its slope `γ'(x; n, s) = (1 − s)·σ(n x) + s·n·σ(n x)·(1 − σ(n x))`.
//!
//! Both are evaluated in forms that are exact to rounding for every finite `x` and never overflow:
//! `softplus_n(x) = max(x, 0) + ln(1 + e^{−n|x|})/n`, `σ(z)` through `e^{−|z|}`, and
//! `σ(z)(1 − σ(z)) = e^{−|z|}/(1 + e^{−|z|})²`.
//!
//! The gain must be positive. dales floors it at [`N_MIN`] before using it, as the network does
//! (`dales::nn::gamma::N_MIN`); callers of these functions should do the same. For `n ≤ 0` or a
//! NaN `n` the functions return NaN rather than a wrong number.

/// The floor of the gain `n` that dales applies before evaluating `γ` (`1e-3`, the same value as
/// the network's `dales::nn::gamma::N_MIN`).
pub const N_MIN: f64 = 1e-3;

/// The logistic sigmoid `σ(z) = 1/(1 + e^{−z})`, without overflow for any `z`.
fn sigmoid(z: f64) -> f64 {
    let e = (-z.abs()).exp();
    if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }
}

/// `σ(z)·(1 − σ(z))`, accurate also where `σ(z)` rounds to 1.
fn sigmoid_slope(z: f64) -> f64 {
    let e = (-z.abs()).exp();
    e / ((1.0 + e) * (1.0 + e))
}

/// `softplus_n(x) = ln(1 + e^{n x})/n` for `n > 0`.
fn softplus(x: f64, n: f64) -> f64 {
    x.max(0.0) + (-n * x.abs()).exp().ln_1p() / n
}

/// `γ(x; n, s) = (1 − s)·softplus_n(x) + s·σ(n x)` (spec C1). Requires `n > 0`: NaN otherwise.
///
/// ```
/// use dales::analysis::gamma64::gamma;
/// assert!((gamma(2.0, 50.0, 0.0) - 2.0).abs() < 1e-12); // ≈ ReLU for a large gain
/// assert!((gamma(0.0, 3.0, 1.0) - 0.5).abs() < 1e-15); // σ(0)
/// ```
pub fn gamma(x: f64, n: f64, s: f64) -> f64 {
    if n.is_nan() || n <= 0.0 {
        return f64::NAN;
    }
    (1.0 - s) * softplus(x, n) + s * sigmoid(n * x)
}

/// `∂γ/∂x = (1 − s)·σ(n x) + s·n·σ(n x)·(1 − σ(n x))` (spec C1). Requires `n > 0`: NaN otherwise.
pub fn gamma_prime(x: f64, n: f64, s: f64) -> f64 {
    if n.is_nan() || n <= 0.0 {
        return f64::NAN;
    }
    let z = n * x;
    (1.0 - s) * sigmoid(z) + s * n * sigmoid_slope(z)
}
