//! The DANN layer (spec A1.2) as one fused forward and one analytic backward on host slices.
//!
//! Forward, for a batch `x (B, d)`:
//! - `Z = x · [Wex; Wix]ᵀ (B, ne + ni)`: the excitatory drive `ze` and the interneurons `zi`,
//!   written side by side into one buffer;
//! - `P = zi · [Wei; S]ᵀ (B, 2 ne)` with `S = Wei ⊙ e^α`: the subtraction and the shunt come
//!   out of a second one;
//! - `ẑ = ze − P₁`, `γ = P₂ + ε`, `z = g ⊙ ẑ / γ + b`.
//!
//! Backward, from `dz (B, ne)` with `r = ẑ / γ`:
//! - `db = Σ_b dz`, `dg = Σ_b dz ⊙ r`, `dẑ = dz ⊙ g / γ`, `dγ = −dẑ ⊙ r`;
//! - `dP = [−dẑ, dγ]`, `d[Wei; S] = dPᵀ · zi`, `dzi = dP · [Wei; S]`;
//! - `dWei = dWei₁ + dS ⊙ e^α`, `dα_j = Σ_i dS_ij S_ij`;
//! - `dZ = [dẑ, dzi]`, `d[Wex; Wix] = dZᵀ · x`, `dx = dZ · [Wex; Wix]` (only when asked).
//!
//! The plain tensor version (`crate::nn::DannDense::parts`) is the reference these are tested
//! against (`tests/it/fused.rs`).

use std::sync::Arc;

use burn::backend::NdArray;
use burn::backend::TensorMetadata;
use burn::backend::ndarray::NdArrayTensor;

use super::gemm::{View, matmul, matmul_strided, product_new};
use super::{f32s, host, written_rows};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::DannLayer;

/// Sizes of one DANN layer applied to one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Batch.
    pub b: usize,
    /// Inputs.
    pub d: usize,
    /// Excitatory units (outputs).
    pub ne: usize,
    /// Inhibitory units.
    pub ni: usize,
}

/// The layer's parameters as host slices.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    /// `Wex (ne, d)`.
    pub wex: &'a [f32],
    /// `Wix (ni, d)`.
    pub wix: &'a [f32],
    /// `Wei (ne, ni)`.
    pub wei: &'a [f32],
    /// `α (ni)`.
    pub alpha: &'a [f32],
    /// `g (ne)`.
    pub gain: &'a [f32],
    /// `b (ne)`.
    pub bias: &'a [f32],
    /// `ε` of the shunt.
    pub eps: f32,
}

/// What the backward pass needs from the forward pass.
#[derive(Debug, Clone)]
pub struct Saved {
    dims: Dims,
    /// `[Wei; S] (2 ne, ni)`.
    m: Vec<f32>,
    /// `e^α (ni)`.
    exp_alpha: Vec<f32>,
    /// `Z = [ze, zi] (B, ne + ni)`.
    z_cat: Vec<f32>,
    /// `ẑ (B, ne)`.
    zhat: Vec<f32>,
    /// `γ (B, ne)`.
    gamma: Vec<f32>,
    /// `g (ne)`.
    gain: Vec<f32>,
}

/// Gradients of one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Grads {
    /// `dx (B, d)`, when asked for.
    pub x: Option<Vec<f32>>,
    pub wex: Vec<f32>,
    pub wix: Vec<f32>,
    pub wei: Vec<f32>,
    pub alpha: Vec<f32>,
    pub gain: Vec<f32>,
    pub bias: Vec<f32>,
}

fn check(dims: Dims, x: &[f32], p: &Params) {
    let Dims { b, d, ne, ni } = dims;
    assert_eq!(x.len(), b * d, "x is (B, d)");
    assert_eq!(p.wex.len(), ne * d, "Wex is (ne, d)");
    assert_eq!(p.wix.len(), ni * d, "Wix is (ni, d)");
    assert_eq!(p.wei.len(), ne * ni, "Wei is (ne, ni)");
    assert_eq!(p.alpha.len(), ni, "alpha is (ni)");
    assert_eq!(p.gain.len(), ne, "gain is (ne)");
    assert_eq!(p.bias.len(), ne, "bias is (ne)");
}

/// The layer's output `z (B, ne)` and what its backward pass needs.
pub fn forward(dims: Dims, x: &[f32], p: Params) -> (Vec<f32>, Saved) {
    check(dims, x, &p);
    let Dims { b, d, ne, ni } = dims;
    let width = ne + ni;

    let exp_alpha: Vec<f32> = p.alpha.iter().map(|a| a.exp()).collect();
    let mut m = Vec::with_capacity(2 * ne * ni);
    m.extend_from_slice(p.wei);
    for row in p.wei.chunks_exact(ni.max(1)) {
        m.extend(row.iter().zip(&exp_alpha).map(|(&v, &e)| v * e));
    }

    let mut z_cat = vec![0.0; b * width];
    let xv = View::new(x, b, d);
    matmul_strided(&mut z_cat, width, xv, View::new(p.wex, ne, d).t(), false);
    matmul_strided(
        &mut z_cat[ne..],
        width,
        xv,
        View::new(p.wix, ni, d).t(),
        false,
    );
    let pm = product_new(
        View::columns(&z_cat, b, width, ne, ni),
        View::new(&m, 2 * ne, ni).t(),
    );

    // ẑ, γ and z row by row, in blocks of rows on rayon's threads.
    let eps = p.eps;
    let ([zhat, gamma, z], _) = written_rows([b, ne], ROWS, |row0, [zhat, gamma, z]| {
        for (r, ((zhat, gamma), z)) in zhat
            .chunks_exact_mut(ne)
            .zip(gamma.chunks_exact_mut(ne))
            .zip(z.chunks_exact_mut(ne))
            .enumerate()
        {
            let row = row0 + r;
            let ze = &z_cat[row * width..row * width + ne];
            let (sub, shunt) = pm[row * 2 * ne..(row + 1) * 2 * ne].split_at(ne);
            for j in 0..ne {
                let (zh, ga) = (ze[j] - sub[j], shunt[j] + eps);
                zhat[j].write(zh);
                gamma[j].write(ga);
                z[j].write(p.gain[j] * zh / ga + p.bias[j]);
            }
        }
    });
    let saved = Saved {
        dims,
        m,
        exp_alpha,
        z_cat,
        zhat,
        gamma,
        gain: p.gain.to_vec(),
    };
    (z, saved)
}

/// Gradients of every parameter (and of `x` when `need_x`) from the output gradient
/// `dz (B, ne)`; `x`, `wex` and `wix` are the forward pass's.
pub fn backward(
    saved: &Saved,
    x: &[f32],
    [wex, wix]: [&[f32]; 2],
    dz: &[f32],
    need_x: bool,
) -> Grads {
    let Dims { b, d, ne, ni } = saved.dims;
    let width = ne + ni;
    assert_eq!(x.len(), b * d, "x is (B, d)");
    assert_eq!(wex.len(), ne * d, "Wex is (ne, d)");
    assert_eq!(wix.len(), ni * d, "Wix is (ni, d)");
    assert_eq!(dz.len(), b * ne, "dz is (B, ne)");

    // dP = [−dẑ, dγ] (B, 2 ne), and the sums db and dg per block of rows, added in block order
    // (the same at any thread count).
    let ([dp], partial) = written_rows([b, 2 * ne], ROWS, |row0, [dp]| {
        let (mut db, mut dg) = (vec![0.0f32; ne], vec![0.0f32; ne]);
        for (r, dp) in dp.chunks_exact_mut(2 * ne).enumerate() {
            let row = row0 + r;
            for j in 0..ne {
                let i = row * ne + j;
                let r = saved.zhat[i] / saved.gamma[i];
                db[j] += dz[i];
                dg[j] += dz[i] * r;
                let dzhat = dz[i] * saved.gain[j] / saved.gamma[i];
                dp[j].write(-dzhat);
                dp[ne + j].write(-dzhat * r);
            }
        }
        (db, dg)
    });
    let (mut dbias, mut dgain) = (vec![0.0; ne], vec![0.0; ne]);
    for (db, dg) in &partial {
        for j in 0..ne {
            dbias[j] += db[j];
            dgain[j] += dg[j];
        }
    }

    // d[Wei; S] = dPᵀ · zi (2 ne, ni)
    let zi = View::columns(&saved.z_cat, b, width, ne, ni);
    let dm = product_new(View::new(&dp, b, 2 * ne).t(), zi);
    let (dwei_direct, ds) = dm.split_at(ne * ni);
    let mut dwei = dwei_direct.to_vec();
    let mut dalpha = vec![0.0; ni];
    let s = &saved.m[ne * ni..];
    for ((dwei, ds), s) in dwei
        .chunks_exact_mut(ni.max(1))
        .zip(ds.chunks_exact(ni.max(1)))
        .zip(s.chunks_exact(ni.max(1)))
    {
        for j in 0..ni {
            dwei[j] += ds[j] * saved.exp_alpha[j];
            dalpha[j] += ds[j] * s[j];
        }
    }

    // dzi = dP · [Wei; S] (B, ni); dZ = [dẑ, dzi] (B, ne + ni) with dẑ = −dP₁.
    let dzi = product_new(View::new(&dp, b, 2 * ne), View::new(&saved.m, 2 * ne, ni));
    let ([dz_cat], _) = written_rows([b, width], ROWS, |row0, [dz_cat]| {
        for (r, out) in dz_cat.chunks_exact_mut(width).enumerate() {
            let row = row0 + r;
            let (dzhat, dzi_out) = out.split_at_mut(ne);
            for (o, v) in dzhat.iter_mut().zip(&dp[row * 2 * ne..row * 2 * ne + ne]) {
                o.write(-v);
            }
            for (o, v) in dzi_out.iter_mut().zip(&dzi[row * ni..(row + 1) * ni]) {
                o.write(*v);
            }
        }
    });

    // d[Wex; Wix] = dZᵀ · x (ne + ni, d): Wex's rows first, then Wix's.
    let mut dw = product_new(View::new(&dz_cat, b, width).t(), View::new(x, b, d));
    let dwix = dw.split_off(ne * d);
    let dx = need_x.then(|| {
        let dze = View::columns(&dz_cat, b, width, 0, ne);
        let dzi = View::columns(&dz_cat, b, width, ne, ni);
        let mut dx = product_new(dze, View::new(wex, ne, d));
        matmul(&mut dx, dzi, View::new(wix, ni, d), true);
        dx
    });
    Grads {
        x: dx,
        wex: dw,
        wix: dwix,
        wei: dwei,
        alpha: dalpha,
        gain: dgain,
        bias: dbias,
    }
}

/// Rows per rayon task in the element-wise passes.
const ROWS: usize = 512;

/// The forward's inputs `x`, `Wex`, `Wix` and intermediates.
type DannSaved = (NdArrayTensor, NdArrayTensor, NdArrayTensor, Arc<Saved>);

/// [`forward`] on rows `x` with the parameters read from the op's tensor inputs `[_, Wex,
/// Wix, Wei, α, g, b]` (the first, the input, is not read).
fn forward_inputs(
    dims: Dims,
    x: &[f32],
    inputs: &[NdArrayTensor; 7],
    eps: f32,
) -> (Vec<f32>, Saved) {
    let [_, wex, wix, wei, alpha, gain, bias] = inputs.each_ref().map(f32s);
    let params = Params {
        wex: &wex,
        wix: &wix,
        wei: &wei,
        alpha: &alpha,
        gain: &gain,
        bias: &bias,
        eps,
    };
    forward(dims, x, params)
}

/// [`backward`] with `Wex`, `Wix` as tensors, and its gradients as the op's outputs; the
/// input's gradient (when `need_x`) shaped by `dx`.
fn backward_outputs(
    saved: &Saved,
    x: &[f32],
    [wex, wix]: [&NdArrayTensor; 2],
    dz: &[f32],
    (need_x, dx): (bool, impl FnOnce(Vec<f32>) -> NdArrayTensor),
) -> [Option<NdArrayTensor>; 7] {
    let Dims { d, ne, ni, .. } = saved.dims;
    let g = backward(saved, x, [&f32s(wex), &f32s(wix)], dz, need_x);
    [
        g.x.map(dx),
        Some(host(g.wex, &[ne, d])),
        Some(host(g.wix, &[ni, d])),
        Some(host(g.wei, &[ne, ni])),
        Some(host(g.alpha, &[ni])),
        Some(host(g.gain, &[ne])),
        Some(host(g.bias, &[ne])),
    ]
}

impl Kernel<NdArray, 7> for DannLayer {
    type Saved = DannSaved;

    fn forward(
        &self,
        inputs: [NdArrayTensor; 7],
        save: bool,
    ) -> (NdArrayTensor, Option<DannSaved>) {
        let [x, wex, wix, ..] = &inputs;
        let dims = Dims {
            b: x.shape()[0],
            d: x.shape()[1],
            ne: wex.shape()[0],
            ni: wix.shape()[0],
        };
        let (z, saved) = forward_inputs(dims, &f32s(x), &inputs, self.eps);
        let saved = save.then(|| (x.clone(), wex.clone(), wix.clone(), Arc::new(saved)));
        (host(z, &[dims.b, dims.ne]), saved)
    }

    fn backward(
        &self,
        (x, wex, wix, saved): DannSaved,
        dz: NdArrayTensor,
        need: [bool; 7],
    ) -> [Option<NdArrayTensor>; 7] {
        let Dims { b, d, .. } = saved.dims;
        let dz = f32s(&dz);
        let dx = |dx| host(dx, &[b, d]);
        backward_outputs(&saved, &f32s(&x), [&wex, &wix], &dz, (need[0], dx))
    }
}
