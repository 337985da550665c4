//! The update pipeline: exact correction factors, clipping, sign preservation, silent freezes.
#![allow(clippy::needless_range_loop)] // index loops mirror the hand computations

use std::collections::BTreeMap;

use crate::common::{device, host, labels, param_grads, uniform};
use dales::nn::{MlpConfig, ModelKind, ParamRole, Parameterised};
use dales::optim::{
    Clip, ClipScope, GroupRule, Method, Optimizer, Projection, RuleTable, UpdateRule,
};
use dales::train::cross_entropy;

fn small(kind: ModelKind, seed: u64) -> dales::nn::Mlp {
    MlpConfig {
        n_in: 20,
        hidden: vec![16, 12],
        n_out: 5,
        ni: Some(3),
        pixel_mean: Some(0.286),
        ..MlpConfig::paper(kind)
    }
    .init_seeded(seed, &device())
    .unwrap()
}

type Named = BTreeMap<String, (Option<ParamRole>, Vec<f64>)>;

fn snapshot<M: Parameterised>(m: &M) -> Named {
    m.param_layers()
        .into_iter()
        .flat_map(|l| {
            l.entries.into_iter().map(move |e| {
                (
                    format!("{}.{}", l.name, e.name),
                    (e.role, e.value.to_f64_vec()),
                )
            })
        })
        .collect()
}

/// Raw gradients of every trainable parameter on a fixed batch.
fn raw_grads(model: &dales::nn::Mlp) -> BTreeMap<String, Vec<f64>> {
    param_grads(model, uniform(8, 20, 1, &device()), &labels(8, 5))
}

fn step(model: dales::nn::Mlp, optim: &mut Optimizer, lr: f64) -> dales::nn::Mlp {
    let x = uniform(8, 20, 1, &device());
    let loss = cross_entropy(model.forward(x), &labels(8, 5));
    optim.step(lr, model, &mut loss.backward())
}

/// One corrected step against a hand computation: p − lr·∇/divisor, clamped where the spec
/// clamps. Divisors per layer (d = fan-in, ne = E units): Wix √ne, Wei d, α √ne·d, others 1.
#[test]
fn dann_correction_factors_exact() {
    let model = small(ModelKind::Dann, 1);
    let before = snapshot(&model);
    let grads = raw_grads(&model);
    let lr = 0.5;
    let mut optim = Optimizer::new(
        Method::SGD,
        Clip::NONE,
        RuleTable::for_kind(ModelKind::Dann),
    );
    let after = snapshot(&step(model, &mut optim, lr));
    let fans = [
        ("hidden.0", 20.0, 16.0),
        ("hidden.1", 16.0, 12.0),
        ("output", 12.0, 5.0),
    ];
    for (layer, d, ne) in fans {
        for (param, divisor, clamp) in [
            ("wex", 1.0, true),
            ("wix", f64::sqrt(ne), true),
            ("wei", d, true),
            ("alpha", f64::sqrt(ne) * d, false),
            ("gain", 1.0, true),
            ("bias", 1.0, false),
        ] {
            let name = format!("{layer}.{param}");
            let (p0, p1, g) = (&before[&name].1, &after[&name].1, &grads[&name]);
            for i in 0..p0.len() {
                let mut want = p0[i] - lr * g[i] / divisor;
                if clamp {
                    want = want.max(0.0);
                }
                assert!(
                    (p1[i] - want).abs() <= 1e-6 * (1.0 + want.abs()),
                    "{name}[{i}]: {} vs {want}",
                    p1[i]
                );
            }
        }
    }
}

/// dann_nocorr is the same update with every scale 1.
#[test]
fn dann_nocorr_uses_raw_gradients() {
    let model = small(ModelKind::DannNocorr, 2);
    let before = snapshot(&model);
    let grads = raw_grads(&model);
    let mut optim = Optimizer::new(
        Method::SGD,
        Clip::NONE,
        RuleTable::for_kind(ModelKind::DannNocorr),
    );
    let after = snapshot(&step(model, &mut optim, 0.01));
    for (name, g) in &grads {
        let clamp = !name.ends_with("alpha") && !name.ends_with("bias");
        for i in 0..g.len() {
            let mut want = before[name].1[i] - 0.01 * g[i];
            if clamp {
                want = want.max(0.0);
            }
            assert!(
                (after[name].1[i] - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "{name}[{i}]"
            );
        }
    }
}

/// Per-layer clipping: c = max/(‖g‖ + 1e-6) over the layer's corrected gradients, applied only
/// when c < 1; computed by hand here.
#[test]
fn per_layer_clipping_by_hand() {
    let model = small(ModelKind::Dann, 3);
    let before = snapshot(&model);
    let grads = raw_grads(&model);
    let rules = RuleTable::for_kind(ModelKind::Dann);
    let fans = [
        ("hidden.0", 20.0f64, 16.0f64),
        ("hidden.1", 16.0, 12.0),
        ("output", 12.0, 5.0),
    ];
    let divisor = |param: &str, d: f64, ne: f64| match param {
        "wix" => ne.sqrt(),
        "wei" => d,
        "alpha" => ne.sqrt() * d,
        _ => 1.0,
    };
    let norms: Vec<f64> = fans
        .iter()
        .map(|(l, d, ne)| {
            grads
                .iter()
                .filter(|(n, _)| n.starts_with(&format!("{l}.")))
                .flat_map(|(n, g)| {
                    let k = divisor(n.rsplit('.').next().unwrap(), *d, *ne);
                    g.iter().map(move |v| (v / k).powi(2))
                })
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    // A threshold between the norms so that some layers clip and others do not.
    let mut sorted = norms.clone();
    sorted.sort_by(f64::total_cmp);
    let max_norm = (sorted[0] * sorted[1]).sqrt();
    let clip = Clip {
        scope: ClipScope::Layer,
        max_norm,
        eps: 1e-6,
    };
    let mut optim = Optimizer::new(Method::SGD, clip, rules);
    let after = snapshot(&step(model, &mut optim, 0.5));
    for ((layer, d, ne), norm) in fans.iter().zip(&norms) {
        let c = (max_norm / (norm + 1e-6)).min(1.0);
        for param in ["wex", "wix", "wei", "alpha", "gain", "bias"] {
            let name = format!("{layer}.{param}");
            let k = divisor(param, *d, *ne);
            let clamp = !matches!(param, "alpha" | "bias");
            for i in 0..grads[&name].len() {
                let mut want = before[&name].1[i] - 0.5 * c * grads[&name][i] / k;
                if clamp {
                    want = want.max(0.0);
                }
                assert!(
                    (after[&name].1[i] - want).abs() <= 1e-6 * (1.0 + want.abs()),
                    "{name}[{i}]"
                );
            }
        }
    }
}

/// burn's silent-freeze trap: every trainable parameter must move, in every layer, after each
/// of the second and third steps (after a first write-back and projection, when the trap would
/// bite), for every model kind. (At the very first step one gradient is exactly zero: with
/// Wei = 1 in the output layer, subtractive inhibition shifts all logits alike and softmax is
/// shift-invariant.) DANN α is the exception: near init its gradient is
/// ≈ 1e-8 (spec A3.2) and a step at the paper's learning rates falls below the f32 resolution
/// of α, so it is checked on its own below.
#[test]
fn every_parameter_changes_after_a_step() {
    for kind in ModelKind::ALL {
        let mut optim = Optimizer::new(Method::SGD, Clip::NONE, RuleTable::for_kind(kind));
        let mut model = small(kind, 4);
        for s in 0..3 {
            let before = snapshot(&model);
            model = step(model, &mut optim, 0.05);
            for (name, (role, after)) in snapshot(&model) {
                let Some(role) = role else {
                    assert_eq!(
                        after, before[&name].1,
                        "{kind} {name}: a fixed buffer moved"
                    );
                    continue;
                };
                if role == ParamRole::Alpha {
                    continue;
                }
                if s > 0 {
                    assert_ne!(
                        after, before[&name].1,
                        "{kind} {name} did not move at step {s}"
                    );
                }
            }
        }
    }
}

/// Corrected α stays in the graph and is written back: with every other group's learning rate
/// at 0 and α's scaled up, every layer's α moves.
#[test]
fn corrected_alpha_is_trained() {
    let mut rules = RuleTable::for_kind(ModelKind::Dann);
    for (role, r) in rules.0.iter_mut() {
        r.lr_scale = if *role == ParamRole::Alpha { 1e6 } else { 0.0 };
    }
    let mut optim = Optimizer::new(Method::SGD, Clip::NONE, rules);
    let model = small(ModelKind::Dann, 4);
    let before = snapshot(&model);
    let after = snapshot(&step(model, &mut optim, 0.05));
    for (name, (role, v)) in after {
        if role == Some(ParamRole::Alpha) {
            assert_ne!(v, before[&name].1, "{name} did not move");
        } else {
            assert_eq!(v, before[&name].1, "{name} moved with lr 0");
        }
    }
}

/// Signs never flip over 1,000 large-learning-rate steps: projected GD for every sign-constrained
/// model, and exponentiated gradient on every parameter (biases included, whose signs EG keeps).
#[test]
fn signs_never_flip_over_1000_large_lr_steps() {
    let dev = device();
    let cases: Vec<(ModelKind, bool, f64)> = vec![
        (ModelKind::Dann, false, 1.0),
        (ModelKind::DannNocorr, false, 0.5),
        (ModelKind::DannSubtractive, false, 1.0),
        (ModelKind::ColumnEi, false, 1.0),
        (ModelKind::Dann, true, 0.5),
        (ModelKind::Mlp, true, 0.5),
    ];
    for (kind, eg, lr) in cases {
        let mut rules = RuleTable::for_kind(kind);
        if eg {
            for r in rules.0.values_mut() {
                *r = GroupRule {
                    update: UpdateRule::Eg,
                    ..*r
                };
            }
        }
        let mut optim = Optimizer::new(Method::SGD, Clip::NONE, rules.clone());
        let mut model = small(kind, 5);
        let signs0: BTreeMap<String, Vec<f64>> = snapshot(&model)
            .into_iter()
            .map(|(n, (_, v))| (n, v.iter().map(|x| x.signum()).collect()))
            .collect();
        for s in 0..1000u64 {
            let x = uniform(8, 20, 100 + s, &dev);
            let loss = cross_entropy(model.forward(x), &labels(8, 5));
            model = optim.step(lr, model, &mut loss.backward());
            if s % 50 != 49 {
                continue;
            }
            for (name, (role, v)) in snapshot(&model) {
                let Some(role) = role else { continue };
                let rule = rules.get(role).unwrap();
                if rule.projection == Projection::NonNegative {
                    assert!(
                        v.iter().all(|&x| x >= 0.0),
                        "{kind} {name} negative at step {s}"
                    );
                }
                if eg {
                    for (x, s0) in v.iter().zip(&signs0[&name]) {
                        assert!(
                            x.signum() == *s0 || (*x == 0.0 && *s0 >= 0.0) || *s0 == 0.0,
                            "{kind} EG {name}: sign flipped at step {s}"
                        );
                    }
                }
            }
        }
        let loss = cross_entropy(model.forward(uniform(8, 20, 1, &dev)), &labels(8, 5));
        assert!(host(loss)[0].is_finite(), "{kind}: loss diverged");
    }
}

/// A model with a role the table does not cover is rejected before training.
#[test]
fn missing_rule_is_a_typed_error() {
    let model = small(ModelKind::Dann, 6);
    let optim = Optimizer::new(Method::SGD, Clip::NONE, RuleTable::for_kind(ModelKind::Mlp));
    let err = optim.check(&model).unwrap_err().to_string();
    assert!(
        err.contains("optim.groups.wex") && err.contains("hidden.0.wex"),
        "{err}"
    );
}

/// Momentum and Adam state survive an export/import round trip exactly.
#[test]
fn optimizer_state_round_trip() {
    for method in [
        Method::Sgd {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
        },
        Method::ADAM,
    ] {
        let rules = RuleTable::for_kind(ModelKind::Dann);
        let mut a = Optimizer::new(method, Clip::NONE, rules.clone());
        let model = step(small(ModelKind::Dann, 7), &mut a, 0.01);
        let mut b = Optimizer::new(method, Clip::NONE, rules);
        b.import_state(a.steps(), a.export_state()).unwrap();
        let ma = snapshot(&step(model.clone(), &mut a, 0.01));
        let mb = snapshot(&step(model, &mut b, 0.01));
        assert_eq!(ma, mb);
    }
}

/// Weight decay (spec D1/D2) against a hand computation over three steps, for gradient descent
/// and EG under SGD with momentum (decay added to the gradient: λ·w, or λ·sign(w)) and under
/// AdamW (decoupled: w·(1 − lr·λ) before the step). The hand computation keeps its own
/// momentum and moments in f64 and starts each step from the model's weights.
#[test]
fn weight_decay_by_hand_for_sgd_and_adamw_with_gd_and_eg() {
    let (lr, lambda, mu) = (0.05, 0.3, 0.9);
    let sgd = Method::Sgd {
        momentum: mu,
        dampening: 0.0,
        nesterov: false,
    };
    for (method, update) in [
        (sgd, UpdateRule::Gd),
        (sgd, UpdateRule::Eg),
        (Method::ADAMW, UpdateRule::Gd),
        (Method::ADAMW, UpdateRule::Eg),
    ] {
        let mut rules = RuleTable::for_kind(ModelKind::Mlp);
        for r in rules.0.values_mut() {
            *r = GroupRule {
                update,
                weight_decay: lambda,
                ..*r
            };
        }
        let mut optim = Optimizer::new(method, Clip::NONE, rules);
        let mut model = small(ModelKind::Mlp, 7);
        // Per parameter: the momentum buffer, or Adam's (m, v).
        let mut state: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for t in 1..=3i32 {
            let before = snapshot(&model);
            let grads = raw_grads(&model);
            model = step(model, &mut optim, lr);
            let after = snapshot(&model);
            for (name, g) in &grads {
                let w0 = &before[name].1;
                let (a, b) = state
                    .entry(name.clone())
                    .or_insert_with(|| (vec![0.0; g.len()], vec![0.0; g.len()]));
                for i in 0..g.len() {
                    let sign = if w0[i] == 0.0 { 0.0 } else { w0[i].signum() };
                    let (w, u) = if method == Method::ADAMW {
                        let w = w0[i] * (1.0 - lr * lambda);
                        a[i] = 0.9 * a[i] + 0.1 * g[i];
                        b[i] = 0.999 * b[i] + 0.001 * g[i] * g[i];
                        let (bc1, bc2) = (1.0 - 0.9f64.powi(t), 1.0 - 0.999f64.powi(t));
                        (w, (a[i] / bc1) / (b[i].sqrt() / bc2.sqrt() + 1e-8))
                    } else {
                        let pull = if update == UpdateRule::Eg {
                            sign
                        } else {
                            w0[i]
                        };
                        let d = g[i] + lambda * pull;
                        a[i] = if t == 1 { d } else { mu * a[i] + d };
                        (w0[i], a[i])
                    };
                    let want = match update {
                        UpdateRule::Gd => w - lr * u,
                        UpdateRule::Eg => w * (-lr * sign * u).exp(),
                    };
                    let got = after[name].1[i];
                    assert!(
                        (got - want).abs() <= 2e-5 * (1.0 + want.abs()),
                        "{method:?} {update:?} step {t} {name}[{i}]: {got} vs {want}"
                    );
                    if update == UpdateRule::Eg {
                        assert!(got * w0[i] > 0.0 || w0[i] == 0.0 && got == 0.0);
                    }
                }
            }
        }
    }
}
