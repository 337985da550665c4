//! The update rules (spec D1): how a parameter moves along its update direction.

use burn::tensor::Tensor;

use super::group::{Projection, UpdateRule};

/// One step of `rule` with learning rate `lr` along direction `u`.
///
/// - [`UpdateRule::Gd`]: p − lr·u.
/// - [`UpdateRule::Eg`]: p ⊙ exp(−lr·sign(p) ⊙ u): multiplicative, so signs never change.
pub fn apply(rule: UpdateRule, p: Tensor<1>, u: Tensor<1>, lr: f64) -> Tensor<1> {
    match rule {
        UpdateRule::Gd => p - u * lr,
        UpdateRule::Eg => p.clone() * (p.sign() * u * (-lr)).exp(),
    }
}

/// The projection after a step.
pub fn project(projection: Projection, p: Tensor<1>) -> Tensor<1> {
    match projection {
        Projection::None => p,
        Projection::NonNegative => p.clamp_min(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_util::{host, t};

    #[test]
    fn eg_step_formula() {
        let w = [0.5f32, -2.0, 0.0, 3.0];
        let u = [0.3f32, 0.7, 5.0, -1.5];
        let lr = 0.1;
        let got = host(apply(UpdateRule::Eg, t(&w), t(&u), lr));
        for i in 0..4 {
            let (wi, ui) = (w[i] as f64, u[i] as f64);
            let want = wi * (-lr * wi.signum() * ui).exp();
            let want = if wi == 0.0 { 0.0 } else { want };
            assert!(
                (got[i] as f64 - want).abs() < 1e-6,
                "{i}: {} vs {want}",
                got[i]
            );
        }
        // signs preserved, zero stays zero
        assert!(got[0] > 0.0 && got[1] < 0.0 && got[2] == 0.0 && got[3] > 0.0);
    }

    #[test]
    fn gd_step_and_projection() {
        let got = host(apply(UpdateRule::Gd, t(&[1.0, 0.1]), t(&[2.0, 1.0]), 0.5));
        assert_eq!(got, vec![0.0, -0.4]);
        let got = host(project(Projection::NonNegative, t(&[0.3, -0.4])));
        assert_eq!(got, vec![0.3, 0.0]);
        let got = host(project(Projection::None, t(&[-0.4])));
        assert_eq!(got, vec![-0.4]);
    }
}
