//! The spectrum-transplant initialisations of the spectral paper's Fig. 4 (spec B2): a
//! standard (unconstrained) RNN whose matrices take their singular vectors from one
//! initialisation and their singular values from another, `W = U_A diag(S_B) V_Aᵀ`, to tell
//! apart what the spectrum and what the sign constraint do to learning. The resulting matrices
//! are not sign-constrained; the "sign frozen" conditions freeze their initial signs with the
//! `sign_freeze` projection (spec B3).
//!
//! | [`Transplant`] | singular vectors from | singular values from |
//! |---|---|---|
//! | `ColeiSpectrum` | the standard init: `U(±1/√n)`; `N(0, 2/d)` readout | ColEI (E:I 9, ρ 1.5) |
//! | `ColeiVectors` | ColEI (E:I 9, ρ 1.5) | the standard init |
//!
//! The input weights transplant between `U(±1/√n)` and the ColEI pixel layer's `Exp(√(1/d))`,
//! the readout between `N(0, 2/d)` and a ColEI readout of the hidden units split 9:1. The bias
//! is 0 (as every cell of the published runs, spec B7.1).

use serde::{Deserialize, Serialize};

use super::colei_rnn::{ColEiRecurrent, magnitudes, signs, split};
use super::init::{InitRng, columnei_first_sigma};
use super::spectrum::transplant;
use super::standard_rnn::{InputInit, RecurrentInit, StandardValues, draw as standard_draw};
use crate::error::Result;

/// The E:I ratio and radius of the ColEI source matrices (hard-coded in the published code,
/// spec B7.5).
pub const SOURCE_RATIO: f64 = 9.0;
/// See [`SOURCE_RATIO`].
pub const SOURCE_RADIUS: f64 = 1.5;

/// Which spectrum goes where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transplant {
    /// The standard RNN's singular vectors with ColEI's singular values.
    ColeiSpectrum,
    /// ColEI's singular vectors with the standard RNN's singular values.
    ColeiVectors,
}

/// The two sources of one matrix, `(vectors, values)`, for a transplant direction.
fn pair(t: Transplant, standard: Vec<f64>, colei: Vec<f64>) -> (Vec<f64>, Vec<f64>) {
    match t {
        Transplant::ColeiSpectrum => (standard, colei),
        Transplant::ColeiVectors => (colei, standard),
    }
}

/// A transplanted standard cell for `n_in` inputs (a pixel layer) and `hidden` units, and its
/// transplanted readout `(n_out, hidden)`. Draw order: the standard cell, the ColEI input and
/// recurrent matrices, the two readouts.
///
/// # Errors
/// A hidden size too small for the 9:1 split, or an eigenvalue failure.
pub fn draw(
    t: Transplant,
    n_in: usize,
    hidden: usize,
    n_out: usize,
    rng: &mut InitRng,
) -> Result<(StandardValues, Vec<f64>)> {
    let standard = standard_draw(n_in, hidden, InputInit::Torch, RecurrentInit::Torch, rng);
    let colei_u = rng.exponential(hidden * n_in, columnei_first_sigma(n_in));
    let recurrent = ColEiRecurrent {
        hidden,
        ratio: SOURCE_RATIO,
        radius: SOURCE_RADIUS,
        zero_diag: true,
        ablate_ii: false,
    };
    let (colei_w, _) = recurrent.draw(rng)?;
    let standard_out = rng.normal(n_out * hidden, (2.0 / hidden as f64).sqrt());
    let (ne, ni) = split(hidden, SOURCE_RATIO, "model.hidden")?;
    let colei_magnitudes = magnitudes(n_out, (ne, ni), rng);
    let sign = signs(ne, ni);
    let colei_out: Vec<f64> = colei_magnitudes
        .chunks_exact(hidden)
        .flat_map(|row| row.iter().zip(&sign).map(|(m, s)| m * s))
        .collect();
    let (u_vec, u_val) = pair(t, standard.u, colei_u);
    let (w_vec, w_val) = pair(t, standard.w, colei_w);
    let (o_vec, o_val) = pair(t, standard_out, colei_out);
    Ok((
        StandardValues {
            u: transplant(&u_vec, &u_val, hidden, n_in),
            w: transplant(&w_vec, &w_val, hidden, hidden),
            bias: vec![0.0; hidden],
        },
        transplant(&o_vec, &o_val, n_out, hidden),
    ))
}
