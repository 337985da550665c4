//! The update rules (spec D1): how a parameter moves along its update direction.

use burn::tensor::Tensor;

use super::group::{Projection, SIGN_FREEZE_FLOOR, UpdateRule};

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

/// The projection after a step. `fixed` is what a projection holds fixed, flattened as `p`:
/// the initial signs for [`Projection::SignFreeze`], the 0/1 mask of the kept entries for the
/// I→I ablations (see [`ii_mask`]); unused by the others.
///
/// # Panics
/// If a projection that needs `fixed` gets `None` (the optimiser always supplies it).
pub fn project(projection: Projection, p: Tensor<1>, fixed: Option<&Tensor<1>>) -> Tensor<1> {
    let fixed = || fixed.cloned().expect("the projection's fixed tensor");
    match projection {
        Projection::None => p,
        Projection::NonNegative => p.clamp_min(0.0),
        Projection::SignFreeze => {
            let s = fixed();
            (p * s.clone()).clamp_min(SIGN_FREEZE_FLOOR) * s
        }
        Projection::NonNegativeNoIi => p.clamp_min(0.0) * fixed(),
        Projection::NoIi => p * fixed(),
    }
}

/// The kept entries (1) of a square `(n, n)` recurrent matrix whose first `ne` units are
/// excitatory: all but the I→I block (rows and columns `ne..n`), row-major.
pub fn ii_mask(n: usize, ne: usize) -> Vec<f32> {
    (0..n * n)
        .map(|k| if k / n >= ne && k % n >= ne { 0.0 } else { 1.0 })
        .collect()
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
        let got = host(project(Projection::NonNegative, t(&[0.3, -0.4]), None));
        assert_eq!(got, vec![0.3, 0.0]);
        let got = host(project(Projection::None, t(&[-0.4]), None));
        assert_eq!(got, vec![-0.4]);
    }

    #[test]
    fn sign_freeze_and_ii_ablation() {
        // Initial signs +, −, 0, +: a crossing sticks at ±1e-9, a zero stays zero.
        let s = t(&[1.0, -1.0, 0.0, 1.0]);
        let got = host(project(
            Projection::SignFreeze,
            t(&[-0.5, 0.25, 0.7, 2.0]),
            Some(&s),
        ));
        assert_eq!(got, vec![1e-9, -1e-9, 0.0, 2.0]);
        // 3 units, 2 excitatory: only entry (2, 2) is I→I.
        let mask = ii_mask(3, 2);
        assert_eq!(mask, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
        let p = t(&[-1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let got = host(project(Projection::NonNegativeNoIi, p, Some(&t(&mask))));
        assert_eq!(got, vec![0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 0.0]);
    }
}
