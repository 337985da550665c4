//! Spectra of recurrent weight matrices (spec B5): the eigenvalues of a general real matrix,
//! its singular values, the normalised SVD entropy (NSE) that the spectral paper proposes as
//! the measure of a pathological spectrum, and the singular-vector / singular-value transplant
//! of its Fig. 4 (spec B2).
//!
//! Matrices are row-major `f64` slices; the decompositions are nalgebra's (a real Schur
//! decomposition for the eigenvalues, a bidiagonal SVD for the singular values).
//!
//! ```
//! use dales::nn::spectrum::{nse, singular_values};
//!
//! let identity = [1.0, 0.0, 0.0, 1.0];
//! assert!((nse(&singular_values(&identity, 2, 2)) - 1.0).abs() < 1e-12);
//! let rank_one = [1.0, 2.0, 2.0, 4.0];
//! assert!(nse(&singular_values(&rank_one, 2, 2)) < 1e-6);
//! ```

use nalgebra::DMatrix;
use nalgebra::linalg::Schur;

use crate::error::{Error, Result};

/// A complex eigenvalue `re + i·im`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eigenvalue {
    pub re: f64,
    pub im: f64,
}

impl Eigenvalue {
    /// `|λ|`.
    pub fn modulus(&self) -> f64 {
        self.re.hypot(self.im)
    }
}

fn dmatrix(values: &[f64], rows: usize, cols: usize) -> DMatrix<f64> {
    assert_eq!(
        values.len(),
        rows * cols,
        "a (rows, cols) matrix, row-major"
    );
    DMatrix::from_row_slice(rows, cols, values)
}

/// The eigenvalues of the square matrix `values (n, n)` (row-major), in the order the Schur
/// form gives them.
///
/// # Errors
/// If the matrix holds a value that is not finite, or the QR iteration does not converge.
pub fn eigenvalues(values: &[f64], n: usize) -> Result<Vec<Eigenvalue>> {
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(Error::Numeric(format!(
            "eigenvalues of a {n} × {n} matrix holding {bad}"
        )));
    }
    let schur =
        Schur::try_new(dmatrix(values, n, n), f64::EPSILON, 100 * n.max(10)).ok_or_else(|| {
            Error::Numeric(format!(
                "the eigenvalues of a {n} × {n} matrix did not converge"
            ))
        })?;
    Ok(schur
        .complex_eigenvalues()
        .iter()
        .map(|c| Eigenvalue { re: c.re, im: c.im })
        .collect())
}

/// The spectral radius `max |λ|` of the square matrix `values (n, n)`.
///
/// # Errors
/// As [`eigenvalues`].
pub fn spectral_radius(values: &[f64], n: usize) -> Result<f64> {
    Ok(eigenvalues(values, n)?
        .iter()
        .map(Eigenvalue::modulus)
        .fold(0.0, f64::max))
}

/// The singular values of `values (rows, cols)`, largest first (`min(rows, cols)` of them).
pub fn singular_values(values: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut s: Vec<f64> = dmatrix(values, rows, cols)
        .singular_values()
        .iter()
        .copied()
        .collect();
    s.sort_by(|a, b| b.total_cmp(a));
    s
}

/// The normalised SVD entropy of singular values `σ_1..σ_N` (spec B5):
/// `H = −Σ σ̄_i ln σ̄_i / ln N` with `σ̄ = σ/Σσ`, in `[0, 1]`; 1 when all are equal.
///
/// A zero singular value contributes 0 (the limit of `p ln p`). NaN for `N < 2` or when every
/// value is 0.
pub fn nse(singular: &[f64]) -> f64 {
    let n = singular.len();
    let total: f64 = singular.iter().sum();
    if n < 2 || total <= 0.0 || !total.is_finite() {
        return f64::NAN;
    }
    let entropy: f64 = singular
        .iter()
        .map(|&s| s / total)
        .filter(|&p| p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    entropy / (n as f64).ln()
}

/// The singular vectors of `vectors` with the singular values of `values` (both
/// `(rows, cols)`, row-major): `W = U_A diag(S_B) V_Aᵀ` with both spectra sorted largest
/// first (spec B2, "spectrum transplant").
pub fn transplant(vectors: &[f64], values: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let svd = dmatrix(vectors, rows, cols).svd(true, true);
    let (u, v_t) = (svd.u.expect("asked for U"), svd.v_t.expect("asked for Vᵀ"));
    let mut order: Vec<usize> = (0..svd.singular_values.len()).collect();
    order.sort_by(|&a, &b| svd.singular_values[b].total_cmp(&svd.singular_values[a]));
    let s_b = singular_values(values, rows, cols);
    let mut w = vec![0.0; rows * cols];
    for (k, &j) in order.iter().enumerate() {
        let s = s_b[k];
        for r in 0..rows {
            let us = u[(r, j)] * s;
            let row = &mut w[r * cols..(r + 1) * cols];
            for (c, out) in row.iter_mut().enumerate() {
                *out += us * v_t[(j, c)];
            }
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigenvalues_of_a_rotation_and_a_triangle() {
        // 90° rotation: ±i.
        let ev = eigenvalues(&[0.0, -1.0, 1.0, 0.0], 2).unwrap();
        let mut ims: Vec<f64> = ev.iter().map(|e| e.im).collect();
        ims.sort_by(f64::total_cmp);
        assert!((ims[0] + 1.0).abs() < 1e-12 && (ims[1] - 1.0).abs() < 1e-12);
        assert!(ev.iter().all(|e| e.re.abs() < 1e-12));
        // Upper triangular: the diagonal.
        let r = spectral_radius(&[2.0, 5.0, 1.0, 0.0, -3.0, 7.0, 0.0, 0.0, 0.5], 3).unwrap();
        assert!((r - 3.0).abs() < 1e-12, "{r}");
        assert!(eigenvalues(&[f64::NAN], 1).is_err());
    }

    #[test]
    fn singular_values_and_nse_closed_forms() {
        // diag(3, 1) rotated: singular values 3, 1.
        let (c, s) = (0.6, 0.8);
        let m = [3.0 * c, -s, 3.0 * s, c];
        let sv = singular_values(&m, 2, 2);
        assert!((sv[0] - 3.0).abs() < 1e-12 && (sv[1] - 1.0).abs() < 1e-12);
        // p = (3/4, 1/4): H = −(¾ ln ¾ + ¼ ln ¼)/ln 2.
        let want = -(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln()) / 2f64.ln();
        assert!((nse(&sv) - want).abs() < 1e-12);
        assert!(nse(&[1.0]).is_nan() && nse(&[0.0, 0.0]).is_nan());
        assert_eq!(nse(&[2.0, 0.0]), 0.0);
    }

    #[test]
    fn transplant_keeps_vectors_and_takes_values() {
        let a = [1.0, 2.0, 0.5, -1.0, 0.3, 0.7];
        let b = [4.0, 0.0, 0.0, 0.0, 2.0, 0.0];
        let w = transplant(&a, &b, 2, 3);
        assert_eq!(singular_values(&w, 2, 3).len(), 2);
        let sv = singular_values(&w, 2, 3);
        assert!((sv[0] - 4.0).abs() < 1e-12 && (sv[1] - 2.0).abs() < 1e-12);
        // Same singular vectors: W Wᵀ commutes with A Aᵀ.
        let gram = |m: &[f64]| {
            let mut g = [0.0; 4];
            for i in 0..2 {
                for j in 0..2 {
                    g[i * 2 + j] = (0..3).map(|k| m[i * 3 + k] * m[j * 3 + k]).sum();
                }
            }
            g
        };
        let (ga, gw) = (gram(&a), gram(&w));
        let mul = |x: &[f64; 4], y: &[f64; 4]| {
            let mut r = [0.0; 4];
            for i in 0..2 {
                for j in 0..2 {
                    r[i * 2 + j] = (0..2).map(|k| x[i * 2 + k] * y[k * 2 + j]).sum();
                }
            }
            r
        };
        let (ab, ba) = (mul(&ga, &gw), mul(&gw, &ga));
        for k in 0..4 {
            assert!((ab[k] - ba[k]).abs() < 1e-9, "{ab:?} vs {ba:?}");
        }
    }
}
