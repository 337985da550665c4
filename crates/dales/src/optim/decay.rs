//! The learning-rate schedule of the spectral paper's adding problem (spec B4): the rate is
//! multiplied by `factor` every `every` updates, the first time before the first update, so
//! update `k` (0-based) runs at `lr · factor^(⌊k/every⌋ + 1)`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Step decay of the learning rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDecay {
    /// Multiplies the learning rate (the paper: 0.99).
    pub factor: f64,
    /// Updates between two decays (the paper: 20).
    pub every: u64,
}

impl StepDecay {
    /// Check the numbers.
    pub fn validate(&self) -> Result<()> {
        if !(self.factor > 0.0 && self.factor <= 1.0) {
            return Err(Error::config(
                "optim.decay.factor",
                self.factor,
                "a factor in (0, 1]",
            ));
        }
        if self.every == 0 {
            return Err(Error::config("optim.decay.every", 0, "at least 1 update"));
        }
        Ok(())
    }

    /// The factor on the base learning rate at update `step` (0-based).
    pub fn factor_at(&self, step: u64) -> f64 {
        let decays = step / self.every + 1;
        self.factor.powi(i32::try_from(decays).unwrap_or(i32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decays_before_the_first_update_and_every_20() {
        let d = StepDecay {
            factor: 0.99,
            every: 20,
        };
        assert_eq!(d.factor_at(0), 0.99);
        assert_eq!(d.factor_at(19), 0.99);
        assert!((d.factor_at(20) - 0.99 * 0.99).abs() < 1e-15);
        assert!((d.factor_at(1999) - 0.99f64.powi(100)).abs() < 1e-15);
        assert!(
            StepDecay {
                factor: 1.5,
                every: 1
            }
            .validate()
            .is_err()
        );
        assert!(
            StepDecay {
                factor: 0.5,
                every: 0
            }
            .validate()
            .is_err()
        );
    }
}
