//! The fused CPU ops (DANN layer, affine map) against the plain tensor versions they replace:
//! forward and every gradient, f32, within 1e-5 relative to each tensor's largest entry.

use burn::tensor::{DType, Tensor, TensorData};
use dales::fused::{self, Settings};
use dales::nn::{Mlp, MlpConfig, ModelKind, ParamValue, Parameterised, SHUNT_EPS};
use dales::train::cross_entropy;

use crate::common::{
    affine_outputs, assert_as_accurate, assert_as_accurate_abs, assert_as_accurate_within, dann,
    device, host, uniform,
};

fn compare_layer(d: usize, ne: usize, ni: usize, first: bool, batch: usize) {
    let l = dann::layer(d, ne, ni, first, (d + ne + ni) as u64, &device());
    let x = uniform(batch, d, 3, &device());
    let fused_out = dann::outputs(&l, &x, true);
    let plain_out = dann::outputs(&l, &x, false);
    let l64 = dann::on(&l, &device(), DType::F64);
    let truth = dann::outputs(&l64, &x.clone().cast(DType::F64), false);
    for (((name, fast), (_, plain)), (_, truth)) in fused_out.iter().zip(&plain_out).zip(&truth) {
        let what = format!("{d}→{ne}/{ni} B={batch}: {name}");
        // dα sums ne terms through ẑ = ze − Wei zi, which nearly cancels at the initialisation,
        // so it inherits the forward products' rounding many times over. On an AVX-512 CPU
        // (the packed GEMM, 16 lanes) the fused dα at B = 130 came out 0.7–4.0× as far from
        // the f64 truth as the plain version over eight seeds, and 0.4–1.1× with the forward
        // products accumulated in f64: the spread is the products' f32 rounding, not the
        // backward pass. A wrong dα is off by orders of magnitude more.
        let factor = if name == "dalpha" { 5.0 } else { 2.0 };
        assert_as_accurate_within(&what, fast, plain, truth, 1e-5, factor);
    }
}

#[test]
fn fused_layer_matches_plain_first_layer() {
    compare_layer(784, 500, 50, true, 32);
}

#[test]
fn fused_layer_matches_plain_hidden_layer() {
    // Batch 7 takes the packing-free kernels for the large products, batch 130 the packed GEMM.
    compare_layer(500, 500, 50, false, 7);
    compare_layer(500, 500, 50, false, 130);
}

#[test]
fn fused_layer_matches_plain_single_interneuron() {
    // The output layer's shape (ni = 1), and a batch of one.
    compare_layer(500, 10, 1, false, 1);
    compare_layer(13, 10, 1, false, 5);
}

#[test]
fn fused_layer_without_autodiff_matches() {
    let l = dann::layer(40, 20, 4, true, 5, &device());
    let inner = dales::device::cpu();
    let x = uniform(6, 40, 2, &inner);
    let z = fused::dann_layer(
        x.clone(),
        [l.wex.val(), l.wix.val(), l.wei.val()].map(|t| t.inner()),
        [l.alpha.val(), l.gain.val(), l.bias.val()].map(|t| t.inner()),
        SHUNT_EPS,
        |_, _, _| panic!("the fused op did not run"),
    );
    let plain = l.parts(x.clone().autodiff()).z;
    let truth = dann::on(&l, &device(), DType::F64)
        .parts(x.autodiff().cast(DType::F64))
        .z;
    assert_as_accurate("no autodiff", &host(z), &host(plain), &host(truth), 1e-5);
}

#[test]
fn fused_affine_matches_plain() {
    let dev = device();
    for (batch, d, n) in [(32, 784, 500), (7, 500, 10), (1, 3, 2)] {
        let x = uniform(batch, d, 1, &dev);
        let w = uniform(n, d, 2, &dev) - 0.5;
        let b: Tensor<1> = uniform(1, n, 3, &dev).reshape([n]) - 0.5;
        let fused_out = affine_outputs(&x, &w, &b, true);
        let plain_out = affine_outputs(&x, &w, &b, false);
        let [x64, w64] = [x, w].map(|t| t.cast(DType::F64));
        let truth = affine_outputs(&x64, &w64, &b.cast(DType::F64), false);
        for (name, ((fast, plain), truth)) in ["y", "dx", "dW", "db"]
            .iter()
            .zip(fused_out.iter().zip(&plain_out).zip(&truth))
        {
            let what = format!("affine {d}→{n} B={batch}: {name}");
            assert_as_accurate(&what, fast, plain, truth, 1e-5);
        }
    }
}

/// Logits and every parameter's gradient under the cross-entropy of `labels`.
fn model_outputs(model: &Mlp, x: &Tensor<2>, labels: &[usize]) -> Vec<(String, Vec<f64>)> {
    let logits = model.forward(x.clone());
    let grads = cross_entropy(logits.clone(), labels).backward();
    let mut out = vec![("logits".to_string(), host(logits))];
    for layer in model.param_layers() {
        for e in layer.entries.into_iter().filter(|e| e.role.is_some()) {
            let g = match &e.value {
                ParamValue::Vector(t) => host(t.grad(&grads).unwrap()),
                ParamValue::Matrix(t) => host(t.grad(&grads).unwrap()),
            };
            out.push((format!("{}.{}", layer.name, e.name), g));
        }
    }
    out
}

/// A whole paper-size model of `kind` with the fused paths on and off (f32), each against the
/// same model in f64.
fn compare_model(kind: ModelKind, batch: usize, seed: u64) {
    let dev = device();
    let mut config = MlpConfig::paper(kind);
    config.pixel_mean = Some(0.286);
    let model = config.init_seeded(seed, &dev).unwrap();
    let x = uniform(batch, 784, seed + 10, &dev);
    let labels: Vec<usize> = (0..batch).map(|i| (i * 7) % 10).collect();
    let fast = model_outputs(&model, &x, &labels);
    let plain = Settings {
        fused: false,
        ..Settings::default()
    }
    .scope(|| model_outputs(&model, &x, &labels));
    let model64 = crate::common::as_f64(&model);
    let truth = model_outputs(&model64, &x.cast(DType::F64), &labels);
    assert_eq!(fast.len(), truth.len());
    let by_name: std::collections::BTreeMap<_, _> = truth.iter().cloned().collect();
    for (((name, fast), (_, plain)), (_, truth)) in fast.iter().zip(&plain).zip(&truth) {
        let what = format!("{kind:?} {name}");
        match name.strip_suffix(".alpha") {
            // At init α's gradient is a sum that cancels to ≈ 0 (1e-17 here in f64), so any f32
            // summation order leaves noise far above 1e-5 of it: it is held to 1e-5 of the same
            // layer's Wei gradient, through which it flows.
            Some(layer) => {
                let wei = &by_name[&format!("{layer}.wei")];
                let scale = wei.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                assert_as_accurate_abs(&what, fast, plain, truth, 1e-5 * scale);
            }
            None => assert_as_accurate(&what, fast, plain, truth, 1e-5),
        }
    }
}

/// The paper's DANN MLP: logits and every parameter's gradient.
#[test]
fn whole_model_matches_plain() {
    compare_model(ModelKind::Dann, 16, 4);
}

/// The plain MLP, LayerNorm MLP and ColumnEI, whose layers all run the fused affine map.
#[test]
fn affine_models_match_plain() {
    for kind in [ModelKind::Mlp, ModelKind::LayerNorm, ModelKind::ColumnEi] {
        compare_model(kind, 8, 2);
    }
}

#[test]
fn ops_dispatch_themselves() {
    // f64 matrices have no fused affine map: the op hands them to the plain version.
    let x64 = Tensor::<2>::from_data(
        TensorData::new(vec![0.5f64; 4], [2, 2]),
        (&device(), DType::F64),
    );
    let b64 = Tensor::<1>::from_data(
        TensorData::new(vec![0.0f64; 2], [2]),
        (&device(), DType::F64),
    );
    let ran_plain = std::cell::Cell::new(false);
    fused::affine(x64.clone(), x64, b64, |x, w, b| {
        ran_plain.set(true);
        dales::nn::dense::affine_plain(x, w, b)
    });
    assert!(ran_plain.get(), "f64 took the fused path");
    // f32 takes the fused path, unless the settings turn fusing off.
    let x = uniform(2, 3, 1, &device());
    let (w, b) = (
        uniform(4, 3, 2, &device()),
        uniform(1, 4, 3, &device()).reshape([4]),
    );
    let plain = |x, w, b| {
        ran_plain.set(true);
        dales::nn::dense::affine_plain(x, w, b)
    };
    ran_plain.set(false);
    fused::affine(x.clone(), w.clone(), b.clone(), plain);
    assert!(!ran_plain.get(), "f32 did not take the fused path");
    let off = Settings {
        fused: false,
        ..Settings::default()
    };
    off.scope(|| fused::affine(x, w, b, plain));
    assert!(ran_plain.get(), "fused: false took the fused path");
}
