//! Update directions: SGD (± momentum, as PyTorch), Adam and AdamW (as PyTorch).
//!
//! A method turns a (corrected, clipped, decayed) gradient into the direction `u` that the
//! update rule follows; for the exponentiated-gradient rule this reproduces SGD-EG and
//! AdamW-EG of spec D1/D2. The method also says how a group's weight decay λ enters: SGD and
//! Adam add it to the gradient (λ·p for gradient descent, λ·sign(p) for EG, spec D1), AdamW
//! decouples it (p ← p·(1 − lr·λ) before the step, spec D2).

use std::fmt;

use burn::tensor::Tensor;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The optimiser method. In a configuration it is the `[optim]` table's `method` key
/// (`"sgd"`, the default, `"adam"` or `"adamw"`) beside that method's settings, each defaulting to the
/// value in [`Method::SGD`] or [`Method::ADAM`]:
///
/// ```toml
/// [optim]
/// method = "adam"
/// lr = 1e-3
/// beta2 = 0.99
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// Stochastic gradient descent. buf ← μ·buf + (1 − dampening)·g (buf = g at the first
    /// step); u = g + μ·buf with Nesterov, else u = buf; u = g when μ = 0.
    Sgd {
        /// Momentum μ (0 = none, the papers' setting).
        momentum: f64,
        /// Dampening of the momentum buffer.
        dampening: f64,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// Adam: m ← β1 m + (1−β1) g, v ← β2 v + (1−β2) g², u = m̂ / (√v̂ + ε).
    Adam {
        /// β1.
        beta1: f64,
        /// β2.
        beta2: f64,
        /// ε.
        eps: f64,
        /// AdamW: weight decay decoupled from the gradient (`"adamw"` in a configuration).
        decoupled: bool,
    },
    /// The diagonal natural gradient of DANN networks (spec A3.7, [`super::dngd`]): the
    /// gradient multiplied by the inverse of a moving-average diagonal Fisher, then plain SGD.
    Dngd {
        /// f_λ, the Fisher's scale.
        f_lambda: f64,
        /// c, the moving average's weight of the newest estimate.
        f_ma_scale: f64,
        /// Divide each layer's F⁻¹ by the norm of its `wex` block.
        scale_finv_by_norm_wex_finv: bool,
    },
}

/// The settings of each method, as configuration keys.
const SGD_KEYS: &[&str] = &["momentum", "dampening", "nesterov"];
const ADAM_KEYS: &[&str] = &["beta1", "beta2", "eps"];
const DNGD_KEYS: &[&str] = &["f_lambda", "f_ma_scale", "scale_finv_by_norm_wex_finv"];
/// The settings that are flags (true or false).
const FLAG_KEYS: &[&str] = &["nesterov", "scale_finv_by_norm_wex_finv"];

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
        decoupled: false,
    };

    /// d-NGD with the published settings (spec A5: f_λ 2.5e-5, c 0.02, F⁻¹ scaled by its
    /// `wex` norm).
    pub const DNGD: Method = Method::Dngd {
        f_lambda: 2.5e-5,
        f_ma_scale: 0.02,
        scale_finv_by_norm_wex_finv: true,
    };

    /// AdamW with PyTorch's defaults (the decay λ is a group setting, `optim.weight_decay`).
    pub const ADAMW: Method = Method::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        decoupled: true,
    };

    /// The method's name in a configuration.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Sgd { .. } => "sgd",
            Method::Adam {
                decoupled: false, ..
            } => "adam",
            Method::Adam {
                decoupled: true, ..
            } => "adamw",
            Method::Dngd { .. } => "dngd",
        }
    }

    /// The configuration keys of the method's settings.
    fn keys(&self) -> &'static [&'static str] {
        match self {
            Method::Sgd { .. } => SGD_KEYS,
            Method::Adam { .. } => ADAM_KEYS,
            Method::Dngd { .. } => DNGD_KEYS,
        }
    }

    /// Whether weight decay is decoupled from the gradient (AdamW).
    pub fn decoupled_decay(&self) -> bool {
        matches!(
            self,
            Method::Adam {
                decoupled: true,
                ..
            }
        )
    }

    /// Set the configuration key `key` (one of the method's settings) to `value`.
    fn set(&mut self, key: &str, value: Setting) -> std::result::Result<(), String> {
        let own = self.keys();
        if !own.contains(&key) {
            return Err(format!(
                "`optim.{key}` is not a setting of method = \"{}\", which takes {}",
                self.name(),
                own.join(", ")
            ));
        }
        match (self, key, value) {
            (Method::Sgd { momentum, .. }, "momentum", Setting::Number(v)) => *momentum = v,
            (Method::Sgd { dampening, .. }, "dampening", Setting::Number(v)) => *dampening = v,
            (Method::Sgd { nesterov, .. }, "nesterov", Setting::Flag(v)) => *nesterov = v,
            (Method::Adam { beta1, .. }, "beta1", Setting::Number(v)) => *beta1 = v,
            (Method::Adam { beta2, .. }, "beta2", Setting::Number(v)) => *beta2 = v,
            (Method::Adam { eps, .. }, "eps", Setting::Number(v)) => *eps = v,
            (Method::Dngd { f_lambda, .. }, "f_lambda", Setting::Number(v)) => *f_lambda = v,
            (Method::Dngd { f_ma_scale, .. }, "f_ma_scale", Setting::Number(v)) => *f_ma_scale = v,
            (
                Method::Dngd {
                    scale_finv_by_norm_wex_finv,
                    ..
                },
                "scale_finv_by_norm_wex_finv",
                Setting::Flag(v),
            ) => *scale_finv_by_norm_wex_finv = v,
            _ => return Err(format!("`optim.{key}`: {}", value.mismatch())),
        }
        Ok(())
    }

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
            Method::Adam {
                beta1, beta2, eps, ..
            } => {
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                if !(eps.is_finite() && eps > 0.0) {
                    return Err(Error::config("optim.eps", eps, "a positive number"));
                }
                Ok(())
            }
            Method::Dngd {
                f_lambda,
                f_ma_scale,
                ..
            } => {
                if !(f_lambda.is_finite() && f_lambda > 0.0) {
                    return Err(Error::config(
                        "optim.f_lambda",
                        f_lambda,
                        "a positive number",
                    ));
                }
                if !(f_ma_scale > 0.0 && f_ma_scale <= 1.0) {
                    return Err(Error::config(
                        "optim.f_ma_scale",
                        f_ma_scale,
                        "a number in (0, 1]",
                    ));
                }
                Ok(())
            }
        }
    }
}

/// A method setting's value as read from a configuration.
#[derive(Debug, Clone, Copy)]
enum Setting {
    Number(f64),
    Flag(bool),
}

impl Setting {
    fn mismatch(self) -> &'static str {
        match self {
            Setting::Number(_) => "expected true or false",
            Setting::Flag(_) => "expected a number",
        }
    }
}

/// Reads `method` and its settings from the keys of the `[optim]` table that the table itself
/// does not take (serde hands a flattened field the remaining keys).
impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = Method;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an optimiser method and its settings")
            }

            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Method, A::Error> {
                let mut name = None;
                let mut settings = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let named = |e: A::Error| de::Error::custom(format!("`optim.{key}`: {e}"));
                    match key.as_str() {
                        "method" => name = Some(map.next_value::<String>().map_err(named)?),
                        k if FLAG_KEYS.contains(&k) => settings
                            .push((key.clone(), Setting::Flag(map.next_value().map_err(named)?))),
                        k if [SGD_KEYS, ADAM_KEYS, DNGD_KEYS].concat().contains(&k) => settings
                            .push((
                                key.clone(),
                                Setting::Number(map.next_value().map_err(named)?),
                            )),
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown key `optim.{other}`: [optim] takes lr, clip, groups, \
                                 plateau, decay, weight_decay, method (\"sgd\", \"adam\", \
                                 \"adamw\" or \"dngd\"), {}, {}, {}",
                                SGD_KEYS.join(", "),
                                ADAM_KEYS.join(", "),
                                DNGD_KEYS.join(", ")
                            )));
                        }
                    }
                }
                let mut method = match name.as_deref() {
                    None | Some("sgd") => Method::SGD,
                    Some("adam") => Method::ADAM,
                    Some("adamw") => Method::ADAMW,
                    Some("dngd") => Method::DNGD,
                    Some(other) => {
                        return Err(de::Error::custom(format!(
                            "`optim.method` = \"{other}\": expected \"sgd\", \"adam\", \
                             \"adamw\" or \"dngd\""
                        )));
                    }
                };
                for (key, value) in settings {
                    method.set(&key, value).map_err(de::Error::custom)?;
                }
                Ok(method)
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

/// Writes `method` and every setting of it, as the keys [`Method`]'s `Deserialize` reads.
impl Serialize for Method {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("method", self.name())?;
        match *self {
            Method::Sgd {
                momentum,
                dampening,
                nesterov,
            } => {
                map.serialize_entry("momentum", &momentum)?;
                map.serialize_entry("dampening", &dampening)?;
                map.serialize_entry("nesterov", &nesterov)?;
            }
            Method::Adam {
                beta1, beta2, eps, ..
            } => {
                map.serialize_entry("beta1", &beta1)?;
                map.serialize_entry("beta2", &beta2)?;
                map.serialize_entry("eps", &eps)?;
            }
            Method::Dngd {
                f_lambda,
                f_ma_scale,
                scale_finv_by_norm_wex_finv,
            } => {
                map.serialize_entry("f_lambda", &f_lambda)?;
                map.serialize_entry("f_ma_scale", &f_ma_scale)?;
                map.serialize_entry("scale_finv_by_norm_wex_finv", &scale_finv_by_norm_wex_finv)?;
            }
        }
        map.end()
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
        // The natural gradient was formed from g before (the optimiser's first stage).
        Method::Dngd { .. } => g,
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
        Method::Adam {
            beta1, beta2, eps, ..
        } => {
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
