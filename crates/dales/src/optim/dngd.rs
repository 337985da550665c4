//! The diagonal natural gradient of DANN networks (d-NGD, spec A3.7).
//!
//! Before each update of a DANN MLP whose layers all have one inhibitory unit:
//! 1. targets ŷ are sampled from the model's own predictions on the batch (non-finite logits
//!    count as 0);
//! 2. the gradient of each example's loss at ŷ is formed analytically, layer by layer
//!    ([`mean_squares`]), and the mean of its square over the batch taken;
//! 3. F_new = f_λ · that mean; the Fisher is a moving average F ← (1 − c)·F + c·F_new (the first
//!    step takes F_new); F⁻¹ = 1/(F + 1e-8), divided by the norm of the layer's `wex` block of
//!    F⁻¹ when configured ([`inverse`]);
//! 4. the optimiser multiplies each gradient by its F⁻¹ (non-finite entries become 0) and takes
//!    the layer's plain step: SGD and the clamp, no corrections.
//!
//! The per-example gradients are exact for one inhibitory unit per layer only; with more the
//! original's formulas are wrong (spec A3.7), so dales refuses them.

use std::collections::BTreeMap;

use burn::tensor::activation::{relu, softmax};
use burn::tensor::{ElementConversion, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::host::{host_f64, tensor};
use crate::nn::dann::{DannDense, DannParts, SHUNT_EPS};
use crate::nn::mlp::{AnyLayer, Mlp};

/// A parameter's key (`hidden.0.wex`) and a flat tensor of its entries.
pub type Named = Vec<(String, Tensor<1>)>;

/// The mean over the batch `x (B, d)` of the squared per-example gradients of every parameter
/// of `model` (keys `layer.param`, entries row-major), at `targets`, or at targets sampled
/// from the model's predictions with `seed`.
pub fn mean_squares(
    model: &Mlp,
    x: Tensor<2>,
    targets: Option<&[usize]>,
    seed: u64,
) -> Result<Named> {
    let layers = dann_layers(model)?;
    let n = layers.len();
    // The forward pass, keeping each layer's input and intermediates.
    let mut caches: Vec<(Tensor<2>, DannParts)> = Vec::with_capacity(n);
    let mut h = x.without_autodiff();
    for (i, layer) in layers.iter().enumerate() {
        let parts = DannParts::of(h.clone(), weights(layer), vectors(layer));
        let next = if i + 1 == n {
            parts.z.clone()
        } else {
            relu(parts.z.clone())
        };
        caches.push((h, parts));
        h = next;
    }
    let logits = finite_or_zero(h);
    let probs = softmax(logits, 1);
    let [b, classes] = probs.dims();
    let targets = match targets {
        Some(t) => t.to_vec(),
        None => sample(&host_f64(probs.clone()), classes, seed),
    };
    let onehot: Vec<f32> = targets
        .iter()
        .flat_map(|&t| (0..classes).map(move |c| f32::from(u8::from(c == t))))
        .collect();
    // ∂l_b/∂z of the last layer, per example: softmax − one-hot.
    let mut delta = probs.clone() - tensor(onehot, [b, classes], &probs.device());
    let mut out = Vec::new();
    for k in (0..n).rev() {
        let layer = layers[k];
        let name = model.layer_name(k);
        let (x, p) = &caches[k];
        let [wex, wix, wei] = weights(layer);
        let [alpha, gain, _] = vectors(layer);
        let g = gain.unsqueeze::<2>();
        let e_alpha = alpha.exp();
        // ∂l/∂ẑ and ∂l/∂γ; then ∂l/∂z_I through both the subtractive and the divisive path.
        let a = delta.clone() * g.clone() / p.gamma.clone();
        let d_gamma = (delta.clone() * g.clone() * p.zhat.clone() / p.gamma.clone().square()).neg();
        let shunt = wei.clone() * e_alpha.clone().unsqueeze();
        let delta_i = a.clone().neg().matmul(wei.clone()) + d_gamma.matmul(shunt);
        let x2 = x.clone().square();
        let per_b = 1.0 / b as f64;
        let mean0 = |t: Tensor<2>| t.square().mean_dim(0).flatten::<1>(0, 1);
        // ∂l/∂Wei ignoring ε inside γ, as the spec's formula does: −δ·g·z_E / (Wei²·e^α·z_I).
        let wei_row = wei.clone().transpose().square() * e_alpha.unsqueeze();
        let d_wei = (delta.clone() * g * p.ze.clone()).neg() / (wei_row * p.zi.clone());
        let d_alpha = (a.clone() * p.zhat.clone()).neg().sum_dim(1);
        let squares = [
            (
                "wex",
                (a.clone().square().transpose().matmul(x2.clone()) * per_b).flatten(0, 1),
            ),
            (
                "wix",
                (delta_i.clone().square().transpose().matmul(x2) * per_b).flatten(0, 1),
            ),
            ("wei", mean0(d_wei)),
            ("alpha", mean0(d_alpha)),
            (
                "gain",
                mean0(p.zhat.clone() / p.gamma.clone() * delta.clone()),
            ),
            ("bias", mean0(delta.clone())),
        ];
        for (param, sq) in squares {
            out.push((format!("{name}.{param}"), sq));
        }
        if k > 0 {
            let back = a.matmul(wex) + delta_i.matmul(wix);
            let active = caches[k - 1].1.z.clone().greater_elem(0.0).float();
            delta = back * active;
        }
    }
    out.reverse();
    Ok(out)
}

/// Step 3: the moving-average Fisher `fisher` updated with `squares` (`f_λ`, `c`), and the
/// inverse F⁻¹ of every parameter, each layer's divided by the norm of its `wex` block when
/// `scale_by_wex` is set.
pub fn inverse(
    fisher: &mut BTreeMap<String, Tensor<1>>,
    squares: Named,
    (f_lambda, c, scale_by_wex): (f64, f64, bool),
) -> BTreeMap<String, Tensor<1>> {
    let mut inv = BTreeMap::new();
    for (key, sq) in squares {
        let new = sq * f_lambda;
        let f = match fisher.remove(&key) {
            Some(old) => old * (1.0 - c) + new * c,
            None => new,
        };
        inv.insert(key.clone(), (f.clone() + SHUNT_EPS).recip());
        fisher.insert(key, f);
    }
    if scale_by_wex {
        let norms: BTreeMap<String, f64> = inv
            .iter()
            .filter_map(|(k, v)| {
                let layer = k.strip_suffix(".wex")?;
                let norm = v
                    .clone()
                    .square()
                    .sum()
                    .into_scalar::<f32>()
                    .elem::<f64>()
                    .sqrt();
                Some((layer.to_string(), norm))
            })
            .collect();
        for (k, v) in inv.iter_mut() {
            let layer = k.rsplit_once('.').map_or(k.as_str(), |(l, _)| l);
            if let Some(norm) = norms.get(layer) {
                *v = v.clone() / *norm;
            }
        }
    }
    inv
}

/// F⁻¹ ⊙ g with non-finite entries set to 0.
pub fn natural(finv: &Tensor<1>, g: Tensor<1>) -> Tensor<1> {
    finite_or_zero(finv.clone() * g)
}

/// `t` with its NaN and infinite entries set to 0.
fn finite_or_zero<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    t.clone().mask_fill(t.is_finite().bool_not(), 0.0)
}

/// The DANN layers of `model`, each with one inhibitory unit.
fn dann_layers(model: &Mlp) -> Result<Vec<&DannDense>> {
    model
        .layers
        .iter()
        .enumerate()
        .map(|(k, layer)| match layer {
            AnyLayer::Dann(l) if l.wix.dims()[0] == 1 => Ok(l),
            AnyLayer::Dann(l) => Err(Error::config(
                "model.ni",
                l.wix.dims()[0],
                format!(
                    "1 for d-NGD (layer {} has more): its per-example gradients are exact for \
                     one inhibitory unit only (spec A3.7)",
                    model.layer_name(k)
                ),
            )),
            _ => Err(Error::config(
                "optim.method",
                "dngd",
                "a DANN network with divisive inhibition (model.kind dann or dann-nocorr)",
            )),
        })
        .collect()
}

fn weights(l: &DannDense) -> [Tensor<2>; 3] {
    [l.wex.val(), l.wix.val(), l.wei.val()].map(Tensor::without_autodiff)
}

fn vectors(l: &DannDense) -> [Tensor<1>; 3] {
    [l.alpha.val(), l.gain.val(), l.bias.val()].map(Tensor::without_autodiff)
}

/// One class per row of `probs (B, classes)`, drawn from the row's distribution.
fn sample(probs: &[f64], classes: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    probs
        .chunks(classes)
        .map(|row| {
            let u: f64 = rng.random::<f64>() * row.iter().sum::<f64>();
            let mut acc = 0.0;
            row.iter()
                .position(|&p| {
                    acc += p;
                    u < acc
                })
                .unwrap_or(classes - 1)
        })
        .collect()
}
