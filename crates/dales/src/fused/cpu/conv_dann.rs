//! The conv DANN layer (spec A4) as one fused forward and one analytic backward, image by
//! image on the machinery of [`super::conv`].
//!
//! Per pixel the layer is the dense DANN layer on the pixel's patch `x (d)`:
//! `ẑ = Wex·x − Wei·(Wix·x)`, `γ = S·(Wix·x) + ε` with `S = Wei ⊙ e^α`, `z = g ⊙ ẑ/γ + b`.
//! The subtraction is linear in `x`, so it is folded into the weights once per call:
//! `ẑ = W·x` with `W = Wex − Wei·Wix (ne, d)`, and one product per image gives
//! `[ẑ; zi] = [W; Wix] · cols (ne + ni, P)`. The shunt `γ = S·zi + ε` then costs `ni`
//! multiply-adds per output, done in the element-wise pass. The forward pass keeps only
//! `[ẑ; zi]`; the backward pass computes `γ` again from `zi`.
//!
//! Backward, from `dz (ne, P)` with `r = ẑ/γ`: `db = Σ dz`, `dg = Σ dz ⊙ r`,
//! `dẑ = dz ⊙ g/γ`, `dγ = −dẑ ⊙ r`, `dS = Σ dγ · ziᵀ`, `dzi = Sᵀ · dγ`; the products of
//! [`super::conv::backward_images`] give `[dW; dWix′] = Σ [dẑ; dzi] · colsᵀ` and the image
//! gradient; back through the fold, `dWex = dW`, `dWei = −dW · Wixᵀ + dS ⊙ e^α`,
//! `dWix = dWix′ − Weiᵀ · dW`, `dα = Σ_j dS_j ⊙ S_j`.
//!
//! The plain tensor version (`crate::nn::conv_dann`) is the reference these are tested
//! against (`tests/it/conv.rs`).

use std::sync::Arc;

use burn::backend::NdArray;
use burn::backend::ndarray::NdArrayTensor;

use super::conv::{Geometry, Output, backward_images, forward_images, image};
use super::gemm::{View, matmul};
use super::simd::{dot, simd_fn, sum};
use super::{f32s, host};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::ConvDannLayer;

/// Sizes of one layer: `ne` excitatory and `ni` inhibitory channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Units {
    ne: usize,
    ni: usize,
}

/// What the backward pass needs from the forward pass.
#[derive(Debug)]
pub(crate) struct Saved {
    units: Units,
    /// `[Wex − Wei·Wix; Wix] (ne + ni, d)`.
    folded: Vec<f32>,
    /// `−Wei (ne, ni)`.
    neg_wei: Vec<f32>,
    /// `Wix (ni, d)`.
    wix: Vec<f32>,
    /// `S = Wei ⊙ e^α (ne, ni)`.
    s: Vec<f32>,
    /// `e^α (ni)`.
    exp_alpha: Vec<f32>,
    /// `g (ne)`.
    gain: Vec<f32>,
    /// `ε` of the shunt.
    eps: f32,
    /// `[ẑ; zi] (B, ne + ni, P)`.
    y: Vec<f32>,
    /// The op's output, and the pool's winners per image.
    output: Output,
    winners: Vec<Vec<u32>>,
}

/// `γ = S_j · zi + ε`, the shunt of excitatory channel `j` at every pixel, into `gamma (P)`;
/// `zi (ni, P)`, `s_j (ni)`.
#[inline(always)]
fn shunt(gamma: &mut [f32], zi: &[f32], s_j: &[f32], eps: f32) {
    gamma.fill(eps);
    for (zi, &c) in zi.chunks_exact(gamma.len().max(1)).zip(s_j) {
        for (ga, v) in gamma.iter_mut().zip(zi) {
            *ga += c * v;
        }
    }
}

simd_fn! {
    /// The forward's element-wise pass over one image: the maps `z (ne, P)` from `y = [ẑ; zi]
    /// (ne + ni, P)`; `gamma` is scratch of `P` entries.
    fn pixels_forward(
        y: &[f32],
        s: &[f32],
        gain: &[f32],
        bias: &[f32],
        eps: f32,
        gamma: &mut [f32],
        z: &mut [f32],
    ) {
        let (ne, pixels) = (gain.len(), gamma.len());
        let ni = s.len() / ne.max(1);
        let (zhat, zi) = y.split_at(ne * pixels);
        for j in 0..ne {
            shunt(gamma, zi, &s[j * ni..(j + 1) * ni], eps);
            let (g, b) = (gain[j], bias[j]);
            let at = j * pixels..(j + 1) * pixels;
            for ((z, zh), ga) in z[at.clone()].iter_mut().zip(&zhat[at]).zip(&*gamma) {
                *z = g * zh / ga + b;
            }
        }
    }
}

/// Sums over one block of images: `db`, `dg (ne)` and `dS (ne, ni)`.
struct Sums {
    bias: Vec<f32>,
    gain: Vec<f32>,
    s: Vec<f32>,
}

impl Sums {
    fn zeros(Units { ne, ni }: Units) -> Sums {
        Sums {
            bias: vec![0.0; ne],
            gain: vec![0.0; ne],
            s: vec![0.0; ne * ni],
        }
    }

    fn add(&mut self, other: &Sums) {
        for (acc, v) in [
            (&mut self.bias, &other.bias),
            (&mut self.gain, &other.gain),
            (&mut self.s, &other.s),
        ] {
            acc.iter_mut().zip(v).for_each(|(a, v)| *a += v);
        }
    }
}

simd_fn! {
    /// The backward's element-wise pass over one image: from `dz (ne, P)` and the forward's
    /// `y = [ẑ; zi] (ne + ni, P)`, writes `dy = [dẑ; dzi] (ne + ni, P)` and adds to the block's
    /// sums; `r` and `dgamma` are scratch of `P` entries.
    fn pixels_backward(
        dz: &[f32],
        y: &[f32],
        s: &[f32],
        gain: &[f32],
        eps: f32,
        r: &mut [f32],
        dgamma: &mut [f32],
        dy: &mut [f32],
        sums: &mut Sums,
    ) {
        let (ne, pixels) = (gain.len(), r.len());
        let ni = s.len() / ne.max(1);
        let (zhat, zi) = y.split_at(ne * pixels);
        let (dzhat, dzi) = dy.split_at_mut(ne * pixels);
        dzi.fill(0.0);
        for j in 0..ne {
            let s_j = &s[j * ni..(j + 1) * ni];
            // r holds γ until the pass below turns it into ẑ/γ.
            shunt(r, zi, s_j, eps);
            let at = j * pixels..(j + 1) * pixels;
            let (dz, g) = (&dz[at.clone()], gain[j]);
            for (((r, dga), dzh), (dz, zh)) in r
                .iter_mut()
                .zip(dgamma.iter_mut())
                .zip(&mut dzhat[at.clone()])
                .zip(dz.iter().zip(&zhat[at]))
            {
                let inv = 1.0 / *r;
                let rv = zh * inv;
                let v = dz * g * inv;
                *r = rv;
                *dzh = v;
                *dga = -v * rv;
            }
            sums.bias[j] += sum(dz);
            sums.gain[j] += dot(dz, r);
            for (k, (zi, dzi)) in zi
                .chunks_exact(pixels.max(1))
                .zip(dzi.chunks_exact_mut(pixels.max(1)))
                .take(ni)
                .enumerate()
            {
                sums.s[j * ni + k] += dot(dgamma, zi);
                for (dzi, dga) in dzi.iter_mut().zip(&*dgamma) {
                    *dzi += s_j[k] * dga;
                }
            }
        }
    }
}

impl Kernel<NdArray, 7> for ConvDannLayer {
    /// The geometry, the input and the forward's intermediates.
    type Saved = (Geometry, NdArrayTensor, Arc<Saved>);

    fn forward(
        &self,
        inputs: [NdArrayTensor; 7],
        save: bool,
    ) -> (NdArrayTensor, Option<Self::Saved>) {
        let g = Geometry::of(self.conv, &inputs[0]);
        let [x, wex, wix, wei, alpha, gain, bias] = inputs.each_ref().map(f32s);
        let (d, pixels) = (g.patch(), g.pixels());
        let units = Units {
            ne: gain.len(),
            ni: alpha.len(),
        };
        let Units { ne, ni } = units;
        assert_eq!(wex.len(), ne * d, "Wex is (ne, d)");
        assert_eq!(wix.len(), ni * d, "Wix is (ni, d)");
        assert_eq!(wei.len(), ne * ni, "Wei is (ne, ni)");

        let exp_alpha: Vec<f32> = alpha.iter().map(|a| a.exp()).collect();
        let neg_wei: Vec<f32> = wei.iter().map(|v| -v).collect();
        let s: Vec<f32> = wei
            .chunks_exact(ni.max(1))
            .flat_map(|row| row.iter().zip(&exp_alpha).map(|(w, e)| w * e))
            .collect();
        let mut folded = [&*wex, &*wix].concat();
        matmul(
            &mut folded[..ne * d],
            View::new(&neg_wei, ne, ni),
            View::new(&wix, ni, d),
            true,
        );

        let eps = self.eps;
        let output = Output::new(&g, ne, self.pool);
        let (y, out, winners) =
            forward_images(&g, &x, &folded, save, output.per_image(), |y, out| {
                let (mut gamma, mut z) = (vec![0.0; pixels], vec![0.0; ne * pixels]);
                pixels_forward(y, &s, &gain, &bias, eps, &mut gamma, &mut z);
                output.write(&z, out)
            });
        let saved = save.then(|| {
            let saved = Saved {
                units,
                folded,
                neg_wei,
                wix: wix.to_vec(),
                s,
                exp_alpha,
                gain: gain.to_vec(),
                eps,
                y,
                output,
                winners,
            };
            (g, inputs[0].clone(), Arc::new(saved))
        });
        (host(out, &output.shape(g.batch)), saved)
    }

    fn backward(
        &self,
        (g, x, saved): Self::Saved,
        dout: NdArrayTensor,
        need: [bool; 7],
    ) -> [Option<NdArrayTensor>; 7] {
        let Units { ne, ni } = saved.units;
        let (d, pixels) = (g.patch(), g.pixels());
        let dout = f32s(&dout);
        let (per_out, per_y) = (saved.output.per_image(), (ne + ni) * pixels);
        let (dw, dx, sums) = backward_images(
            &g,
            &f32s(&x),
            &saved.folded,
            need[0],
            || Sums::zeros(saved.units),
            |b, dy, sums| {
                let (mut r, mut dgamma) = (vec![0.0; pixels], vec![0.0; pixels]);
                let mut dmaps = vec![0.0; ne * pixels];
                let out = &dout[b * per_out..(b + 1) * per_out];
                saved.output.grad(out, &saved.winners[b], &mut dmaps);
                pixels_backward(
                    &dmaps,
                    &saved.y[b * per_y..(b + 1) * per_y],
                    &saved.s,
                    &saved.gain,
                    saved.eps,
                    &mut r,
                    &mut dgamma,
                    dy,
                    sums,
                )
            },
        );
        let mut total = Sums::zeros(saved.units);
        sums.iter().for_each(|part| total.add(part));

        // Back through the fold.
        let (dwex, dwix_direct) = dw.split_at(ne * d);
        let mut dwix = dwix_direct.to_vec();
        let dwex_view = View::new(dwex, ne, d);
        matmul(
            &mut dwix,
            View::new(&saved.neg_wei, ne, ni).t(),
            dwex_view,
            true,
        );
        let mut dwei = vec![0.0; ne * ni];
        matmul(
            &mut dwei,
            dwex_view,
            View::new(&saved.wix, ni, d).t(),
            false,
        );
        let mut dalpha = vec![0.0; ni];
        for ((dwei, ds), s) in dwei
            .chunks_exact_mut(ni.max(1))
            .zip(total.s.chunks_exact(ni.max(1)))
            .zip(saved.s.chunks_exact(ni.max(1)))
        {
            for k in 0..ni {
                dwei[k] = ds[k] * saved.exp_alpha[k] - dwei[k];
                dalpha[k] += ds[k] * s[k];
            }
        }
        [
            dx.map(|dx| image(&g, dx)),
            Some(host(dwex.to_vec(), &[ne, d])),
            Some(host(dwix, &[ni, d])),
            Some(host(dwei, &[ne, ni])),
            Some(host(dalpha, &[ni])),
            Some(host(total.gain, &[ne])),
            Some(host(total.bias, &[ne])),
        ]
    }
}
