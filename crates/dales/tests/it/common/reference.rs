//! Agreement with the PyTorch reference (`shared/reference`), through golden fixtures it wrote
//! (`tests/fixtures/make_fixtures.py` regenerates them; see `tests/fixtures/README.md`).
//! Shared by `reference.rs` (CPU) and `gpu.rs` (wgpu).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{host, worst};
use burn::tensor::{Device, Tensor, TensorData};
use dales::checkpoint::{NamedTensors, decode, load_mlp};
use dales::nn::{ModelKind, ParamValue, Parameterised};
use dales::optim::{Clip, Method, Optimizer, RuleTable};
use dales::train::cross_entropy;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn read(name: &str) -> NamedTensors {
    let path = fixtures().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    decode(&path, &bytes).unwrap().0
}

pub struct Batch {
    pub x: Tensor<2>,
    pub y: Vec<usize>,
}

pub fn batch(device: &Device) -> Batch {
    let t = read("batch.safetensors");
    let (x, shape) = t["x"].clone();
    let y = t["y"].0.iter().map(|&v| v as usize).collect();
    Batch {
        x: Tensor::from_data(TensorData::new(x, [shape[0], shape[1]]), device),
        y,
    }
}

fn meta(kind: &str) -> serde_json::Value {
    let path = fixtures().join(format!("{kind}.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

pub fn values_by_name<M: Parameterised>(model: &M) -> BTreeMap<String, Vec<f64>> {
    model
        .param_layers()
        .into_iter()
        .flat_map(|l| {
            l.entries
                .into_iter()
                .map(move |e| (format!("{}.{}", l.name, e.name), e.value.to_f64_vec()))
        })
        .collect()
}

/// Compare every tensor of `expected` (values as f32) with `got`: each entry within
/// `rtol` × (the tensor's largest |entry|) + `rtol` × |entry|.
pub fn assert_tensors_close(
    what: &str,
    got: &BTreeMap<String, Vec<f64>>,
    expected: &NamedTensors,
    prefix: &str,
    rtol: f64,
) {
    let mut n = 0;
    for (name, (values, _)) in expected {
        let Some(key) = name.strip_prefix(prefix) else {
            continue;
        };
        let want: Vec<f64> = values.iter().map(|&v| v as f64).collect();
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
        let have = got
            .get(key)
            .unwrap_or_else(|| panic!("{what}: dales has no `{key}`"));
        let w = worst(have, &want, rtol * scale, rtol);
        let max_abs = have
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        eprintln!("{what}: {key}: max |diff| {max_abs:.3e}, scale {scale:.3e}, {w:.3} x tol");
        assert!(
            w <= 1.0,
            "{what}: `{key}` differs from the reference ({w:.2} × tolerance)"
        );
        n += 1;
    }
    assert!(n > 0, "{what}: nothing compared");
}

/// Load the reference's weights for `kind_name` onto `dev` and compare logits, loss, every raw
/// gradient and the weights after one step (without and with per-layer clipping) with it.
pub fn check_kind(kind_name: &str, dev: &Device) {
    let b = batch(dev);
    let m = meta(kind_name);
    let lr = m["lr"].as_f64().unwrap();
    let (model, kind) = load_mlp(
        &fixtures().join(format!("{kind_name}.before.safetensors")),
        dev,
    )
    .unwrap();
    assert_eq!(kind, kind_name.parse::<ModelKind>().unwrap());
    let expected = read(&format!("{kind_name}.expected.safetensors"));

    // Forward: logits and loss.
    let logits = model.forward(b.x.clone());
    let want: Vec<f64> = expected["logits"].0.iter().map(|&v| v as f64).collect();
    let got = host(logits.clone());
    let max_abs = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!("{kind_name}: logits max |diff| {max_abs:.3e}");
    assert!(
        worst(&got, &want, 1e-4, 0.0) <= 1.0,
        "{kind_name}: logits differ by more than 1e-4"
    );
    // Measured: ≤ 3.0e-6 (dann_nocorr), the DANN division amplifying f32 rounding.
    assert!(
        worst(&got, &want, 1e-5, 0.0) <= 1.0,
        "{kind_name}: logits differ beyond f32 rounding"
    );
    let loss = cross_entropy(logits, &b.y);
    let want_loss = expected["loss"].0[0] as f64;
    assert!(
        (host(loss.clone())[0] - want_loss).abs() < 1e-5,
        "{kind_name}: loss"
    );

    // Raw gradients of every parameter.
    let mut grads = loss.backward();
    let mut got_grads = BTreeMap::new();
    for layer in model.param_layers() {
        for e in layer.entries.into_iter().filter(|e| e.role.is_some()) {
            let g = match &e.value {
                ParamValue::Vector(t) => host(t.grad_remove(&mut grads).unwrap()),
                ParamValue::Matrix(t) => host(t.grad_remove(&mut grads).unwrap()),
            };
            got_grads.insert(format!("{}.{}", layer.name, e.name), g);
        }
    }
    // Gradients of `alpha` and of the output layer's single I unit are sums over the batch and
    // the units with heavy cancellation: f32 summation order alone moves them by up to 1.4e-3 of
    // the tensor's largest entry (measured). A wrong formula moves them by O(1).
    assert_tensors_close(kind_name, &got_grads, &expected, "grad.", 2e-3);

    // One step, without and with per-layer clipping.
    for (file, clip) in [
        ("after", Clip::NONE),
        (
            "after_clip",
            Clip::per_layer(m["max_grad_norm"].as_f64().unwrap()),
        ),
    ] {
        let mut optim = Optimizer::new(Method::SGD, clip, RuleTable::for_kind(kind));
        optim.check(&model).unwrap();
        let loss = cross_entropy(model.forward(b.x.clone()), &b.y);
        let stepped = optim.step(lr, model.clone(), &mut loss.backward());
        let want = read(&format!("{kind_name}.{file}.safetensors"));
        assert_tensors_close(
            &format!("{kind_name} {file}"),
            &values_by_name(&stepped),
            &want,
            "",
            1e-5,
        );
    }
}
