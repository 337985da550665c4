//! Convolutions as dense layers on image patches (im2col): the conv DANN layer (spec A4) and
//! the plain convolution `conv(x, W) + b`, each one forward and one analytic backward on host
//! slices.
//!
//! A 2-D convolution applies the same dense map to the patch of `d = C·kh·kw` inputs under
//! every output pixel. With the patches of a batch as the rows of `cols (B·P, d)` (`P` output
//! pixels per image, row `(b·OH + oh)·OW + ow`, column `(c·kh + i)·kw + j`, the order of a
//! `(C_out, C, kh, kw)` weight flattened to `(C_out, d)`), the layer is the dense op on
//! `B·P` rows ([`super::dann`], [`super::affine`]), its output rows are transposed to
//! `(B, C_out, OH, OW)`, and in the backward pass the patch gradients are summed back onto the
//! image (col2im). The conv DANN layer's 1×1 subtractive and divisive channel maps are exactly
//! the dense layer's `Wei` and `α` applied per pixel, so its gradients are the dense ones.
//!
//! The plain tensor versions (`crate::nn::conv_dann`, `crate::nn::conv` on burn's `conv2d`)
//! are the reference these are tested against (`tests/it/conv.rs`).

use std::sync::Arc;

use burn::backend::NdArray;
use burn::backend::TensorMetadata;
use burn::backend::ndarray::NdArrayTensor;
use rayon::prelude::*;

use super::dann;
use super::{affine, dims2, f32s, host, written_rows};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::{Conv2d, ConvAffine, ConvDannLayer};

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

    /// Entries of one patch, `d = C·kh·kw`.
    pub fn patch(&self) -> usize {
        self.channels * self.conv.kernel[0] * self.conv.kernel[1]
    }

    /// Output pixels per image.
    pub fn pixels(&self) -> usize {
        self.out[0] * self.out[1]
    }

    /// Rows of the patch matrix, `B·P`.
    pub fn rows(&self) -> usize {
        self.batch * self.pixels()
    }

    /// Entries of one input image.
    fn image(&self) -> usize {
        self.channels * self.size[0] * self.size[1]
    }

    /// The output coordinates `o` along `axis` whose input `o·s + k·δ − p` (kernel offset
    /// `k`) lies inside the image, as a range, and that input for the range's first.
    fn inside(&self, axis: usize, k: usize) -> (std::ops::Range<usize>, usize) {
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

    /// Visit every entry of one image's patches in order: `f(offset in the image's block of
    /// `cols`, the offset in the image it reads, or `None` in the padding)`. The ranges of
    /// output coordinates inside the image come from [`Geometry::inside`], once per kernel
    /// offset, not per entry.
    #[inline(always)]
    fn each_entry(&self, mut f: impl FnMut(usize, Option<usize>)) {
        let [kh, kw] = self.conv.kernel;
        let [h, w] = self.size;
        let [oh_n, ow_n] = self.out;
        let d = self.patch();
        for c in 0..self.channels {
            for i in 0..kh {
                let (rows, first_ih) = self.inside(0, i);
                for j in 0..kw {
                    let col = (c * kh + i) * kw + j;
                    let (cols, first_iw) = self.inside(1, j);
                    for oh in 0..oh_n {
                        let row = rows.contains(&oh).then(|| {
                            let ih = first_ih + (oh - rows.start) * self.conv.stride[0];
                            (c * h + ih) * w + first_iw
                        });
                        for ow in 0..ow_n {
                            let from = row
                                .filter(|_| cols.contains(&ow))
                                .map(|at| at + (ow - cols.start) * self.conv.stride[1]);
                            f((oh * ow_n + ow) * d + col, from);
                        }
                    }
                }
            }
        }
    }
}

/// The patch matrix `cols (B·P, d)` of images `x (B, C, H, W)`; padding reads as 0. Every
/// entry is written once (no zeroing first).
pub fn im2col(g: &Geometry, x: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), g.batch * g.image(), "x is (B, C, H, W)");
    let ([cols], _) = written_rows([g.batch, g.pixels() * g.patch()], 1, |b, [cols]| {
        let image = &x[b * g.image()..(b + 1) * g.image()];
        g.each_entry(|to, from| {
            cols[to].write(from.map_or(0.0, |at| image[at]));
        });
    });
    cols
}

/// The image gradient `dx (B, C, H, W)` of patch gradients `dcols (B·P, d)`: each patch
/// entry's gradient added to the pixel it was read from.
pub fn col2im(g: &Geometry, dcols: &[f32]) -> Vec<f32> {
    let block = g.pixels() * g.patch();
    assert_eq!(dcols.len(), g.batch * block, "dcols is (B·P, d)");
    let mut dx = vec![0.0; g.batch * g.image()];
    dx.par_chunks_mut(g.image().max(1))
        .zip(dcols.par_chunks(block.max(1)))
        .for_each(|(image, cols)| {
            g.each_entry(|from, to| {
                if let Some(to) = to {
                    image[to] += cols[from];
                }
            })
        });
    dx
}

/// Each of `batch` row-major `(rows, cols)` blocks transposed to `(cols, rows)`: the patch
/// rows of an image `(P, n)` as its maps `(n, P)`, and back with the sizes swapped.
pub fn transpose_blocks(src: &[f32], batch: usize, rows: usize, cols: usize) -> Vec<f32> {
    let block = rows * cols;
    assert_eq!(src.len(), batch * block, "src is (B, rows, cols)");
    let ([out], _) = written_rows([batch, block], 1, |b, [out]| {
        let src = &src[b * block..(b + 1) * block];
        for (r, row) in src.chunks_exact(cols).enumerate() {
            for (c, v) in row.iter().enumerate() {
                out[c * rows + r].write(*v);
            }
        }
    });
    out
}

/// The geometry of an op's input `x`.
fn geometry(conv: Conv2d, x: &NdArrayTensor) -> Geometry {
    let s = x.shape();
    Geometry::new(conv, [s[0], s[1], s[2], s[3]])
}

/// The image gradient `(B, C, H, W)` from patch gradients.
fn image(g: &Geometry, dcols: &[f32]) -> NdArrayTensor {
    let [h, w] = g.size;
    host(col2im(g, dcols), &[g.batch, g.channels, h, w])
}

/// What the conv DANN layer's backward needs: the geometry, the patches, `Wex`, `Wix` and
/// the dense layer's intermediates.
type ConvDannSaved = (
    Geometry,
    Arc<Vec<f32>>,
    NdArrayTensor,
    NdArrayTensor,
    Arc<dann::Saved>,
);

impl Kernel<NdArray, 7> for ConvDannLayer {
    type Saved = ConvDannSaved;

    fn forward(
        &self,
        inputs: [NdArrayTensor; 7],
        save: bool,
    ) -> (NdArrayTensor, Option<ConvDannSaved>) {
        let [x, wex, wix, ..] = &inputs;
        let g = geometry(self.conv, x);
        let dims = dann::Dims {
            b: g.rows(),
            d: g.patch(),
            ne: wex.shape()[0],
            ni: wix.shape()[0],
        };
        let cols = im2col(&g, &f32s(x));
        let (z, saved) = dann::forward_inputs(dims, &cols, &inputs, self.eps);
        let z = transpose_blocks(&z, g.batch, g.pixels(), dims.ne);
        let shape = [g.batch, dims.ne, g.out[0], g.out[1]];
        let saved = save.then(|| (g, Arc::new(cols), wex.clone(), wix.clone(), Arc::new(saved)));
        (host(z, &shape), saved)
    }

    fn backward(
        &self,
        (g, cols, wex, wix, saved): ConvDannSaved,
        dz: NdArrayTensor,
        need: [bool; 7],
    ) -> [Option<NdArrayTensor>; 7] {
        let ne = dims2(&wex)[0];
        let dz = transpose_blocks(&f32s(&dz), g.batch, ne, g.pixels());
        let dx = |dcols: Vec<f32>| image(&g, &dcols);
        dann::backward_outputs(&saved, &cols, [&wex, &wix], &dz, (need[0], dx))
    }
}

impl Kernel<NdArray, 3> for ConvAffine {
    /// The geometry, the patches and the weight.
    type Saved = (Geometry, Arc<Vec<f32>>, NdArrayTensor);

    fn forward(
        &self,
        [x, weight, bias]: [NdArrayTensor; 3],
        save: bool,
    ) -> (NdArrayTensor, Option<Self::Saved>) {
        let g = geometry(self.conv, &x);
        let n = dims2(&weight)[0];
        let cols = im2col(&g, &f32s(&x));
        let y = affine::forward(&cols, &f32s(&weight), &f32s(&bias), g.rows(), g.patch());
        let y = transpose_blocks(&y, g.batch, g.pixels(), n);
        let shape = [g.batch, n, g.out[0], g.out[1]];
        (host(y, &shape), save.then(|| (g, Arc::new(cols), weight)))
    }

    fn backward(
        &self,
        (g, cols, weight): Self::Saved,
        dy: NdArrayTensor,
        need: [bool; 3],
    ) -> [Option<NdArrayTensor>; 3] {
        let [n, d] = dims2(&weight);
        let dy = transpose_blocks(&f32s(&dy), g.batch, n, g.pixels());
        let grads = affine::backward(&cols, &f32s(&weight), &dy, [g.rows(), d, n], need[0]);
        [
            grads.x.map(|d| image(&g, &d)),
            Some(host(grads.weight, &[n, d])),
            Some(host(grads.bias, &[n])),
        ]
    }
}
