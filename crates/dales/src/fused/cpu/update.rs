//! The plain-SGD update ([`SgdStep`]) as one pass over each parameter on the host, written
//! into the gradient's buffer when the gradient is not shared (it never is after a backward
//! pass): the same arithmetic as `crate::optim::rule::apply` and `crate::optim::rule::project`,
//! the plain version, in one pass instead of one tensor op per stage.

use burn::backend::NdArray;
use burn::backend::TensorMetadata;
use burn::backend::ndarray::NdArrayTensor;
use rayon::prelude::*;

use super::{f32s, host};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::SgdStep;

/// Entries per rayon task: below this a parameter is updated on one thread.
const CHUNK: usize = 1 << 15;

impl Kernel<NdArray, 2> for SgdStep {
    type Saved = ();

    fn forward(&self, [p, g]: [NdArrayTensor; 2], _: bool) -> (NdArrayTensor, Option<()>) {
        let SgdStep {
            lr,
            exponentiated,
            nonneg,
        } = *self;
        let out = into_grad_buffer(g, |g| {
            let p = f32s(&p);
            // The rule and projection are chosen once per tensor, outside the loop: inside
            // it, the compiler evaluates `exp` for every entry even under gradient descent.
            match (exponentiated, nonneg) {
                (false, false) => map2(&p, g, |p, g| p - g * lr),
                (false, true) => map2(&p, g, |p, g| project(p - g * lr)),
                (true, false) => map2(&p, g, |p, g| eg(p, g, lr)),
                (true, true) => map2(&p, g, |p, g| project(eg(p, g, lr))),
            }
        });
        (out, None)
    }

    fn backward(&self, _: (), _: NdArrayTensor, _: [bool; 2]) -> [Option<NdArrayTensor>; 2] {
        unreachable!("the SGD update runs without autodiff")
    }
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
    unreachable!("the update runs on f32 tensors (checked by `sgd_step`)")
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
fn project(v: f32) -> f32 {
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
