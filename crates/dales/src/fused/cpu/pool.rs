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
    /// shows); one window per lane. Windows of 2, 3 and 4 get their own copies of the loop,
    /// with the size a constant.
    fn plane(
        x: &[f32],
        hw: [usize; 2],
        p: usize,
        y: &mut [MaybeUninit<f32>],
        at: &mut [u32],
    ) {
        match p {
            2 => windows(x, hw, 2, y, at),
            3 => windows(x, hw, 3, y, at),
            4 => windows(x, hw, 4, y, at),
            _ => windows(x, hw, p, y, at),
        }
    }
}

/// [`plane`] for windows of `p` (inlined, so that a literal `p` is a constant in its loop).
#[inline(always)]
fn windows(x: &[f32], [h, w]: [usize; 2], p: usize, y: &mut [MaybeUninit<f32>], at: &mut [u32]) {
    let (oh, ow) = (h / p, w / p);
    for r in 0..oh {
        let (y, at) = (&mut y[r * ow..(r + 1) * ow], &mut at[r * ow..(r + 1) * ow]);
        for c in 0..ow {
            let (mut best, mut arg) = (0.0f32, CUT);
            for i in 0..p {
                let first = (r * p + i) * w + c * p;
                for (j, &v) in x[first..first + p].iter().enumerate() {
                    let better = v > best || v.is_nan();
                    best = if better { v } else { best };
                    arg = if better { (first + j) as u32 } else { arg };
                }
            }
            y[c].write(best);
            at[c] = arg;
        }
    }
}
