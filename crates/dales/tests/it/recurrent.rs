//! The recurrent E/I networks of the spectral paper (spec Part B): the PyTorch reference's
//! logits, gradients and update steps (`tests/fixtures/rnn`, written by
//! `make_rnn_fixtures.py`), finite-difference gradients of each cell fused and step by step,
//! the initialisations' invariants, the sign constraints over many steps, checkpoints and
//! configuration errors.

use std::collections::BTreeMap;

use burn::tensor::{DType, Tensor, TensorData};
use dales::config::TrainConfig;
use dales::learner::{Learner, ModelSpec};
use dales::nn::recurrent_net::{CellKind, RecurrentConfig, RecurrentNet};
use dales::nn::spectrum::spectral_radius;
use dales::nn::{ParamRole, ParamValue, Parameterised};
use dales::optim::{Clip, ClipScope, Method, Optimizer, Projection, RuleTable};
use dales::recurrent_run::{load_recurrent, save_recurrent};
use dales::train::cross_entropy;

use crate::common::reference::{assert_tensors_close, fixtures, read, values_by_name};
use crate::common::{as_f64, assert_as_accurate, device, host, labels, temp_dir, uniform, worst};

/// The reference's cases (`make_rnn_fixtures.py`).
fn cases() -> serde_json::Value {
    let path = fixtures().join("rnn/cases.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn rnn_batch(dev: &burn::tensor::Device) -> (Tensor<3>, Vec<usize>) {
    let t = read("rnn/batch.safetensors");
    let (x, shape) = t["x"].clone();
    let y = t["y"].0.iter().map(|&v| v as usize).collect();
    (
        Tensor::from_data(TensorData::new(x, [shape[0], shape[1], shape[2]]), dev),
        y,
    )
}

/// Every trainable parameter's gradient after `loss.backward()`, by checkpoint name.
fn grads_by_name<M: Parameterised>(model: &M, loss: Tensor<1>) -> BTreeMap<String, Vec<f64>> {
    let mut grads = loss.backward();
    let mut out = BTreeMap::new();
    for layer in model.param_layers() {
        for e in layer.entries.into_iter().filter(|e| e.role.is_some()) {
            let g = match &e.value {
                ParamValue::Vector(t) => host(t.grad_remove(&mut grads).expect("gradient")),
                ParamValue::Matrix(t) => host(t.grad_remove(&mut grads).expect("gradient")),
            };
            out.insert(format!("{}.{}", layer.name, e.name), g);
        }
    }
    out
}

/// The rules the reference's `RnnSGD` applies to a model of `cell` (with `sign_freeze`, the
/// standard cell's `W` and the dense readout's weight are sign-frozen).
fn reference_rules(model: &RecurrentNet, sign_freeze: bool) -> RuleTable {
    let mut rules = model.config().default_rules();
    if sign_freeze {
        for role in [ParamRole::Recurrent, ParamRole::Weight] {
            let rule = rules.0.get_mut(&role).unwrap();
            rule.projection = Projection::SignFreeze;
        }
    }
    rules
}

#[test]
fn the_reference_logits_gradients_and_steps() {
    let dev = device();
    let (x, y) = rnn_batch(&dev);
    let cases = cases();
    for (case, info) in cases["cases"].as_object().unwrap() {
        let before = fixtures().join(format!("rnn/{case}.before.safetensors"));
        let model = load_recurrent(&before, None, &dev).unwrap();
        assert_eq!(
            model.cells.len() as u64,
            info["layers"].as_u64().unwrap(),
            "{case}"
        );
        assert_eq!(model.config().cell.name(), info["kind"].as_str().unwrap());
        let expected = read(&format!("rnn/{case}.expected.safetensors"));

        let want: Vec<f64> = expected["logits"].0.iter().map(|&v| v as f64).collect();
        for (path, logits) in [
            ("fused", model.forward(x.clone())),
            ("step by step", model.forward_plain(x.clone())),
        ] {
            let got = host(logits);
            assert!(
                worst(&got, &want, 1e-5, 0.0) <= 1.0,
                "{case} {path}: logits differ from the reference by more than 1e-5"
            );
        }
        let loss = cross_entropy(model.forward(x.clone()), &y);
        assert!((host(loss.clone())[0] - expected["loss"].0[0] as f64).abs() < 1e-5);
        // The readout's single I unit gets a gradient that is a sum with heavy cancellation
        // (its scale 2e-4 against 0.3 for the others): f32 summation order alone moves it by
        // 3.1e-4 of its largest entry (measured, dann1 `output.wix`); every other tensor agrees
        // to 4e-7. A wrong formula moves them by O(1).
        let grads = grads_by_name(&model, loss);
        assert_tensors_close(case, &grads, &expected, "grad.", 1e-3);
        let plain = grads_by_name(&model, cross_entropy(model.forward_plain(x.clone()), &y));
        assert_tensors_close(
            &format!("{case} step by step"),
            &plain,
            &expected,
            "grad.",
            1e-3,
        );

        let nse: Vec<f64> = model.nse().into_iter().map(|(_, v)| v).collect();
        let want_nse: Vec<f64> = expected["nse"].0.iter().map(|&v| v as f64).collect();
        assert!(
            worst(&nse, &want_nse, 1e-6, 0.0) <= 1.0,
            "{case}: NSE {nse:?} vs {want_nse:?}"
        );

        let lr = info["lr"].as_f64().unwrap();
        let sign_freeze = info["sign_freeze"].as_bool().unwrap();
        let scope = match model.config().cell {
            CellKind::Colei => ClipScope::Tensor,
            _ => ClipScope::Layer,
        };
        let clipped = Clip {
            scope,
            max_norm: info["clip"].as_f64().unwrap(),
            eps: 1e-12,
        };
        for (file, clip) in [("after", Clip::NONE), ("after_clip", clipped)] {
            let mut optim = Optimizer::new(Method::SGD, clip, reference_rules(&model, sign_freeze));
            optim.check(&model).unwrap();
            let loss = cross_entropy(model.forward(x.clone()), &y);
            let stepped = optim.step(lr, model.clone(), &mut loss.backward());
            let want = read(&format!("rnn/{case}.{file}.safetensors"));
            assert_tensors_close(
                &format!("{case} {file}"),
                &values_by_name(&stepped),
                &want,
                "",
                1e-5,
            );
        }
    }
}

/// A small model of every cell kind, one and two layers.
fn small_models(layers: usize) -> Vec<RecurrentNet> {
    CellKind::ALL
        .into_iter()
        .map(|cell| {
            RecurrentConfig {
                hidden: vec![6; layers],
                n_in: 3,
                n_out: 4,
                ratio: 2.0,
                ..RecurrentConfig::paper(cell)
            }
            .init_seeded(5, &device())
            .unwrap()
        })
        .collect()
}

/// Sequences `(B, T, d)` of U(0, 1) values.
fn sequences(b: usize, t: usize, d: usize, seed: u64) -> Tensor<3> {
    uniform(b * t, d, seed, &device()).reshape([b, t, d])
}

/// The f64 gradient of every trainable entry by central differences (ε = 1e-6), against the
/// f64 autodiff gradient of the step-by-step model: |a − n| ≤ 1e-7 + 1e-5·|n|.
#[test]
fn gradcheck_every_cell_in_f64() {
    for layers in [1, 2] {
        for model in small_models(layers) {
            let model = as_f64(&model);
            let xs = sequences(3, 5, 3, 21).cast(DType::F64);
            let y = labels(3, 4);
            let loss = |m: &RecurrentNet| cross_entropy(m.forward_plain(xs.clone()), &y);
            let analytic = grads_by_name(&model, loss(&model));
            let named = model.named_entries();
            for (name, entry) in named.iter().filter(|(_, e)| e.role.is_some()) {
                let base = entry.value.to_f64_vec();
                for pos in (0..base.len()).step_by((base.len() / 7).max(1)) {
                    let eval = |delta: f64| host(loss(&shift(&model, name, pos, delta)))[0];
                    let numeric = (eval(1e-6) - eval(-1e-6)) / 2e-6;
                    let a = analytic[name][pos];
                    assert!(
                        (a - numeric).abs() <= 1e-7 + 1e-5 * numeric.abs(),
                        "{} × {layers}: {name}[{pos}]: autodiff {a:e} vs finite difference \
                         {numeric:e}",
                        model.config().cell
                    );
                }
            }
        }
    }
}

/// `model` with entry `pos` of parameter `name` moved by `delta`.
fn shift(model: &RecurrentNet, name: &str, pos: usize, delta: f64) -> RecurrentNet {
    let values = model
        .param_layers()
        .into_iter()
        .map(|l| {
            l.entries
                .into_iter()
                .map(|e| {
                    if format!("{}.{}", l.name, e.name) != name {
                        return e.value;
                    }
                    let mut v = e.value.to_f64_vec();
                    v[pos] += delta;
                    let shape = e.value.shape();
                    let dev = e.value.flatten().device();
                    let t = Tensor::<1>::from_data(
                        TensorData::new(v, [shape.iter().product::<usize>()]),
                        (&dev, DType::F64),
                    );
                    e.value.with_flat(t)
                })
                .collect()
        })
        .collect();
    model.clone().with_layer_values(values)
}

/// The fused sequence op's f32 logits and gradients are as accurate as the step-by-step f32
/// version's, both measured against the f64 truth.
#[test]
fn fused_cells_match_the_f64_truth() {
    for layers in [1, 2] {
        for model in small_models(layers) {
            let xs = sequences(4, 7, 3, 33);
            let y = labels(4, 4);
            let truth_model = as_f64(&model);
            let truth_logits = host(truth_model.forward_plain(xs.clone().cast(DType::F64)));
            let fused_logits = host(model.forward(xs.clone()));
            let plain_logits = host(model.forward_plain(xs.clone()));
            let what = format!("{} × {layers}", model.config().cell);
            assert_as_accurate(
                &format!("{what} logits"),
                &fused_logits,
                &plain_logits,
                &truth_logits,
                1e-5,
            );
            let truth = grads_by_name(
                &truth_model,
                cross_entropy(truth_model.forward_plain(xs.clone().cast(DType::F64)), &y),
            );
            let fused = grads_by_name(&model, cross_entropy(model.forward(xs.clone()), &y));
            let plain = grads_by_name(&model, cross_entropy(model.forward_plain(xs.clone()), &y));
            for (name, t) in &truth {
                assert_as_accurate(
                    &format!("{what} {name}"),
                    &fused[name],
                    &plain[name],
                    t,
                    1e-5,
                );
            }
        }
    }
}

#[test]
fn exact_centring_gives_zero_column_sums() {
    let model = RecurrentConfig::paper(CellKind::Dann)
        .init_seeded(3, &device())
        .unwrap();
    let (_, h, w) = model.recurrent_matrices().remove(0);
    let scale = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for j in 0..h {
        let col: f64 = (0..h).map(|k| w[k * h + j]).sum();
        // f32 entries of size ~0.1: a column of 100 sums to 0 within a few ulps of the entries.
        assert!(col.abs() < 1e-5 * scale * h as f64, "column {j}: {col}");
    }
    // The input path is centred the same way.
    let u = host(model.cells[0].effective().u);
    for j in 0..28 {
        let col: f64 = (0..100).map(|k| u[k * 28 + j]).sum();
        assert!(col.abs() < 1e-5, "U column {j}: {col}");
    }
}

#[test]
fn colei_radius_and_zero_diagonal() {
    for (hidden, ratio) in [(100, 9.0), (50, 1.0)] {
        let model = RecurrentConfig {
            hidden: vec![hidden],
            ratio,
            ..RecurrentConfig::paper(CellKind::Colei)
        }
        .init_seeded(4, &device())
        .unwrap();
        let (_, h, w) = model.recurrent_matrices().remove(0);
        let rho = spectral_radius(&w, h).unwrap();
        assert!((rho - 1.5).abs() < 1e-4, "radius {rho}");
        assert!((0..h).all(|i| w[i * h + i] == 0.0));
    }
}

/// `steps` steps of SGD at `lr` on random sequences; every model after a step.
fn train(mut model: RecurrentNet, rules: RuleTable, steps: usize, lr: f64) -> Vec<RecurrentNet> {
    let mut optim = Optimizer::new(Method::SGD, Clip::NONE, rules);
    optim.check(&model).unwrap();
    let mut history = Vec::with_capacity(steps);
    for s in 0..steps {
        let xs = sequences(8, 5, 3, 100 + s as u64);
        let loss = cross_entropy(model.forward(xs), &labels(8, 4));
        assert!(
            host(loss.clone())[0].is_finite(),
            "step {s}: the loss diverged"
        );
        model = optim.step(lr, model.clone(), &mut loss.backward());
        history.push(model.clone());
    }
    history
}

#[test]
fn ei_signs_hold_over_50_steps() {
    for model in small_models(2).into_iter().skip(1) {
        let cell = model.config().cell;
        let signs0 = buffers(&model);
        let rules = model.config().default_rules();
        let mut clamped = 0;
        for (s, m) in train(model, rules, 50, 0.5).iter().enumerate() {
            for (name, e) in m.named_entries() {
                let constrained = matches!(
                    e.role,
                    Some(ParamRole::Wex | ParamRole::Wix | ParamRole::Wei | ParamRole::WPos)
                        | Some(ParamRole::RecurrentWPos)
                );
                if constrained {
                    let v = e.value.to_f64_vec();
                    assert!(
                        v.iter().all(|&v| v >= 0.0),
                        "{cell}: {name} negative after step {}",
                        s + 1
                    );
                    clamped += v.iter().filter(|&&v| v == 0.0).count();
                }
            }
            assert_eq!(buffers(m), signs0, "{cell}: a sign buffer changed");
        }
        // The test can fail: the projection did clamp entries that SGD pushed below 0.
        assert!(clamped > 0, "{cell}: no entry reached the constraint");
    }
}

/// The fixed buffers (ColEI signs) of a model.
fn buffers(model: &RecurrentNet) -> Vec<Vec<f64>> {
    model
        .named_entries()
        .into_iter()
        .filter(|(_, e)| e.role.is_none())
        .map(|(_, e)| e.value.to_f64_vec())
        .collect()
}

#[test]
fn sign_frozen_weights_never_cross_zero() {
    let model = small_models(1).remove(0);
    let w0 = model.named_entries();
    let rules = reference_rules(&model, true);
    let history = train(model, rules, 50, 0.5);
    let mut stuck = 0;
    for m in &history {
        for ((name, e), (_, e0)) in m.named_entries().iter().zip(&w0) {
            if !matches!(e.role, Some(ParamRole::Recurrent | ParamRole::Weight)) {
                continue;
            }
            for (v, v0) in e.value.to_f64_vec().iter().zip(e0.value.to_f64_vec()) {
                if v0 == 0.0 {
                    assert_eq!(*v, 0.0, "{name}: a zero weight moved");
                } else {
                    assert!(v * v0.signum() >= 0.99e-9, "{name}: {v0} → {v}");
                }
                stuck += usize::from((v.abs() - 1e-9).abs() < 1e-15);
            }
        }
    }
    assert!(
        stuck > 0,
        "no weight reached the 1e-9 floor: the test would not catch a crossing"
    );
}

#[test]
fn ablated_ii_block_stays_zero() {
    let config = RecurrentConfig {
        hidden: vec![10],
        n_in: 3,
        n_out: 4,
        ratio: 1.0,
        ablate_ii: Some(true),
        ..RecurrentConfig::paper(CellKind::Colei)
    };
    let model = config.init_seeded(2, &device()).unwrap();
    let rules = config.default_rules();
    assert_eq!(
        rules.get(ParamRole::RecurrentWPos).unwrap().projection,
        Projection::NonNegativeNoIi
    );
    for m in std::iter::once(model.clone()).chain(train(model, rules, 20, 0.5)) {
        let (_, h, w) = m.recurrent_matrices().remove(0);
        for r in 5..h {
            for c in 5..h {
                assert_eq!(w[r * h + c], 0.0, "I→I entry ({r}, {c})");
            }
        }
    }
}

#[test]
fn checkpoint_round_trip() {
    let dir = temp_dir("rnn-checkpoint");
    for model in small_models(2) {
        let path = dir.join(format!("{}.safetensors", model.config().cell));
        save_recurrent(&model, &path).unwrap();
        let back = load_recurrent(&path, Some(model.config()), &device()).unwrap();
        assert_eq!(values_by_name(&back), values_by_name(&model));
        let xs = sequences(2, 4, 3, 9);
        assert_eq!(host(back.forward(xs.clone())), host(model.forward(xs)));
        // Another configuration is refused with the key that differs.
        let other = RecurrentConfig {
            hidden: vec![7, 6],
            ..model.config().clone()
        };
        let e = load_recurrent(&path, Some(&other), &device())
            .unwrap_err()
            .to_string();
        assert!(e.contains("hidden"), "{e}");
    }
    let e = load_recurrent(&fixtures().join("dann.before.safetensors"), None, &device())
        .unwrap_err()
        .to_string();
    assert!(e.contains("dales-rnn/1"), "{e}");
}

#[test]
fn bad_configs_name_their_key() {
    let base = TrainConfig::rowseq(CellKind::Colei, 1).to_toml();
    for (from, to, key) in [
        ("cell = \"colei\"", "cell = \"lstm\"", "model.cell"),
        ("ratio = 9.0", "ratio = 0.0", "model.ratio"),
        ("ratio = 9.0", "ratio = -2.0", "model.ratio"),
        ("ratio = 9.0", "ratio = 9.0\nradius = 0.0", "model.radius"),
        ("ratio = 9.0", "ratio = 9.0\nradius = -1.5", "model.radius"),
        (
            "ratio = 9.0",
            "ratio = 9.0\nrandom_wix = true",
            "model.random_wix",
        ),
        ("hidden = [100]", "hidden = []", "model.hidden"),
        (
            "ratio = 9.0",
            "ratio = 9.0\nw_dropconnect = 0.5",
            "model.w_dropconnect",
        ),
    ] {
        assert!(base.contains(from), "{base}");
        let text = base.replace(from, to);
        let e = TrainConfig::<RecurrentConfig>::from_toml(&text, std::path::Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{to}: {e}");
    }
}

#[test]
fn nse_probes_are_logged_from_initialisation() {
    let model = small_models(2).remove(1);
    let probes = model.probes();
    assert_eq!(
        probes.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["nse.cells.0", "nse.cells.1"]
    );
    assert!(probes.iter().all(|(_, v)| *v > 0.0 && *v <= 1.0));
}

/// NSE at init over 20 seeds (`dales spectrum`'s sampling) against the reference's 20-seed
/// table (shared/reference/README.md, `train_rowseq.py --task nse_init --seeds 20`: RNN
/// 0.9528 ± 0.0010, DANN 0.9501 ± 0.0009, ColEI 0.7968 ± 0.0037). Different random streams,
/// so the means must agree within the standard error of a difference of two 20-seed means
/// (4 of them: a failure is a different distribution, not bad luck).
#[test]
fn nse_at_init_matches_the_reference_distribution() {
    use dales::analysis::spectra::{sample_inits, summarise};
    for (cell, mean, sd) in [
        (CellKind::Rnn, 0.9528, 0.0010),
        (CellKind::Dann, 0.9501, 0.0009),
        (CellKind::Colei, 0.7968, 0.0037),
    ] {
        let spectra = sample_inits(&RecurrentConfig::paper(cell), cell.name(), 0..20).unwrap();
        let group = &summarise(&spectra)[0];
        assert_eq!(group.seeds, 20);
        let se = (2.0 * sd * sd / 20.0f64).sqrt();
        assert!(
            (group.nse.0 - mean).abs() < 4.0 * se,
            "{cell}: NSE {:.4} ± {:.4} against the reference's {mean} ± {sd}",
            group.nse.0,
            group.nse.1
        );
        // Seed to seed spread of the same order as the reference's.
        assert!(group.nse.1 > sd / 3.0 && group.nse.1 < sd * 3.0);
        // ColEI's radius is set exactly; its spectrum is the dispersed one.
        if cell == CellKind::Colei {
            assert!(
                spectra
                    .iter()
                    .all(|s| (s.spectral_radius - 1.5).abs() < 1e-4)
            );
        }
    }
}

/// DropConnect of the recurrent DANN (spec B1): Bernoulli masks on Uex, Uix, Wex, Wix without
/// rescaling, in training steps only.
#[test]
fn dropconnect_masks_train_steps_only() {
    use dales::fused::Settings;
    use dales::nn::dann_rnn::DropConnect;
    use dales::nn::recurrent_net::RecurrentCell;

    let drop = DropConnect {
        input: 0.3,
        recurrent: 0.5,
    };
    let config = RecurrentConfig {
        u_dropconnect: Some(drop.input),
        w_dropconnect: Some(drop.recurrent),
        ..RecurrentConfig::paper(CellKind::Dann)
    };
    let dev = device().autodiff();
    let model = config.init_seeded(5, &dev).unwrap();
    let RecurrentCell::Dann(cell) = &model.cells[0] else {
        panic!("a DANN cell")
    };
    let seed = 77;
    let [ue, ui, we, wi] = drop.masks(cell, seed);
    // Dropped fractions within 4 standard deviations of p.
    for (mask, p) in [(&ue, 0.3), (&ui, 0.3), (&we, 0.5), (&wi, 0.5)] {
        let n = mask.len() as f64;
        let dropped = mask.iter().filter(|&&m| m == 0.0).count() as f64 / n;
        assert!(
            (dropped - p).abs() < 4.0 * (p * (1.0 - p) / n).sqrt(),
            "{dropped} vs {p}"
        );
    }
    // W = Wex⊙M − Wei·(Wix⊙M′), no rescale.
    let (wex, wix, wei) = (
        host(cell.wex.val()),
        host(cell.wix.val()),
        host(cell.wei.val()),
    );
    let (ne, ni) = (100, wix.len() / 100);
    let w = host(cell.effective_dropped(&drop, seed).w);
    for i in 0..ne {
        for j in 0..ne {
            let inhibition: f64 = (0..ni)
                .map(|k| wei[i * ni + k] * wix[k * ne + j] * wi[k * ne + j] as f64)
                .sum();
            let want = wex[i * ne + j] * we[i * ne + j] as f64 - inhibition;
            assert!((w[i * ne + j] - want).abs() < 1e-5, "W[{i},{j}]");
        }
    }
    // In a training step (the layer-0 stream of the noise seed is the seed itself) the dropped
    // entries of Wex get no gradient; the kept ones do.
    let (xs, labels) = rnn_batch(&dev);
    let loss = Settings {
        noise_seed: Some(seed),
        ..Settings::default()
    }
    .scope(|| cross_entropy(model.logits(xs.clone()), &labels));
    let grads = loss.backward();
    let g = host(cell.wex.val().grad(&grads).unwrap());
    assert!(g.iter().zip(&we).all(|(g, &m)| m == 1.0 || *g == 0.0));
    assert!(
        g.iter()
            .zip(&we)
            .filter(|(g, m)| **m == 1.0 && **g != 0.0)
            .count()
            > ne * ne / 4
    );
    // Outside a training step nothing is dropped: the logits of the same weights without
    // DropConnect.
    let plain = RecurrentConfig::paper(CellKind::Dann)
        .init_seeded(5, &dev)
        .unwrap();
    let a = host(model.logits(xs.clone()));
    let b = host(plain.logits(xs));
    assert_eq!(a, b);
}

/// A DANN run with DropConnect, interrupted mid-epoch and resumed, ends with the same
/// checkpoint bytes as an uninterrupted one (the masks follow the update count), and differs
/// from the same run without DropConnect (the masks are applied).
#[test]
fn dropconnect_runs_resume_bit_identically() {
    use dales::run::{Dataset, Outcome, Trainer, files};

    use crate::common::write_idx_dataset;

    let data = temp_dir("rnn-dc-data");
    write_idx_dataset(&data, 100, 20, 8, 4, 3);
    let mut c = TrainConfig::rowseq(CellKind::Dann, 1);
    c.model.n_in = 8;
    c.model.n_out = 4;
    c.model.hidden = vec![12];
    c.model.u_dropconnect = Some(0.2);
    c.model.w_dropconnect = Some(0.3);
    c.epochs = 2;
    c.batch_size = 10;
    c.data.dir = Some(data.clone());
    let run = |c: &TrainConfig<RecurrentConfig>, name: &str, stop: Option<u64>| {
        let dir = temp_dir(name);
        let mut t = Trainer::new(c.clone(), Dataset::load(c).unwrap(), &dir).unwrap();
        if let Some(at) = stop {
            let out = t.run(&mut |_| {}, &|step| step == at).unwrap();
            assert_eq!(out, Outcome::Interrupted);
            drop(t);
            t = Trainer::<RecurrentConfig>::resume(&dir, None, None).unwrap();
        }
        assert_eq!(t.run(&mut |_| {}, &|_| false).unwrap(), Outcome::Finished);
        std::fs::read(dir.join(files::CHECKPOINT)).unwrap()
    };
    let whole = run(&c, "rnn-dc-a", None);
    assert!(
        whole == run(&c, "rnn-dc-b", Some(13)),
        "resumed run differs"
    );
    let mut plain = c.clone();
    plain.model.u_dropconnect = None;
    plain.model.w_dropconnect = None;
    assert!(whole != run(&plain, "rnn-dc-c", None));
}
