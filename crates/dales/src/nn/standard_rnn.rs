//! The standard RNN of the spectral paper (spec B1, B2): `h_t = ReLU(U x_t + W h_{t−1} + b)`
//! with one bias and no sign constraint.
//!
//! Initialisations (spec B2): `U` and `W` uniform in `±1/√H` as PyTorch's `nn.RNN` (both use
//! the hidden size), or `W` uniform with entry variance `num/H` (`W_UniformInit(num)`, spectral
//! radius ≈ √num), or `U` normal `N(0, 2/n_in)`; `b = 0`. The spectrum-transplant matrices of
//! spec B2 ([`crate::nn::transplant`]) are standard cells too, built from given values.

use burn::module::Param;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::effective::Effective;
use super::init::{InitRng, matrix};
use super::layer::assert_same_shapes;
use super::param::{Fan, ParamEntry, ParamRole, ParamValue, detached, param, set};

/// The initialisation of a standard cell's input weights `U`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputInit {
    /// `U(±1/√H)` (`U_TorchInit`).
    Torch,
    /// `N(0, 2/n_in)` (`U_NormalInit(denom=2)`).
    Normal,
}

/// The initialisation of a standard cell's recurrent weights `W`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RecurrentInit {
    /// `U(±1/√H)` (`W_TorchInit`): spectral radius ≈ 1/√3.
    Torch,
    /// `U(±√(3·num/H))` (`W_UniformInit(num)`): entry variance `num/H`, radius ≈ √num.
    Uniform {
        /// The variance numerator.
        num: f64,
    },
}

/// The initial values of a standard cell, row-major `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct StandardValues {
    /// `U (H, n_in)`.
    pub u: Vec<f64>,
    /// `W (H, H)`.
    pub w: Vec<f64>,
    /// `b (H)`.
    pub bias: Vec<f64>,
}

/// Draw `U` then `W` for `n_in` inputs and `hidden` units; `b = 0`.
pub fn draw(
    n_in: usize,
    hidden: usize,
    input: InputInit,
    recurrent: RecurrentInit,
    rng: &mut InitRng,
) -> StandardValues {
    let h = hidden as f64;
    let torch = 1.0 / h.sqrt();
    let u = match input {
        InputInit::Torch => rng.uniform(hidden * n_in, -torch, torch),
        InputInit::Normal => rng.normal(hidden * n_in, (2.0 / n_in as f64).sqrt()),
    };
    let bound = match recurrent {
        RecurrentInit::Torch => torch,
        RecurrentInit::Uniform { num } => (3.0 * num / h).sqrt(),
    };
    let w = rng.uniform(hidden * hidden, -bound, bound);
    StandardValues {
        u,
        w,
        bias: vec![0.0; hidden],
    }
}

/// A standard recurrent cell: `u`, `w`, `bias` (the `dales-rnn/1` names).
#[derive(Debug, Clone)]
pub struct StandardRnnCell {
    /// `U (H, n_in)`.
    pub u: Param<Tensor<2>>,
    /// `W (H, H)`.
    pub w: Param<Tensor<2>>,
    /// `b (H)`.
    pub bias: Param<Tensor<1>>,
}

impl StandardRnnCell {
    /// The cell holding `values`.
    pub fn new(values: &StandardValues, device: &Device) -> Self {
        let h = values.bias.len();
        let n_in = values.u.len() / h.max(1);
        StandardRnnCell {
            u: param(matrix(&values.u, h, n_in, device)),
            w: param(matrix(&values.w, h, h, device)),
            bias: param(matrix(&values.bias, 1, h, device).reshape([h])),
        }
    }

    /// `U = u`, `W = w`.
    pub fn effective(&self) -> Effective {
        Effective {
            u: self.u.val(),
            w: self.w.val(),
            bias: self.bias.val(),
        }
    }

    /// Hidden units `H`.
    pub fn hidden(&self) -> usize {
        self.w.dims()[0]
    }

    /// Inputs per step.
    pub fn n_in(&self) -> usize {
        self.u.dims()[1]
    }

    /// `u` (role `input`), `w` (role `recurrent`), `bias`.
    pub fn entries(&self) -> Vec<ParamEntry> {
        let h = self.hidden();
        vec![
            ParamEntry::matrix("u", ParamRole::Input, &self.u),
            ParamEntry::matrix("w", ParamRole::Recurrent, &self.w).with_fan(Fan { d: h, ne: h }),
            ParamEntry::vector("bias", ParamRole::Bias, &self.bias),
        ]
    }

    /// The same cell holding `values` (in the order of [`StandardRnnCell::entries`]).
    pub fn with_values(self, values: Vec<ParamValue>) -> Self {
        assert_same_shapes(&self.entries(), &values);
        let mut v = values.into_iter();
        let mut next = || v.next().expect("checked length");
        StandardRnnCell {
            u: set(self.u, next().into_matrix()),
            w: set(self.w, next().into_matrix()),
            bias: set(self.bias, next().into_vector()),
        }
    }

    /// A copy without autodiff.
    pub fn inference(&self) -> Self {
        StandardRnnCell {
            u: detached(&self.u),
            w: detached(&self.w),
            bias: detached(&self.bias),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_bounds_and_variance() {
        let mut rng = InitRng::new(4);
        let v = draw(
            28,
            200,
            InputInit::Torch,
            RecurrentInit::Uniform { num: 1.0 / 3.0 },
            &mut rng,
        );
        let torch = 1.0 / 200f64.sqrt();
        assert!(v.u.iter().all(|x| x.abs() <= torch));
        // Var U(±a) = a²/3 = num/H.
        let var = v.w.iter().map(|x| x * x).sum::<f64>() / v.w.len() as f64;
        let want = 1.0 / 3.0 / 200.0;
        // 40k draws: the relative s.e. of the variance of a uniform is √(0.8/n) ≈ 0.45 %.
        assert!((var / want - 1.0).abs() < 0.03, "{var} vs {want}");
        assert!(v.bias.iter().all(|&b| b == 0.0));
    }
}
