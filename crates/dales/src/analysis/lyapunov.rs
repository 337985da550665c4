//! Lyapunov exponents by QR iteration (spec C5, "Lyapunov exponents", `calculateLEs`).
//!
//! For a map `h_{t+1} = F(h_t)` with Jacobian `J_t = ∂F/∂h (h_t)`, the `k` leading exponents are
//! estimated by following an orthonormal `H × k` frame `Q`:
//!
//! 1. `Q_0` = the first `k` columns of a random orthogonal matrix (the Q factor, with positive
//!    diagonal of R, of a seeded `H × k` standard Gaussian matrix: Haar-distributed).
//! 2. For `t = 0..steps`: `J_t Q = Q' R` (reduced QR with `r_ii ≥ 0`), `Q ← Q'`, `h ← F(h)`.
//! 3. `λ_i = mean_t log₂ r_ii`, in bits per step (base 2, as in the paper).
//!
//! The QR factorisation is Householder's, stable also when `J_t` is (nearly) singular.
//! Non-finite terms `log₂ r_ii` (an exactly singular step gives `r_ii = 0`) are left out of the
//! mean. numpy's `nanmean`, which the authors use, leaves out only NaN, so a step with
//! `r_ii = 0` makes their exponent `−∞`; here the exponent is the mean of the finite terms, and
//! `−∞` only when every term is `−∞` (NaN when there is no term at all to average).
//!
//! For finite `steps` the estimate carries an `O(1/steps)` bias from the orientation of `Q_0`
//! (no transient is discarded, as in the authors' code).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::jacobian::jacobian_unchecked;
use super::{AnalysisError, Result, check_len, check_matrix, check_per_neuron, per_neuron};
use crate::nn::gamma::value as gamma;

/// The `k` leading Lyapunov exponents (bits per step, in the order of the QR frame, which is
/// descending once the frame has aligned) of the map that `step` iterates.
///
/// `step(h)` returns `(h_next, j)`: the next state (`H` entries) and the Jacobian of the map at
/// `h` (`H × H`, row-major), where `H = h0.len()`. `seed` draws `Q_0`.
///
/// Errors if `h0` is empty, `k` is 0 or larger than `H`, `steps` is 0, or `step` returns
/// slices of the wrong length.
pub fn spectrum(
    mut step: impl FnMut(&[f64]) -> (Vec<f64>, Vec<f64>),
    h0: &[f64],
    k: usize,
    steps: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    let hidden = h0.len();
    if hidden == 0 {
        return Err(AnalysisError::Length {
            arg: "h0",
            found: 0,
            expected: "at least one state variable".into(),
        });
    }
    if k == 0 || k > hidden {
        return Err(AnalysisError::Value {
            arg: "k",
            value: k.to_string(),
            expected: format!("1 ≤ k ≤ H = {hidden} (the state size)"),
        });
    }
    if steps == 0 {
        return Err(AnalysisError::Value {
            arg: "steps",
            value: "0".into(),
            expected: "at least one step".into(),
        });
    }

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let gaussian: Vec<f64> = (0..hidden * k)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let (mut q, _) = qr_positive(&gaussian, hidden, k);

    let mut h = h0.to_vec();
    let mut sums = vec![0.0; k];
    let mut counts = vec![0usize; k];
    let mut neg_inf = vec![false; k];
    let mut z = vec![0.0; hidden * k];
    for _ in 0..steps {
        let (h_next, j) = step(&h);
        check_len("h_next returned by `step`", &h_next, hidden)?;
        check_len("jacobian returned by `step`", &j, hidden * hidden)?;
        matmul(&j, &q, &mut z, hidden, hidden, k);
        let (q_next, r_diag) = qr_positive(&z, hidden, k);
        q = q_next;
        for (i, r) in r_diag.iter().enumerate() {
            let term = r.log2();
            if term.is_finite() {
                sums[i] += term;
                counts[i] += 1;
            } else if term == f64::NEG_INFINITY {
                neg_inf[i] = true;
            }
        }
        h = h_next;
    }
    Ok((0..k)
        .map(|i| match (counts[i], neg_inf[i]) {
            (0, true) => f64::NEG_INFINITY,
            (0, false) => f64::NAN,
            (c, _) => sums[i] / c as f64,
        })
        .collect())
}

/// The `k` leading Lyapunov exponents of the autonomous gamma network
/// `h_{t+1} = γ(V h_t; n_i, s_i)` (no input, no bias), whose Jacobian is
/// `J_t = diag(γ'(V h_t; n, s))·V` (spec C5). See [`spectrum`].
///
/// `v` is `V` row-major (`hidden²` entries), `n` and `s` the shape of each neuron (`hidden`
/// entries) or shared (1 entry); the gain is floored at [`N_MIN`](crate::nn::gamma::N_MIN) as in the network. `h0` has
/// `hidden` entries.
#[allow(clippy::too_many_arguments)]
pub fn autonomous_gamma(
    v: &[f64],
    hidden: usize,
    n: &[f64],
    s: &[f64],
    h0: &[f64],
    k: usize,
    steps: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    check_matrix("v", v, hidden, hidden)?;
    check_per_neuron("n", n, hidden)?;
    check_per_neuron("s", s, hidden)?;
    check_len("h0", h0, hidden)?;
    let step = |h: &[f64]| {
        let mut a = vec![0.0; hidden];
        matmul(v, h, &mut a, hidden, hidden, 1);
        let h_next = (0..hidden)
            .map(|i| gamma(a[i], per_neuron(n, i), per_neuron(s, i)))
            .collect();
        (h_next, jacobian_unchecked(v, hidden, &a, n, s))
    };
    spectrum(step, h0, k, steps, seed)
}

/// `c = a·b` for row-major `a (m × p)`, `b (p × n)`, `c (m × n)`.
fn matmul(a: &[f64], b: &[f64], c: &mut [f64], m: usize, p: usize, n: usize) {
    for i in 0..m {
        let row = &mut c[i * n..(i + 1) * n];
        row.iter_mut().for_each(|x| *x = 0.0);
        for l in 0..p {
            let ail = a[i * p + l];
            row.iter_mut()
                .zip(&b[l * n..(l + 1) * n])
                .for_each(|(x, blj)| *x += ail * blj);
        }
    }
}

/// Reduced QR of a row-major `m × k` matrix (`k ≤ m`) by Householder reflections, with the
/// diagonal of R made non-negative. Returns `Q` (`m × k`, row-major, orthonormal columns) and
/// `diag(R)`.
fn qr_positive(a: &[f64], m: usize, k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut r = a.to_vec();
    // The Householder vectors: reflector c acts on rows c..m and is stored in reflectors[c][..m-c].
    let mut reflectors: Vec<Option<Vec<f64>>> = Vec::with_capacity(k);
    for c in 0..k {
        let x: Vec<f64> = (c..m).map(|i| r[i * k + c]).collect();
        let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 {
            reflectors.push(None);
            continue;
        }
        // v = x − α e₁ with α = −sign(x₀)|x|, which adds magnitudes (no cancellation).
        let alpha = if x[0] >= 0.0 { -norm } else { norm };
        let mut v = x;
        v[0] -= alpha;
        let vnorm = v.iter().map(|t| t * t).sum::<f64>().sqrt();
        v.iter_mut().for_each(|t| *t /= vnorm);
        reflect(&mut r, &v, c, c, k);
        reflectors.push(Some(v));
    }
    // Q = H_0 H_1 … H_{k−1} applied to the first k columns of the identity.
    let mut q = vec![0.0; m * k];
    for c in 0..k {
        q[c * k + c] = 1.0;
    }
    for (c, v) in reflectors.iter().enumerate().rev() {
        if let Some(v) = v {
            reflect(&mut q, v, c, 0, k);
        }
    }
    let mut diag = Vec::with_capacity(k);
    for c in 0..k {
        let rcc = r[c * k + c];
        if rcc < 0.0 {
            for i in 0..m {
                q[i * k + c] = -q[i * k + c];
            }
        }
        diag.push(rcc.abs());
    }
    (q, diag)
}

/// Applies `I − 2 v vᵀ` (with `|v| = 1`, acting on rows `row0..row0 + v.len()`) to columns
/// `col0..cols` of a row-major matrix with `cols` columns.
fn reflect(a: &mut [f64], v: &[f64], row0: usize, col0: usize, cols: usize) {
    for col in col0..cols {
        let dot: f64 = v
            .iter()
            .enumerate()
            .map(|(i, vi)| vi * a[(row0 + i) * cols + col])
            .sum();
        for (i, vi) in v.iter().enumerate() {
            a[(row0 + i) * cols + col] -= 2.0 * vi * dot;
        }
    }
}
