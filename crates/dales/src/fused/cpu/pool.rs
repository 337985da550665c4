//! ReLU followed by max-pooling (kernel = stride = `p`, floor) of one map, for the conv ops'
//! pooled outputs ([`crate::fused::Pool`]): `y = max(0, max over each p×p window of z)`, and
//! its backward, which sends each output's gradient to the input that won the window (none
//! where the ReLU cut it to 0). The windows do not overlap, so every input receives at
//! most one gradient.
//!
//! The plain version, burn's `relu` then `max_pool2d` after the plain convolution, is the
//! reference these are tested against (`tests/it/conv.rs`).

use std::mem::MaybeUninit;

use super::simd::simd_fn;

/// Marks an output the ReLU cut to 0 (no input receives its gradient).
const CUT: u32 = u32::MAX;

/// The pooled map `y (H/p, W/p)` of a map `z (H, W)`, and per output the index of the
/// winning entry in `z` (or [`CUT`]) in `at`.
pub fn forward(
    z: &[f32],
    [h, w]: [usize; 2],
    p: usize,
    y: &mut [MaybeUninit<f32>],
    at: &mut [u32],
) {
    assert_eq!(z.len(), h * w, "z is (H, W)");
    assert_eq!(y.len(), (h / p) * (w / p), "y is (H/p, W/p)");
    assert_eq!(at.len(), y.len(), "one winner per output");
    plane(z, [h, w], p, y, at);
}

/// The gradient `dz (H, W)` of a map from its pooled output's `dy` and the forward's winners.
pub fn backward(dy: &[f32], at: &[u32], dz: &mut [f32]) {
    assert_eq!(dy.len(), at.len(), "one winner per output");
    dz.fill(0.0);
    for (&g, &i) in dy.iter().zip(at) {
        if i != CUT {
            dz[i as usize] = g;
        }
    }
}

simd_fn! {
    /// One plane's outputs and winners. Each window's entries are compared from 0 (the ReLU)
    /// in order, a later one winning only if it is larger, or NaN (so that a diverged run
    /// shows): for windows of 2, 3 and 4 one window per lane, for other sizes in two passes
    /// per row of windows.
    fn plane(
        x: &[f32],
        hw: [usize; 2],
        p: usize,
        y: &mut [MaybeUninit<f32>],
        at: &mut [u32],
    ) {
        match p {
            2 => plane_of::<2>(x, hw, y, at),
            3 => plane_of::<3>(x, hw, y, at),
            4 => plane_of::<4>(x, hw, y, at),
            _ => plane_any(x, hw, p, y, at),
        }
    }
}

/// [`plane`] for windows of `P`: each window's `P × P` entries compared in registers, one
/// output per lane.
#[inline(always)]
fn plane_of<const P: usize>(
    x: &[f32],
    [h, w]: [usize; 2],
    y: &mut [MaybeUninit<f32>],
    at: &mut [u32],
) {
    let (oh, ow) = (h / P, w / P);
    for r in 0..oh {
        let rows: [&[[f32; P]]; P] =
            std::array::from_fn(|i| x[(r * P + i) * w..][..ow * P].as_chunks::<P>().0);
        let (y, at) = (&mut y[r * ow..(r + 1) * ow], &mut at[r * ow..(r + 1) * ow]);
        assert!(rows.iter().all(|row| row.len() == ow));
        for c in 0..ow {
            let (mut best, mut arg) = (0.0f32, CUT);
            for (i, row) in rows.iter().enumerate() {
                for (j, &v) in row[c].iter().enumerate() {
                    let better = v > best || v.is_nan();
                    let index = ((r * P + i) * w + c * P + j) as u32;
                    best = if better { v } else { best };
                    arg = if better { index } else { arg };
                }
            }
            y[c].write(best);
            at[c] = arg;
        }
    }
}

/// [`plane`] for windows of any size, in two passes per row of windows: down the window's `p`
/// rows, each column's largest entry and the row it is in (element-wise, so it vectorises);
/// then across each window's `p` columns of those.
#[inline(always)]
fn plane_any(x: &[f32], [h, w]: [usize; 2], p: usize, y: &mut [MaybeUninit<f32>], at: &mut [u32]) {
    let (oh, ow) = (h / p, w / p);
    let n = ow * p;
    let (mut best, mut row) = (vec![0.0; n], vec![0; n]);
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
            y.write(top_v);
            *at = top_at;
        }
    }
}
