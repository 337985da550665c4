//! ReLU followed by max-pooling (kernel = stride = `p`, floor) of one image's maps, for the
//! conv ops' pooled outputs ([`crate::fused::Pool`]): `y = max(0, max over each p×p window of
//! z)`, and its backward, which sends each output's gradient to the input that won the window
//! (none where the ReLU cut it to 0). The windows do not overlap, so every input receives at
//! most one gradient.
//!
//! The plain version, burn's `relu` then `max_pool2d` after the plain convolution, is the
//! reference these are tested against (`tests/it/conv.rs`).

use std::mem::MaybeUninit;

use super::simd::simd_fn;

/// Marks an output the ReLU cut to 0 (no input receives its gradient).
const CUT: u32 = u32::MAX;

/// The pooled maps `y (C, OH/p, OW/p)` of one image's maps `z (C, OH, OW)`, and per output the
/// index of the winning entry in `z` (or [`CUT`]) in `at`.
pub fn forward(
    z: &[f32],
    [h, w]: [usize; 2],
    p: usize,
    y: &mut [MaybeUninit<f32>],
    at: &mut [u32],
) {
    let (map, out) = (h * w, (h / p) * (w / p));
    let maps = y.len() / out.max(1);
    assert_eq!(z.len(), maps * map, "z is (C, H, W)");
    assert_eq!(at.len(), y.len(), "one winner per output");
    let (mut best, mut row) = (vec![0.0; w], vec![0; w]);
    for (c, ((z, y), at)) in z
        .chunks_exact(map.max(1))
        .zip(y.chunks_exact_mut(out.max(1)))
        .zip(at.chunks_exact_mut(out.max(1)))
        .enumerate()
    {
        plane(z, [h, w], p, c * map, y, at, &mut best, &mut row);
    }
}

/// The gradient `dz (C, OH, OW)` of one image's maps from its pooled output's `dy` and the
/// forward's winners.
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
    /// One plane's outputs and winners, in two passes per row of windows: down the window's
    /// `p` rows, each column's largest entry and the row it is in (element-wise, so it
    /// vectorises); then across each window's `p` columns of those, from 0 (the ReLU). Within
    /// a pass a later entry wins only if it is larger, or NaN (so that a diverged run shows).
    /// The winners are indices in the plane plus `base`; `best` and `row` are scratch of `W`
    /// entries.
    fn plane(
        x: &[f32],
        hw: [usize; 2],
        p: usize,
        base: usize,
        y: &mut [MaybeUninit<f32>],
        at: &mut [u32],
        best: &mut [f32],
        row: &mut [u32],
    ) {
        match p {
            2 => plane_of::<2>(x, hw, base, y, at, best, row),
            3 => plane_of::<3>(x, hw, base, y, at, best, row),
            4 => plane_of::<4>(x, hw, base, y, at, best, row),
            _ => plane_any(x, hw, p, base, y, at, best, row),
        }
    }
}

/// [`plane`] for windows of `P` (the across-columns pass vectorises for a constant `P`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn plane_of<const P: usize>(
    x: &[f32],
    hw: [usize; 2],
    base: usize,
    y: &mut [MaybeUninit<f32>],
    at: &mut [u32],
    best: &mut [f32],
    row: &mut [u32],
) {
    plane_any(x, hw, P, base, y, at, best, row)
}

/// [`plane`] for windows of any size.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn plane_any(
    x: &[f32],
    [h, w]: [usize; 2],
    p: usize,
    base: usize,
    y: &mut [MaybeUninit<f32>],
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
                let index = (base + (r * p + k[j] as usize) * w + c * p + j) as u32;
                top_v = if better { v } else { top_v };
                top_at = if better { index } else { top_at };
            }
            y.write(top_v);
            *at = top_at;
        }
    }
}
