//! Fractional differentiation and integration by FFT, and the fit of a fractional order
//! (spec C5, "Fractional-order differentiation").
//!
//! `D^α x = Re IFFT( (i·2π·f)^α · FFT(x) )`, with `f` the FFT frequencies of numpy's
//! `fftfreq(N, d = dt)` and the DC term of the filter set to 0. The complex power is the
//! principal branch, `(i·2πf)^α = |2πf|^α · e^{i·α·(π/2)·sign(f)}`. [`frac_int`] divides by the
//! same filter instead (0 where the filter is 0, i.e. at DC), so it equals `D^{−α}`.
//!
//! Properties, and their limits:
//! - The DC term is removed: `D^0 x = x − mean(x)`, and `D^α` of a constant is 0.
//! - The FFT treats `x` as one period of a periodic signal: `D^1` is the exact derivative of
//!   the trigonometric interpolant, which equals `x'` for band-limited periodic signals and
//!   rings at jumps and at a mismatch between the two ends.
//! - For even `N` the Nyquist bin (`f = −1/(2 dt)`) has a complex filter value with no mirror
//!   bin, and taking the real part rescales that one component by `cos(απ/2)`; so
//!   `D^α D^β = D^{α+β}` and `frac_int(D^α x) = x − mean(x)` hold exactly only for odd `N` or
//!   signals without a Nyquist component.

use std::ops::Range;

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

use super::{AnalysisError, Result};

/// The result of [`fit_order`].
#[derive(Debug, Clone, PartialEq)]
pub struct FracFit {
    /// The orders tried.
    pub alphas: Vec<f64>,
    /// For each order, the mean squared error against the template, summed over the drives
    /// `ξ > 0`.
    pub mse: Vec<f64>,
    /// The order with the smallest error (the first one if several tie; NaN if every error is
    /// NaN).
    pub best_alpha: f64,
}

/// `n` evenly spaced points from `a` to `b`, both included (numpy's `linspace`): `[]` for
/// `n = 0`, `[a]` for `n = 1`; the last point is exactly `b`.
pub fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![a],
        _ => {
            let step = (b - a) / (n - 1) as f64;
            (0..n)
                .map(|i| if i + 1 == n { b } else { a + step * i as f64 })
                .collect()
        }
    }
}

/// The fractional derivative `D^α x` of a signal sampled every `dt` (see the module
/// documentation). `α` may be negative (then it integrates) or zero (then it removes the mean).
///
/// Errors if `x` is empty, `dt` is not positive and finite, or `alpha` is not finite.
pub fn frac_diff(x: &[f64], alpha: f64, dt: f64) -> Result<Vec<f64>> {
    check_signal(x, alpha, dt)?;
    let mut spectrum = Spectrum::new(x);
    Ok(spectrum.filtered(alpha, dt, false))
}

/// The fractional integral of `x`: the FFT divided by the filter of [`frac_diff`] (0 where the
/// filter is 0), so that `frac_int(x, α, dt) = frac_diff(x, −α, dt)`.
///
/// Errors if `x` is empty, `dt` is not positive and finite, or `alpha` is not finite.
pub fn frac_int(x: &[f64], alpha: f64, dt: f64) -> Result<Vec<f64>> {
    check_signal(x, alpha, dt)?;
    let mut spectrum = Spectrum::new(x);
    Ok(spectrum.filtered(alpha, dt, true))
}

/// Fits a fractional order to mean responses (spec C5, protocol step 5).
///
/// For each `α` in `alphas` and each `(ξ, r)` in `responses` with `ξ > 0`:
/// `y = D^α r − (D^α r)[offset_at]` (with `dt = 1`: time in steps), and the mean squared error
/// of `y_t` against `template(ξ, t)` over `t ∈ window`. `mse[α]` is the sum over `ξ`, and
/// `best_alpha` its argmin. Responses with `ξ ≤ 0` are ignored (they still must be valid).
///
/// The spec's Fig 3 settings are `template = |ξ, t| ξ·1{|t − 75| < 25}`, `window = 40..110`,
/// `offset_at = 25`, `alphas = linspace(0, 1, 100)`.
///
/// Errors if `alphas` is empty or not finite, there is no response with `ξ > 0`, a response
/// is empty or not finite, or `window` (non-empty) or `offset_at` does not fit a response.
pub fn fit_order(
    responses: &[(f64, Vec<f64>)],
    template: impl Fn(f64, usize) -> f64,
    window: Range<usize>,
    offset_at: usize,
    alphas: &[f64],
) -> Result<FracFit> {
    if alphas.is_empty() {
        return Err(AnalysisError::Length {
            arg: "alphas",
            found: 0,
            expected: "at least one order".into(),
        });
    }
    if let Some(a) = alphas.iter().find(|a| !a.is_finite()) {
        return Err(AnalysisError::Value {
            arg: "alphas",
            value: format!("[.., {a}, ..]"),
            expected: "finite orders".into(),
        });
    }
    if window.is_empty() {
        return Err(AnalysisError::Window {
            arg: "window",
            start: window.start,
            end: window.end,
            problem: "is empty".into(),
        });
    }
    for (xi, r) in responses {
        if r.is_empty() || r.iter().any(|v| !v.is_finite()) || xi.is_nan() {
            return Err(AnalysisError::Value {
                arg: "responses",
                value: format!("a response of length {} for ξ = {xi}", r.len()),
                expected: "a non-NaN ξ and a non-empty, finite response".into(),
            });
        }
        if window.end > r.len() {
            return Err(AnalysisError::Window {
                arg: "window",
                start: window.start,
                end: window.end,
                problem: format!("ends past a response of length {} (ξ = {xi})", r.len()),
            });
        }
        if offset_at >= r.len() {
            return Err(AnalysisError::Value {
                arg: "offset_at",
                value: offset_at.to_string(),
                expected: format!(
                    "an index into the response of length {} (ξ = {xi})",
                    r.len()
                ),
            });
        }
    }
    let mut driven: Vec<(f64, Spectrum)> = responses
        .iter()
        .filter(|(xi, _)| *xi > 0.0)
        .map(|(xi, r)| (*xi, Spectrum::new(r)))
        .collect();
    if driven.is_empty() {
        return Err(AnalysisError::Value {
            arg: "responses",
            value: format!("{} responses, none with ξ > 0", responses.len()),
            expected: "at least one response with a positive drive ξ".into(),
        });
    }

    let len = window.len() as f64;
    let mse: Vec<f64> = alphas
        .iter()
        .map(|&alpha| {
            driven
                .iter_mut()
                .map(|(xi, spectrum)| {
                    let d = spectrum.filtered(alpha, 1.0, false);
                    let offset = d[offset_at];
                    window
                        .clone()
                        .map(|t| (d[t] - offset - template(*xi, t)).powi(2))
                        .sum::<f64>()
                        / len
                })
                .sum()
        })
        .collect();
    let best_alpha = mse
        .iter()
        .zip(alphas)
        .filter(|(m, _)| !m.is_nan())
        .fold(None, |best: Option<(f64, f64)>, (&m, &a)| match best {
            Some((bm, _)) if bm <= m => best,
            _ => Some((m, a)),
        })
        .map_or(f64::NAN, |(_, a)| a);
    Ok(FracFit {
        alphas: alphas.to_vec(),
        mse,
        best_alpha,
    })
}

fn check_signal(x: &[f64], alpha: f64, dt: f64) -> Result<()> {
    if x.is_empty() {
        return Err(AnalysisError::Length {
            arg: "x",
            found: 0,
            expected: "at least one sample".into(),
        });
    }
    if !(dt.is_finite() && dt > 0.0) {
        return Err(AnalysisError::Value {
            arg: "dt",
            value: dt.to_string(),
            expected: "a positive, finite sampling interval".into(),
        });
    }
    if !alpha.is_finite() {
        return Err(AnalysisError::Value {
            arg: "alpha",
            value: alpha.to_string(),
            expected: "a finite order".into(),
        });
    }
    Ok(())
}

/// The FFT of a real signal, kept to apply several filters to it.
struct Spectrum {
    fft: Vec<Complex<f64>>,
    planner: FftPlanner<f64>,
    buffer: Vec<Complex<f64>>,
}

impl Spectrum {
    fn new(x: &[f64]) -> Self {
        let mut planner = FftPlanner::new();
        let mut fft: Vec<Complex<f64>> = x.iter().map(|&v| Complex::new(v, 0.0)).collect();
        planner.plan_fft_forward(x.len()).process(&mut fft);
        Spectrum {
            buffer: fft.clone(),
            fft,
            planner,
        }
    }

    /// `Re IFFT(filter^{±1} · FFT(x))` with the filter `(i·2πf)^α` (DC = 0) at sampling
    /// interval `dt`; `invert` divides by the filter (0 where it is 0).
    fn filtered(&mut self, alpha: f64, dt: f64, invert: bool) -> Vec<f64> {
        let n = self.fft.len();
        for (k, (out, c)) in self.buffer.iter_mut().zip(&self.fft).enumerate() {
            let filter = filter(fftfreq(k, n, dt), alpha);
            *out = if invert {
                if filter == Complex::new(0.0, 0.0) {
                    filter
                } else {
                    c / filter
                }
            } else {
                c * filter
            };
        }
        self.planner.plan_fft_inverse(n).process(&mut self.buffer);
        let scale = 1.0 / n as f64;
        self.buffer.iter().map(|c| c.re * scale).collect()
    }
}

/// Frequency of FFT bin `k` of `n` at sampling interval `dt`, as numpy's `fftfreq`: `k/(n dt)`
/// for `k ≤ (n − 1)/2`, `(k − n)/(n dt)` above (so the Nyquist bin of an even `n` is negative).
fn fftfreq(k: usize, n: usize, dt: f64) -> f64 {
    let signed = if k < n.div_ceil(2) {
        k as f64
    } else {
        k as f64 - n as f64
    };
    signed / (n as f64 * dt)
}

/// `(i·2πf)^α` on the principal branch, 0 at `f = 0`.
fn filter(f: f64, alpha: f64) -> Complex<f64> {
    if f == 0.0 {
        return Complex::new(0.0, 0.0);
    }
    let magnitude = (2.0 * std::f64::consts::PI * f.abs()).powf(alpha);
    Complex::from_polar(magnitude, alpha * std::f64::consts::FRAC_PI_2 * f.signum())
}
