//! ReLU followed by max-pooling (kernel = stride = `p`, floor) as one pass over host slices:
//! `y = max(0, max over each p×p window of x)`, and its backward, which sends each output's
//! gradient to the input that won the window (none where the ReLU cut it to 0). The windows do
//! not overlap, so every input receives at most one gradient.
//!
//! The plain version, burn's `relu` then `max_pool2d`, is the reference these are tested
//! against (`tests/it/conv.rs`).

use burn::backend::NdArray;
use burn::backend::TensorMetadata;
use burn::backend::ndarray::NdArrayTensor;
use rayon::prelude::*;

use super::{f32s, host};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::ReluMaxPool;

/// Marks an output the ReLU cut to 0 (no input receives its gradient).
const CUT: u32 = u32::MAX;

/// `y (planes, OH, OW)` of `x (planes, H, W)` and, per output, the index of the winning input
/// within its plane (or [`CUT`]).
pub fn forward(x: &[f32], planes: usize, [h, w]: [usize; 2], p: usize) -> (Vec<f32>, Vec<u32>) {
    assert_eq!(x.len(), planes * h * w, "x is (planes, H, W)");
    let (oh, ow) = (h / p, w / p);
    let mut y = vec![0.0; planes * oh * ow];
    let mut at = vec![CUT; planes * oh * ow];
    y.par_chunks_mut((oh * ow).max(1))
        .zip(at.par_chunks_mut((oh * ow).max(1)))
        .zip(x.par_chunks((h * w).max(1)))
        .for_each(|((y, at), x)| {
            for r in 0..oh {
                for c in 0..ow {
                    let (mut best, mut arg) = (0.0f32, CUT);
                    for i in r * p..(r + 1) * p {
                        let row = &x[i * w + c * p..i * w + (c + 1) * p];
                        for (j, &v) in row.iter().enumerate() {
                            // Branch-free: the winner of random data is unpredictable. NaN
                            // wins (and stays), so that a diverged run shows.
                            let better = v > best || v.is_nan();
                            let mask = (better as u32).wrapping_neg();
                            let k = (i * w + c * p + j) as u32;
                            arg ^= (arg ^ k) & mask;
                            best = f32::from_bits(
                                best.to_bits() ^ ((best.to_bits() ^ v.to_bits()) & mask),
                            );
                        }
                    }
                    y[r * ow + c] = best;
                    at[r * ow + c] = arg;
                }
            }
        });
    (y, at)
}

/// `dx (planes, H, W)` from `dy (planes, OH, OW)` and the forward's winners.
pub fn backward(dy: &[f32], at: &[u32], planes: usize, [h, w]: [usize; 2], p: usize) -> Vec<f32> {
    let out = (h / p) * (w / p);
    assert_eq!(dy.len(), planes * out, "dy is (planes, OH, OW)");
    let mut dx = vec![0.0; planes * h * w];
    dx.par_chunks_mut((h * w).max(1))
        .zip(dy.par_chunks(out.max(1)).zip(at.par_chunks(out.max(1))))
        .for_each(|(dx, (dy, at))| {
            for (&g, &i) in dy.iter().zip(at) {
                if i != CUT {
                    dx[i as usize] += g;
                }
            }
        });
    dx
}

impl Kernel<NdArray, 1> for ReluMaxPool {
    /// The input's shape and the winners.
    type Saved = ([usize; 4], std::sync::Arc<Vec<u32>>);

    fn forward(&self, [x]: [NdArrayTensor; 1], save: bool) -> (NdArrayTensor, Option<Self::Saved>) {
        let s = x.shape();
        let shape = [s[0], s[1], s[2], s[3]];
        let p = self.size;
        let (y, at) = forward(&f32s(&x), shape[0] * shape[1], [shape[2], shape[3]], p);
        let out = [shape[0], shape[1], shape[2] / p, shape[3] / p];
        (
            host(y, &out),
            save.then(|| (shape, std::sync::Arc::new(at))),
        )
    }

    fn backward(
        &self,
        (shape, at): Self::Saved,
        dy: NdArrayTensor,
        _need: [bool; 1],
    ) -> [Option<NdArrayTensor>; 1] {
        let [b, c, h, w] = shape;
        let dx = backward(&f32s(&dy), &at, b * c, [h, w], self.size);
        [Some(host(dx, &shape))]
    }
}
