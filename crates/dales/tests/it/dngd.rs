//! The diagonal natural gradient (spec A3.7): the analytic per-example gradients against
//! autodiff on each example alone, one update against a hand computation, and its refusals.

use std::collections::BTreeMap;

use crate::common::{device, host, param_grads, uniform};
use dales::config::TrainConfig;
use dales::nn::{Mlp, MlpConfig, ModelKind};
use dales::optim::dngd::mean_squares;
use dales::optim::{Clip, Method, Optimizer, RuleTable};
use dales::train::cross_entropy;

fn tiny(kind: ModelKind, ni: usize) -> Mlp {
    MlpConfig {
        n_in: 6,
        hidden: vec![5, 4],
        n_out: 3,
        ni: Some(ni),
        ..MlpConfig::paper(kind)
    }
    .init_seeded(4, &device())
    .unwrap()
}

fn close(got: &[f64], want: &[f64], what: &str) {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * scale + 1e-12,
            "{what}[{i}]: {g} vs {w} (scale {scale})"
        );
    }
}

/// The analytic per-example gradients, squared and averaged, equal autodiff's gradient of each
/// example's loss alone, squared and averaged, for every parameter of a two-hidden-layer DANN.
#[test]
fn per_example_squares_match_autodiff_on_each_example() {
    let model = tiny(ModelKind::DannNocorr, 1);
    let b = 5;
    let x = uniform(b, 6, 11, &device());
    let targets = [0, 2, 1, 2, 0];
    let analytic: BTreeMap<String, Vec<f64>> = mean_squares(&model, x.clone(), Some(&targets), 0)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, host(v)))
        .collect();
    let mut want: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for i in 0..b {
        let xi = x.clone().slice([i..i + 1, 0..6]);
        for (k, g) in param_grads(&model, xi, &targets[i..i + 1]) {
            let acc = want.entry(k).or_insert_with(|| vec![0.0; g.len()]);
            for (a, v) in acc.iter_mut().zip(g) {
                *a += v * v / b as f64;
            }
        }
    }
    assert_eq!(
        analytic.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, w) in &want {
        close(&analytic[k], w, k);
    }
    // Sampled targets are a pure function of the seed.
    let a = mean_squares(&model, x.clone(), None, 7).unwrap();
    let b2 = mean_squares(&model, x, None, 7).unwrap();
    for ((ka, va), (kb, vb)) in a.into_iter().zip(b2) {
        assert_eq!((ka, host(va)), (kb, host(vb)));
    }
}

/// Two updates against a hand computation: F = f_λ·S then the moving average, F⁻¹ = 1/(F + ε)
/// scaled per layer by ‖F⁻¹_wex‖, p − lr·F⁻¹ ⊙ ∇, the clamp at 0 of the E/I weights and gains.
#[test]
fn two_updates_by_hand() {
    let (f_lambda, c, lr) = (2.5e-5, 0.02, 300.0);
    let mut model = tiny(ModelKind::DannNocorr, 1);
    let mut optim = Optimizer::new(
        Method::DNGD,
        Clip::NONE,
        RuleTable::for_kind(ModelKind::DannNocorr),
    );
    let mut fisher: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for step in 0..2u64 {
        let x = uniform(8, 6, 20 + step, &device());
        let targets = [0, 1, 2, 0, 1, 2, 1, 0];
        let squares = mean_squares(&model, x.clone(), None, 100 + step).unwrap();
        for (k, s) in &squares {
            let s = host(s.clone());
            let f = fisher
                .entry(k.clone())
                .or_insert_with(|| vec![f64::NAN; s.len()]);
            for (fi, si) in f.iter_mut().zip(&s) {
                *fi = if step == 0 {
                    f_lambda * si
                } else {
                    (1.0 - c) * *fi + c * f_lambda * si
                };
            }
        }
        let g = param_grads(&model, x.clone(), &targets);
        let before: BTreeMap<String, Vec<f64>> = model
            .named_entries()
            .into_iter()
            .map(|(k, e)| (k, e.value.to_f64_vec()))
            .collect();
        optim.precondition(squares);
        let loss = cross_entropy(model.forward(x), &targets);
        model = optim.step(lr, model, &mut loss.backward());
        for layer in ["hidden.0", "hidden.1", "output"] {
            let finv = |k: &str| -> Vec<f64> {
                fisher[&format!("{layer}.{k}")]
                    .iter()
                    .map(|f| 1.0 / (f + 1e-8))
                    .collect()
            };
            let norm = finv("wex").iter().map(|v| v * v).sum::<f64>().sqrt();
            for param in ["wex", "wix", "wei", "alpha", "gain", "bias"] {
                let key = format!("{layer}.{param}");
                let clamp = !matches!(param, "alpha" | "bias");
                let want: Vec<f64> = finv(param)
                    .iter()
                    .zip(&g[&key])
                    .zip(&before[&key])
                    .map(|((fi, gi), p)| {
                        let v = p - lr * fi / norm * gi;
                        if clamp { v.max(0.0) } else { v }
                    })
                    .collect();
                let got = model
                    .named_entries()
                    .into_iter()
                    .find(|(k, _)| *k == key)
                    .unwrap()
                    .1
                    .value
                    .to_f64_vec();
                close(&got, &want, &format!("step {step} {key}"));
            }
        }
    }
}

/// d-NGD is refused, with the key named, where its maths does not hold.
#[test]
fn dngd_refuses_more_than_one_inhibitory_unit_and_the_corrections() {
    let e = mean_squares(
        &tiny(ModelKind::DannNocorr, 2),
        uniform(2, 6, 1, &device()),
        None,
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("model.ni") && e.contains("hidden.0"), "{e}");
    let mut c = TrainConfig::dngd_paper();
    c.validate().unwrap();
    c.model.ni = Some(2);
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("model.ni") && e.contains("spec A3.7"), "{e}");
    let mut c = TrainConfig::dngd_paper();
    c.model.kind = ModelKind::Dann;
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("dann-nocorr"), "{e}");
    let mut c = TrainConfig::dngd_paper();
    c.model.kind = ModelKind::Mlp;
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("model.kind"), "{e}");
    assert_eq!(TrainConfig::dngd_paper().name(), "dann_dngd");
}
