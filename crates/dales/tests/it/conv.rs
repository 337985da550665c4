//! The convolutional networks (spec A4) against independent truths:
//! - the PyTorch reference's golden fixtures (`fixtures/conv/`, `make_conv_fixtures.py`): from
//!   the reference's own `dales-conv/1` checkpoint, the logits, every raw gradient and the
//!   weights after one (corrected, projected) SGD step, for all four families;
//! - the fused conv ops against burn's `conv2d` (f32, with an f64 truth), on a geometry with
//!   every setting off its default;
//! - finite differences of the conv DANN layer in f64;
//! - the A4 initialisation's closed forms (mean filter for `C_i = 1`, layer-norm-like moments);
//! - signs over 50 large steps, checkpoint round trips, configuration errors.

use burn::tensor::{DType, Tensor, TensorData};
use dales::conv_run::{load_conv, save_conv};
use dales::fused::{Conv2d, Pool, Settings};
use dales::learner::{Learner, ModelSpec};
use dales::nn::conv::conv_affine_plain;
use dales::nn::conv_dann::{ConvDann, ConvDannConfig};
use dales::nn::convnet::{ConvConfig, ConvFamily, ConvNet, ConvSpec};
use dales::nn::init::InitRng;
use dales::nn::{ParamValue, Parameterised};
use dales::optim::{Clip, Method, Optimizer};
use dales::train::cross_entropy;

use crate::common::conv::check_reference;
use crate::common::reference::values_by_name;
use crate::common::{assert_as_accurate_within, device, host, labels, temp_dir};

/// Kernel 3×2, stride (2, 1), padding (1, 0), dilation (1, 2): every index of im2col moves.
const ODD: Conv2d = Conv2d {
    kernel: [3, 2],
    stride: [2, 1],
    padding: [1, 0],
    dilation: [1, 2],
};

fn images(b: usize, c: usize, h: usize, w: usize, seed: u64, dtype: DType) -> Tensor<4> {
    let v: Vec<f32> = InitRng::new(seed)
        .uniform(b * c * h * w, 0.0, 1.0)
        .into_iter()
        .map(|u| u as f32)
        .collect();
    Tensor::<4>::from_data(TensorData::new(v, [b, c, h, w]), &device()).cast(dtype)
}

fn grad_of<const D: usize>(t: &Tensor<D>, grads: &mut burn::tensor::Gradients) -> Vec<f64> {
    host(t.grad_remove(grads).expect("a gradient"))
}

/// A conv DANN layer with α, g, b moved off their initial values, in `dtype`.
fn dann_layer(c_in: usize, c_e: usize, c_i: usize, conv: Conv2d, dtype: DType) -> ConvDann {
    let l = ConvDannConfig {
        c_in,
        c_e,
        c_i,
        conv,
    }
    .init(&mut InitRng::new(7), &device())
    .unwrap();
    let mut rng = InitRng::new(8);
    let values = l
        .entries()
        .into_iter()
        .map(|e| {
            let mut v = e.value.to_f32_vec();
            let n = v.len();
            match e.name {
                "alpha" => v
                    .iter_mut()
                    .zip(rng.uniform(n, -0.5, 0.5))
                    .for_each(|(a, u)| *a += u as f32),
                "gain" => v
                    .iter_mut()
                    .zip(rng.uniform(n, 0.5, 1.5))
                    .for_each(|(g, u)| *g = u as f32),
                "bias" => v
                    .iter_mut()
                    .zip(rng.uniform(n, -0.2, 0.2))
                    .for_each(|(b, u)| *b = u as f32),
                _ => {}
            }
            ParamValue::from_f32(v, &e.value.shape(), &device()).cast(dtype)
        })
        .collect();
    l.with_values(values)
}

/// The output and the gradients of `x` and of every parameter under `Σ z ⊙ R`.
fn dann_outputs(l: &ConvDann, x: &Tensor<4>, pool: Pool, fused: bool) -> Vec<(String, Vec<f64>)> {
    let x = x.clone().require_grad();
    let settings = Settings {
        fused,
        ..Settings::default()
    };
    let z = settings.scope(|| l.forward(x.clone(), pool));
    // A fixed R, the same for both paths.
    let r: Vec<f32> = InitRng::new(99)
        .uniform(z.dims().iter().product(), -1.0, 1.0)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let r = Tensor::<4>::from_data(TensorData::new(r, z.dims()), &device()).cast(z.dtype());
    let mut grads = (z.clone() * r).sum().backward();
    let mut out = vec![
        ("z".to_string(), host(z)),
        ("dx".to_string(), grad_of(&x, &mut grads)),
    ];
    for e in l.entries() {
        let g = match &e.value {
            ParamValue::Vector(t) => grad_of(t, &mut grads),
            ParamValue::Matrix(t) => grad_of(t, &mut grads),
        };
        out.push((format!("d{}", e.name), g));
    }
    out
}

/// The fused conv DANN layer against burn's convolutions, on its maps and pooled (ReLU then
/// max-pooling, windows that leave rows and columns over).
#[test]
fn fused_conv_dann_matches_burn_conv2d() {
    let same = Conv2d {
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
    };
    for (conv, c_i, (b, h, w), pool) in [
        (ODD, 3, (3, 9, 11), Pool::None),
        (ODD, 1, (1, 6, 7), Pool::None),
        (same, 4, (5, 8, 8), Pool::None),
        (same, 4, (6, 9, 8), Pool::ReluMax(2)),
        (ODD, 2, (5, 9, 11), Pool::ReluMax(3)),
    ] {
        let l32 = dann_layer(5, 12, c_i, conv, DType::F32);
        let l64 = dann_layer(5, 12, c_i, conv, DType::F64);
        let x = images(b, 5, h, w, 3, DType::F32);
        let fast = dann_outputs(&l32, &x, pool, true);
        let plain = dann_outputs(&l32, &x, pool, false);
        let truth = dann_outputs(&l64, &x.clone().cast(DType::F64), pool, false);
        for (((name, f), (_, p)), (_, t)) in fast.iter().zip(&plain).zip(&truth) {
            let what = format!("{conv:?} C_i {c_i} {pool:?}: {name}");
            assert_as_accurate_within(&what, f, p, t, 1e-5, 5.0);
        }
    }
}

/// The fused plain convolution against burn's `conv2d`, on its maps and pooled (windows of
/// 2, 3 and 5: two of the pool's kernels for a constant size and its general one).
#[test]
fn fused_conv_affine_matches_burn_conv2d() {
    let dev = device();
    let one = Conv2d {
        kernel: [1, 1],
        stride: [1, 1],
        padding: [0, 0],
        dilation: [1, 1],
    };
    let same = Conv2d {
        kernel: [3, 3],
        padding: [1, 1],
        ..one
    };
    for (conv, pool) in [
        (ODD, Pool::None),
        (one, Pool::None),
        (same, Pool::ReluMax(2)),
        (ODD, Pool::ReluMax(3)),
        (one, Pool::ReluMax(5)),
    ] {
        let d = 4 * conv.kernel[0] * conv.kernel[1];
        let weight: Vec<f32> = InitRng::new(5)
            .normal(6 * d, 0.3)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let bias: Vec<f32> = InitRng::new(6)
            .normal(6, 0.3)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let run = |fused: bool, dtype: DType| {
            let w = Tensor::<2>::from_data(TensorData::new(weight.clone(), [6, d]), &dev)
                .cast(dtype)
                .require_grad();
            let bv = Tensor::<1>::from_data(TensorData::new(bias.clone(), [6]), &dev)
                .cast(dtype)
                .require_grad();
            let x = images(6, 4, 10, 9, 4, dtype).require_grad();
            let y = Settings {
                fused,
                ..Settings::default()
            }
            .scope(|| {
                dales::fused::conv_affine(
                    x.clone(),
                    w.clone(),
                    bv.clone(),
                    conv,
                    pool,
                    |x, w, b| pool.plain(conv_affine_plain(x, w, b, conv)),
                )
            });
            let r = (y.clone() * 0.0 + 1.0) * y.clone().cos().detach();
            let mut g = (y.clone() * r).sum().backward();
            vec![
                host(y),
                grad_of(&x, &mut g),
                grad_of(&w, &mut g),
                grad_of(&bv, &mut g),
            ]
        };
        let (fast, plain, truth) = (
            run(true, DType::F32),
            run(false, DType::F32),
            run(false, DType::F64),
        );
        for (k, name) in ["y", "dx", "dW", "db"].iter().enumerate() {
            assert_as_accurate_within(
                &format!("{conv:?} {pool:?}: {name}"),
                &fast[k],
                &plain[k],
                &truth[k],
                1e-5,
                2.0,
            );
        }
    }
}

#[test]
fn conv_dann_gradients_match_finite_differences() {
    let l = dann_layer(3, 5, 2, ODD, DType::F64);
    let x = images(2, 3, 7, 8, 11, DType::F64) + 0.1;
    let r = images(2, 5, 4, 6, 12, DType::F64) - 0.5;
    let loss = |l: &ConvDann| (l.forward(x.clone(), Pool::None) * r.clone()).sum();
    let mut grads = loss(&l).backward();
    let entries = l.entries();
    let analytic: Vec<Vec<f64>> = entries
        .iter()
        .map(|e| match &e.value {
            ParamValue::Vector(t) => grad_of(t, &mut grads),
            ParamValue::Matrix(t) => grad_of(t, &mut grads),
        })
        .collect();
    let eps = 1e-6;
    let mut checked = 0;
    for (k, e) in entries.iter().enumerate() {
        let base = e.value.to_f64_vec();
        for pos in (0..base.len()).step_by((base.len() / 7).max(1)) {
            let at = |delta: f64| {
                let values = entries
                    .iter()
                    .enumerate()
                    .map(|(j, o)| {
                        let mut v = o.value.to_f64_vec();
                        if j == k {
                            v[pos] += delta;
                        }
                        let n = v.len();
                        o.value.with_flat(Tensor::from_data(
                            TensorData::new(v, [n]),
                            (&device(), DType::F64),
                        ))
                    })
                    .collect();
                host(loss(&l.clone().with_values(values)))[0]
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            let a = analytic[k][pos];
            assert!(
                (a - numeric).abs() <= 1e-7 + 1e-5 * numeric.abs(),
                "{}[{pos}]: analytic {a} vs finite difference {numeric}",
                e.name
            );
            checked += 1;
        }
    }
    assert!(checked >= 6 * 2, "checked {checked} entries");
}

#[test]
fn conv_dann_init_single_inhibitory_channel_is_the_mean_filter() {
    let l = ConvDannConfig {
        c_in: 4,
        c_e: 10,
        c_i: 1,
        conv: ODD,
    }
    .init(&mut InitRng::new(2), &device())
    .unwrap();
    let e = l.dense.wex.val().to_data().try_to_vec::<f32>().unwrap();
    let i = l.dense.wix.val().to_data().try_to_vec::<f32>().unwrap();
    let d = 4 * 6;
    for (j, &v) in i.iter().enumerate() {
        let mean = (0..10).map(|c| e[c * d + j] as f64).sum::<f64>() / 10.0;
        assert!(
            (v as f64 - mean).abs() < 1e-6,
            "i_weight[{j}] {v} vs mean {mean}"
        );
    }
    assert!(host(l.dense.wei.val()).iter().all(|&w| w == 1.0));
    let two_pi = 2.0 * std::f64::consts::PI;
    let alpha = ((two_pi - 1.0) / d as f64).sqrt().ln();
    assert!(
        host(l.dense.alpha.val())
            .iter()
            .all(|&a| (a - alpha).abs() < 1e-6)
    );
    // e_weight ~ Exp(σ): mean σ = √(2π/(d(2π−1))) (240 draws: s.e. σ/√240 ≈ 6.5 %).
    let sigma = (two_pi / (d as f64 * (two_pi - 1.0))).sqrt();
    let mean = e.iter().map(|&v| v as f64).sum::<f64>() / e.len() as f64;
    assert!(
        (mean / sigma - 1.0).abs() < 0.2,
        "mean e_weight {mean} vs σ {sigma}"
    );
}

/// At every pixel the layer is the dense DANN layer on the patch (spec A2.2): on ReLU-Gaussian
/// images the output's mean over channels is ≈ 0 and its std over channels ≈ √(π/(2π−1)).
#[test]
fn conv_dann_init_is_layer_norm_like_per_pixel() {
    let conv = Conv2d {
        kernel: [3, 3],
        stride: [1, 1],
        padding: [0, 0],
        dilation: [1, 1],
    };
    let l = ConvDannConfig {
        c_in: 64,
        c_e: 256,
        c_i: 25,
        conv,
    }
    .init(&mut InitRng::new(1), &device())
    .unwrap();
    let u: Vec<f32> = InitRng::new(2)
        .normal(8 * 64 * 10 * 10, 1.0)
        .iter()
        .map(|&v| v.max(0.0) as f32)
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(u, [8, 64, 10, 10]), &device());
    let z = host(
        l.forward(x, Pool::None)
            .swap_dims(1, 3)
            .reshape([8 * 8 * 8, 256]),
    );
    let (mut means, mut stds) = (Vec::new(), Vec::new());
    for row in z.chunks_exact(256) {
        let m = row.iter().sum::<f64>() / 256.0;
        let v = row.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 255.0;
        means.push(m);
        stds.push(v.sqrt());
    }
    let mean_of = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean_of(&means).abs() < 0.15,
        "mean over channels {}",
        mean_of(&means)
    );
    let want = (std::f64::consts::PI / (2.0 * std::f64::consts::PI - 1.0)).sqrt();
    let got = mean_of(&stds);
    assert!(
        (got / want - 1.0).abs() < 0.1,
        "std over channels {got} vs {want}"
    );
}

fn small_config(family: ConvFamily) -> ConvConfig {
    let mut c = ConvConfig::small(family);
    c.conv = vec![
        ConvSpec::same3(6, 2, 2),
        ConvSpec {
            pool: 0,
            ..ConvSpec::same3(8, 2, 0)
        },
    ];
    c.dense = vec![[16, 3]];
    c.pixel_mean = Some(0.286);
    c
}

#[test]
fn conv_dann_matches_reference() {
    check_reference("conv_dann", ConvFamily::Dann, &device());
}

#[test]
fn conv_dann_nocorr_matches_reference() {
    check_reference("conv_dann_nocorr", ConvFamily::DannNocorr, &device());
}

#[test]
fn conv_standard_matches_reference() {
    check_reference("conv_standard", ConvFamily::Standard, &device());
}

#[test]
fn conv_columnei_matches_reference() {
    check_reference("conv_columnei", ConvFamily::ColumnEi, &device());
}

/// 50 steps at a learning rate 20× the preset's: every constrained parameter stays ≥ 0.
#[test]
fn signs_hold_over_50_large_steps() {
    let dev = device();
    for family in [
        ConvFamily::Dann,
        ConvFamily::DannNocorr,
        ConvFamily::ColumnEi,
    ] {
        let config = small_config(family);
        let mut model: ConvNet = config.init_seeded(4, &dev).unwrap();
        let mut optim = Optimizer::new(Method::SGD, Clip::NONE, config.default_rules());
        optim.check(&model).unwrap();
        for step in 0..50 {
            let x = images(8, 1, 28, 28, step, DType::F32).reshape([8, 1, 784]);
            let loss = cross_entropy(model.logits(x), &labels(8, 10));
            model = optim.step(1.0, model.clone(), &mut loss.backward());
            for layer in model.param_layers() {
                for e in &layer.entries {
                    let constrained = matches!(
                        e.name,
                        "e_weight" | "i_weight" | "wex" | "wix" | "wei" | "gain" | "w_pos"
                    );
                    if constrained {
                        let v = e.value.to_f64_vec();
                        assert!(
                            v.iter().all(|&w| w >= 0.0),
                            "{family:?} step {step}: {}.{} has a negative entry",
                            layer.name,
                            e.name
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn checkpoint_round_trip_and_mismatch() {
    let dev = device();
    let dir = temp_dir("conv-ckpt");
    for family in ConvFamily::ALL {
        let config = small_config(family);
        let model = config.init_seeded(9, &dev).unwrap();
        let path = dir.join(format!("{}.safetensors", family.name()));
        save_conv(&model, &path).unwrap();
        let back = load_conv(&path, Some(&config), &dev).unwrap();
        assert_eq!(values_by_name(&back), values_by_name(&model), "{family:?}");
        let (tensors, meta) =
            dales::checkpoint::decode(&path, &std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(meta["format"], "dales-conv/1");
        let filter = if family.has_inhibition() && family != ConvFamily::ColumnEi {
            "conv.1.e_weight"
        } else if family == ConvFamily::ColumnEi {
            "conv.1.w_pos"
        } else {
            "conv.1.weight"
        };
        let in_channels = if family == ConvFamily::ColumnEi { 8 } else { 6 };
        assert_eq!(tensors[filter].1[1..], [in_channels, 3, 3], "{filter}");
        let mut other = config.clone();
        other.dense = vec![[17, 3]];
        let err = load_conv(&path, Some(&other), &dev)
            .unwrap_err()
            .to_string();
        assert!(err.contains("architecture"), "{err}");
    }
}

#[test]
fn configuration_errors_name_their_key() {
    type Change = Box<dyn Fn(&mut ConvConfig)>;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|c| c.conv[1].c_i = 0), "model.conv[1].c_i"),
        (
            Box::new(|c| c.conv[0].kernel = [40, 3]),
            "model.conv[0].kernel",
        ),
        (
            Box::new(|c| c.conv[0].stride = [0, 1]),
            "model.conv[0].stride",
        ),
        (Box::new(|c| c.conv[1].pool = 20), "model.conv[1].pool"),
        (Box::new(|c| c.dropout = 1.0), "model.dropout"),
        (Box::new(|c| c.dense = vec![[8, 0]]), "model.dense[0]"),
        (Box::new(|c| c.conv.clear()), "model.conv"),
        (Box::new(|c| c.net = "VGG".into()), "model.net"),
    ];
    for (change, key) in cases {
        let mut c = ConvConfig::small(ConvFamily::Dann);
        change(&mut c);
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains(key), "expected `{key}` in: {err}");
    }
}

/// The VGG16s of spec A4 build and run: 13 conv layers in five pooled blocks, the 4 × 4
/// adaptive pool (8192 features), two dense layers of 4096 and 10 outputs; finite logits.
#[test]
fn vgg16_builds_and_runs_forward() {
    for family in [ConvFamily::Dann, ConvFamily::Standard] {
        let config = ConvConfig::vgg(16, family, 10);
        let model = config.init_seeded(1, &device()).unwrap();
        assert_eq!(model.convs.len(), 13);
        let layers = model.param_layers();
        let dense0 = layers.iter().find(|l| l.name == "dense.0").unwrap();
        assert_eq!(dense0.entries[0].value.shape(), [4096, 8192]);
        let x = images(2, 3, 32, 32, 5, DType::F32).reshape([2, 1, 3 * 32 * 32]);
        let logits = host(model.inference().logits(x));
        assert_eq!(logits.len(), 20);
        assert!(
            logits.iter().all(|v| v.is_finite()),
            "{family:?}: {logits:?}"
        );
    }
}

/// Bad `dales-conv/1` files are refused with the file and the fault named: another format, a
/// reference-style file (no `config`) with an unknown kind or without `arch`, a filter of the
/// wrong shape.
#[test]
fn bad_checkpoints_are_clear_errors() {
    use dales::checkpoint::{decode, encode};
    let dev = device();
    let dir = temp_dir("conv-bad-ckpt");
    let config = small_config(ConvFamily::Dann);
    let good = dir.join("good.safetensors");
    save_conv(&config.init_seeded(2, &dev).unwrap(), &good).unwrap();
    let (tensors, meta) = decode(&good, &std::fs::read(&good).unwrap()).unwrap();
    type Meta = std::collections::HashMap<String, String>;
    type Change = Box<dyn Fn(&mut dales::checkpoint::NamedTensors, &mut Meta)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "format",
            Box::new(|_, m| {
                m.insert("format".into(), "dales-ff/1".into());
            }),
            "not a convolutional checkpoint",
        ),
        (
            "kind",
            Box::new(|_, m| {
                m.remove("config");
                m.insert("kind".into(), "conv_bogus".into());
            }),
            "family `bogus`",
        ),
        (
            "arch",
            Box::new(|_, m| {
                m.remove("config");
                m.remove("arch");
            }),
            "no `arch` metadata",
        ),
        (
            "shape",
            Box::new(|t, _| {
                t.get_mut("conv.0.e_weight").unwrap().1 = vec![6, 1, 9, 1];
            }),
            "conv.0.e_weight",
        ),
    ];
    for (name, change, expected) in cases {
        let (mut t, mut m) = (tensors.clone(), meta.clone());
        change(&mut t, &mut m);
        let path = dir.join(format!("{name}.safetensors"));
        std::fs::write(&path, encode(&t, m).unwrap()).unwrap();
        let err = load_conv(&path, None, &dev).unwrap_err().to_string();
        assert!(err.contains(expected), "{name}: {err}");
        assert!(err.contains(&path.display().to_string()), "{name}: {err}");
    }
}
