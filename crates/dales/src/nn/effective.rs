//! The recurrence that every cell of the spectral paper shares (spec B1):
//!
//! `h_t = ReLU(x_t Uᵀ + b + h_{t−1} Wᵀ)`, `h_0 = 0`,
//!
//! where the cell forms its effective `U (H, d)` and `W (H, H)` once per forward pass from its
//! parameters (`U = u` for the standard RNN, `Uex − Uei·Uix` for the DANN cell,
//! `U_pos ⊙ sign` for ColEI). The sequence runs through the fused RNN op where it applies
//! (f32 on the CPU or GPU backend), with a hand-written backward through time; its gradients
//! of `U`, `W` and `b` flow back into the cell's factors through the products that formed
//! them. [`Effective::states_plain`] is the step-by-step tensor version it is tested against.

use burn::tensor::Tensor;
use burn::tensor::activation::relu;

use crate::fused::{RnnAct, RnnParams};

/// The effective input and recurrent weights and the bias of a cell.
#[derive(Debug, Clone)]
pub struct Effective {
    /// `U (H, d)`.
    pub u: Tensor<2>,
    /// `W (H, H)`.
    pub w: Tensor<2>,
    /// `b (H)`.
    pub bias: Tensor<1>,
}

impl Effective {
    /// Hidden units `H`.
    pub fn hidden(&self) -> usize {
        self.w.dims()[0]
    }

    /// One step: `h_t = ReLU((x_t Uᵀ + b) + h_{t−1} Wᵀ)` for `x_t (B, d)`, `h (B, H)`.
    pub fn step(&self, x_t: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
        let input = x_t.matmul(self.u.clone().transpose()) + self.bias.clone().unsqueeze();
        relu(input + h.matmul(self.w.clone().transpose()))
    }

    /// Every state `h_1..h_T` as `(B, T, H)` for `xs (B, T, d)`, step by step with tensor
    /// ops (the reference of the fused op).
    pub fn states_plain(&self, xs: Tensor<3>) -> Tensor<3> {
        let [b, steps, d] = xs.dims();
        let h0 = Tensor::zeros([b, self.hidden()], (&xs.device(), xs.dtype()));
        let mut h = h0;
        let mut all = Vec::with_capacity(steps);
        for t in 0..steps {
            let x_t = xs.clone().slice([0..b, t..t + 1, 0..d]).reshape([b, d]);
            h = self.step(x_t, h);
            all.push(h.clone());
        }
        Tensor::stack(all, 1)
    }

    /// The last state `h_T (B, H)`, step by step with tensor ops.
    pub fn last_plain(&self, xs: Tensor<3>) -> Tensor<2> {
        let [b, steps, _] = xs.dims();
        let h = self.hidden();
        if steps == 0 {
            return Tensor::zeros([b, h], (&xs.device(), xs.dtype()));
        }
        self.states_plain(xs)
            .slice([0..b, steps - 1..steps, 0..h])
            .reshape([b, h])
    }

    fn params(&self) -> RnnParams {
        let zero = Tensor::zeros([self.hidden()], (&self.w.device(), self.w.dtype()));
        RnnParams {
            u: self.u.clone(),
            u_bias: self.bias.clone(),
            v: self.w.clone(),
            v_bias: zero,
            act: RnnAct::Relu,
        }
    }

    /// The last state `h_T (B, H)`: the fused sequence op where it applies, else
    /// [`Effective::last_plain`].
    pub fn last(&self, xs: Tensor<3>) -> Tensor<2> {
        crate::fused::rnn_sequence(xs, self.params(), &|_| None, |xs| self.last_plain(xs))
    }

    /// Every state `(B, T, H)`: the fused sequence op where it applies, else
    /// [`Effective::states_plain`].
    pub fn states(&self, xs: Tensor<3>) -> Tensor<3> {
        crate::fused::rnn_states(xs, self.params(), |xs| self.states_plain(xs))
    }
}
