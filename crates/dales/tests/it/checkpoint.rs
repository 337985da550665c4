//! `dales-ff/1` checkpoints: round trip, and every kind of bad file gives an error naming it.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::common::{device, host, uniform};
use dales::checkpoint::{NamedTensors, decode, encode, load_mlp, save_mlp};
use dales::nn::{MlpConfig, ModelKind};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dales-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn small(kind: ModelKind) -> dales::nn::Mlp {
    MlpConfig {
        n_in: 12,
        hidden: vec![11, 9],
        n_out: 3,
        pixel_mean: Some(0.286),
        ..MlpConfig::paper(kind)
    }
    .init_seeded(3, &device())
    .unwrap()
}

#[test]
fn round_trip_every_kind() {
    for kind in ModelKind::ALL {
        let model = small(kind);
        let path = tmp(&format!("{kind}.safetensors"));
        save_mlp(&model, kind, &path).unwrap();
        let (loaded, k) = load_mlp(&path, &device()).unwrap();
        assert_eq!(k, kind);
        let a: Vec<_> = model
            .named_entries()
            .into_iter()
            .map(|(n, e)| (n, e.value.to_f32_vec()))
            .collect();
        let b: Vec<_> = loaded
            .named_entries()
            .into_iter()
            .map(|(n, e)| (n, e.value.to_f32_vec()))
            .collect();
        assert_eq!(a, b, "{kind}");
        let x = uniform(4, 12, 1, &device());
        assert_eq!(
            host(model.forward(x.clone())),
            host(loaded.forward(x)),
            "{kind}"
        );
        // The file follows the contract: 1-D vectors, (n_out, n_in) matrices, metadata.
        let bytes = std::fs::read(&path).unwrap();
        let (t, meta) = decode(&path, &bytes).unwrap();
        assert_eq!(meta["format"], "dales-ff/1");
        assert_eq!(meta["kind"], kind.name());
        assert!(
            t.keys()
                .all(|n| n.starts_with("hidden.") || n.starts_with("output."))
        );
        let bias = t.get("hidden.0.bias").unwrap();
        assert_eq!(bias.1, vec![11]);
    }
}

fn write(tensors: &NamedTensors, meta: &[(&str, &str)], name: &str) -> PathBuf {
    let path = tmp(name);
    let meta: HashMap<String, String> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    std::fs::write(&path, encode(tensors, meta).unwrap()).unwrap();
    path
}

fn dann_tensors() -> NamedTensors {
    let path = tmp("base.safetensors");
    save_mlp(&small(ModelKind::Dann), ModelKind::Dann, &path).unwrap();
    decode(&path, &std::fs::read(&path).unwrap()).unwrap().0
}

fn load_err(path: &std::path::Path) -> String {
    let err = load_mlp(path, &device()).unwrap_err().to_string();
    assert!(
        err.contains(&path.display().to_string()),
        "error does not name the file: {err}"
    );
    err
}

#[test]
fn missing_tensor_is_named() {
    let mut t = dann_tensors();
    t.remove("hidden.1.wei");
    let err = load_err(&write(&t, &[], "missing.safetensors"));
    assert!(err.contains("missing tensor `hidden.1.wei`"), "{err}");
}

#[test]
fn misshaped_tensor_is_named() {
    let mut t = dann_tensors();
    let (v, _) = t.remove("hidden.0.gain").unwrap();
    t.insert("hidden.0.gain".into(), (v, vec![1, 11]));
    let err = load_err(&write(&t, &[], "shape.safetensors"));
    assert!(
        err.contains("hidden.0.gain") && err.contains("[1, 11]") && err.contains("[11]"),
        "{err}"
    );
}

#[test]
fn inconsistent_layer_sizes_are_an_error() {
    let mut t = dann_tensors();
    for p in ["wex", "wix"] {
        let (v, s) = t.remove(&format!("hidden.1.{p}")).unwrap();
        let cols = s[1] - 1;
        let v: Vec<f32> = v
            .chunks_exact(s[1])
            .flat_map(|r| r[..cols].to_vec())
            .collect();
        t.insert(format!("hidden.1.{p}"), (v, vec![s[0], cols]));
    }
    let err = load_err(&write(&t, &[], "sizes.safetensors"));
    assert!(
        err.contains("hidden.1") && err.contains("10 inputs") && err.contains("11 outputs"),
        "{err}"
    );
}

#[test]
fn extra_and_misnumbered_tensors_are_errors() {
    let mut t = dann_tensors();
    t.insert("output.extra".into(), (vec![1.0], vec![1]));
    let err = load_err(&write(&t, &[], "extra.safetensors"));
    assert!(err.contains("unexpected tensor `output.extra`"), "{err}");

    let mut t = dann_tensors();
    let keys: Vec<String> = t
        .keys()
        .filter(|k| k.starts_with("hidden.1."))
        .cloned()
        .collect();
    for k in keys {
        let v = t.remove(&k).unwrap();
        t.insert(k.replace("hidden.1.", "hidden.5."), v);
    }
    let err = load_err(&write(&t, &[], "gap.safetensors"));
    assert!(err.contains("hidden.1") && err.contains("missing"), "{err}");
}

#[test]
fn wrong_dtype_garbage_and_kind_mismatch_are_errors() {
    // not a safetensors file
    let path = tmp("garbage.safetensors");
    std::fs::write(&path, b"definitely not safetensors").unwrap();
    assert!(load_err(&path).contains("not a safetensors file"));

    // f64 tensor
    let path = tmp("f64.safetensors");
    let data: Vec<u8> = 1.0f64.to_le_bytes().to_vec();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F64, vec![1], &data).unwrap();
    std::fs::write(
        &path,
        safetensors::serialize([("output.bias", view)], None).unwrap(),
    )
    .unwrap();
    let err = load_err(&path);
    assert!(
        err.contains("output.bias") && err.contains("F64") && err.contains("F32"),
        "{err}"
    );

    // metadata kind contradicts the tensors
    let err = load_err(&write(
        &dann_tensors(),
        &[("kind", "mlp")],
        "kind.safetensors",
    ));
    assert!(err.contains("`mlp`") && err.contains("`dann`"), "{err}");
    let err = load_err(&write(
        &dann_tensors(),
        &[("kind", "resnet")],
        "kind2.safetensors",
    ));
    assert!(err.contains("unknown kind `resnet`"), "{err}");

    // missing file
    let err = load_mlp(&tmp("nope.safetensors"), &device())
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope.safetensors"), "{err}");
}

#[test]
fn dann_nocorr_metadata_is_kept() {
    let path = tmp("nocorr.safetensors");
    save_mlp(&small(ModelKind::DannNocorr), ModelKind::DannNocorr, &path).unwrap();
    assert_eq!(load_mlp(&path, &device()).unwrap().1, ModelKind::DannNocorr);
}
