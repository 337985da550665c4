//! The ColEI recurrent cell (after Song et al. 2016; spec B1, B2): Dale's principle by
//! sign-constrained columns, `U = U_pos·D_U`, `W = W_pos·D_W` with `U_pos, W_pos ≥ 0` trained
//! and the diagonal signs `D` fixed, `h_t = ReLU(U x_t + W h_{t−1} + b)`.
//!
//! The hidden units split into `ne` E then `ni = ⌈n/(ratio + 1)⌉` I units (ratio = E:I; 9 gives
//! 90 E + 10 I of 100). Initialisation (spec B2, `ColumnEiCell_W_InitPolicy`): `W = [Exp(σ_e) |
//! −Exp(σ_i)]` with the balanced scales of spec A2.3, the diagonal set to 0, optionally the I→I
//! block (`ablate_ii`), then `W` rescaled to spectral radius ρ (1.5) by the largest eigenvalue
//! modulus of the general real matrix; `W_pos = |W|`. The first cell's inputs are pixels, all
//! excitatory: `U_pos ~ Exp(√(1/d))`; a later cell splits its inputs as the layer below. The
//! bias is 0: the published runs centre it and then overwrite it (spec B7.1).

use burn::module::Param;
use burn::tensor::{Device, Tensor};

use super::column_ei::ColumnEiDense;
use super::effective::Effective;
use super::init::{InitRng, columnei_first_sigma, columnei_sigmas, filled, matrix};
use super::layer::assert_same_shapes;
use super::param::{Fan, ParamEntry, ParamRole, ParamValue, detached, param, set};
use super::spectrum::spectral_radius;
use crate::error::{Error, Result};

/// The (E, I) split of `n` units at E:I `ratio`: `ni = ⌈n/(ratio + 1)⌉`, `ne = n − ni`, the I
/// units last. `key` names the setting in errors.
///
/// # Errors
/// If the ratio is not a positive finite number or either population would be empty.
pub fn split(n: usize, ratio: f64, key: &str) -> Result<(usize, usize)> {
    if !(ratio.is_finite() && ratio > 0.0) {
        return Err(Error::config(key, ratio, "an E:I ratio > 0"));
    }
    // The integer ceiling of n/(ratio + 1), robust to the rounding of the division (spec B7.6).
    let exact = n as f64 / (ratio + 1.0);
    let ni = (exact - 1e-9 * exact.max(1.0)).ceil().max(0.0) as usize;
    if ni == 0 || ni >= n {
        return Err(Error::config(
            key,
            ratio,
            format!(
                "a ratio that leaves both E and I units among {n} (gives {} I)",
                ni
            ),
        ));
    }
    Ok((n - ni, ni))
}

/// `+1` for the `ne` E units, then `−1` for the `ni` I units.
pub fn signs(ne: usize, ni: usize) -> Vec<f64> {
    let mut s = vec![1.0; ne];
    s.resize(ne + ni, -1.0);
    s
}

/// Settings of the ColEI recurrent matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColEiRecurrent {
    /// Hidden units `n`.
    pub hidden: usize,
    /// E:I ratio of the hidden units.
    pub ratio: f64,
    /// Spectral radius ρ after rescaling (1.5).
    pub radius: f64,
    /// Set the diagonal to 0 before rescaling.
    pub zero_diag: bool,
    /// Set the I→I block to 0 before rescaling.
    pub ablate_ii: bool,
}

impl ColEiRecurrent {
    /// The signed initial `W (n, n)` (row-major): `[Exp(σ_e) | −Exp(σ_i)]`, the diagonal and
    /// I→I block cleared as configured, rescaled to spectral radius ρ. Also the split.
    ///
    /// # Errors
    /// A bad ratio or radius (named by their `model.` keys), or an eigenvalue failure.
    pub fn draw(&self, rng: &mut InitRng) -> Result<(Vec<f64>, (usize, usize))> {
        if !(self.radius.is_finite() && self.radius > 0.0) {
            return Err(Error::config(
                "model.radius",
                self.radius,
                "a spectral radius > 0",
            ));
        }
        let n = self.hidden;
        let (ne, ni) = split(n, self.ratio, "model.ratio")?;
        let (se, si) = columnei_sigmas(ne, ni);
        let e = rng.exponential(n * ne, se);
        let i = rng.exponential(n * ni, si);
        let mut w = Vec::with_capacity(n * n);
        for (e_row, i_row) in e.chunks_exact(ne).zip(i.chunks_exact(ni)) {
            w.extend_from_slice(e_row);
            w.extend(i_row.iter().map(|v| -v));
        }
        for r in 0..n {
            for c in 0..n {
                let ii = r >= ne && c >= ne;
                if (self.zero_diag && r == c) || (self.ablate_ii && ii) {
                    w[r * n + c] = 0.0;
                }
            }
        }
        let rho0 = spectral_radius(&w, n)?;
        if rho0 <= 0.0 {
            return Err(Error::Numeric(format!(
                "the initial ColEI matrix ({n} units) has spectral radius 0 and cannot be \
                 rescaled to {}",
                self.radius
            )));
        }
        let scale = self.radius / rho0;
        w.iter_mut().for_each(|v| *v *= scale);
        Ok((w, (ne, ni)))
    }
}

/// Magnitudes `[Exp(σ_e) | Exp(σ_i)]` of an `(n_out, ne + ni)` matrix whose inputs split
/// `(ne, ni)`, with the balanced scales of spec A2.3, row-major.
pub fn magnitudes(n_out: usize, (ne, ni): (usize, usize), rng: &mut InitRng) -> Vec<f64> {
    let (se, si) = columnei_sigmas(ne, ni);
    let e = rng.exponential(n_out * ne, se);
    let i = rng.exponential(n_out * ni, si);
    let mut m = Vec::with_capacity(n_out * (ne + ni));
    for (e_row, i_row) in e.chunks_exact(ne).zip(i.chunks_exact(ni)) {
        m.extend_from_slice(e_row);
        m.extend_from_slice(i_row);
    }
    m
}

/// Row-major values of a ColEI cell.
#[derive(Debug, Clone, PartialEq)]
pub struct ColEiValues {
    pub u_pos: Vec<f64>,
    pub u_sign: Vec<f64>,
    pub w_pos: Vec<f64>,
    pub w_sign: Vec<f64>,
    pub bias: Vec<f64>,
}

/// Draw a ColEI cell: the input weights (all excitatory with `Exp(√(1/d))` when `input_split`
/// is `None`, the pixel layer; else split as the layer below), then the recurrent matrix.
///
/// # Errors
/// As [`ColEiRecurrent::draw`].
pub fn draw(
    n_in: usize,
    input_split: Option<(usize, usize)>,
    recurrent: &ColEiRecurrent,
    rng: &mut InitRng,
) -> Result<ColEiValues> {
    let n = recurrent.hidden;
    let (u_pos, u_sign) = match input_split {
        None => (
            rng.exponential(n * n_in, columnei_first_sigma(n_in)),
            vec![1.0; n_in],
        ),
        Some((ne, ni)) => (magnitudes(n, (ne, ni), rng), signs(ne, ni)),
    };
    let (w, (ne, ni)) = recurrent.draw(rng)?;
    Ok(ColEiValues {
        u_pos,
        u_sign,
        w_pos: w.iter().map(|v| v.abs()).collect(),
        w_sign: signs(ne, ni),
        bias: vec![0.0; n],
    })
}

/// A ColEI dense readout (`ColumnEi_Dense_InitPolicy`): inputs split `(ne, ni)`,
/// `W_pos = [Exp(σ_e) | Exp(σ_i)]`, signs `+1…−1`, `b = 0`.
pub fn dense(
    n_out: usize,
    (ne, ni): (usize, usize),
    rng: &mut InitRng,
    device: &Device,
) -> ColumnEiDense {
    let d = ne + ni;
    ColumnEiDense {
        w_pos: param(matrix(&magnitudes(n_out, (ne, ni), rng), n_out, d, device)),
        sign: matrix(&signs(ne, ni), 1, d, device).reshape([d]),
        bias: param(filled(n_out, 0.0, device)),
    }
}

/// The ColEI cell: `u_pos`, `u_sign`, `w_pos`, `w_sign`, `bias` (the `dales-rnn/1` names).
#[derive(Debug, Clone)]
pub struct ColEiCell {
    /// `U_pos (n, n_in)` ≥ 0.
    pub u_pos: Param<Tensor<2>>,
    /// Fixed signs of the inputs `(n_in)`.
    pub u_sign: Tensor<1>,
    /// `W_pos (n, n)` ≥ 0.
    pub w_pos: Param<Tensor<2>>,
    /// Fixed signs of the hidden units `(n)`: `ne × (+1)` then `ni × (−1)`.
    pub w_sign: Tensor<1>,
    /// `b (n)`.
    pub bias: Param<Tensor<1>>,
}

impl ColEiCell {
    /// The cell holding `values`.
    pub fn new(v: &ColEiValues, device: &Device) -> Self {
        let (n, n_in) = (v.bias.len(), v.u_sign.len());
        ColEiCell {
            u_pos: param(matrix(&v.u_pos, n, n_in, device)),
            u_sign: matrix(&v.u_sign, 1, n_in, device).reshape([n_in]),
            w_pos: param(matrix(&v.w_pos, n, n, device)),
            w_sign: matrix(&v.w_sign, 1, n, device).reshape([n]),
            bias: param(matrix(&v.bias, 1, n, device).reshape([n])),
        }
    }

    /// `U = U_pos ⊙ u_sign`, `W = W_pos ⊙ w_sign` (signs per presynaptic column).
    pub fn effective(&self) -> Effective {
        Effective {
            u: self.u_pos.val() * self.u_sign.clone().unsqueeze(),
            w: self.w_pos.val() * self.w_sign.clone().unsqueeze(),
            bias: self.bias.val(),
        }
    }

    /// Hidden units.
    pub fn hidden(&self) -> usize {
        self.w_pos.dims()[0]
    }

    /// Inputs per step.
    pub fn n_in(&self) -> usize {
        self.u_pos.dims()[1]
    }

    /// The E units among the hidden units.
    pub fn excitatory(&self) -> usize {
        let signs = self.w_sign.clone().into_data().convert::<f32>();
        signs.iter::<f32>().filter(|&s| s > 0.0).count()
    }

    /// `u_pos` (role `w_pos`), `u_sign`, `w_pos` (role `recurrent_w_pos`, its fan's `ne` the E
    /// units, for the I→I ablation), `w_sign`, `bias`.
    pub fn entries(&self) -> Vec<ParamEntry> {
        let (n, ne) = (self.hidden(), self.excitatory());
        vec![
            ParamEntry::matrix("u_pos", ParamRole::WPos, &self.u_pos),
            ParamEntry::buffer("u_sign", self.u_sign.clone()),
            ParamEntry::matrix("w_pos", ParamRole::RecurrentWPos, &self.w_pos)
                .with_fan(Fan { d: n, ne }),
            ParamEntry::buffer("w_sign", self.w_sign.clone()),
            ParamEntry::vector("bias", ParamRole::Bias, &self.bias),
        ]
    }

    /// The same cell holding `values` (in the order of [`ColEiCell::entries`]).
    pub fn with_values(self, values: Vec<ParamValue>) -> Self {
        assert_same_shapes(&self.entries(), &values);
        let mut v = values.into_iter();
        let mut next = || v.next().expect("checked length");
        ColEiCell {
            u_pos: set(self.u_pos, next().into_matrix()),
            u_sign: next().into_vector().detach(),
            w_pos: set(self.w_pos, next().into_matrix()),
            w_sign: next().into_vector().detach(),
            bias: set(self.bias, next().into_vector()),
        }
    }

    /// A copy without autodiff.
    pub fn inference(&self) -> Self {
        ColEiCell {
            u_pos: detached(&self.u_pos),
            u_sign: self.u_sign.clone().without_autodiff(),
            w_pos: detached(&self.w_pos),
            w_sign: self.w_sign.clone().without_autodiff(),
            bias: detached(&self.bias),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() {
        assert_eq!(split(100, 9.0, "r").unwrap(), (90, 10));
        assert_eq!(split(100, 1.0, "r").unwrap(), (50, 50));
        assert_eq!(split(100, 99.0, "r").unwrap(), (99, 1));
        // 1/f − 1 for f = 0.12: 100·0.12 = 12 I units despite the rounding of 1/0.12 − 1.
        assert_eq!(split(100, 1.0 / 0.12 - 1.0, "r").unwrap(), (88, 12));
        for bad in [0.0, -1.0, f64::NAN] {
            let e = split(100, bad, "model.ratio").unwrap_err().to_string();
            assert!(e.contains("model.ratio"), "{e}");
        }
        assert!(split(1, 9.0, "r").is_err());
    }

    #[test]
    fn recurrent_radius_diagonal_and_signs() {
        let config = ColEiRecurrent {
            hidden: 100,
            ratio: 9.0,
            radius: 1.5,
            zero_diag: true,
            ablate_ii: true,
        };
        let (w, (ne, ni)) = config.draw(&mut InitRng::new(3)).unwrap();
        assert_eq!((ne, ni), (90, 10));
        let rho = spectral_radius(&w, 100).unwrap();
        assert!((rho - 1.5).abs() < 1e-9, "{rho}");
        for r in 0..100 {
            assert_eq!(w[r * 100 + r], 0.0);
            for c in 0..100 {
                let v = w[r * 100 + c];
                if c < 90 {
                    assert!(v >= 0.0);
                } else {
                    assert!(v <= 0.0);
                }
                if r >= 90 && c >= 90 {
                    assert_eq!(v, 0.0);
                }
            }
        }
        let bad = ColEiRecurrent {
            radius: 0.0,
            ..config
        }
        .draw(&mut InitRng::new(3));
        assert!(bad.unwrap_err().to_string().contains("model.radius"));
    }
}
