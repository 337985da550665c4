//! Finite-difference gradient checks of every layer, in f64.
//!
//! For a loss L = Σ z ⊙ w with fixed random w (a plain sum would have a zero gradient through
//! layer norm), the autodiff gradient of each parameter entry is compared with the central
//! difference (L(p + ε) − L(p − ε)) / 2ε, ε = 1e-6. In f64 the truncation error is O(ε²) and the
//! rounding error O(1e-16/ε) = 1e-10 relative to L, so |analytic − numeric| ≤ 1e-7 + 1e-5·|numeric|
//! is a strict bound that a wrong derivative cannot meet.

use crate::common::{device, host, to_f64, uniform};
use burn::tensor::{DType, Tensor};
use dales::nn::init::InitRng;
use dales::nn::{
    ColumnEiConfig, DannConfig, DenseConfig, Layer, MlpConfig, ModelKind, ParamValue, Parameterised,
};
use dales::train::cross_entropy;

const EPS: f64 = 1e-6;

fn loss_of<L: Layer>(layer: &L, x: &Tensor<2>, w: &Tensor<2>) -> Tensor<1> {
    (layer.forward(x.clone()) * w.clone()).sum()
}

/// Check every trainable entry's gradient at up to `per_param` positions spread over it.
fn check_layer<L: Layer>(layer: L, n_in: usize, name: &str) {
    let dev = device();
    let values: Vec<ParamValue> = layer
        .entries()
        .into_iter()
        .map(|e| e.value.cast(DType::F64))
        .collect();
    let layer = layer.with_values(values);
    let batch = 6;
    // Inputs in [0.1, 1.1]: non-negative like pixels/ReLU outputs, away from 0 so γ > 0.
    let x = to_f64(uniform(batch, n_in, 11, &dev)) + 0.1;
    let w = to_f64(uniform(batch, layer.n_out(), 12, &dev)) - 0.5;
    let mut grads = loss_of(&layer, &x, &w).backward();
    let entries = layer.entries();
    let mut checked = 0;
    for (k, e) in entries.iter().enumerate() {
        if e.role.is_none() {
            continue;
        }
        let analytic = match &e.value {
            ParamValue::Vector(t) => host(t.grad_remove(&mut grads).expect("gradient")),
            ParamValue::Matrix(t) => host(t.grad_remove(&mut grads).expect("gradient")),
        };
        let base = e.value.to_f64_vec();
        let n = base.len();
        for pos in (0..n).step_by((n / 9).max(1)) {
            let eval = |delta: f64| {
                let mut v = base.clone();
                v[pos] += delta;
                let data: Vec<f64> = v;
                let shape = e.value.shape();
                let value = match shape.as_slice() {
                    [n] => ParamValue::Vector(Tensor::from_data(
                        burn::tensor::TensorData::new(data, [*n]),
                        (&dev, DType::F64),
                    )),
                    [r, c] => ParamValue::Matrix(Tensor::from_data(
                        burn::tensor::TensorData::new(data, [*r, *c]),
                        (&dev, DType::F64),
                    )),
                    _ => unreachable!(),
                };
                let mut all: Vec<ParamValue> = entries.iter().map(|e| e.value.clone()).collect();
                all[k] = value;
                let probe = layer.clone().with_values(all);
                host(loss_of(&probe, &x, &w))[0]
            };
            let numeric = (eval(EPS) - eval(-EPS)) / (2.0 * EPS);
            let a = analytic[pos];
            assert!(
                (a - numeric).abs() <= 1e-7 + 1e-5 * numeric.abs(),
                "{name}.{}[{pos}]: autodiff {a:e} vs finite difference {numeric:e}",
                e.name
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "{name}: nothing checked");
}

#[test]
fn dense_gradients() {
    let l = DenseConfig {
        n_in: 7,
        n_out: 5,
        first_layer: false,
    };
    check_layer(l.init(&mut InitRng::new(1), &device()).unwrap(), 7, "dense");
}

#[test]
fn layer_norm_gradients() {
    let l = DenseConfig {
        n_in: 7,
        n_out: 5,
        first_layer: false,
    };
    check_layer(
        l.init_layer_norm(&mut InitRng::new(2), &device()).unwrap(),
        7,
        "layernorm",
    );
}

#[test]
fn column_ei_gradients() {
    for first_layer in [true, false] {
        let l = ColumnEiConfig {
            n_in: 11,
            n_out: 5,
            ratio: 3,
            first_layer,
            pixel_mean: 0.286,
        };
        check_layer(
            l.init(&mut InitRng::new(3), &device()).unwrap(),
            11,
            "columnei",
        );
    }
}

#[test]
fn dann_gradients() {
    for (ni, first_layer) in [(3, true), (3, false), (1, false)] {
        let c = DannConfig {
            n_in: 9,
            ne: 6,
            ni,
            first_layer,
        };
        let layer = c.init(&mut InitRng::new(4), &device()).unwrap();
        // Move every parameter off its symmetric init (Wei = 1/ni, g = 1, b = 0) so that each
        // entry's derivative differs from the others'.
        let values = layer
            .entries()
            .into_iter()
            .enumerate()
            .map(|(i, e)| match e.value {
                ParamValue::Matrix(t) => {
                    let [r, cc] = t.dims();
                    ParamValue::Matrix(t * (uniform(r, cc, 20 + i as u64, &device()) + 0.5))
                }
                ParamValue::Vector(t) => {
                    let n = t.dims()[0];
                    let jitter = uniform(1, n, 30 + i as u64, &device()).reshape([n]);
                    ParamValue::Vector(t + jitter * 0.3)
                }
            })
            .collect();
        check_layer(layer.with_values(values), 9, "dann");
    }
}

#[test]
fn ei_dense_gradients() {
    let c = DannConfig {
        n_in: 9,
        ne: 6,
        ni: 2,
        first_layer: false,
    };
    check_layer(
        c.init_subtractive(&mut InitRng::new(5), &device()).unwrap(),
        9,
        "eidense",
    );
}

/// The whole network with cross-entropy, through ReLUs (inputs chosen so no unit sits at 0).
#[test]
fn dann_mlp_cross_entropy_gradients() {
    let dev = device();
    let config = MlpConfig {
        n_in: 12,
        hidden: vec![8, 6],
        n_out: 4,
        ni: Some(2),
        ..MlpConfig::paper(ModelKind::Dann)
    };
    let model = config.init_seeded(9, &dev).unwrap();
    let model = crate::common::as_f64(&model);
    let x = to_f64(uniform(5, 12, 13, &dev));
    let y = [0, 1, 2, 3, 1];
    let mut grads = cross_entropy(model.forward(x.clone()), &y).backward();
    let layers = model.param_layers();
    for (li, layer) in layers.iter().enumerate() {
        for (k, e) in layer.entries.iter().enumerate() {
            let analytic = match &e.value {
                ParamValue::Vector(t) => host(t.grad_remove(&mut grads).unwrap()),
                ParamValue::Matrix(t) => host(t.grad_remove(&mut grads).unwrap()),
            };
            let base = e.value.to_f64_vec();
            let pos = base.len() / 2;
            let eval = |delta: f64| {
                let mut v = base.clone();
                v[pos] += delta;
                let mut all: Vec<Vec<ParamValue>> = layers
                    .iter()
                    .map(|l| l.entries.iter().map(|e| e.value.clone()).collect())
                    .collect();
                all[li][k] = ParamValue::from_f32(vec![0.0; base.len()], &e.value.shape(), &dev)
                    .cast(DType::F64)
                    .with_flat(Tensor::from_data(
                        burn::tensor::TensorData::new(v, [base.len()]),
                        (&dev, DType::F64),
                    ));
                let probe = model.clone().with_layer_values(all);
                host(cross_entropy(probe.forward(x.clone()), &y))[0]
            };
            let numeric = (eval(EPS) - eval(-EPS)) / (2.0 * EPS);
            assert!(
                (analytic[pos] - numeric).abs() <= 1e-7 + 1e-5 * numeric.abs(),
                "{}.{}: {} vs {}",
                layer.name,
                e.name,
                analytic[pos],
                numeric
            );
        }
    }
}
