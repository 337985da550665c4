//! The learning-rate schedule of the adaptation paper: PyTorch's `ReduceLROnPlateau`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// PyTorch's `ReduceLROnPlateau` in `min` mode with a relative threshold: after each epoch,
/// the evaluation loss improves if it is below `best · (1 − threshold)`; after more than
/// `patience` epochs without improvement the learning rate is multiplied by `factor`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plateau {
    /// Multiplies the learning rate (PyTorch's default 0.1).
    #[serde(default = "default_factor")]
    pub factor: f64,
    /// Epochs without improvement tolerated (PyTorch's default 10).
    #[serde(default = "default_patience")]
    pub patience: usize,
    /// Relative improvement that counts (PyTorch's default 1e-4).
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_factor() -> f64 {
    0.1
}
fn default_patience() -> usize {
    10
}
fn default_threshold() -> f64 {
    1e-4
}

impl Default for Plateau {
    fn default() -> Self {
        Plateau {
            factor: default_factor(),
            patience: default_patience(),
            threshold: default_threshold(),
        }
    }
}

/// Where a [`Plateau`] schedule stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PlateauState {
    /// Lowest evaluation loss so far (none before the first epoch).
    pub best: Option<f64>,
    /// Epochs since it improved.
    pub bad_epochs: usize,
}

impl Plateau {
    /// Check the numbers.
    pub fn validate(&self) -> Result<()> {
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(Error::config(
                "optim.plateau.factor",
                self.factor,
                "a factor strictly between 0 and 1",
            ));
        }
        if !(self.threshold >= 0.0 && self.threshold < 1.0) {
            return Err(Error::config(
                "optim.plateau.threshold",
                self.threshold,
                "a relative threshold in [0, 1)",
            ));
        }
        Ok(())
    }

    /// The learning rate after an epoch that ended with evaluation loss `loss`.
    pub fn update(&self, state: &mut PlateauState, lr: f64, loss: f64) -> f64 {
        if state
            .best
            .is_none_or(|best| loss < best * (1.0 - self.threshold))
        {
            state.best = Some(loss);
            state.bad_epochs = 0;
            return lr;
        }
        state.bad_epochs += 1;
        if state.bad_epochs > self.patience {
            state.bad_epochs = 0;
            return lr * self.factor;
        }
        lr
    }
}
