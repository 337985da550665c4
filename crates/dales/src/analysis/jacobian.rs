//! Norms of the recurrent Jacobian of a gamma network (spec C5, "Jacobian norm").
//!
//! For `h_t = γ(a_t)` with `a_t = V h_{t−1} + …`, the Jacobian of one step is
//! `J_t = ∂h_t/∂h_{t−1} = diag(γ'(a_t; n, s))·V`: row `i` of `V` scaled by the slope of neuron `i`.
//! dales reports two operator norms of it, averaged over time steps (and samples):
//!
//! - the **∞-operator norm** `‖J‖_∞ = max_i Σ_j |J_ij|` (maximum absolute row sum), and
//! - the **spectral norm** `‖J‖₂ = σ_max(J)`, by power iteration on `JᵀJ`.
//!
//! **Not the authors' number.** The script `Postprocessing/jacobian_norm.py` computes the row
//! vector `γ'(a)ᵀV` and then `max_j |Σ_i γ'(a_i) V_ij|` (spec C5 and C7.8): a vector norm of a
//! weighted column sum, which is not a norm of `diag(γ')·V` and can be small when `J` is large
//! (signs cancel). Its values are not comparable with the ones here.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{AnalysisError, Result, check_len, check_matrix, check_per_neuron, per_neuron};
use crate::nn::gamma::slope as gamma_prime;

/// Relative change of `σ_max²` between two power iterations at which [`spectral_norm`] stops.
const SPECTRAL_RTOL: f64 = 1e-10;
/// Iteration cap of [`spectral_norm`].
const SPECTRAL_MAX_ITER: usize = 1000;

/// The two norms of a Jacobian (or their averages).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JacobianNorms {
    /// The ∞-operator norm, `max_i Σ_j |J_ij|`.
    pub inf: f64,
    /// The spectral norm, the largest singular value.
    pub spectral: f64,
}

/// `J = diag(γ'(a; n, s))·V` as a row-major `hidden × hidden` matrix.
///
/// `v` is `V` row-major (`hidden²` entries), `a` the pre-activation (`hidden`), `n` and `s` the
/// shape, one per neuron (`hidden`) or shared (length 1). The gain is floored at [`N_MIN`](crate::nn::gamma::N_MIN), as in
/// the network.
pub fn gamma_jacobian(
    v: &[f64],
    hidden: usize,
    a: &[f64],
    n: &[f64],
    s: &[f64],
) -> Result<Vec<f64>> {
    check_matrix("v", v, hidden, hidden)?;
    check_len("a", a, hidden)?;
    check_per_neuron("n", n, hidden)?;
    check_per_neuron("s", s, hidden)?;
    Ok(jacobian_unchecked(v, hidden, a, n, s))
}

/// [`gamma_jacobian`] without the argument checks.
pub(crate) fn jacobian_unchecked(
    v: &[f64],
    hidden: usize,
    a: &[f64],
    n: &[f64],
    s: &[f64],
) -> Vec<f64> {
    let mut j = v.to_vec();
    for (i, row) in j.chunks_exact_mut(hidden).enumerate() {
        let slope = gamma_prime(a[i], per_neuron(n, i), per_neuron(s, i));
        row.iter_mut().for_each(|x| *x *= slope);
    }
    j
}

/// The ∞-operator norm `max_i Σ_j |J_ij|` of a row-major `rows × cols` matrix.
pub fn inf_norm(j: &[f64], rows: usize, cols: usize) -> Result<f64> {
    check_matrix("j", j, rows, cols)?;
    Ok(j.chunks_exact(cols)
        .map(|row| row.iter().map(|x| x.abs()).sum::<f64>())
        .fold(0.0, f64::max))
}

/// The spectral norm (largest singular value) of a row-major `rows × cols` matrix.
///
/// Power iteration on `JᵀJ` from a fixed pseudo-random start vector, until the estimate of
/// `σ_max²` changes by less than `1e-10` relative, or 1000 iterations (convergence is slow only
/// when the two largest singular values are close).
pub fn spectral_norm(j: &[f64], rows: usize, cols: usize) -> Result<f64> {
    check_matrix("j", j, rows, cols)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let mut x: Vec<f64> = (0..cols).map(|_| StandardNormal.sample(&mut rng)).collect();
    normalize(&mut x);
    let mut y = vec![0.0; rows];
    let mut previous = 0.0;
    for _ in 0..SPECTRAL_MAX_ITER {
        // y = J x, λ = |J x|² = xᵀ JᵀJ x (|x| = 1), x ← Jᵀ y / |Jᵀ y|.
        for (yi, row) in y.iter_mut().zip(j.chunks_exact(cols)) {
            *yi = dot(row, &x);
        }
        let lambda = dot(&y, &y);
        if lambda == 0.0 || !lambda.is_finite() {
            return Ok(lambda.sqrt());
        }
        x.iter_mut().for_each(|xi| *xi = 0.0);
        for (yi, row) in y.iter().zip(j.chunks_exact(cols)) {
            x.iter_mut().zip(row).for_each(|(xk, r)| *xk += r * yi);
        }
        normalize(&mut x);
        if (lambda - previous).abs() <= SPECTRAL_RTOL * lambda {
            return Ok(lambda.sqrt());
        }
        previous = lambda;
    }
    Ok(previous.sqrt())
}

/// Both norms of `J_t = diag(γ'(a_t; n, s))·V`, averaged over the pre-activations `a_t` (time
/// steps, and samples if the caller flattens them into the list).
///
/// `v` is `V` row-major (`hidden²`), each `a_t` has `hidden` entries, `n` and `s` are one per
/// neuron or shared (length 1) and fixed over the list (for time-varying shapes, call
/// [`gamma_jacobian`] and the norms per step).
pub fn mean_norms(
    v: &[f64],
    hidden: usize,
    pre_activations: &[Vec<f64>],
    n: &[f64],
    s: &[f64],
) -> Result<JacobianNorms> {
    check_matrix("v", v, hidden, hidden)?;
    check_per_neuron("n", n, hidden)?;
    check_per_neuron("s", s, hidden)?;
    if pre_activations.is_empty() {
        return Err(AnalysisError::Length {
            arg: "pre_activations",
            found: 0,
            expected: "at least one pre-activation vector".into(),
        });
    }
    let mut sum = JacobianNorms {
        inf: 0.0,
        spectral: 0.0,
    };
    for a in pre_activations {
        check_len("pre_activations[t]", a, hidden)?;
        let j = jacobian_unchecked(v, hidden, a, n, s);
        sum.inf += inf_norm(&j, hidden, hidden)?;
        sum.spectral += spectral_norm(&j, hidden, hidden)?;
    }
    let count = pre_activations.len() as f64;
    Ok(JacobianNorms {
        inf: sum.inf / count,
        spectral: sum.spectral / count,
    })
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn normalize(x: &mut [f64]) {
    let norm = dot(x, x).sqrt();
    if norm > 0.0 {
        x.iter_mut().for_each(|xi| *xi /= norm);
    }
}
