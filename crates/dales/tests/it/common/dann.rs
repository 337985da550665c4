//! A DANN layer for the fused-versus-plain tests, on any device.

use burn::tensor::{DType, Device, Tensor};
use dales::fused;
use dales::nn::{DannConfig, DannDense, InitRng, Layer, ParamValue};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{host, uniform};

/// A DANN layer initialised as in the paper on `dev`, then with α, g and b moved off their
/// initial values so that every gradient path is exercised.
pub fn layer(d: usize, ne: usize, ni: usize, first: bool, seed: u64, dev: &Device) -> DannDense {
    let l = DannConfig {
        n_in: d,
        ne,
        ni,
        first_layer: first,
    }
    .init(&mut InitRng::new(seed), dev)
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
    let values = l
        .entries()
        .into_iter()
        .map(|e| {
            let shape = e.value.shape();
            let mut v = e.value.to_f32_vec();
            match e.name {
                "alpha" => v.iter_mut().for_each(|a| *a += rng.random_range(-0.5..0.5)),
                "gain" => v.iter_mut().for_each(|g| *g = rng.random_range(0.5..1.5)),
                "bias" => v.iter_mut().for_each(|b| *b = rng.random_range(-0.2..0.2)),
                _ => {}
            }
            ParamValue::from_f32(v, &shape, dev)
        })
        .collect();
    l.with_values(values)
}

/// The same layer on `dev` in `dtype`.
pub fn on(l: &DannDense, dev: &Device, dtype: DType) -> DannDense {
    let values = l
        .entries()
        .into_iter()
        .map(|e| ParamValue::from_f32(e.value.to_f32_vec(), &e.value.shape(), dev).cast(dtype))
        .collect();
    l.clone().with_values(values)
}

/// Output and the gradients of x and of every parameter under the loss Σ z ⊙ R (R fixed,
/// random), through the fused op or the plain tensor version.
pub fn outputs(l: &DannDense, x: &Tensor<2>, fused_path: bool) -> Vec<(String, Vec<f64>)> {
    let x = x.clone().require_grad();
    let z = if fused_path {
        fused::dann_layer(
            x.clone(),
            [l.wex.val(), l.wix.val(), l.wei.val()],
            [l.alpha.val(), l.gain.val(), l.bias.val()],
            dales::nn::SHUNT_EPS,
            |_, _, _| panic!("the fused op did not run"),
        )
    } else {
        l.parts(x.clone()).z
    };
    let [b, ne] = z.dims();
    let r = (uniform(b, ne, 9, &x.device()) - 0.5).cast(z.dtype());
    let grads = (z.clone() * r).sum().backward();
    let mut out = vec![
        ("z".to_string(), host(z)),
        ("dx".to_string(), host(x.grad(&grads).unwrap())),
    ];
    for e in l.entries() {
        let g = match &e.value {
            ParamValue::Vector(t) => host(t.grad(&grads).unwrap()),
            ParamValue::Matrix(t) => host(t.grad(&grads).unwrap()),
        };
        out.push((format!("d{}", e.name), g));
    }
    out
}
