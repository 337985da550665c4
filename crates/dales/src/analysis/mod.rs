//! Analyses of trained networks (spec C5): host-side numerics in `f64`, and the recording of a
//! model's trajectories that feeds them ([`trace`]).
//!
//! Each numerical function takes plain slices (matrices are row-major `&[f64]` with their dimensions passed
//! beside them), checks its arguments and returns [`AnalysisError`] for bad input instead of
//! panicking.
//!
//! - The gamma activation and its slope come from [`crate::nn::gamma::value`] and
//!   [`crate::nn::gamma::slope`]: the network's own function, gain floor included.
//! - [`lyapunov`]: the Lyapunov spectrum by QR iteration (spec C5, "Lyapunov exponents",
//!   `calculateLEs`): a general [`lyapunov::spectrum`] for any map that reports its Jacobian, and
//!   [`lyapunov::autonomous_gamma`] for the input-free network `h ← γ(V h; n, s)`. Exponents are
//!   in bits per step (`log₂`), as in the paper.
//! - [`jacobian`]: norms of the recurrent Jacobian `J = diag(γ'(a; n, s))·V` (spec C5, "Jacobian
//!   norm"): the ∞-operator norm and the spectral norm, and their averages over time steps. The
//!   authors' script computed a different quantity (spec C7.8); see the module documentation.
//! - [`fracdiff`]: fractional differentiation and integration by FFT, and the fit of a
//!   fractional order to mean responses (spec C5, "Fractional-order differentiation").
//! - [`spectra`]: eigenvalue and singular-value spectra of recurrent E/I networks (spec B5), of
//!   a run before and after training and of sampled initialisations.
//! - [`adaptation`]: the adaptation index `(r_early − r_late)/(r_early + r_late)` of a response
//!   trace (spec C5, "Adaptation index").

pub mod adaptation;
pub mod driven;
pub mod fracdiff;
pub mod jacobian;
pub mod lyapunov;
pub mod spectra;
pub mod trace;

pub use adaptation::AdaptationWindows;
pub use fracdiff::FracFit;
pub use jacobian::JacobianNorms;

pub use crate::error::AnalysisError;

/// The result type of the analyses.
pub type Result<T> = std::result::Result<T, AnalysisError>;

/// Checks that `x` has length `expected`.
pub(crate) fn check_len(arg: &'static str, x: &[f64], expected: usize) -> Result<()> {
    if x.len() == expected {
        Ok(())
    } else {
        Err(AnalysisError::Length {
            arg,
            found: x.len(),
            expected: expected.to_string(),
        })
    }
}

/// Checks that a per-neuron parameter has length `hidden` or 1 (broadcast).
pub(crate) fn check_per_neuron(arg: &'static str, x: &[f64], hidden: usize) -> Result<()> {
    if x.len() == hidden || x.len() == 1 {
        Ok(())
    } else {
        Err(AnalysisError::Length {
            arg,
            found: x.len(),
            expected: format!("{hidden} (one per neuron) or 1 (shared)"),
        })
    }
}

/// Element `i` of a per-neuron parameter checked by [`check_per_neuron`].
pub(crate) fn per_neuron(x: &[f64], i: usize) -> f64 {
    if x.len() == 1 { x[0] } else { x[i] }
}

/// Checks that a `rows × cols` row-major matrix has `rows·cols` entries and no zero dimension.
pub(crate) fn check_matrix(arg: &'static str, m: &[f64], rows: usize, cols: usize) -> Result<()> {
    if rows == 0 || cols == 0 {
        return Err(AnalysisError::Value {
            arg,
            value: format!("{rows}×{cols}"),
            expected: "a matrix with at least one row and one column".into(),
        });
    }
    match rows.checked_mul(cols) {
        Some(len) if len == m.len() => Ok(()),
        _ => Err(AnalysisError::Length {
            arg,
            found: m.len(),
            expected: format!("{rows}×{cols} (row-major)"),
        }),
    }
}
