//! The statistics the spectral paper reports (spec B5): a least-squares line with its
//! correlation and the two-sided p-value of a zero slope (as `scipy.stats.linregress`),
//! Welch's t-test (`ttest_ind(equal_var=False)`) and the Mann-Whitney U test
//! (`mannwhitneyu`, two-sided: exact without ties for small samples, else the normal
//! approximation with tie and continuity corrections, as scipy's `method="auto"`).
//!
//! ```
//! use dales::stats::linregress;
//!
//! let fit = linregress(&[1.0, 2.0, 3.0, 4.0], &[2.0, 4.1, 5.9, 8.0]).unwrap();
//! assert!((fit.slope - 1.98).abs() < 1e-9);
//! assert!(fit.r > 0.99 && fit.p < 0.01);
//! ```

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// A fitted line `y = slope·x + intercept`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineFit {
    /// Slope.
    pub slope: f64,
    /// Intercept.
    pub intercept: f64,
    /// Pearson correlation of x and y.
    pub r: f64,
    /// Two-sided p-value of the null hypothesis of a zero slope (t-test, n − 2 degrees of
    /// freedom).
    pub p: f64,
    /// Points.
    pub n: usize,
}

/// The least-squares line through `(x, y)`; `None` with fewer than 3 points, a value that is
/// not finite, or a constant x.
pub fn linregress(x: &[f64], y: &[f64]) -> Option<LineFit> {
    let n = x.len();
    if n != y.len() || n < 3 || !all_finite(x) || !all_finite(y) {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let (mx, my) = (mean(x), mean(y));
    let sxx: f64 = x.iter().map(|v| (v - mx) * (v - mx)).sum();
    let syy: f64 = y.iter().map(|v| (v - my) * (v - my)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r = if syy > 0.0 {
        (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let df = (n - 2) as f64;
    let p = if r.abs() >= 1.0 {
        0.0
    } else {
        let t = r * (df / (1.0 - r * r)).sqrt();
        two_sided_t(t, df)
    };
    Some(LineFit {
        slope,
        intercept: my - slope * mx,
        r,
        p,
        n,
    })
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

fn two_sided_t(t: f64, df: f64) -> f64 {
    let dist = StudentsT::new(0.0, 1.0, df).expect("positive degrees of freedom");
    (2.0 * dist.cdf(-t.abs())).min(1.0)
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0),
    )
}

/// Welch's two-sided t-test of equal means: `(t, p)`; `None` with fewer than 2 values in a
/// sample, a value that is not finite, or no variance in either.
pub fn welch(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    if a.len() < 2 || b.len() < 2 || !all_finite(a) || !all_finite(b) {
        return None;
    }
    let ((ma, va), (mb, vb)) = (mean_var(a), mean_var(b));
    let (sa, sb) = (va / a.len() as f64, vb / b.len() as f64);
    if sa + sb <= 0.0 {
        return None;
    }
    let t = (ma - mb) / (sa + sb).sqrt();
    let df = (sa + sb).powi(2) / (sa * sa / (a.len() - 1) as f64 + sb * sb / (b.len() - 1) as f64);
    Some((t, two_sided_t(t, df)))
}

/// The Mann-Whitney U test, two-sided: `(U of a, p)`. Exact (the permutation distribution of
/// U) when there are no ties and a sample has at most 8 values, as scipy's
/// `method="auto"`; otherwise the normal approximation with the tie correction and a
/// continuity correction of ½. `None` for an empty sample.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 || !all_finite(a) || !all_finite(b) {
        return None;
    }
    // Mid-ranks of the pooled sample.
    let mut pooled: Vec<(f64, bool)> = a
        .iter()
        .map(|&v| (v, true))
        .chain(b.iter().map(|&v| (v, false)))
        .collect();
    pooled.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut rank_a = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < pooled.len() {
        let mut j = i;
        while j + 1 < pooled.len() && pooled[j + 1].0 == pooled[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        rank_a += rank * pooled[i..=j].iter().filter(|p| p.1).count() as f64;
        i = j + 1;
    }
    let (f1, f2) = (n1 as f64, n2 as f64);
    let u = rank_a - f1 * (f1 + 1.0) / 2.0;
    let p = if tie_term == 0.0 && (n1 <= 8 || n2 <= 8) {
        exact_u_p(u, n1, n2)
    } else {
        let n = f1 + f2;
        let mu = f1 * f2 / 2.0;
        let sigma = (f1 * f2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
        if sigma == 0.0 {
            1.0
        } else {
            let z = ((u - mu).abs() - 0.5).max(0.0) / sigma;
            let normal = Normal::new(0.0, 1.0).expect("a standard normal");
            (2.0 * normal.cdf(-z)).min(1.0)
        }
    };
    Some((u, p))
}

/// The exact two-sided p-value of `U = u` for samples of `n1` and `n2` without ties: twice the
/// smaller tail of the number of arrangements with a statistic that extreme.
fn exact_u_p(u: f64, n1: usize, n2: usize) -> f64 {
    // counts[m][k] = arrangements of m a-values and k b-values by their U, built up by the
    // recurrence f(m, k, u) = f(m − 1, k, u − k) + f(m, k − 1, u).
    let max = n1 * n2;
    let mut table = vec![vec![Vec::<f64>::new(); n2 + 1]; n1 + 1];
    for m in 0..=n1 {
        for k in 0..=n2 {
            let mut f = vec![0.0; m * k + 1];
            if m == 0 || k == 0 {
                f[0] = 1.0;
            } else {
                for (v, count) in table[m - 1][k].iter().enumerate() {
                    f[v + k] += count;
                }
                for (v, count) in table[m][k - 1].iter().enumerate() {
                    f[v] += count;
                }
            }
            table[m][k] = f;
        }
    }
    let dist = &table[n1][n2];
    let total: f64 = dist.iter().sum();
    let u = u.round() as usize;
    let upper: f64 = dist[u.min(max)..].iter().sum::<f64>() / total;
    let lower: f64 = dist[..=u.min(max)].iter().sum::<f64>() / total;
    (2.0 * upper.min(lower)).min(1.0)
}

/// Significance stars of the spectral paper (spec B5): `***` p ≤ 0.0005, `**` ≤ 0.005, `*` ≤
/// 0.05, else `ns`.
pub fn stars(p: f64) -> &'static str {
    if p <= 0.0005 {
        "***"
    } else if p <= 0.005 {
        "**"
    } else if p <= 0.05 {
        "*"
    } else {
        "ns"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed by hand from the definitions (see each test).

    #[test]
    fn a_perfect_line_has_r_one_and_p_zero() {
        let fit = linregress(&[0.0, 1.0, 2.0], &[1.0, 3.0, 5.0]).unwrap();
        assert_eq!(
            (fit.slope, fit.intercept, fit.r, fit.p),
            (2.0, 1.0, 1.0, 0.0)
        );
        assert!(linregress(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_none());
        // Not-a-number is refused, not turned into a p-value.
        assert!(linregress(&[0.0, 1.0, f64::NAN], &[1.0, 3.0, 5.0]).is_none());
        assert!(welch(&[1.0, f64::NAN], &[1.0, 2.0]).is_none());
        assert!(mann_whitney(&[f64::INFINITY], &[1.0]).is_none());
    }

    #[test]
    fn linregress_p_matches_the_t_distribution() {
        // x = 1..5, y = [1, 3, 2, 5, 4]: sxy = 8, sxx = 10, syy = 10, r = 0.8,
        // t = 0.8·√(3/0.36) = 2.3094; two-sided p with 3 df = 0.10408 (tables of Student's t).
        let fit = linregress(&[1.0, 2.0, 3.0, 4.0, 5.0], &[1.0, 3.0, 2.0, 5.0, 4.0]).unwrap();
        assert!((fit.r - 0.8).abs() < 1e-12);
        assert!((fit.slope - 0.8).abs() < 1e-12);
        assert!((fit.p - 0.10408).abs() < 1e-4, "{}", fit.p);
    }

    #[test]
    fn welch_with_equal_sizes_and_variances_is_student() {
        // a = [1, 2, 3], b = [4, 5, 6]: difference −3, each variance 1, se = √(2/3),
        // t = −3.6742, df = 4 (equal variances); two-sided p = 0.02131.
        let (t, p) = welch(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert!((t + 3.674_234_6).abs() < 1e-6);
        assert!((p - 0.02131).abs() < 5e-5, "{p}");
    }

    #[test]
    fn mann_whitney_exact_for_separated_samples() {
        // Complete separation of 3 and 3: U = 0, one arrangement of 20 in each tail, p = 0.1.
        let (u, p) = mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert_eq!(u, 0.0);
        assert!((p - 0.1).abs() < 1e-12);
        // 5 and 5 separated: 2/252.
        let (_, p) = mann_whitney(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
        assert!((p - 2.0 / 252.0).abs() < 1e-12);
        // U of the other sample is n1·n2 − U, with the same p.
        let (u, p2) = mann_whitney(&[4.0, 5.0, 6.0], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((u, p2), (9.0, 0.1));
    }

    #[test]
    fn mann_whitney_normal_with_ties() {
        // Ties force the normal approximation: a = [1, 2, 2], b = [2, 3, 4]; mid-ranks 1, 3, 3
        // for a: R = 7, U = 1; μ = 4.5, tie term 3³ − 3 = 24, σ² = 9/12·(7 − 24/30) = 4.65,
        // z = (3.5 − 0.5)/√4.65 = 1.39122, p = 2·Φ(−1.39122) = 0.16416.
        let (u, p) = mann_whitney(&[1.0, 2.0, 2.0], &[2.0, 3.0, 4.0]).unwrap();
        assert_eq!(u, 1.0);
        assert!((p - 0.16416).abs() < 5e-5, "{p}");
        assert_eq!(stars(0.0004), "***");
        assert_eq!(stars(0.3), "ns");
    }
}
