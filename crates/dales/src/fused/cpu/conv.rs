//! Convolutions image by image: the patch matrix of one image, the products of a layer's
//! weights with it, and the plain convolution `conv(x, W) + b` as one forward and one
//! analytic backward on host slices.
//!
//! A 2-D convolution applies the same dense map to the patch of `d = C·kh·kw` inputs under
//! every output pixel. With one image's patches as the columns of `cols (d, P)` (`P` output
//! pixels, column `oh·OW + ow`; row `(c·kh + i)·kw + j`, the order of a `(C_out, C, kh, kw)`
//! weight flattened to `(C_out, d)`), the pre-activations are `Y = W · cols (C_out, P)`: the
//! image's output maps as they are laid out in `(B, C_out, OH, OW)`, with no transpose.
//! Images run on rayon's threads in blocks of [`IMAGES`], each product on its own thread with
//! the image's patches in cache. Backward, from `dY`: `dW = Σ_images dY · colsᵀ` and, when
//! asked, `dcols = Wᵀ · dY` summed back onto the image's pixels (col2im). The backward pass
//! builds an image's patches again instead of keeping every image's (`B·P·d` entries: 58 MB
//! for the small convnet's second layer at batch 256).
//!
//! The sums over images are made per block and added in block order, so results do not
//! depend on the number of threads. The plain tensor version (`crate::nn::conv` on burn's
//! `conv2d`) is the reference these are tested against (`tests/it/conv.rs`); the conv DANN
//! layer on the same machinery is [`super::conv_dann`]. An op's output ([`Output`]) is its
//! maps, or the maps ReLU max-pooled ([`Pool`], [`super::pool`]) per image while they are in
//! cache.

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::Arc;

use burn::backend::NdArray;
use burn::backend::TensorMetadata;
use burn::backend::ndarray::NdArrayTensor;
use rayon::prelude::*;

use super::gemm::{View, matmul_serial, matmul_serial_into};
use super::simd::sum;
use super::{dims2, f32s, host, pool};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::{Conv2d, ConvAffine, Pool};

/// Images per rayon task, and per partial sum of the weight gradients.
const IMAGES: usize = 4;

/// The shape of a convolution's input and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// The convolution's settings.
    pub conv: Conv2d,
    /// Images.
    pub batch: usize,
    /// Input channels.
    pub channels: usize,
    /// Input height and width.
    pub size: [usize; 2],
    /// Output height and width.
    pub out: [usize; 2],
}

impl Geometry {
    /// The geometry of `conv` on inputs of shape `(B, C, H, W)`.
    pub fn new(conv: Conv2d, [batch, channels, h, w]: [usize; 4]) -> Geometry {
        Geometry {
            conv,
            batch,
            channels,
            size: [h, w],
            out: conv.output_size([h, w]),
        }
    }

    /// The geometry of an op's input `x`.
    pub(crate) fn of(conv: Conv2d, x: &NdArrayTensor) -> Geometry {
        let s = x.shape();
        Geometry::new(conv, [s[0], s[1], s[2], s[3]])
    }

    /// Entries of one patch, `d = C·kh·kw`.
    pub fn patch(&self) -> usize {
        self.channels * self.conv.kernel[0] * self.conv.kernel[1]
    }

    /// Output pixels per image.
    pub fn pixels(&self) -> usize {
        self.out[0] * self.out[1]
    }

    /// Entries of one input image.
    pub fn image(&self) -> usize {
        self.channels * self.size[0] * self.size[1]
    }

    /// The output coordinates `o` along `axis` whose input `o·s + k·δ − p` (kernel offset
    /// `k`) lies inside the image, as a range, and that input for the range's first.
    fn inside(&self, axis: usize, k: usize) -> (Range<usize>, usize) {
        let c = self.conv;
        let (s, n) = (c.stride[axis], self.size[axis]);
        let offset = k * c.dilation[axis];
        let pad = c.padding[axis];
        // o·s + offset ≥ pad  ⇔  o ≥ ⌈(pad − offset)/s⌉;  o·s + offset − pad < n.
        let lo = pad.saturating_sub(offset).div_ceil(s);
        let hi = (n + pad)
            .checked_sub(offset)
            .map_or(0, |room| room.div_ceil(s))
            .min(self.out[axis]);
        let lo = lo.min(hi);
        (lo..hi, (lo * s + offset).saturating_sub(pad))
    }

    /// Visit every output row of every patch row: `f(offset of the run in cols, the image
    /// offset that the run's first inside column reads or `None` when the whole output row
    /// reads padding, the run's output columns inside the image)`. A run is the `OW` entries
    /// of `cols` row `(c·kh + i)·kw + j` for output row `oh`; its inside columns read the
    /// image `stride[1]` pixels apart, the others read padding.
    fn each_run(&self, mut f: impl FnMut(usize, Option<usize>, Range<usize>)) {
        let [kh, kw] = self.conv.kernel;
        let [h, w] = self.size;
        let [oh_n, ow_n] = self.out;
        let pixels = self.pixels();
        for c in 0..self.channels {
            for i in 0..kh {
                let (rows, first_ih) = self.inside(0, i);
                for j in 0..kw {
                    let row = (c * kh + i) * kw + j;
                    let (cols, first_iw) = self.inside(1, j);
                    for oh in 0..oh_n {
                        let from = rows.contains(&oh).then(|| {
                            let ih = first_ih + (oh - rows.start) * self.conv.stride[0];
                            (c * h + ih) * w + first_iw
                        });
                        f(row * pixels + oh * ow_n, from, cols.clone());
                    }
                }
            }
        }
    }

    /// The patch matrix `cols (d, P)` of one image `(C, H, W)`; padding reads as 0.
    pub fn im2col(&self, image: &[f32], cols: &mut [f32]) {
        assert_eq!(image.len(), self.image(), "an image is (C, H, W)");
        assert_eq!(cols.len(), self.patch() * self.pixels(), "cols is (d, P)");
        let (ow_n, s) = (self.out[1], self.conv.stride[1]);
        self.each_run(|at, from, inside| {
            let run = &mut cols[at..at + ow_n];
            let Some(from) = from else {
                run.fill(0.0);
                return;
            };
            run[..inside.start].fill(0.0);
            run[inside.end..].fill(0.0);
            let run = &mut run[inside];
            if s == 1 {
                run.copy_from_slice(&image[from..from + run.len()]);
            } else {
                for (k, v) in run.iter_mut().enumerate() {
                    *v = image[from + k * s];
                }
            }
        });
    }

    /// Adds the patch gradients `dcols (d, P)` of one image onto the pixels they were read
    /// from in `dimage (C, H, W)`.
    pub fn col2im(&self, dcols: &[f32], dimage: &mut [f32]) {
        assert_eq!(dimage.len(), self.image(), "an image is (C, H, W)");
        assert_eq!(dcols.len(), self.patch() * self.pixels(), "dcols is (d, P)");
        let s = self.conv.stride[1];
        self.each_run(|at, from, inside| {
            let Some(from) = from else { return };
            let run = &dcols[at + inside.start..at + inside.end];
            if s == 1 {
                for (p, v) in dimage[from..from + run.len()].iter_mut().zip(run) {
                    *p += v;
                }
            } else {
                for (k, v) in run.iter().enumerate() {
                    dimage[from + k * s] += v;
                }
            }
        });
    }
}

/// The forward pass over images: `Y = W · cols (m, P)` for each image of `x (B, C, H, W)`
/// with `W (m, d)`, handed to `pass(Y, the image's `out` entries of the op's output)`, which
/// may change `Y`, must write every entry of its output, and returns what the backward pass
/// needs of the image. Returns every image's `Y` (`(B, m, P)`) when `keep_y` (else nothing),
/// the output (`(B, out)`), and `pass`'s results in image order.
pub(crate) fn forward_images<R: Send>(
    g: &Geometry,
    x: &[f32],
    w: &[f32],
    keep_y: bool,
    out: usize,
    pass: impl Fn(&mut [f32], &mut [MaybeUninit<f32>]) -> R + Sync,
) -> (Vec<f32>, Vec<f32>, Vec<R>) {
    let (d, pixels, image) = (g.patch(), g.pixels(), g.image());
    let m = w.len() / d.max(1);
    assert_eq!(w.len(), m * d, "W is (m, d)");
    assert_eq!(x.len(), g.batch * image, "x is (B, C, H, W)");
    let per_y = m * pixels;
    let kept = if keep_y { per_y } else { 0 };
    let (mut ys, mut outs) = (
        Vec::with_capacity(g.batch * kept),
        Vec::with_capacity(g.batch * out),
    );
    let y_blocks = blocks(&mut ys, g.batch, kept);
    let out_blocks = blocks(&mut outs, g.batch, out);
    let results: Vec<Vec<R>> = y_blocks
        .into_par_iter()
        .zip(out_blocks)
        .enumerate()
        .map(|(block, (ys, outs))| {
            let mut cols = vec![0.0; d * pixels];
            let mut scratch = if keep_y { Vec::new() } else { vec![0.0; per_y] };
            let first = block * IMAGES;
            (first..(first + IMAGES).min(g.batch))
                .map(|b| {
                    let k = b - first;
                    g.im2col(&x[b * image..(b + 1) * image], &mut cols);
                    let (a, patches) = (View::new(w, m, d), View::new(&cols, d, pixels));
                    let y = if keep_y {
                        let y = &mut ys[k * per_y..(k + 1) * per_y];
                        matmul_serial_into(y, a, patches);
                        // SAFETY: the product wrote every entry of `y`.
                        unsafe { &mut *(y as *mut [MaybeUninit<f32>] as *mut [f32]) }
                    } else {
                        matmul_serial(&mut scratch, a, patches, false);
                        &mut scratch[..]
                    };
                    pass(y, &mut outs[k * out..(k + 1) * out])
                })
                .collect()
        })
        .collect();
    // SAFETY: the blocks cover the first `B·kept` and `B·out` entries, every one written above
    // (the products and `pass`).
    unsafe {
        ys.set_len(g.batch * kept);
        outs.set_len(g.batch * out);
    }
    (ys, outs, results.into_iter().flatten().collect())
}

/// The spare capacity of `v` for `batch` images of `per_image` entries each, in blocks of
/// [`IMAGES`] images (the last may be shorter; empty blocks when `per_image` is 0).
fn blocks(v: &mut Vec<f32>, batch: usize, per_image: usize) -> Vec<&mut [MaybeUninit<f32>]> {
    let spare = &mut v.spare_capacity_mut()[..batch * per_image];
    if per_image == 0 {
        return (0..batch.div_ceil(IMAGES))
            .map(|_| Default::default())
            .collect();
    }
    spare.chunks_mut(IMAGES * per_image).collect()
}

/// The weight gradient `dW (m, d)`, the input gradient `dx (B, C, H, W)` when `need_x`, and
/// the per-block results of `pass`, for a layer `Y = W · cols` on each image of `x`.
/// `pass(image, its dY (m, P), the block's state)` writes the image's `dY` (every entry) and
/// may add to the block's state, which starts as `state()`; the states are returned in block
/// order, for the caller to add up.
pub(crate) fn backward_images<S: Send>(
    g: &Geometry,
    x: &[f32],
    w: &[f32],
    need_x: bool,
    state: impl Fn() -> S + Sync,
    pass: impl Fn(usize, &mut [f32], &mut S) + Sync,
) -> (Vec<f32>, Option<Vec<f32>>, Vec<S>) {
    let (d, pixels, image) = (g.patch(), g.pixels(), g.image());
    let m = w.len() / d.max(1);
    assert_eq!(w.len(), m * d, "W is (m, d)");
    assert_eq!(x.len(), g.batch * image, "x is (B, C, H, W)");
    let blocks = g.batch.div_ceil(IMAGES);
    let mut dx = if need_x {
        vec![0.0; g.batch * image]
    } else {
        Vec::new()
    };
    let dx_blocks: Vec<Option<&mut [f32]>> = if need_x {
        dx.chunks_mut((IMAGES * image).max(1)).map(Some).collect()
    } else {
        (0..blocks).map(|_| None).collect()
    };
    let partials: Vec<(Vec<f32>, S)> = dx_blocks
        .into_par_iter()
        .enumerate()
        .map(|(block, mut dx)| {
            let mut cols = vec![0.0; d * pixels];
            let mut dy = vec![0.0; m * pixels];
            let mut dcols = if need_x {
                vec![0.0; d * pixels]
            } else {
                Vec::new()
            };
            let mut dw = vec![0.0; m * d];
            let mut s = state();
            let first = block * IMAGES;
            for b in first..(first + IMAGES).min(g.batch) {
                pass(b, &mut dy, &mut s);
                g.im2col(&x[b * image..(b + 1) * image], &mut cols);
                let dyv = View::new(&dy, m, pixels);
                matmul_serial(&mut dw, dyv, View::new(&cols, d, pixels).t(), true);
                if let Some(dx) = dx.as_deref_mut() {
                    matmul_serial(&mut dcols, View::new(w, m, d).t(), dyv, false);
                    let at = (b - first) * image;
                    g.col2im(&dcols, &mut dx[at..at + image]);
                }
            }
            (dw, s)
        })
        .collect();
    let mut dw = vec![0.0; m * d];
    let mut states = Vec::with_capacity(partials.len());
    for (part, s) in partials {
        dw.iter_mut().zip(&part).for_each(|(a, v)| *a += v);
        states.push(s);
    }
    (dw, need_x.then_some(dx), states)
}

/// A conv op's output per image: its maps `(C, OH, OW)` as they are, or pooled ([`Pool`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    /// Channels.
    channels: usize,
    /// The maps' height and width.
    maps: [usize; 2],
    pool: Pool,
}

impl Output {
    pub fn new(g: &Geometry, channels: usize, pool: Pool) -> Output {
        Output {
            channels,
            maps: g.out,
            pool,
        }
    }

    /// Entries of one map.
    pub fn map(&self) -> usize {
        self.maps[0] * self.maps[1]
    }

    /// The op's output shape for `batch` images.
    pub fn shape(&self, batch: usize) -> [usize; 4] {
        let [h, w] = self.maps;
        match self.pool {
            Pool::None => [batch, self.channels, h, w],
            Pool::ReluMax(p) => [batch, self.channels, h / p, w / p],
        }
    }

    /// Entries of one image's output.
    pub fn per_image(&self) -> usize {
        let [_, c, h, w] = self.shape(1);
        c * h * w
    }

    /// Writes one image's output from its maps `z (C, OH, OW)`; returns the pool's winners
    /// (none without pooling), each an index within its map.
    pub fn write(&self, z: &[f32], out: &mut [MaybeUninit<f32>]) -> Vec<u32> {
        let Pool::ReluMax(p) = self.pool else {
            for (o, v) in out.iter_mut().zip(z) {
                o.write(*v);
            }
            return Vec::new();
        };
        let (map, per_out) = (self.map(), self.per_image() / self.channels.max(1));
        let mut at = vec![0; out.len()];
        for ((z, out), at) in z
            .chunks_exact(map.max(1))
            .zip(out.chunks_exact_mut(per_out.max(1)))
            .zip(at.chunks_exact_mut(per_out.max(1)))
        {
            pool::forward(z, self.maps, p, out, at);
        }
        at
    }

    /// The gradient `dz (C, OH, OW)` of one image's maps from the gradient `dy` of its output
    /// and the winners [`Output::write`] returned.
    pub fn grad(&self, dy: &[f32], winners: &[u32], dz: &mut [f32]) {
        if self.pool == Pool::None {
            dz.copy_from_slice(dy);
            return;
        }
        let (map, per_out) = (self.map(), self.per_image() / self.channels.max(1));
        for ((dz, dy), at) in dz
            .chunks_exact_mut(map.max(1))
            .zip(dy.chunks_exact(per_out.max(1)))
            .zip(winners.chunks_exact(per_out.max(1)))
        {
            pool::backward(dy, at, dz);
        }
    }
}

/// The image gradient `(B, C, H, W)`.
pub(crate) fn image(g: &Geometry, dx: Vec<f32>) -> NdArrayTensor {
    let [h, w] = g.size;
    host(dx, &[g.batch, g.channels, h, w])
}

impl Kernel<NdArray, 3> for ConvAffine {
    /// The geometry, the output, the input, the weight and the pool's winners per image.
    type Saved = (
        Geometry,
        Output,
        NdArrayTensor,
        NdArrayTensor,
        Arc<Vec<Vec<u32>>>,
    );

    fn forward(
        &self,
        [x, weight, bias]: [NdArrayTensor; 3],
        save: bool,
    ) -> (NdArrayTensor, Option<Self::Saved>) {
        let g = Geometry::of(self.conv, &x);
        let bias = f32s(&bias);
        let (pixels, output) = (g.pixels(), Output::new(&g, bias.len(), self.pool));
        let (_, y, winners) = forward_images(
            &g,
            &f32s(&x),
            &f32s(&weight),
            false,
            output.per_image(),
            |y, out| {
                for (row, b) in y.chunks_exact_mut(pixels.max(1)).zip(&*bias) {
                    row.iter_mut().for_each(|v| *v += b);
                }
                output.write(y, out)
            },
        );
        let saved = save.then(|| (g, output, x, weight, Arc::new(winners)));
        (host(y, &output.shape(g.batch)), saved)
    }

    fn backward(
        &self,
        (g, output, x, weight, winners): Self::Saved,
        dy: NdArrayTensor,
        need: [bool; 3],
    ) -> [Option<NdArrayTensor>; 3] {
        let [n, d] = dims2(&weight);
        let (dy, per_image) = (f32s(&dy), output.per_image());
        let (dw, dx, sums) = backward_images(
            &g,
            &f32s(&x),
            &f32s(&weight),
            need[0],
            || vec![0.0f32; n],
            |b, dz, db| {
                let dy = &dy[b * per_image..(b + 1) * per_image];
                output.grad(dy, &winners[b], dz);
                for (acc, row) in db.iter_mut().zip(dz.chunks_exact(output.map().max(1))) {
                    *acc += sum(row);
                }
            },
        );
        let mut db = vec![0.0; n];
        for part in &sums {
            db.iter_mut().zip(part).for_each(|(a, v)| *a += v);
        }
        [
            dx.map(|dx| image(&g, dx)),
            Some(host(dw, &[n, d])),
            Some(host(db, &[n])),
        ]
    }
}
