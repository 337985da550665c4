//! Parameter groups: every parameter role maps to one [`GroupRule`].
//!
//! A rule is data: a learning-rate scale, a gradient scale (the DANN corrections are scales),
//! an update rule (gradient descent or exponentiated gradient) and a projection. The default
//! tables below read like spec A3: `dann` differs from `dann_nocorr` only in its scales.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nn::{Fan, ModelKind, ParamRole};

/// Factor applied to a gradient before anything else (spec A3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GradScale {
    /// Unchanged.
    One,
    /// ∇ / √ne — DANN `Wix`.
    InvSqrtNe,
    /// ∇ / d — DANN `Wei` (d = the layer's fan-in).
    InvFanIn,
    /// ∇ / (√ne · d) — DANN `alpha`.
    InvSqrtNeFanIn,
}

impl GradScale {
    /// The gradient is divided by this number for a layer with fan sizes `fan`.
    pub fn divisor(self, fan: Fan) -> f64 {
        let (ne, d) = (fan.ne as f64, fan.d as f64);
        match self {
            GradScale::One => 1.0,
            GradScale::InvSqrtNe => ne.sqrt(),
            GradScale::InvFanIn => d,
            GradScale::InvSqrtNeFanIn => ne.sqrt() * d,
        }
    }
}

/// How a parameter moves along its update direction `u` (spec D1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateRule {
    /// Gradient descent: p ← p − lr·u.
    Gd,
    /// Exponentiated gradient: p ← p ⊙ exp(−lr·sign(p) ⊙ u). Signs never change; zeros stay 0.
    Eg,
}

/// What is done to a parameter after its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Projection {
    /// Nothing.
    None,
    /// p ← max(p, 0).
    NonNegative,
    /// p ← max(p·s, 1e-9)·s with s the signs before the first step (spec B3, `WClampMixin`):
    /// a weight that would cross 0 sticks at ±1e-9; a weight that started at 0 stays 0.
    SignFreeze,
    /// p ← max(p, 0), then the I→I block of a recurrent matrix set to 0 (spec B3,
    /// `ablate_ii`): rows and columns from the path's `ne` on.
    NonNegativeNoIi,
    /// The I→I block set to 0 without the clamp.
    NoIi,
}

impl Projection {
    /// Whether the projection zeroes the I→I block.
    pub fn ablates_ii(self) -> bool {
        matches!(self, Projection::NonNegativeNoIi | Projection::NoIi)
    }
}

/// The magnitude a sign-frozen weight sticks at instead of crossing 0 (spec B3).
pub const SIGN_FREEZE_FLOOR: f64 = 1e-9;

/// The update settings of one parameter group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRule {
    /// Multiplies the optimiser's learning rate.
    #[serde(default = "one")]
    pub lr_scale: f64,
    /// Gradient scale applied first.
    #[serde(default = "grad_one")]
    pub grad_scale: GradScale,
    /// Gradient descent or exponentiated gradient.
    #[serde(default = "gd")]
    pub update: UpdateRule,
    /// Projection after the step.
    #[serde(default = "no_projection")]
    pub projection: Projection,
    /// Weight decay λ (spec D1/D2): added to the gradient as λ·p (gradient descent) or
    /// λ·sign(p) (EG, shrinking |p| under the multiplicative step), or with AdamW decoupled as
    /// p ← p·(1 − lr·λ) before the step. 0: none.
    #[serde(default)]
    pub weight_decay: f64,
}

fn one() -> f64 {
    1.0
}
fn grad_one() -> GradScale {
    GradScale::One
}
fn gd() -> UpdateRule {
    UpdateRule::Gd
}
fn no_projection() -> Projection {
    Projection::None
}

impl GroupRule {
    /// Plain gradient descent, no scale, no projection.
    pub const PLAIN: GroupRule = GroupRule {
        lr_scale: 1.0,
        grad_scale: GradScale::One,
        update: UpdateRule::Gd,
        projection: Projection::None,
        weight_decay: 0.0,
    };
    /// Gradient descent, then clamp at 0 (Dale's sign constraint).
    pub const NON_NEGATIVE: GroupRule = GroupRule {
        projection: Projection::NonNegative,
        ..GroupRule::PLAIN
    };

    /// This rule with another gradient scale.
    pub const fn scaled(self, grad_scale: GradScale) -> GroupRule {
        GroupRule { grad_scale, ..self }
    }

    /// This rule with another projection.
    pub const fn projected(self, projection: Projection) -> GroupRule {
        GroupRule { projection, ..self }
    }

    /// Check the rule's numbers (`key` names it in errors).
    pub fn validate(&self, key: &str) -> Result<()> {
        if !(self.lr_scale.is_finite() && self.lr_scale >= 0.0) {
            return Err(Error::config(
                format!("{key}.lr_scale"),
                self.lr_scale,
                "a finite, non-negative number",
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::config(
                format!("{key}.weight_decay"),
                self.weight_decay,
                "a finite, non-negative number",
            ));
        }
        Ok(())
    }
}

/// Role → rule table of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RuleTable(pub BTreeMap<ParamRole, GroupRule>);

impl RuleTable {
    /// The paper's rules for a model kind (spec A3.1, A3.2, A3.6).
    pub fn for_kind(kind: ModelKind) -> RuleTable {
        use GradScale::*;
        use GroupRule as R;
        use ParamRole::*;
        let rows: Vec<(ParamRole, GroupRule)> = match kind {
            ModelKind::Mlp => vec![(Weight, R::PLAIN), (Bias, R::PLAIN)],
            ModelKind::LayerNorm => vec![
                (Weight, R::PLAIN),
                (Bias, R::PLAIN),
                (LnGain, R::PLAIN),
                (LnBias, R::PLAIN),
            ],
            ModelKind::ColumnEi => vec![(WPos, R::NON_NEGATIVE), (Bias, R::PLAIN)],
            ModelKind::Dann => vec![
                (Wex, R::NON_NEGATIVE),
                (Wix, R::NON_NEGATIVE.scaled(InvSqrtNe)),
                (Wei, R::NON_NEGATIVE.scaled(InvFanIn)),
                (Alpha, R::PLAIN.scaled(InvSqrtNeFanIn)),
                (Gain, R::NON_NEGATIVE),
                (Bias, R::PLAIN),
            ],
            ModelKind::DannNocorr => vec![
                (Wex, R::NON_NEGATIVE),
                (Wix, R::NON_NEGATIVE),
                (Wei, R::NON_NEGATIVE),
                (Alpha, R::PLAIN),
                (Gain, R::NON_NEGATIVE),
                (Bias, R::PLAIN),
            ],
            ModelKind::DannSubtractive => RuleTable::dann_subtractive(),
        };
        RuleTable(rows.into_iter().collect())
    }

    /// The rule of `role`, if the table has one.
    pub fn get(&self, role: ParamRole) -> Option<&GroupRule> {
        self.0.get(&role)
    }

    /// Validate every rule.
    pub fn validate(&self) -> Result<()> {
        for (role, rule) in &self.0 {
            rule.validate(&format!("optim.groups.{}", role.name()))?;
        }
        Ok(())
    }

    /// The DANN rules of spec A3.2 / B3 for the roles `Wex`, `Wix`, `Wei` and `Bias`
    /// (subtractive layers and recurrent DANN cells; `d` is the fan-in of each path).
    pub fn dann_subtractive() -> Vec<(ParamRole, GroupRule)> {
        use GradScale::*;
        use GroupRule as R;
        vec![
            (ParamRole::Wex, R::NON_NEGATIVE),
            (ParamRole::Wix, R::NON_NEGATIVE.scaled(InvSqrtNe)),
            (ParamRole::Wei, R::NON_NEGATIVE.scaled(InvFanIn)),
            (ParamRole::Bias, R::PLAIN),
        ]
    }

    /// A plain-text table of the rules, for logs and run directories.
    pub fn describe(&self) -> String {
        let decays = self.0.values().any(|r| r.weight_decay != 0.0);
        let mut s = format!(
            "{:<8} {:<10} {:<18} {:<4} {:<16}{}\n",
            "role",
            "lr_scale",
            "grad_scale",
            "rule",
            "projection",
            if decays { "weight_decay" } else { "" }
        );
        for (role, r) in &self.0 {
            let decay = if decays {
                r.weight_decay.to_string()
            } else {
                String::new()
            };
            let line = format!(
                "{:<8} {:<10} {:<18} {:<4} {:<16}{decay}",
                role.name(),
                r.lr_scale,
                format!("{:?}", r.grad_scale),
                format!("{:?}", r.update),
                format!("{:?}", r.projection),
            );
            let _ = writeln!(s, "{}", line.trim_end());
        }
        s.push_str(
            "(ne: the excitatory units of a parameter's path; d: its fan-in, the layer's inputs, \
             or for a recurrent cell n_in on the input path and the hidden size on the \
             recurrent path)\n",
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correction_factors_are_spec_a32() {
        let fan = Fan { d: 784, ne: 500 };
        assert_eq!(GradScale::One.divisor(fan), 1.0);
        assert_eq!(GradScale::InvSqrtNe.divisor(fan), 500f64.sqrt());
        assert_eq!(GradScale::InvFanIn.divisor(fan), 784.0);
        assert_eq!(
            GradScale::InvSqrtNeFanIn.divisor(fan),
            500f64.sqrt() * 784.0
        );
    }

    #[test]
    fn dann_and_nocorr_differ_only_in_scales() {
        let a = RuleTable::for_kind(ModelKind::Dann);
        let b = RuleTable::for_kind(ModelKind::DannNocorr);
        assert_eq!(
            a.0.keys().collect::<Vec<_>>(),
            b.0.keys().collect::<Vec<_>>()
        );
        for (role, ra) in &a.0 {
            let rb = b.get(*role).unwrap();
            assert_eq!(rb.grad_scale, GradScale::One);
            assert_eq!((ra.update, ra.projection), (rb.update, rb.projection));
        }
    }
}
