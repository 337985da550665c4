//! The optimiser's last stages (spec D1 rule, then projection) for plain SGD as one pass over
//! each parameter, on the host or (the `gpu` feature) as one CubeCL kernel, instead of one
//! tensor op per stage.

use burn::backend::NdArray;
use burn::tensor::Tensor;
use rayon::prelude::*;

use burn::backend::TensorMetadata;
use burn::backend::ndarray::NdArrayTensor;

use super::{applies, host, with_f32};
use crate::nn::ParamValue;
use crate::optim::{Projection, UpdateRule};

/// Entries per rayon task: below this a parameter is updated on one thread.
const CHUNK: usize = 1 << 15;

/// `project(rule(p, lr · g))` for a parameter `value` and its (corrected, clipped) gradient
/// `grad`, flattened: the same arithmetic as [`crate::optim::rule::apply`] and
/// [`crate::optim::rule::project`] in one pass, written into the gradient's buffer when the
/// gradient is not shared (it never is after a backward pass). `Err(grad)` when the tensors
/// are not f32 on the NdArray backend (or fusing is off); the caller then takes the plain path.
// The error hands the gradient back unchanged for the plain path; boxing it would cost an
// allocation there for nothing.
#[allow(clippy::result_large_err)]
pub fn sgd_step(
    value: &ParamValue,
    grad: Tensor<1>,
    lr: f64,
    rule: UpdateRule,
    projection: Projection,
) -> Result<ParamValue, Tensor<1>> {
    let flat = value.flatten().without_autodiff();
    #[cfg(feature = "gpu")]
    if super::applies_with_gpu(&[&flat, &grad]) && !applies(&[&flat, &grad]) {
        use burn::backend::Cube;
        let (Ok(p), Ok(g)) = (
            flat.try_into_primitive::<Cube>(),
            grad.clone().try_into_primitive::<Cube>(),
        ) else {
            return Err(grad);
        };
        let exponentiated = rule == UpdateRule::Eg;
        let nonneg = projection == Projection::NonNegative;
        let out = super::cube::sgd_step(p, g, lr as f32, exponentiated, nonneg);
        return Ok(value.with_flat(Tensor::from_primitive::<Cube>(out)));
    }
    if !applies(&[&flat, &grad]) {
        return Err(grad);
    }
    let (Ok(p), Ok(g)) = (
        flat.try_into_primitive::<NdArray>(),
        grad.clone().try_into_primitive::<NdArray>(),
    ) else {
        return Err(grad);
    };
    drop(grad);
    let lr = lr as f32;
    let out = with_f32(&p, |p| {
        into_grad_buffer(g, |g| {
            // The rule and projection are chosen once per tensor, outside the loop: inside
            // it, the compiler evaluates `exp` for every entry even under gradient descent.
            match (rule, projection) {
                (UpdateRule::Gd, Projection::None) => map2(p, g, |p, g| p - g * lr),
                (UpdateRule::Gd, Projection::NonNegative) => map2(p, g, |p, g| nonneg(p - g * lr)),
                (UpdateRule::Eg, Projection::None) => map2(p, g, |p, g| eg(p, g, lr)),
                (UpdateRule::Eg, Projection::NonNegative) => {
                    map2(p, g, |p, g| nonneg(eg(p, g, lr)))
                }
            }
        })
    });
    Ok(value.with_flat(Tensor::from_primitive::<NdArray>(out)))
}

/// Run `f` on the gradient's entries as a mutable slice and return the tensor holding the
/// result: the gradient's own buffer when it is f32, contiguous and not shared, else a copy.
fn into_grad_buffer(g: NdArrayTensor, f: impl FnOnce(&mut [f32])) -> NdArrayTensor {
    let shape = g.shape().to_vec();
    if let NdArrayTensor::F32(mut storage) = g {
        if storage.is_unique() {
            let array = storage.ensure_owned();
            if let Some(slice) = array.as_slice_mut() {
                f(slice);
                return NdArrayTensor::F32(storage);
            }
        }
        let mut copy = storage.view().iter().copied().collect::<Vec<f32>>();
        f(&mut copy);
        return host(copy, &shape);
    }
    unreachable!("applies() checked that the gradient is f32")
}

/// `g ← f(p, g)` entry by entry, in rayon chunks.
fn map2(p: &[f32], g: &mut [f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    g.par_chunks_mut(CHUNK)
        .zip(p.par_chunks(CHUNK))
        .for_each(|(g, p)| {
            for (g, &p) in g.iter_mut().zip(p) {
                *g = f(p, *g);
            }
        });
}

/// The projection onto `[0, ∞)`; NaN passes, so a diverging run is still seen as diverging.
#[inline]
fn nonneg(v: f32) -> f32 {
    if v < 0.0 { 0.0 } else { v }
}

/// One exponentiated-gradient entry, `p · exp(−lr · sign(p) · g)`. `sign(0) = 0`, so zeros
/// stay at zero.
#[inline]
fn eg(p: f32, g: f32, lr: f32) -> f32 {
    let sign = if p > 0.0 {
        1.0
    } else if p < 0.0 {
        -1.0
    } else {
        0.0
    };
    p * (sign * g * -lr).exp()
}
