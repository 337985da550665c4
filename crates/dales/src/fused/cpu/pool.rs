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

use super::simd::simd_fn;
use super::{f32s, host, written_rows};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::ReluMaxPool;

/// Marks an output the ReLU cut to 0 (no input receives its gradient).
const CUT: u32 = u32::MAX;

/// `y (planes, OH, OW)` of `x (planes, H, W)` and, per output, the index of the winning input
/// within its plane (or [`CUT`]).
pub fn forward(x: &[f32], planes: usize, [h, w]: [usize; 2], p: usize) -> (Vec<f32>, Vec<u32>) {
    assert_eq!(x.len(), planes * h * w, "x is (planes, H, W)");
    let out = (h / p) * (w / p);
    let mut y = vec![0.0; planes * out];
    let mut at = vec![CUT; planes * out];
    y.par_chunks_mut(out.max(1))
        .zip(at.par_chunks_mut(out.max(1)))
        .zip(x.par_chunks((h * w).max(1)))
        .for_each_init(
            || (vec![0.0; w], vec![0; w]),
            |(best, row), ((y, at), x)| plane(x, [h, w], p, y, at, best, row),
        );
    (y, at)
}

simd_fn! {
    /// One plane's outputs and winners, in two passes per row of windows: down the window's
    /// `p` rows, each column's largest entry and the row it is in (element-wise, so it
    /// vectorises); then across each window's `p` columns of those, from 0 (the ReLU). Within
    /// a pass a later entry wins only if it is larger, or NaN (so that a diverged run shows).
    /// `best` and `row` are scratch of `W` entries.
    fn plane(
        x: &[f32],
        hw: [usize; 2],
        p: usize,
        y: &mut [f32],
        at: &mut [u32],
        best: &mut [f32],
        row: &mut [u32],
    ) {
        match p {
            2 => plane_of::<2>(x, hw, y, at, best, row),
            3 => plane_of::<3>(x, hw, y, at, best, row),
            4 => plane_of::<4>(x, hw, y, at, best, row),
            _ => plane_any(x, hw, p, y, at, best, row),
        }
    }
}

/// [`plane`] for windows of `P` (the across-columns pass vectorises for a constant `P`).
#[inline(always)]
fn plane_of<const P: usize>(
    x: &[f32],
    hw: [usize; 2],
    y: &mut [f32],
    at: &mut [u32],
    best: &mut [f32],
    row: &mut [u32],
) {
    plane_any(x, hw, P, y, at, best, row)
}

#[inline(always)]
fn plane_any(
    x: &[f32],
    [h, w]: [usize; 2],
    p: usize,
    y: &mut [f32],
    at: &mut [u32],
    best: &mut [f32],
    row: &mut [u32],
) {
    let (oh, ow) = (h / p, w / p);
    let n = ow * p;
    let (best, row) = (&mut best[..n], &mut row[..n]);
    for r in 0..oh {
        let top = r * p * w;
        best.copy_from_slice(&x[top..top + n]);
        row.fill(0);
        for i in 1..p {
            let line = &x[top + i * w..top + i * w + n];
            for ((b, k), &v) in best.iter_mut().zip(row.iter_mut()).zip(line) {
                let better = v > *b || v.is_nan();
                *b = if better { v } else { *b };
                *k = if better { i as u32 } else { *k };
            }
        }
        let (y, at) = (&mut y[r * ow..(r + 1) * ow], &mut at[r * ow..(r + 1) * ow]);
        for (c, ((y, at), (b, k))) in y
            .iter_mut()
            .zip(at.iter_mut())
            .zip(best.chunks_exact(p).zip(row.chunks_exact(p)))
            .enumerate()
        {
            let (mut top_v, mut top_at) = (0.0f32, CUT);
            for j in 0..p {
                let v = b[j];
                let better = v > top_v || v.is_nan();
                let index = ((r * p + k[j] as usize) * w + c * p + j) as u32;
                top_v = if better { v } else { top_v };
                top_at = if better { index } else { top_at };
            }
            *y = top_v;
            *at = top_at;
        }
    }
}

/// Planes per rayon task in the backward pass.
const PLANES: usize = 16;

/// `dx (planes, H, W)` from `dy (planes, OH, OW)` and the forward's winners.
pub fn backward(dy: &[f32], at: &[u32], planes: usize, [h, w]: [usize; 2], p: usize) -> Vec<f32> {
    let out = (h / p) * (w / p);
    assert_eq!(dy.len(), planes * out, "dy is (planes, OH, OW)");
    let ([dx], _) = written_rows([planes, h * w], PLANES, |first, [dx]| {
        for (k, dx) in dx.chunks_mut((h * w).max(1)).enumerate() {
            dx.iter_mut().for_each(|v| {
                v.write(0.0);
            });
            let plane = (first + k) * out..(first + k + 1) * out;
            for (&g, &i) in dy[plane.clone()].iter().zip(&at[plane]) {
                if i != CUT {
                    dx[i as usize].write(g);
                }
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
