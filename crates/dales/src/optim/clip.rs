//! Gradient-norm clipping (spec A3.3, E.2).
//!
//! c = max_norm / (‖g‖₂ + ε); gradients are multiplied by min(c, 1). The norm is taken over a
//! scope: a layer's parameters (DANN), each tensor alone (ColumnEI RNNs) or the whole model.
//! The coefficient stays a tensor, so clipping never waits for the device.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which gradients share one norm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipScope {
    /// No clipping.
    None,
    /// All parameters of a layer together (DANN, spec A3.3).
    Layer,
    /// Each parameter tensor on its own.
    Tensor,
    /// All parameters of the model together.
    Global,
}

/// Gradient clipping settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clip {
    /// Scope of the norm.
    pub scope: ClipScope,
    /// Threshold; ≤ 0 disables clipping.
    #[serde(default)]
    pub max_norm: f64,
    /// ε in the denominator (1e-6 in the DANN code, 1e-12 in the NeurIPS code).
    #[serde(default = "default_eps")]
    pub eps: f64,
}

fn default_eps() -> f64 {
    1e-6
}

impl Default for Clip {
    fn default() -> Self {
        Clip::NONE
    }
}

impl Clip {
    /// No clipping.
    pub const NONE: Clip = Clip {
        scope: ClipScope::None,
        max_norm: 0.0,
        eps: 1e-6,
    };

    /// Per-layer clipping at `max_norm` with ε = 1e-6.
    pub fn per_layer(max_norm: f64) -> Clip {
        Clip {
            scope: ClipScope::Layer,
            max_norm,
            eps: 1e-6,
        }
    }

    /// Whether clipping does anything.
    pub fn is_active(&self) -> bool {
        self.scope != ClipScope::None && self.max_norm > 0.0
    }

    /// Check the numbers.
    pub fn validate(&self) -> Result<()> {
        if !self.max_norm.is_finite() {
            return Err(Error::config(
                "optim.clip.max_norm",
                self.max_norm,
                "a finite number",
            ));
        }
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return Err(Error::config(
                "optim.clip.eps",
                self.eps,
                "a non-negative number",
            ));
        }
        Ok(())
    }
}

/// Squared 2-norm of a gradient, as a 1-element tensor.
pub fn squared_norm(g: &Tensor<1>) -> Tensor<1> {
    g.clone().square().sum()
}

/// min(max_norm / (√sq + ε), 1) as a 1-element tensor.
pub fn coefficient(squared_norm: Tensor<1>, clip: &Clip) -> Tensor<1> {
    (squared_norm.sqrt() + clip.eps)
        .recip()
        .mul_scalar(clip.max_norm)
        .clamp_max(1.0)
}
