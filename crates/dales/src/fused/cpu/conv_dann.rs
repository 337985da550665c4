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
//! With a pool ([`crate::fused::Pool`]) the op's output is the maps `z` ReLU max-pooled, made
//! per image from `z` in cache ([`super::conv::Output`]); backward, `dz` is first the pooled
//! gradient sent to the winners.
//!
//! The plain tensor version (`crate::nn::conv_dann`) is the reference these are tested
//! against (`tests/it/conv.rs`).

use std::sync::Arc;

use burn::backend::NdArray;
use burn::backend::ndarray::NdArrayTensor;

use super::conv::{Geometry, Output, backward_images, forward_images, image};
use super::gemm::{View, matmul};
use super::simd::simd_fn;
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

/// Pixels per step of the element-wise passes: one AVX-512 register of f32 (the passes run
/// `LANES` pixels at a time, then the rest one by one).
const LANES: usize = 16;

/// `L` entries of `v` from `at`, as an array.
#[inline(always)]
fn lanes<const L: usize>(v: &[f32], at: usize) -> &[f32; L] {
    v[at..at + L].try_into().expect("L entries")
}

/// As [`lanes`], mutable.
#[inline(always)]
fn lanes_mut<const L: usize>(v: &mut [f32], at: usize) -> &mut [f32; L] {
    (&mut v[at..at + L]).try_into().expect("L entries")
}

/// `γ = S_j · zi + ε` at pixels `p..p + L` of an image's `zi (ni, P)`, with `s_j (ni)` the
/// row of excitatory channel `j`.
#[inline(always)]
fn shunt<const L: usize>(zi: &[f32], pixels: usize, p: usize, s_j: &[f32], eps: f32) -> [f32; L] {
    let mut gamma = [eps; L];
    for (k, &c) in s_j.iter().enumerate() {
        let z = lanes::<L>(zi, k * pixels + p);
        for l in 0..L {
            gamma[l] += c * z[l];
        }
    }
    gamma
}

/// Runs `step::<LANES>(p, args…)` on the pixels `p` in whole registers, then `step::<1>` on
/// the rest; after `;`, the last argument of each (partial sums of their width).
macro_rules! by_lanes {
    ($pixels:expr, $step:ident($($arg:expr),*) $(; $wide:expr, $one:expr)?) => {{
        let full = $pixels / LANES * LANES;
        for p in (0..full).step_by(LANES) {
            $step::<LANES>(p, $($arg,)* $($wide)?);
        }
        for p in full..$pixels {
            $step::<1>(p, $($arg,)* $($one)?);
        }
    }};
}

simd_fn! {
    /// The forward's element-wise pass over one image: the maps `z (ne, P)` from `y = [ẑ; zi]
    /// (ne + ni, P)`.
    fn pixels_forward(
        y: &[f32],
        s: &[f32],
        gain: &[f32],
        bias: &[f32],
        eps: f32,
        z: &mut [f32],
    ) {
        let ne = gain.len();
        let pixels = z.len() / ne.max(1);
        let ni = s.len() / ne.max(1);
        let zi = &y[ne * pixels..];
        for j in 0..ne {
            let s_j = &s[j * ni..(j + 1) * ni];
            let (g, b) = (gain[j], bias[j]);
            let (zhat, z) = (&y[j * pixels..], &mut z[j * pixels..]);
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn step<const L: usize>(
                p: usize,
                zhat: &[f32],
                zi: &[f32],
                pixels: usize,
                s_j: &[f32],
                [g, b, eps]: [f32; 3],
                z: &mut [f32],
            ) {
                let gamma = shunt::<L>(zi, pixels, p, s_j, eps);
                let (zh, z) = (lanes::<L>(zhat, p), lanes_mut::<L>(z, p));
                for l in 0..L {
                    z[l] = g * zh[l] / gamma[l] + b;
                }
            }
            by_lanes!(pixels, step(zhat, zi, pixels, s_j, [g, b, eps], z));
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

/// One excitatory channel's partial sums over `L` lanes of pixels: `db`, `dg` and its row of
/// `dS (ni)`.
struct Partials<const L: usize> {
    bias: [f32; L],
    gain: [f32; L],
    s: Vec<[f32; L]>,
}

impl<const L: usize> Partials<L> {
    fn new(ni: usize) -> Self {
        Partials {
            bias: [0.0; L],
            gain: [0.0; L],
            s: vec![[0.0; L]; ni],
        }
    }

    /// Adds the lanes' totals to channel `j`'s sums and zeroes the lanes.
    fn settle(&mut self, sums: &mut Sums, j: usize) {
        let ni = self.s.len();
        sums.bias[j] += self.bias.iter().sum::<f32>();
        sums.gain[j] += self.gain.iter().sum::<f32>();
        for (total, lanes) in sums.s[j * ni..(j + 1) * ni].iter_mut().zip(&mut self.s) {
            *total += lanes.iter().sum::<f32>();
            *lanes = [0.0; L];
        }
        self.bias = [0.0; L];
        self.gain = [0.0; L];
    }
}

simd_fn! {
    /// The backward's element-wise pass over one image: from `dz (ne, P)` and the forward's
    /// `y = [ẑ; zi] (ne + ni, P)`, writes `dy = [dẑ; dzi] (ne + ni, P)` and adds to the block's
    /// sums.
    fn pixels_backward(
        dz: &[f32],
        y: &[f32],
        s: &[f32],
        gain: &[f32],
        eps: f32,
        dy: &mut [f32],
        sums: &mut Sums,
    ) {
        let ne = gain.len();
        let pixels = dz.len() / ne.max(1);
        let ni = s.len() / ne.max(1);
        let zi = &y[ne * pixels..];
        let (dzhat, dzi) = dy.split_at_mut(ne * pixels);
        dzi.fill(0.0);
        let (mut wide, mut one) = (Partials::<LANES>::new(ni), Partials::<1>::new(ni));
        for j in 0..ne {
            let s_j = &s[j * ni..(j + 1) * ni];
            let rows = (&dz[j * pixels..], &y[j * pixels..]);
            let dzhat = &mut dzhat[j * pixels..];
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn step<const L: usize>(
                p: usize,
                (dz, zhat): (&[f32], &[f32]),
                zi: &[f32],
                pixels: usize,
                s_j: &[f32],
                [g, eps]: [f32; 2],
                dzhat: &mut [f32],
                dzi: &mut [f32],
                acc: &mut Partials<L>,
            ) {
                let gamma = shunt::<L>(zi, pixels, p, s_j, eps);
                let (dz, zh) = (lanes::<L>(dz, p), lanes::<L>(zhat, p));
                let out = lanes_mut::<L>(dzhat, p);
                let mut dgamma = [0.0; L];
                for l in 0..L {
                    let inv = 1.0 / gamma[l];
                    let r = zh[l] * inv;
                    let v = dz[l] * g * inv;
                    out[l] = v;
                    dgamma[l] = -v * r;
                    acc.bias[l] += dz[l];
                    acc.gain[l] += dz[l] * r;
                }
                for (k, (&c, ds)) in s_j.iter().zip(acc.s.iter_mut()).enumerate() {
                    let z = lanes::<L>(zi, k * pixels + p);
                    let d = lanes_mut::<L>(dzi, k * pixels + p);
                    for l in 0..L {
                        ds[l] += dgamma[l] * z[l];
                        d[l] += c * dgamma[l];
                    }
                }
            }
            let args = [gain[j], eps];
            by_lanes!(pixels, step(rows, zi, pixels, s_j, args, dzhat, dzi); &mut wide, &mut one);
            wide.settle(sums, j);
            one.settle(sums, j);
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
                let mut z = vec![0.0; ne * pixels];
                pixels_forward(y, &s, &gain, &bias, eps, &mut z);
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
                let mut dmaps = vec![0.0; ne * pixels];
                let out = &dout[b * per_out..(b + 1) * per_out];
                saved.output.grad(out, &saved.winners[b], &mut dmaps);
                pixels_backward(
                    &dmaps,
                    &saved.y[b * per_y..(b + 1) * per_y],
                    &saved.s,
                    &saved.gain,
                    saved.eps,
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
