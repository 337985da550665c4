//! The optimiser: the only place where the order of the update stages is written.
//!
//! For every parameter of every layer, in this order:
//! 1. **correction** — divide the gradient by its group's [`GradScale`](super::GradScale);
//! 2. **clip** — gradient-norm clipping over the configured [`ClipScope`];
//! 3. **decay** — the group's weight decay: added to the gradient (λ·p for gradient descent,
//!    λ·sign(p) for EG), or with AdamW applied to the parameter, p·(1 − lr·λ);
//! 4. **direction** — the method's update direction (SGD ± momentum, Adam);
//! 5. **step** — the group's rule, gradient descent or exponentiated gradient;
//! 6. **projection** — the group's projection (clamp ≥ 0, sign freezing, I→I ablation, or
//!    none).

use std::collections::BTreeMap;

use burn::tensor::{Gradients, Tensor};

use super::clip::{Clip, ClipScope, coefficient, squared_norm};
use super::dngd;
use super::group::{GroupRule, Projection, RuleTable, UpdateRule};
use super::method::{Method, SlotState, direction};
use super::rule::{apply, ii_mask, project};
use crate::error::{Error, Result};
use crate::nn::{ParamLayer, ParamValue, Parameterised};

/// Corrected, clipped, projected updates of a [`Parameterised`] model.
///
/// ```
/// use burn::tensor::{Device, Tensor, TensorData};
/// use dales::nn::{MlpConfig, ModelKind};
/// use dales::optim::{Clip, Method, Optimizer, RuleTable};
/// use dales::train::cross_entropy;
///
/// let device = dales::device::cpu().autodiff();
/// let config = MlpConfig { hidden: vec![16], ..MlpConfig::paper(ModelKind::Dann) };
/// let model = config.init_seeded(1, &device).unwrap();
/// let mut optim = Optimizer::new(Method::SGD, Clip::NONE, RuleTable::for_kind(ModelKind::Dann));
/// optim.check(&model).unwrap();
/// let x = Tensor::<2>::ones([4, 784], &device);
/// let loss = cross_entropy(model.forward(x), &[0, 1, 2, 3]);
/// let mut grads = loss.backward();
/// let model = optim.step(0.1, model, &mut grads);
/// ```
#[derive(Debug, Clone)]
pub struct Optimizer {
    method: Method,
    clip: Clip,
    rules: RuleTable,
    state: BTreeMap<String, SlotState>,
    /// The signs a [`Projection::SignFreeze`] parameter had before its first step.
    signs: BTreeMap<String, Tensor<1>>,
    /// d-NGD: the moving-average diagonal Fisher of each parameter.
    fisher: BTreeMap<String, Tensor<1>>,
    /// d-NGD: F⁻¹ of each parameter for the next step ([`Optimizer::precondition`]).
    natural: BTreeMap<String, Tensor<1>>,
    steps: u64,
}

impl Optimizer {
    /// A new optimiser with empty state.
    pub fn new(method: Method, clip: Clip, rules: RuleTable) -> Self {
        Optimizer {
            method,
            clip,
            rules,
            state: BTreeMap::new(),
            signs: BTreeMap::new(),
            fisher: BTreeMap::new(),
            natural: BTreeMap::new(),
            steps: 0,
        }
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// d-NGD (spec A3.7): fold the mean squared per-example gradients of this batch
    /// ([`dngd::mean_squares`]) into the Fisher, so that the next [`Optimizer::step`]
    /// multiplies each gradient by F⁻¹. Other methods ignore it.
    pub fn precondition(&mut self, squares: dngd::Named) {
        if let Method::Dngd {
            f_lambda,
            f_ma_scale,
            scale_finv_by_norm_wex_finv,
        } = self.method
        {
            let settings = (f_lambda, f_ma_scale, scale_finv_by_norm_wex_finv);
            self.natural = dngd::inverse(&mut self.fisher, squares, settings);
        }
    }

    /// The rule table and the clipping, as `rules.txt` of a run directory shows them.
    pub fn describe(&self) -> String {
        let clip = if self.clip.is_active() {
            format!(
                "clip: {:?} scope, max_norm {}, eps {:e} (c = max_norm / (‖g‖ + eps), applied \
                 when c < 1)",
                self.clip.scope, self.clip.max_norm, self.clip.eps
            )
        } else {
            "clip: none".to_string()
        };
        format!("{}{clip}\n", self.rules.describe())
    }

    /// The role → rule table.
    pub fn rules(&self) -> &RuleTable {
        &self.rules
    }

    /// Number of steps taken (Adam's bias correction counts from it).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Check that every trainable parameter of `model` has a rule, before training starts.
    pub fn check<M: Parameterised>(&self, model: &M) -> Result<()> {
        self.method.validate()?;
        self.clip.validate()?;
        self.rules.validate()?;
        for layer in model.param_layers() {
            for e in &layer.entries {
                let Some(role) = e.role else { continue };
                let Some(rule) = self.rules.get(role) else {
                    return Err(Error::config(
                        format!("optim.groups.{}", role.name()),
                        "(missing)",
                        format!("a rule for parameter {}.{}", layer.name, e.name),
                    ));
                };
                let shape = e.value.shape();
                if rule.projection.ablates_ii() && !(shape.len() == 2 && shape[0] == shape[1]) {
                    return Err(Error::config(
                        format!("optim.groups.{}.projection", role.name()),
                        format!("{:?}", rule.projection),
                        format!(
                            "a projection that fits {}.{} (shape {shape:?}): the I→I \
                             ablation is for square recurrent matrices",
                            layer.name, e.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// One update of every parameter of `model` with learning rate `lr`, from `grads`.
    ///
    /// # Panics
    /// If a trainable parameter has no gradient: it fell out of the autodiff graph, which would
    /// otherwise silently freeze it.
    pub fn step<M: Parameterised>(&mut self, lr: f64, model: M, grads: &mut Gradients) -> M {
        self.steps += 1;
        let layers = model.param_layers();
        let mut layer_grads: Vec<Vec<Option<Tensor<1>>>> =
            layers.iter().map(|l| self.corrected(l, grads)).collect();
        self.clip_grads(&mut layer_grads);
        let values = layers
            .into_iter()
            .zip(layer_grads)
            .map(|(layer, grads)| self.update_layer(lr, layer, grads))
            .collect();
        model.with_layer_values(values)
    }

    /// Stage 1: each trainable parameter's gradient divided by its group's scale, or with
    /// d-NGD multiplied by its F⁻¹ (non-finite entries zeroed).
    fn corrected(&self, layer: &ParamLayer, grads: &mut Gradients) -> Vec<Option<Tensor<1>>> {
        layer
            .entries
            .iter()
            .map(|e| {
                let rule = self
                    .rules
                    .get(e.role?)
                    .expect("checked by Optimizer::check");
                let g = grad_remove(&e.value, grads).unwrap_or_else(|| {
                    panic!(
                        "parameter {}.{} has no gradient: it is not a trainable leaf of the \
                         graph and would silently stop training",
                        layer.name, e.name
                    )
                });
                if let Some(finv) = self.natural.get(&format!("{}.{}", layer.name, e.name)) {
                    return Some(dngd::natural(finv, g));
                }
                let divisor = rule.grad_scale.divisor(e.fan.unwrap_or(layer.fan));
                Some(if divisor == 1.0 { g } else { g / divisor })
            })
            .collect()
    }

    /// Stage 2: gradient-norm clipping in place.
    fn clip_grads(&self, layer_grads: &mut [Vec<Option<Tensor<1>>>]) {
        if !self.clip.is_active() {
            return;
        }
        let scale = |gs: &mut dyn Iterator<Item = &mut Tensor<1>>, clip: &Clip| {
            let gs: Vec<&mut Tensor<1>> = gs.collect();
            let Some(sq) = gs.iter().map(|g| squared_norm(g)).reduce(|a, b| a + b) else {
                return;
            };
            let c = coefficient(sq, clip);
            for g in gs {
                *g = g.clone() * c.clone();
            }
        };
        match self.clip.scope {
            ClipScope::None => {}
            ClipScope::Tensor => layer_grads
                .iter_mut()
                .flatten()
                .flatten()
                .for_each(|g| scale(&mut std::iter::once(g), &self.clip)),
            ClipScope::Layer => layer_grads
                .iter_mut()
                .for_each(|l| scale(&mut l.iter_mut().flatten(), &self.clip)),
            ClipScope::Global => scale(&mut layer_grads.iter_mut().flatten().flatten(), &self.clip),
        }
    }

    /// Stages 3–6 for one layer: decay, direction, rule, projection.
    fn update_layer(
        &mut self,
        lr: f64,
        layer: ParamLayer,
        grads: Vec<Option<Tensor<1>>>,
    ) -> Vec<ParamValue> {
        let layer_fan = layer.fan;
        layer
            .entries
            .into_iter()
            .zip(grads)
            .map(|(e, g)| {
                let (Some(role), Some(g)) = (e.role, g) else {
                    return e.value;
                };
                let rule = *self.rules.get(role).expect("checked by Optimizer::check");
                let lr = lr * rule.lr_scale;
                let key = format!("{}.{}", layer.name, e.name);
                let p = e.value.flatten().without_autodiff();
                // Plain SGD with a pointwise projection: direction = gradient, so rule and
                // projection fuse into one pass.
                let pointwise =
                    matches!(rule.projection, Projection::None | Projection::NonNegative);
                if self.method == Method::SGD && pointwise && rule.weight_decay == 0.0 {
                    let flags = [
                        rule.update == UpdateRule::Eg,
                        rule.projection == Projection::NonNegative,
                    ];
                    let p = crate::fused::sgd_step(p, g, lr, flags, |p, g| {
                        project(rule.projection, apply(rule.update, p, g, lr), None)
                    });
                    return e.value.with_flat(p);
                }
                let fixed = match rule.projection {
                    Projection::SignFreeze => Some(
                        self.signs
                            .entry(key.clone())
                            .or_insert_with(|| p.clone().sign())
                            .clone(),
                    ),
                    Projection::NonNegativeNoIi | Projection::NoIi => {
                        let n = e.value.shape()[0];
                        let ne = e.fan.unwrap_or(layer_fan).ne.min(n);
                        Some(Tensor::from_data(
                            burn::tensor::TensorData::new(ii_mask(n, ne), [n * n]),
                            (&p.device(), p.dtype()),
                        ))
                    }
                    Projection::None | Projection::NonNegative => None,
                };
                let (p, g) = decayed(self.method, rule, lr, p, g);
                let mut slot = self.state.remove(&key);
                let u = direction(self.method, g, &mut slot, self.steps);
                if let Some(slot) = slot {
                    self.state.insert(key, slot);
                }
                let p = apply(rule.update, p, u, lr);
                e.value
                    .with_flat(project(rule.projection, p, fixed.as_ref()))
            })
            .collect()
    }

    /// The method state as named flat tensors (`<param>.momentum`, `.adam_m`, `.adam_v`,
    /// d-NGD's `.fisher`), and the initial signs of sign-frozen parameters (`.init_sign`).
    pub fn export_state(&self) -> Vec<(String, Tensor<1>)> {
        let mut out: Vec<(String, Tensor<1>)> = self
            .signs
            .iter()
            .map(|(key, s)| (format!("{key}.init_sign"), s.clone()))
            .chain(
                self.fisher
                    .iter()
                    .map(|(key, f)| (format!("{key}.fisher"), f.clone())),
            )
            .collect();
        for (key, slot) in &self.state {
            match slot {
                SlotState::Momentum(buf) => out.push((format!("{key}.momentum"), buf.clone())),
                SlotState::Adam { m, v } => {
                    out.push((format!("{key}.adam_m"), m.clone()));
                    out.push((format!("{key}.adam_v"), v.clone()));
                }
            }
        }
        out
    }

    /// Restore a state written by [`Optimizer::export_state`] after `steps` steps.
    pub fn import_state(&mut self, steps: u64, tensors: Vec<(String, Tensor<1>)>) -> Result<()> {
        let mut state = BTreeMap::new();
        let mut signs = BTreeMap::new();
        let mut fisher = BTreeMap::new();
        let mut adam: BTreeMap<String, (Option<Tensor<1>>, Option<Tensor<1>>)> = BTreeMap::new();
        for (name, t) in tensors {
            if let Some(key) = name.strip_suffix(".init_sign") {
                signs.insert(key.to_string(), t);
            } else if let Some(key) = name.strip_suffix(".fisher") {
                fisher.insert(key.to_string(), t);
            } else if let Some(key) = name.strip_suffix(".momentum") {
                state.insert(key.to_string(), SlotState::Momentum(t));
            } else if let Some(key) = name.strip_suffix(".adam_m") {
                adam.entry(key.to_string()).or_default().0 = Some(t);
            } else if let Some(key) = name.strip_suffix(".adam_v") {
                adam.entry(key.to_string()).or_default().1 = Some(t);
            } else {
                return Err(Error::config(
                    "optimizer state",
                    name,
                    "a name ending in .momentum, .adam_m, .adam_v, .fisher or .init_sign",
                ));
            }
        }
        for (key, pair) in adam {
            match pair {
                (Some(m), Some(v)) => {
                    state.insert(key, SlotState::Adam { m, v });
                }
                _ => {
                    return Err(Error::config(
                        "optimizer state",
                        key,
                        "both .adam_m and .adam_v",
                    ));
                }
            }
        }
        self.state = state;
        self.signs = signs;
        self.fisher = fisher;
        self.steps = steps;
        Ok(())
    }
}

/// Weight decay (spec D1/D2) of a parameter `p` with gradient `g` before the method's
/// direction: AdamW shrinks the parameter, p·(1 − lr·λ); the others add λ·p (gradient descent)
/// or λ·sign(p) (EG) to the gradient.
fn decayed(
    method: Method,
    rule: GroupRule,
    lr: f64,
    p: Tensor<1>,
    g: Tensor<1>,
) -> (Tensor<1>, Tensor<1>) {
    let lambda = rule.weight_decay;
    if lambda == 0.0 {
        return (p, g);
    }
    if method.decoupled_decay() {
        return (p * (1.0 - lr * lambda), g);
    }
    let pull = match rule.update {
        UpdateRule::Gd => p.clone(),
        UpdateRule::Eg => p.clone().sign(),
    };
    (p, g + pull * lambda)
}

/// The gradient of a parameter value, flattened.
fn grad_remove(value: &ParamValue, grads: &mut Gradients) -> Option<Tensor<1>> {
    match value {
        ParamValue::Vector(t) => t.grad_remove(grads),
        ParamValue::Matrix(t) => t.grad_remove(grads).map(|g| g.flatten(0, 1)),
    }
}
