//! Tests of the host-side analyses against independent truths: closed forms, hand-computed
//! values, finite differences and known identities.

use dales::analysis::adaptation::{AdaptationWindows, adaptation_index};
use dales::analysis::fracdiff::{fit_order, frac_diff, frac_int, linspace};
use dales::analysis::jacobian::{gamma_jacobian, inf_norm, mean_norms, spectral_norm};
use dales::analysis::lyapunov::{autonomous_gamma, spectrum};
use dales::analysis::{AnalysisError, JacobianNorms};
use dales::nn::gamma::{N_MIN, slope as gamma_prime, value as gamma};
use proptest::prelude::*;
use std::f64::consts::PI;

// ---------------------------------------------------------------------------------------------
// Helpers: independent, textbook formulas (valid where they do not overflow).

/// `ln(1 + e^{n x})/n` and `σ(n x)` evaluated literally (only for moderate `n x`).
fn naive_gamma(x: f64, n: f64, s: f64) -> f64 {
    (1.0 - s) * (1.0 + (n * x).exp()).ln() / n + s / (1.0 + (-n * x).exp())
}

fn naive_gamma_prime(x: f64, n: f64, s: f64) -> f64 {
    let sig = 1.0 / (1.0 + (-n * x).exp());
    (1.0 - s) * sig + s * n * sig * (1.0 - sig)
}

/// Determinant by LU with partial pivoting.
fn det(a: &[f64], n: usize) -> f64 {
    let mut m = a.to_vec();
    let mut d = 1.0;
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| m[i * n + c].abs().total_cmp(&m[j * n + c].abs()))
            .unwrap();
        if p != c {
            for k in 0..n {
                m.swap(p * n + k, c * n + k);
            }
            d = -d;
        }
        let pivot = m[c * n + c];
        d *= pivot;
        for i in c + 1..n {
            let f = m[i * n + c] / pivot;
            for k in c..n {
                m[i * n + k] -= f * m[c * n + k];
            }
        }
    }
    d
}

fn matvec(a: &[f64], x: &[f64]) -> Vec<f64> {
    let n = x.len();
    a.chunks_exact(n)
        .map(|row| row.iter().zip(x).map(|(r, v)| r * v).sum())
        .collect()
}

/// A small deterministic pseudo-random sequence (an LCG), to keep the truths independent of
/// the crate's random number generation.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.next()).collect()
    }
}

fn assert_close(found: &[f64], expected: &[f64], tol: f64, what: &str) {
    assert_eq!(found.len(), expected.len(), "{what}: lengths");
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert!(
            (f - e).abs() <= tol,
            "{what}[{i}]: found {f}, expected {e} (tol {tol})"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The gamma activation on the host (`dales::nn::gamma::{value, slope}`), as the analyses use it

const XS: [f64; 17] = [
    -1e4, -300.0, -30.0, -5.0, -1.0, -0.3, -1e-3, -1e-7, 0.0, 1e-7, 1e-3, 0.3, 1.0, 5.0, 30.0,
    300.0, 1e4,
];
const NS: [f64; 7] = [1e-3, 0.1, 1.0, 2.5, 20.0, 100.0, 1e3];
const SS: [f64; 5] = [-0.1, 0.0, 0.3, 1.0, 1.2];

#[test]
fn gamma_prime_matches_central_difference() {
    for &n in &NS {
        for &s in &SS {
            for &x in &XS {
                // Step small against the curvature scale 1/n and against |x|.
                let h = 1e-4 * (1.0 / n).min(1.0) * x.abs().max(1.0);
                let fd = (gamma(x + h, n, s) - gamma(x - h, n, s)) / (2.0 * h);
                let exact = gamma_prime(x, n, s);
                // Truncation O(h² γ''') plus rounding O(ε |γ| / h).
                let rounding = 8.0 * f64::EPSILON * gamma(x, n, s).abs().max(1.0) / h;
                let tol = 1e-6 * exact.abs().max(1.0) + rounding;
                assert!(
                    (fd - exact).abs() <= tol,
                    "x = {x}, n = {n}, s = {s}: finite difference {fd}, γ' = {exact} (tol {tol})"
                );
            }
        }
    }
}

#[test]
fn gamma_matches_literal_formula_where_it_does_not_overflow() {
    for &n in &NS {
        for &s in &SS {
            for &x in &XS {
                if (n * x).abs() > 30.0 {
                    continue;
                }
                let (found, expected) = (gamma(x, n, s), naive_gamma(x, n, s));
                assert!(
                    (found - expected).abs() <= 1e-12 * expected.abs().max(1.0),
                    "γ({x}; {n}, {s})"
                );
                let (found, expected) = (gamma_prime(x, n, s), naive_gamma_prime(x, n, s));
                assert!(
                    (found - expected).abs() <= 1e-12 * expected.abs().max(1.0),
                    "γ'({x}; {n}, {s})"
                );
            }
        }
    }
}

#[test]
fn gamma_limits() {
    // s = 0: softplus with gain n, ln(1 + e^{nx})/n, e.g. ln 2 / n at 0.
    for &n in &[0.5, 1.0, 3.0] {
        assert!((gamma(0.0, n, 0.0) - 2f64.ln() / n).abs() < 1e-15);
        assert!((gamma(1.0, n, 0.0) - (1.0 + n.exp()).ln() / n).abs() < 1e-14);
    }
    // Large n: s = 0 → ReLU (error ≤ ln 2 / n), s = 1 → Heaviside step (σ(0) = 1/2).
    let n = 1e6;
    for &x in &[-2.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 2.0] {
        assert!(
            (gamma(x, n, 0.0) - f64::max(x, 0.0)).abs() <= 2f64.ln() / n + 1e-15,
            "ReLU at {x}"
        );
        let step = if x > 0.0 {
            1.0
        } else if x < 0.0 {
            0.0
        } else {
            0.5
        };
        assert!((gamma(x, n, 1.0) - step).abs() < 1e-12, "step at {x}");
        // Slopes: ReLU' = 1{x > 0}; the step's slope vanishes away from 0.
        if x != 0.0 {
            assert!(
                (gamma_prime(x, n, 0.0) - step).abs() < 1e-12,
                "ReLU' at {x}"
            );
            assert!(gamma_prime(x, n, 1.0).abs() < 1e-12, "step' at {x}");
        }
    }
}

#[test]
fn gamma_does_not_overflow_at_large_inputs() {
    for &n in &[1e-3, 1.0, 1e3] {
        for &s in &[0.0, 0.5, 1.0] {
            let (hi, lo) = (gamma(1e4, n, s), gamma(-1e4, n, s));
            let (dhi, dlo) = (gamma_prime(1e4, n, s), gamma_prime(-1e4, n, s));
            assert!(hi.is_finite() && lo.is_finite() && dhi.is_finite() && dlo.is_finite());
            if n >= 1.0 {
                assert!(
                    (hi - ((1.0 - s) * 1e4 + s)).abs() < 1e-9,
                    "γ(1e4; {n}, {s}) = {hi}"
                );
                assert!(lo.abs() < 1e-300, "γ(−1e4; {n}, {s}) = {lo}");
                assert!((dhi - (1.0 - s)).abs() < 1e-15, "γ'(1e4; {n}, {s}) = {dhi}");
                assert!(dlo.abs() < 1e-300, "γ'(−1e4; {n}, {s}) = {dlo}");
            }
        }
    }
}

/// The network floors the gain at N_MIN; so do the analyses, and a gain at or below zero gives
/// the floored unit's value and slope, not NaN.
#[test]
fn gamma_floors_the_gain_as_the_network_does() {
    for &n in &[0.0, -1.0, 1e-9, f64::NAN] {
        for &x in &[-3.0, 0.0, 0.7, 40.0] {
            assert_eq!(gamma(x, n, 0.5), gamma(x, N_MIN, 0.5), "γ({x}; {n})");
            assert_eq!(
                gamma_prime(x, n, 0.5),
                gamma_prime(x, N_MIN, 0.5),
                "γ'({x}; {n})"
            );
            assert!(gamma(x, n, 0.5).is_finite());
        }
    }
    // Closed form at the floor: s = 0 is softplus with gain N_MIN, ln(1 + e^{N_MIN x})/N_MIN.
    let x: f64 = 0.7;
    let want = (N_MIN * x).exp().ln_1p() / N_MIN;
    assert!((gamma(x, -5.0, 0.0) - want).abs() < 1e-12 * want);
}

proptest! {
    #[test]
    fn gamma_prime_is_the_derivative(x in -50.0f64..50.0, n in 0.05f64..20.0, s in -0.2f64..1.2) {
        let h = 1e-5 / n.max(1.0);
        let fd = (gamma(x + h, n, s) - gamma(x - h, n, s)) / (2.0 * h);
        let exact = gamma_prime(x, n, s);
        let rounding = 8.0 * f64::EPSILON * gamma(x, n, s).abs().max(1.0) / h;
        prop_assert!((fd - exact).abs() <= 1e-6 * exact.abs().max(1.0) + rounding);
    }
}

// ---------------------------------------------------------------------------------------------
// lyapunov

/// The map h ← A h with the constant Jacobian A.
fn linear(a: Vec<f64>) -> impl FnMut(&[f64]) -> (Vec<f64>, Vec<f64>) {
    move |h: &[f64]| (matvec(&a, h), a.clone())
}

#[test]
fn lyapunov_diagonal_map_gives_log2_of_eigenvalues_sorted() {
    // Deliberately unsorted, with a negative eigenvalue: the frame sorts them by magnitude.
    let a = vec![
        0.25, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, -0.5, 0.0, 0.0, 0.0, 0.0, 1.5,
    ];
    let expected = [1.0, 1.5f64.log2(), -1.0, -2.0];
    let h0 = [1.0, 1.0, 1.0, 1.0];
    for k in [4, 2] {
        // With no transient discarded, LE(T) = λ + C/T + (exponentially small), where C depends
        // only on the initial frame (the seed). So LE(T) is within O(1/T) of λ, and the
        // Richardson combination 2·LE(2T) − LE(T) is λ to rounding.
        let (t, seed) = (4000, 7);
        let short = spectrum(linear(a.clone()), &h0, k, t, seed).unwrap();
        let long = spectrum(linear(a.clone()), &h0, k, 2 * t, seed).unwrap();
        assert_close(&long, &expected[..k], 10.0 / (2 * t) as f64, "LE(2T)");
        let extrapolated: Vec<f64> = long.iter().zip(&short).map(|(l, s)| 2.0 * l - s).collect();
        assert_close(&extrapolated, &expected[..k], 1e-9, "2·LE(2T) − LE(T)");
    }
}

#[test]
fn lyapunov_scaled_rotation_gives_log2_of_scale() {
    for &(c, theta) in &[(0.9, 0.3), (1.3, 2.0), (0.5, -1.0)] {
        let a = vec![
            c * f64::cos(theta),
            -c * f64::sin(theta),
            c * f64::sin(theta),
            c * f64::cos(theta),
        ];
        let les = spectrum(linear(a), &[0.3, -0.2], 2, 1000, 1).unwrap();
        let e = f64::log2(c);
        assert_close(&les, &[e, e], 1e-12, "scaled rotation");
    }
    // A scaled 5×5 orthogonal matrix (a permutation with signs), partial spectrum.
    let c: f64 = 1.7;
    let mut a = vec![0.0; 25];
    for (i, (j, sign)) in [(2, 1.0), (0, -1.0), (4, 1.0), (1, 1.0), (3, -1.0)]
        .iter()
        .enumerate()
    {
        a[i * 5 + j] = c * sign;
    }
    let les = spectrum(linear(a), &[1.0, 2.0, 3.0, 4.0, 5.0], 3, 500, 3).unwrap();
    assert_close(&les, &[c.log2(); 3], 1e-12, "scaled signed permutation");
}

#[test]
fn lyapunov_full_spectrum_sums_to_log2_det() {
    let mut rng = Lcg(42);
    for h in [3, 6] {
        let a = rng.vec(h * h);
        let les = spectrum(linear(a.clone()), &rng.vec(h), h, 300, 11).unwrap();
        let sum: f64 = les.iter().sum();
        let expected = det(&a, h).abs().log2();
        assert!(
            (sum - expected).abs() < 1e-10,
            "H = {h}: Σ LE = {sum}, log2|det A| = {expected}"
        );
        // Descending order once aligned (a generic matrix has distinct singular growth rates).
        assert!(les.windows(2).all(|w| w[0] >= w[1] - 1e-2), "{les:?}");
    }
}

#[test]
fn autonomous_gamma_full_spectrum_sums_to_mean_log2_det_of_jacobians() {
    let h = 5;
    let steps = 200;
    let mut rng = Lcg(9);
    let v: Vec<f64> = rng.vec(h * h).iter().map(|x| 0.6 * x).collect();
    let n: Vec<f64> = (0..h).map(|i| 0.5 + 0.5 * i as f64).collect();
    let s = [0.2];
    let h0 = rng.vec(h);
    let les = autonomous_gamma(&v, h, &n, &s, &h0, h, steps, 5).unwrap();
    // Truth: det J_t = Π_i γ'(a_t,i) · det V along the trajectory h_{t+1} = γ(V h_t).
    let det_v = det(&v, h).abs().log2();
    let mut state = h0.clone();
    let mut total = 0.0;
    for _ in 0..steps {
        let a = matvec(&v, &state);
        total += det_v
            + a.iter()
                .enumerate()
                .map(|(i, &ai)| naive_gamma_prime(ai, n[i], s[0]).log2())
                .sum::<f64>();
        state = a
            .iter()
            .enumerate()
            .map(|(i, &ai)| naive_gamma(ai, n[i], s[0]))
            .collect();
    }
    let sum: f64 = les.iter().sum();
    let expected = total / steps as f64;
    assert!(
        expected.is_finite() && expected > -20.0,
        "degenerate trajectory: {expected}"
    );
    assert!(
        (sum - expected).abs() < 1e-9,
        "Σ LE = {sum}, mean log2|det J| = {expected}"
    );
}

#[test]
fn autonomous_gamma_in_its_linear_regime_is_the_linear_map() {
    // s = 0 and a large gain: γ ≈ ReLU, γ' = 1 on the positive orthant, which the scaled
    // permutation keeps; the state grows as 1.01^t and stays ≫ 1/n.
    let c: f64 = 1.01;
    let v = vec![0.0, c, 0.0, 0.0, 0.0, c, c, 0.0, 0.0];
    let les = autonomous_gamma(&v, 3, &[1e3], &[0.0], &[1.0, 2.0, 3.0], 2, 1000, 2).unwrap();
    assert_close(&les, &[c.log2(); 2], 1e-12, "linear regime");
}

#[test]
fn lyapunov_bad_input_is_an_error() {
    let id = || linear(vec![1.0, 0.0, 0.0, 1.0]);
    assert!(matches!(
        spectrum(id(), &[1.0, 1.0], 3, 10, 0),
        Err(AnalysisError::Value { arg: "k", .. })
    ));
    assert!(matches!(
        spectrum(id(), &[1.0, 1.0], 0, 10, 0),
        Err(AnalysisError::Value { arg: "k", .. })
    ));
    assert!(matches!(
        spectrum(id(), &[1.0, 1.0], 2, 0, 0),
        Err(AnalysisError::Value { arg: "steps", .. })
    ));
    assert!(matches!(
        spectrum(id(), &[], 1, 10, 0),
        Err(AnalysisError::Length { arg: "h0", .. })
    ));
    let bad_j = |h: &[f64]| (h.to_vec(), vec![1.0; 3]);
    assert!(matches!(
        spectrum(bad_j, &[1.0, 1.0], 1, 10, 0),
        Err(AnalysisError::Length { found: 3, .. })
    ));
    let bad_h = |_: &[f64]| (vec![1.0], vec![1.0; 4]);
    assert!(matches!(
        spectrum(bad_h, &[1.0, 1.0], 1, 10, 0),
        Err(AnalysisError::Length { found: 1, .. })
    ));
    let v = vec![1.0; 9];
    assert!(matches!(
        autonomous_gamma(&v[..8], 3, &[1.0], &[0.0], &[0.0; 3], 1, 10, 0),
        Err(AnalysisError::Length { arg: "v", .. })
    ));
    assert!(matches!(
        autonomous_gamma(&v, 3, &[1.0, 2.0], &[0.0], &[0.0; 3], 1, 10, 0),
        Err(AnalysisError::Length { arg: "n", .. })
    ));
    assert!(matches!(
        autonomous_gamma(&v, 3, &[1.0], &[0.0; 4], &[0.0; 3], 1, 10, 0),
        Err(AnalysisError::Length { arg: "s", .. })
    ));
    assert!(matches!(
        autonomous_gamma(&v, 3, &[1.0], &[0.0], &[0.0; 2], 1, 10, 0),
        Err(AnalysisError::Length { arg: "h0", .. })
    ));
    let message = spectrum(id(), &[1.0, 1.0], 3, 10, 0)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("`k` = 3") && message.contains("H = 2"),
        "{message}"
    );
}

#[test]
fn lyapunov_singular_map_gives_minus_infinity_not_a_panic() {
    let les = spectrum(linear(vec![0.0; 4]), &[1.0, 1.0], 2, 10, 0).unwrap();
    assert_eq!(les, vec![f64::NEG_INFINITY; 2]);
    // Rank one: the second direction collapses at every step, the first grows as 2^t.
    let les = spectrum(linear(vec![2.0, 0.0, 0.0, 0.0]), &[1.0, 1.0], 2, 50, 0).unwrap();
    assert!((les[0] - 1.0).abs() < 0.2, "{les:?}");
    assert_eq!(les[1], f64::NEG_INFINITY);
}

// ---------------------------------------------------------------------------------------------
// jacobian

#[test]
fn inf_norm_of_hand_computed_matrices() {
    assert_eq!(inf_norm(&[1.0, -2.0, 3.0, 4.0], 2, 2).unwrap(), 7.0);
    assert_eq!(
        inf_norm(&[1.0, -1.0, 1.0, 0.0, 0.0, -5.0], 2, 3).unwrap(),
        5.0
    );
    assert_eq!(inf_norm(&[0.0; 4], 2, 2).unwrap(), 0.0);
}

#[test]
fn spectral_norm_of_known_svds() {
    let tol = 1e-9;
    // Diagonal: the largest |d_i|.
    let d = [3.0, 0.0, 0.0, 0.0, -5.0, 0.0, 0.0, 0.0, 1.0];
    assert!((spectral_norm(&d, 3, 3).unwrap() - 5.0).abs() < tol);
    // Rank one u vᵀ: |u|·|v|.
    let (u, v) = ([1.0, -2.0, 2.0], [3.0, 4.0]);
    let uv: Vec<f64> = u
        .iter()
        .flat_map(|ui| v.iter().map(move |vj| ui * vj))
        .collect();
    assert!((spectral_norm(&uv, 3, 2).unwrap() - 15.0).abs() < tol);
    // u vᵀ with v ⟂ (1, 1): not found by a start vector of ones.
    let uv: Vec<f64> = [1.0, 1.0]
        .iter()
        .flat_map(|ui| [1.0, -1.0].map(|vj| ui * vj))
        .collect();
    assert!((spectral_norm(&uv, 2, 2).unwrap() - 2.0).abs() < tol);
    // [[1, 1], [0, 1]]: singular values φ and 1/φ.
    let phi = (1.0 + 5f64.sqrt()) / 2.0;
    assert!((spectral_norm(&[1.0, 1.0, 0.0, 1.0], 2, 2).unwrap() - phi).abs() < tol);
    // Orthogonal columns of norms 5 and 1.
    assert!((spectral_norm(&[3.0, 0.0, 4.0, 0.0, 0.0, 1.0], 3, 2).unwrap() - 5.0).abs() < tol);
    assert_eq!(spectral_norm(&[0.0; 6], 2, 3).unwrap(), 0.0);
    // Random 2×2: σ_max² = (F + sqrt(F² − 4 det²))/2 with F the squared Frobenius norm.
    let mut rng = Lcg(3);
    for _ in 0..50 {
        let m = rng.vec(4);
        let f: f64 = m.iter().map(|x| x * x).sum();
        let dt = m[0] * m[3] - m[1] * m[2];
        let expected = ((f + (f * f - 4.0 * dt * dt).max(0.0).sqrt()) / 2.0).sqrt();
        let found = spectral_norm(&m, 2, 2).unwrap();
        // A near-double top singular value converges slowly; the rel. stop at 1e-10 on σ² keeps
        // the estimate within ~1e-5 even then.
        assert!(
            (found - expected).abs() < 1e-5 * expected,
            "{m:?}: {found} vs {expected}"
        );
    }
}

#[test]
fn gamma_jacobian_scales_rows_by_the_slope() {
    let v = [1.0, -2.0, 3.0, 0.5];
    let a = [0.3, -1.2];
    let (n, s) = ([2.0, 4.0], [0.1]);
    let j = gamma_jacobian(&v, 2, &a, &n, &s).unwrap();
    let (g0, g1) = (
        naive_gamma_prime(0.3, 2.0, 0.1),
        naive_gamma_prime(-1.2, 4.0, 0.1),
    );
    assert_close(&j, &[g0, -2.0 * g0, 3.0 * g1, 0.5 * g1], 1e-15, "diag(γ')V");
    // The gain is floored at 1e-3 as in the network: n = 0 and n = 1e-3 agree.
    let j0 = gamma_jacobian(&v, 2, &a, &[0.0], &s).unwrap();
    let jmin = gamma_jacobian(&v, 2, &a, &[1e-3], &s).unwrap();
    assert_eq!(j0, jmin);
}

#[test]
fn mean_norms_average_over_steps() {
    // V = 2 I, s = 0, n = 1: γ'(0) = 1/2 → J = I; γ'(60) = 1 → J = 2 I.
    let v = [2.0, 0.0, 0.0, 2.0];
    let norms = mean_norms(&v, 2, &[vec![0.0, 0.0], vec![60.0, 60.0]], &[1.0], &[0.0]).unwrap();
    assert!(
        (norms.inf - 1.5).abs() < 1e-12 && (norms.spectral - 1.5).abs() < 1e-12,
        "{norms:?}"
    );
    // The two norms differ for a non-normal J: V = [[1, 1], [0, 1]], large a: ‖J‖_∞ = 2, ‖J‖₂ = φ.
    let norms = mean_norms(
        &[1.0, 1.0, 0.0, 1.0],
        2,
        &[vec![60.0, 60.0]],
        &[1.0],
        &[0.0],
    )
    .unwrap();
    let phi = (1.0 + 5f64.sqrt()) / 2.0;
    let expected = JacobianNorms {
        inf: 2.0,
        spectral: phi,
    };
    assert!(
        (norms.inf - expected.inf).abs() < 1e-12
            && (norms.spectral - expected.spectral).abs() < 1e-9
    );
}

#[test]
fn jacobian_bad_input_is_an_error() {
    assert!(matches!(
        inf_norm(&[1.0; 5], 2, 3),
        Err(AnalysisError::Length { arg: "j", .. })
    ));
    assert!(matches!(
        inf_norm(&[], 0, 3),
        Err(AnalysisError::Value { arg: "j", .. })
    ));
    assert!(matches!(
        spectral_norm(&[1.0; 4], 2, 3),
        Err(AnalysisError::Length { arg: "j", .. })
    ));
    let v = [1.0; 4];
    assert!(matches!(
        gamma_jacobian(&v, 2, &[0.0], &[1.0], &[0.0]),
        Err(AnalysisError::Length { arg: "a", .. })
    ));
    assert!(matches!(
        gamma_jacobian(&v, 3, &[0.0; 3], &[1.0], &[0.0]),
        Err(AnalysisError::Length { arg: "v", .. })
    ));
    assert!(matches!(
        mean_norms(&v, 2, &[], &[1.0], &[0.0]),
        Err(AnalysisError::Length {
            arg: "pre_activations",
            ..
        })
    ));
    assert!(matches!(
        mean_norms(&v, 2, &[vec![0.0; 2], vec![0.0; 3]], &[1.0], &[0.0]),
        Err(AnalysisError::Length {
            arg: "pre_activations[t]",
            ..
        })
    ));
    assert!(matches!(
        mean_norms(&v, 2, &[vec![0.0; 2]], &[1.0; 3], &[0.0]),
        Err(AnalysisError::Length { arg: "n", .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// fracdiff

fn sampled(n: usize, dt: f64, f: impl Fn(f64) -> f64) -> Vec<f64> {
    (0..n).map(|k| f(k as f64 * dt)).collect()
}

/// A zero-mean trigonometric polynomial with harmonics 1..=5 of the window (below Nyquist).
fn trig_poly(n: usize, dt: f64) -> Vec<f64> {
    let period = n as f64 * dt;
    sampled(n, dt, |t| {
        (1..=5)
            .map(|m| {
                let w = 2.0 * PI * m as f64 / period;
                (0.7 / m as f64) * (w * t + 0.4 * m as f64).sin() + 0.2 * (w * t).cos()
            })
            .sum()
    })
}

#[test]
fn first_derivative_of_a_sine_is_the_cosine() {
    for &(n, dt, cycles) in &[(200, 0.05, 3.0), (201, 0.01, 7.0), (64, 1.0, 1.0)] {
        let f0 = cycles / (n as f64 * dt);
        let w = 2.0 * PI * f0;
        let x = sampled(n, dt, |t| (w * t).sin());
        let d1 = frac_diff(&x, 1.0, dt).unwrap();
        assert_close(&d1, &sampled(n, dt, |t| w * (w * t).cos()), 1e-9, "D¹ sin");
        let d2 = frac_diff(&x, 2.0, dt).unwrap();
        assert_close(
            &d2,
            &sampled(n, dt, |t| -w * w * (w * t).sin()),
            1e-9 * w,
            "D² sin",
        );
        // The Weyl half-derivative: D^½ sin(ωt) = ω^½ sin(ωt + π/4) (the principal branch).
        let dh = frac_diff(&x, 0.5, dt).unwrap();
        assert_close(
            &dh,
            &sampled(n, dt, |t| w.sqrt() * (w * t + PI / 4.0).sin()),
            1e-9,
            "D^½ sin",
        );
    }
}

#[test]
fn fractional_derivatives_compose() {
    for &n in &[128, 151] {
        let x = trig_poly(n, 0.1);
        for &(a, b) in &[
            (0.3, 0.45),
            (0.5, 0.5),
            (-0.7, 0.2),
            (1.0, -1.0),
            (0.25, 1.5),
        ] {
            let ab = frac_diff(&frac_diff(&x, a, 0.1).unwrap(), b, 0.1).unwrap();
            let direct = frac_diff(&x, a + b, 0.1).unwrap();
            assert_close(
                &ab,
                &direct,
                1e-9,
                &format!("N = {n}: D^{b} D^{a} vs D^{}", a + b),
            );
        }
    }
}

#[test]
fn order_zero_removes_the_mean() {
    let mut rng = Lcg(5);
    for n in [1, 2, 64, 99] {
        let x: Vec<f64> = rng.vec(n).iter().map(|v| 3.0 + v).collect();
        let mean = x.iter().sum::<f64>() / n as f64;
        let expected: Vec<f64> = x.iter().map(|v| v - mean).collect();
        assert_close(&frac_diff(&x, 0.0, 1.0).unwrap(), &expected, 1e-12, "D⁰");
        assert_close(&frac_int(&x, 0.0, 1.0).unwrap(), &expected, 1e-12, "I⁰");
    }
    // A constant has no fractional derivative.
    assert_close(
        &frac_diff(&[2.5; 10], 0.7, 1.0).unwrap(),
        &[0.0; 10],
        1e-15,
        "D^α const",
    );
}

#[test]
fn frac_int_inverts_frac_diff() {
    // Odd N has no Nyquist bin, so the inversion is exact for any zero-mean signal.
    let mut rng = Lcg(8);
    let raw = rng.vec(101);
    let mean = raw.iter().sum::<f64>() / 101.0;
    let x: Vec<f64> = raw.iter().map(|v| v - mean).collect();
    for &alpha in &[1.0, 0.5, 0.3, -0.6] {
        let back = frac_int(&frac_diff(&x, alpha, 0.2).unwrap(), alpha, 0.2).unwrap();
        assert_close(&back, &x, 1e-10, &format!("I^{alpha} D^{alpha} x"));
        assert_close(
            &frac_int(&x, alpha, 0.2).unwrap(),
            &frac_diff(&x, -alpha, 0.2).unwrap(),
            1e-12,
            "I^α = D^−α",
        );
    }
    // Even N, band-limited signal.
    let x = trig_poly(128, 0.1);
    let back = frac_int(&frac_diff(&x, 1.0, 0.1).unwrap(), 1.0, 0.1).unwrap();
    assert_close(&back, &x, 1e-10, "I¹ D¹ trig poly");
}

#[test]
fn linspace_matches_numpy() {
    assert_eq!(linspace(0.0, 1.0, 5), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    assert_eq!(linspace(-1.0, 1.0, 3), vec![-1.0, 0.0, 1.0]);
    assert_eq!(linspace(2.0, 3.0, 1), vec![2.0]);
    assert!(linspace(2.0, 3.0, 0).is_empty());
    let grid = linspace(0.0, 1.0, 100);
    assert_eq!((grid.len(), grid[0], grid[99]), (100, 0.0, 1.0));
    assert!((grid[1] - 1.0 / 99.0).abs() < 1e-17);
}

/// The spec's Fig 3 step template.
fn step_template(xi: f64, t: usize) -> f64 {
    if (t as f64 - 75.0).abs() < 25.0 {
        xi
    } else {
        0.0
    }
}

/// Responses whose D^{α0} is the template shape (plus a baseline, which D removes).
fn responses_of_order(alpha0: f64, len: usize) -> Vec<(f64, Vec<f64>)> {
    [0.0, 1.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|&xi| {
            let shape: Vec<f64> = (0..len).map(|t| step_template(xi, t)).collect();
            let r = frac_int(&shape, alpha0, 1.0).unwrap();
            (xi, r.iter().map(|v| v + 0.8).collect())
        })
        .collect()
}

#[test]
fn fit_order_recovers_the_order_of_constructed_responses() {
    for &(alpha0, ref alphas, expected) in &[
        (0.5, linspace(0.0, 1.0, 101), 0.5),
        (0.37, linspace(0.0, 1.0, 21), 0.35),
        (0.0, linspace(0.0, 1.0, 100), 0.0),
        (-0.4, linspace(-1.0, 1.0, 41), -0.4),
        (0.8, linspace(-1.0, 1.0, 9), 0.75),
    ] {
        let fit = fit_order(
            &responses_of_order(alpha0, 150),
            step_template,
            40..110,
            25,
            alphas,
        )
        .unwrap();
        assert!(
            (fit.best_alpha - expected).abs() < 1e-12,
            "α0 = {alpha0}: fitted {} ({fit:?})",
            fit.best_alpha
        );
        assert_eq!(fit.alphas, *alphas);
        assert_eq!(fit.mse.len(), alphas.len());
        let best = fit.mse.iter().copied().fold(f64::INFINITY, f64::min);
        let at_truth = fit.mse[alphas.iter().position(|a| *a == fit.best_alpha).unwrap()];
        assert_eq!(best, at_truth);
    }
    // The template itself (α0 = 0): the MSE at α = 0 is zero up to rounding.
    let fit = fit_order(
        &responses_of_order(0.0, 150),
        step_template,
        40..110,
        25,
        &[0.0, 0.5],
    )
    .unwrap();
    assert!(fit.mse[0] < 1e-20 && fit.mse[1] > 1e-3, "{fit:?}");
    // N = 151 has no Nyquist bin, so D^α0 r is exactly the template minus its mean: the MSE at
    // α0 is 0 with the offset taken at t = 25 (where the template is 0), and exactly Σ ξ² with
    // the offset at t = 75 (where it is ξ: y = template − ξ).
    let responses = responses_of_order(0.5, 151);
    let fit = fit_order(&responses, step_template, 40..110, 25, &[0.5]).unwrap();
    assert!(fit.mse[0] < 1e-20, "{fit:?}");
    let fit = fit_order(&responses, step_template, 40..110, 75, &[0.5]).unwrap();
    let sum_sq: f64 = [1.0f64, 2.5, 5.0, 10.0].iter().map(|x| x * x).sum();
    assert!((fit.mse[0] - sum_sq).abs() < 1e-9, "{fit:?}");
    // The window only: a template that is wrong outside [40, 110) does not matter.
    let wrong_outside = |xi: f64, t: usize| {
        if (40..110).contains(&t) {
            step_template(xi, t)
        } else {
            1e3
        }
    };
    let fit = fit_order(&responses, wrong_outside, 40..110, 25, &[0.5]).unwrap();
    assert!(fit.mse[0] < 1e-20, "{fit:?}");
}

#[test]
fn fracdiff_bad_input_is_an_error() {
    assert!(matches!(
        frac_diff(&[], 0.5, 1.0),
        Err(AnalysisError::Length { arg: "x", .. })
    ));
    assert!(matches!(
        frac_diff(&[1.0], 0.5, 0.0),
        Err(AnalysisError::Value { arg: "dt", .. })
    ));
    assert!(matches!(
        frac_int(&[1.0], f64::NAN, 1.0),
        Err(AnalysisError::Value { arg: "alpha", .. })
    ));
    let r = responses_of_order(0.5, 150);
    let fit =
        |resp: &[(f64, Vec<f64>)],
         window: std::ops::Range<usize>,
         offset: usize,
         alphas: &[f64]| { fit_order(resp, step_template, window, offset, alphas) };
    assert!(matches!(
        fit(&r, 40..110, 25, &[]),
        Err(AnalysisError::Length { arg: "alphas", .. })
    ));
    assert!(matches!(
        fit(&r, 40..110, 25, &[f64::NAN]),
        Err(AnalysisError::Value { arg: "alphas", .. })
    ));
    assert!(matches!(
        fit(&r, 40..40, 25, &[0.5]),
        Err(AnalysisError::Window { arg: "window", .. })
    ));
    assert!(matches!(
        fit(&r, 40..151, 25, &[0.5]),
        Err(AnalysisError::Window { arg: "window", .. })
    ));
    assert!(matches!(
        fit(&r, 40..110, 150, &[0.5]),
        Err(AnalysisError::Value {
            arg: "offset_at",
            ..
        })
    ));
    assert!(matches!(
        fit(&r[..1], 40..110, 25, &[0.5]),
        Err(AnalysisError::Value {
            arg: "responses",
            ..
        })
    ));
    assert!(matches!(
        fit(&[], 40..110, 25, &[0.5]),
        Err(AnalysisError::Value {
            arg: "responses",
            ..
        })
    ));
    let mut bad = r.clone();
    bad[2].1[3] = f64::NAN;
    assert!(matches!(
        fit(&bad, 40..110, 25, &[0.5]),
        Err(AnalysisError::Value {
            arg: "responses",
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------------
// adaptation

#[test]
fn adaptation_index_of_hand_made_traces() {
    let spec = AdaptationWindows::default();
    assert_eq!(
        spec,
        AdaptationWindows {
            early: 100..115,
            late: 134..149
        }
    );
    assert_eq!(adaptation_index(&[0.7; 149], &spec).unwrap(), 0.0);
    let halves: Vec<f64> = (0..150).map(|t| if t < 125 { 2.0 } else { 1.0 }).collect();
    assert!((adaptation_index(&halves, &spec).unwrap() - 1.0 / 3.0).abs() < 1e-15);
    // Growing response: early 1, late 3 → −1/2.
    let growing: Vec<f64> = (0..150).map(|t| if t < 125 { 1.0 } else { 3.0 }).collect();
    assert!((adaptation_index(&growing, &spec).unwrap() + 0.5).abs() < 1e-15);
    // A zero (or cancelling) denominator gives 0.
    assert_eq!(adaptation_index(&[0.0; 150], &spec).unwrap(), 0.0);
    let cancel: Vec<f64> = (0..150).map(|t| if t < 125 { 1.0 } else { -1.0 }).collect();
    assert_eq!(adaptation_index(&cancel, &spec).unwrap(), 0.0);
    // Means over the windows, not single samples: a ramp h_t = t → early 107, late 141.
    let ramp: Vec<f64> = (0..150).map(|t| t as f64).collect();
    assert!(
        (adaptation_index(&ramp, &spec).unwrap() - (107.0 - 141.0) / (107.0 + 141.0)).abs() < 1e-15
    );
    // Custom windows.
    let custom = AdaptationWindows {
        early: 0..2,
        late: 2..4,
    };
    assert!((adaptation_index(&[4.0, 2.0, 1.0, 1.0], &custom).unwrap() - 0.5).abs() < 1e-15);
}

#[test]
fn adaptation_bad_windows_are_errors() {
    let spec = AdaptationWindows::SPEC;
    let err = adaptation_index(&[1.0; 148], &spec).unwrap_err();
    assert!(
        matches!(
            err,
            AnalysisError::Window {
                arg: "windows.late",
                end: 149,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("148"), "{err}");
    assert!(matches!(
        adaptation_index(&[1.0; 100], &spec),
        Err(AnalysisError::Window {
            arg: "windows.early",
            ..
        })
    ));
    let empty = AdaptationWindows {
        early: 3..3,
        late: 0..2,
    };
    assert!(matches!(
        adaptation_index(&[1.0; 10], &empty),
        Err(AnalysisError::Window {
            arg: "windows.early",
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------------
// The path `dales analyze` takes from a trained run: traces → Jacobians → Lyapunov exponents,
// and the step response, on hand-built networks whose answers are known.

mod trained_run {
    use dales::analysis::driven::{driven_traces, jacobian_vs_drive, lyapunov_vs_drive, response};
    use dales::analysis::trace::{StepProtocol, activation, slope};
    use dales::nn::gamma::N_MIN;
    use dales::nn::seq::{SeqClassifier, SeqConfig, SeqKind};
    use dales::nn::{ParamValue, Parameterised};
    use dales_data::Split;
    use dales_data::sequence::PixelSequences;
    use dales_data::task::Task;

    /// A 2-neuron RNN of `kind` reading 7 × 7 images pixel by pixel, with `U = [1, 1]ᵀ`,
    /// `V = diag(1, 0.5)`, biases `0.1` (so that with inputs ≥ 0 every pre-activation is
    /// positive), and for a gamma cell the gain `n` and `s = 0`.
    fn network(kind: SeqKind, n: f32) -> SeqClassifier {
        let config = SeqConfig {
            hidden: 2,
            n_out: 3,
            rows: 7,
            cols: 7,
            pool: 1,
            permutation_seed: None,
            ..SeqConfig::paper(kind)
        };
        let model = config.init_seeded(1, &dales::device::cpu()).unwrap();
        let dev = dales::device::cpu();
        let mut cell = vec![
            ParamValue::from_f32(vec![1.0, 1.0], &[2, 1], &dev),
            ParamValue::from_f32(vec![0.1, 0.1], &[2], &dev),
            ParamValue::from_f32(vec![1.0, 0.0, 0.0, 0.5], &[2, 2], &dev),
            ParamValue::from_f32(vec![0.0, 0.0], &[2], &dev),
        ];
        if kind == SeqKind::RnnGamma {
            cell.push(ParamValue::from_f32(vec![n], &[1, 1], &dev));
            cell.push(ParamValue::from_f32(vec![0.0], &[1, 1], &dev));
        }
        let readout = model.param_layers()[1]
            .entries
            .iter()
            .map(|e| e.value.clone())
            .collect();
        model.with_layer_values(vec![cell, readout])
    }

    /// Three 7 × 7 images of pixels in [0, 1].
    fn images(config_of: &SeqClassifier) -> PixelSequences {
        let pixels: Vec<u8> = (0..3 * 49).map(|i| (i * 37 % 256) as u8).collect();
        let split = Split::new(pixels, vec![0, 1, 2], 7, 7, 3).unwrap();
        PixelSequences::new(split, config_of.config().sequence()).unwrap()
    }

    /// ReLU units with positive pre-activations have slope 1, so the recurrent Jacobian is
    /// `V = diag(1, 0.5)` at every step of every trace: both norms are 1, and the autonomous
    /// network's Lyapunov exponents are log₂ 1 = 0 and log₂ 0.5 = −1 bits per step. Over T
    /// QR steps from a random orthonormal basis each estimate is off by at most the log of the
    /// basis' initial alignment over T (here T = 1000, as `dales analyze` runs it: a few
    /// thousandths of a bit), while their sum, log₂|det V| per step, is exact. (The second
    /// neuron's state halves every step and reaches 0 after ~1070 steps, where its slope
    /// vanishes: T stays below that.)
    #[test]
    fn relu_network_has_the_jacobians_and_exponents_of_v() {
        let model = network(SeqKind::RnnRelu, 0.0);
        let task = images(&model);
        assert_eq!(task.steps(), 49);
        let xi = [0.0, 2.5, 10.0];
        let traces = driven_traces(&model, &task, 3, &xi).unwrap();
        assert_eq!(traces.len(), 3);
        for (x, tr) in &traces {
            assert_eq!((tr.steps, tr.batch, tr.hidden), (49, 3, 2));
            assert!(
                tr.a.iter().all(|&a| a > 0.0),
                "ξ = {x}: a pre-activation ≤ 0"
            );
            // h_t = a_t for ReLU units with positive pre-activations.
            assert_eq!(tr.a, tr.h, "ξ = {x}");
        }
        // The drive raises the pre-activations inside its window (steps 14..=25 of 49) only.
        let (clean, driven) = (&traces[0].1, &traces[2].1);
        assert_eq!(clean.at(&clean.a, 5, 1), driven.at(&driven.a, 5, 1));
        let lift = driven.at(&driven.a, 14, 0)[0] - clean.at(&clean.a, 14, 0)[0];
        assert!(
            (lift - 10.0).abs() < 1e-4,
            "the drive's lift at its first step: {lift}"
        );
        for j in jacobian_vs_drive(&model, &traces).unwrap() {
            assert!(
                (j.inf - 1.0).abs() < 1e-12,
                "ξ = {}: ‖J‖∞ = {}",
                j.xi,
                j.inf
            );
            assert!(
                (j.spectral - 1.0).abs() < 1e-9,
                "ξ = {}: ‖J‖₂ = {}",
                j.xi,
                j.spectral
            );
        }
        for (x, les) in lyapunov_vs_drive(&model, &traces, 1000).unwrap() {
            assert!(les[0].abs() < 0.01, "ξ = {x}: λ₁ = {}", les[0]);
            assert!((les[1] + 1.0).abs() < 0.01, "ξ = {x}: λ₂ = {}", les[1]);
            assert!(
                (les[0] + les[1] + 1.0).abs() < 1e-9,
                "ξ = {x}: λ₁ + λ₂ = {}",
                les[0] + les[1]
            );
        }
    }

    /// A gamma network whose learned gain is at or below zero behaves as the network does,
    /// with the gain floored at N_MIN: the same finite Jacobians and exponents as gain N_MIN
    /// (within the difference between N_MIN and N_MIN stored in f32, 5e-8 relative).
    #[test]
    fn gamma_gain_below_the_floor_is_floored_in_the_analyses() {
        let at_floor = network(SeqKind::RnnGamma, N_MIN as f32);
        let task = images(&at_floor);
        let xi = [0.0, 5.0];
        let expected = {
            let traces = driven_traces(&at_floor, &task, 3, &xi).unwrap();
            let jac = jacobian_vs_drive(&at_floor, &traces).unwrap();
            let les = lyapunov_vs_drive(&at_floor, &traces, 100).unwrap();
            (jac, les)
        };
        assert!(
            expected
                .0
                .iter()
                .all(|j| j.inf.is_finite() && j.spectral.is_finite())
        );
        assert!(
            expected
                .1
                .iter()
                .all(|(_, l)| l.iter().all(|v| v.is_finite()))
        );
        for n in [0.0f32, -2.0] {
            let model = network(SeqKind::RnnGamma, n);
            // The unit itself, floored: φ and φ' at n equal those at N_MIN.
            for a in [-1.0, 0.3, 4.0] {
                assert_eq!(
                    activation(&model, a, n as f64, 0.0),
                    activation(&model, a, N_MIN, 0.0)
                );
                assert_eq!(
                    slope(&model, a, n as f64, 0.0),
                    slope(&model, a, N_MIN, 0.0)
                );
            }
            let traces = driven_traces(&model, &task, 3, &xi).unwrap();
            let jac = jacobian_vs_drive(&model, &traces).unwrap();
            let les = lyapunov_vs_drive(&model, &traces, 100).unwrap();
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs().max(1e-3);
            for (j, e) in jac.iter().zip(&expected.0) {
                assert!(
                    close(j.inf, e.inf) && close(j.spectral, e.spectral),
                    "n = {n}: {j:?} vs {e:?}"
                );
            }
            for ((_, l), (_, e)) in les.iter().zip(&expected.1) {
                assert!(
                    l.iter().zip(e).all(|(a, b)| close(*a, *b)),
                    "n = {n}: {l:?} vs {e:?}"
                );
            }
        }
    }

    /// Memoryless ReLU neurons (V = 0) under the step protocol without noise respond with
    /// exactly their input, `r + ξ·1{50 < t < 101}` with `r = x₀ + b` their steady response
    /// (x₀ ~ N(0.8, 0.1²), mean over trials). The early adaptation window [100, 115) then holds
    /// one driven step: each neuron's index is `(ξ/15) / (2r + ξ/15)`, so the `r` it implies is
    /// the same at every ξ, and its mean over neurons is the population's steady response.
    #[test]
    fn step_response_of_memoryless_neurons_is_their_input() {
        let model = network(SeqKind::RnnRelu, 0.0);
        let dev = dales::device::cpu();
        let mut layers: Vec<Vec<ParamValue>> = model
            .param_layers()
            .into_iter()
            .map(|l| l.entries.into_iter().map(|e| e.value).collect())
            .collect();
        layers[0][2] = ParamValue::from_f32(vec![0.0; 4], &[2, 2], &dev);
        let model = model.with_layer_values(layers);
        let protocol = StepProtocol {
            noise_std: 0.0,
            ..StepProtocol::FIG3
        };
        let xi = [0.0, 1.0, 4.0];
        let r = response(&model, &protocol, &xi).unwrap();
        let steady = r.population[0].1[0];
        assert!(
            (steady - 0.9).abs() < 0.1,
            "steady response {steady} ≈ 0.8 + 0.1"
        );
        for (x, pop) in &r.population {
            for (t, v) in pop.iter().enumerate() {
                let want = steady + if 50 < t && t < 101 { *x } else { 0.0 };
                assert!((v - want).abs() < 1e-5, "ξ = {x}, t = {t}: {v} vs {want}");
            }
        }
        assert!(
            r.adaptation[0].1.iter().all(|a| a.abs() < 1e-9),
            "no drive, AI 0"
        );
        let implied = |x: f64, ai: f64| (x / 15.0) * (1.0 - ai) / (2.0 * ai);
        let (a1, a4) = (&r.adaptation[1].1, &r.adaptation[2].1);
        for (i, (&ai1, &ai4)) in a1.iter().zip(a4).enumerate() {
            let (r1, r4) = (implied(1.0, ai1), implied(4.0, ai4));
            assert!(
                (r1 - r4).abs() < 1e-5,
                "neuron {i}: steady {r1} at ξ = 1, {r4} at ξ = 4"
            );
        }
        let mean_r = a1.iter().map(|&ai| implied(1.0, ai)).sum::<f64>() / a1.len() as f64;
        assert!((mean_r - steady).abs() < 1e-5, "{mean_r} vs {steady}");
        assert!(r.fit.mse.iter().all(|m| m.is_finite()));
        assert!(
            r.neuron_alpha
                .iter()
                .all(|a| a.is_finite() && a.abs() <= 1.0)
        );
    }
}
