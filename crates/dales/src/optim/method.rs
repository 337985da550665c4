//! Update directions: SGD (± momentum, as PyTorch) and Adam (as PyTorch, no weight decay).
//!
//! A method turns a (corrected, clipped) gradient into the direction `u` that the update rule
//! follows; for the exponentiated-gradient rule this reproduces SGD-EG and Adam-EG of spec D1/D2.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The optimiser method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum Method {
    /// Stochastic gradient descent. buf ← μ·buf + (1 − dampening)·g (buf = g at the first
    /// step); u = g + μ·buf with Nesterov, else u = buf; u = g when μ = 0.
    Sgd {
        /// Momentum μ (0 = none, the papers' setting).
        #[serde(default)]
        momentum: f64,
        /// Dampening of the momentum buffer.
        #[serde(default)]
        dampening: f64,
        /// Nesterov momentum.
        #[serde(default)]
        nesterov: bool,
    },
    /// Adam: m ← β1 m + (1−β1) g, v ← β2 v + (1−β2) g², u = m̂ / (√v̂ + ε).
    Adam {
        /// β1.
        #[serde(default = "beta1")]
        beta1: f64,
        /// β2.
        #[serde(default = "beta2")]
        beta2: f64,
        /// ε.
        #[serde(default = "adam_eps")]
        eps: f64,
    },
}

fn beta1() -> f64 {
    0.9
}
fn beta2() -> f64 {
    0.999
}
fn adam_eps() -> f64 {
    1e-8
}

impl Method {
    /// Plain SGD, no momentum.
    pub const SGD: Method = Method::Sgd {
        momentum: 0.0,
        dampening: 0.0,
        nesterov: false,
    };

    /// Adam with PyTorch's defaults.
    pub const ADAM: Method = Method::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };

    /// Check the numbers; errors name the key under `optim`.
    pub fn validate(&self) -> Result<()> {
        let unit = |key: &str, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::config(
                    format!("optim.{key}"),
                    v,
                    "a number in [0, 1)",
                ))
            }
        };
        match *self {
            Method::Sgd {
                momentum,
                dampening,
                nesterov,
            } => {
                unit("momentum", momentum)?;
                if !(0.0..=1.0).contains(&dampening) {
                    return Err(Error::config(
                        "optim.dampening",
                        dampening,
                        "a number in [0, 1]",
                    ));
                }
                if nesterov && (momentum == 0.0 || dampening != 0.0) {
                    return Err(Error::config(
                        "optim.nesterov",
                        true,
                        "momentum > 0 and dampening = 0 for Nesterov momentum",
                    ));
                }
                Ok(())
            }
            Method::Adam { beta1, beta2, eps } => {
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                if !(eps.is_finite() && eps > 0.0) {
                    return Err(Error::config("optim.eps", eps, "a positive number"));
                }
                Ok(())
            }
        }
    }
}

/// Per-parameter state of a method.
// With the `gpu` feature a tensor handle is 640 bytes, so Adam's two outweigh momentum's one;
// there is one slot per parameter tensor, so boxing would save nothing that matters.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum SlotState {
    /// SGD momentum buffer.
    Momentum(Tensor<1>),
    /// Adam first and second moments.
    Adam {
        /// First moment m.
        m: Tensor<1>,
        /// Second moment v.
        v: Tensor<1>,
    },
}

/// The direction `u` for gradient `g` at step `t` (1-based), updating `state`.
pub fn direction(method: Method, g: Tensor<1>, state: &mut Option<SlotState>, t: u64) -> Tensor<1> {
    match method {
        Method::Sgd {
            momentum,
            dampening,
            nesterov,
        } => {
            if momentum == 0.0 {
                return g;
            }
            let buf = match state.take() {
                Some(SlotState::Momentum(buf)) => buf * momentum + g.clone() * (1.0 - dampening),
                _ => g.clone(),
            };
            *state = Some(SlotState::Momentum(buf.clone()));
            if nesterov { g + buf * momentum } else { buf }
        }
        Method::Adam { beta1, beta2, eps } => {
            let (m, v) = match state.take() {
                Some(SlotState::Adam { m, v }) => (m, v),
                _ => (g.zeros_like(), g.zeros_like()),
            };
            let m = m * beta1 + g.clone() * (1.0 - beta1);
            let v = v * beta2 + g.square() * (1.0 - beta2);
            let bc1 = 1.0 - beta1.powi(t as i32);
            let bc2 = 1.0 - beta2.powi(t as i32);
            let u = (m.clone() / bc1) / ((v.clone().sqrt() / bc2.sqrt()) + eps);
            *state = Some(SlotState::Adam { m, v });
            u
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_util::{host, t};

    #[test]
    fn momentum_matches_pytorch_recursion() {
        let m = Method::Sgd {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
        };
        let mut s = None;
        assert_eq!(host(direction(m, t(&[1.0]), &mut s, 1)), vec![1.0]);
        // buf = 0.9·1 + 2 = 2.9
        assert!((host(direction(m, t(&[2.0]), &mut s, 2))[0] - 2.9).abs() < 1e-6);
    }

    /// Adam's first step is g/(|g| + ε) = sign(g) up to ε, whatever the betas.
    #[test]
    fn adam_first_step_is_sign() {
        let mut s = None;
        let u = host(direction(Method::ADAM, t(&[0.3, -4.0]), &mut s, 1));
        assert!((u[0] - 1.0).abs() < 1e-6 && (u[1] + 1.0).abs() < 1e-6);
    }

    #[test]
    fn bad_numbers_name_the_key() {
        let e = Method::Sgd {
            momentum: 1.5,
            dampening: 0.0,
            nesterov: false,
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("optim.momentum"), "{e}");
    }
}
