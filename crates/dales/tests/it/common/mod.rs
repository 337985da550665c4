//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod controller;
pub mod conv;
pub mod dann;
pub mod reference;
pub mod sequence;

use burn::tensor::{DType, Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The CPU device the tests run on, with autodiff.
pub fn device() -> Device {
    dales::device::cpu().autodiff()
}

/// A `(rows, cols)` f32 matrix of U(0, 1) values (non-negative, like pixels).
pub fn uniform(rows: usize, cols: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f32> = (0..rows * cols).map(|_| rng.random::<f32>()).collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

/// The same values as an f64 matrix.
pub fn to_f64(t: Tensor<2>) -> Tensor<2> {
    t.cast(DType::F64)
}

/// Host copy, f64.
pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap()
}

/// Labels 0, 1, …, classes−1, 0, … for a batch.
pub fn labels(batch: usize, classes: usize) -> Vec<usize> {
    (0..batch).map(|i| i % classes).collect()
}

/// Largest |a − b| / (atol + rtol·|b|); ≤ 1 means every pair is within tolerance.
pub fn worst(a: &[f64], b: &[f64], atol: f64, rtol: f64) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (atol + rtol * y.abs()))
        .fold(0.0, f64::max)
}

/// Write a small learnable MNIST-format dataset into `dir` (see `dales_data::synthetic`).
pub fn write_idx_dataset(
    dir: &std::path::Path,
    n_train: usize,
    n_test: usize,
    side: usize,
    classes: usize,
    seed: u64,
) {
    let spec = dales_data::synthetic::SyntheticSpec {
        n_train,
        n_test,
        side,
        classes,
        seed,
    };
    dales_data::synthetic::write_dataset(dir, spec).unwrap();
}

/// A fresh, empty temporary directory for one test.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dales-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fast path's f32 result `fast` against the f64 `truth`, with the plain f32 version `plain`
/// as the yardstick: `fast` must be within `rtol` × (largest |truth|) of the truth, or no
/// further from it than twice the plain version is. f32 sums with cancellation (a bias
/// gradient over a batch, DANN's α gradient) can miss a bare 1e-5 in either implementation,
/// and this still fails a wrong or less accurate fast path.
pub fn assert_as_accurate(what: &str, fast: &[f64], plain: &[f64], truth: &[f64], rtol: f64) {
    assert_as_accurate_within(what, fast, plain, truth, rtol, 2.0);
}

/// As [`assert_as_accurate`], with `factor` times the plain version's error in place of twice.
pub fn assert_as_accurate_within(
    what: &str,
    fast: &[f64],
    plain: &[f64],
    truth: &[f64],
    rtol: f64,
    factor: f64,
) {
    let scale = truth.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    check_as_accurate(what, fast, plain, truth, rtol * scale, factor);
}

/// As [`assert_as_accurate`] with an absolute tolerance `atol` instead of a relative one.
pub fn assert_as_accurate_abs(what: &str, fast: &[f64], plain: &[f64], truth: &[f64], atol: f64) {
    check_as_accurate(what, fast, plain, truth, atol, 2.0);
}

fn check_as_accurate(
    what: &str,
    fast: &[f64],
    plain: &[f64],
    truth: &[f64],
    atol: f64,
    factor: f64,
) {
    assert_eq!(fast.len(), truth.len(), "{what}: length");
    assert_eq!(plain.len(), truth.len(), "{what}: length");
    let err = |v: &[f64]| {
        v.iter()
            .zip(truth)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    };
    let (fast_err, plain_err) = (err(fast), err(plain));
    assert!(
        fast_err <= atol.max(factor * plain_err),
        "{what}: fast path off by {fast_err:.3e} (plain f32 {plain_err:.3e}, tolerance {atol:.3e})"
    );
}

/// The same model with every parameter in f64 (for finite differences and f64 truths).
pub fn as_f64<M: dales::nn::Parameterised + Clone>(model: &M) -> M {
    map_params(model, |v| v.cast(DType::F64))
}

/// The same model with `f` applied to every parameter's value.
pub fn map_params<M: dales::nn::Parameterised + Clone>(
    model: &M,
    f: impl Fn(dales::nn::ParamValue) -> dales::nn::ParamValue,
) -> M {
    let values = model
        .param_layers()
        .into_iter()
        .map(|l| l.entries.into_iter().map(|e| f(e.value)).collect())
        .collect();
    model.clone().with_layer_values(values)
}

/// Output and the gradients of x, W and b of `x Wᵀ + b` under the loss Σ y ⊙ R.
pub fn affine_outputs(
    x: &Tensor<2>,
    w: &Tensor<2>,
    b: &Tensor<1>,
    fused_path: bool,
) -> Vec<Vec<f64>> {
    let (x, w, b) = (
        x.clone().require_grad(),
        w.clone().require_grad(),
        b.clone().require_grad(),
    );
    let y = if fused_path {
        dales::fused::affine(x.clone(), w.clone(), b.clone(), |_, _, _| {
            panic!("the fused op did not run")
        })
    } else {
        dales::nn::dense::affine_plain(x.clone(), w.clone(), b.clone())
    };
    let [rows, cols] = y.dims();
    let r = (uniform(rows, cols, 11, &x.device()) - 0.5).cast(y.dtype());
    let grads = (y.clone() * r).sum().backward();
    vec![
        host(y),
        host(x.grad(&grads).unwrap()),
        host(w.grad(&grads).unwrap()),
        host(b.grad(&grads).unwrap()),
    ]
}

/// Every trainable parameter's gradient (`layer.param`) of the mean cross-entropy of an MLP's
/// logits on `x` at `targets`.
pub fn param_grads(
    model: &dales::nn::Mlp,
    x: Tensor<2>,
    targets: &[usize],
) -> std::collections::BTreeMap<String, Vec<f64>> {
    use dales::nn::{ParamValue, Parameterised};
    let mut grads = dales::train::cross_entropy(model.forward(x), targets).backward();
    let mut out = std::collections::BTreeMap::new();
    for l in model.param_layers() {
        for e in l.entries.into_iter().filter(|e| e.role.is_some()) {
            let g = match &e.value {
                ParamValue::Vector(t) => host(t.grad_remove(&mut grads).unwrap()),
                ParamValue::Matrix(t) => host(t.grad_remove(&mut grads).unwrap()),
            };
            out.insert(format!("{}.{}", l.name, e.name), g);
        }
    }
    out
}
