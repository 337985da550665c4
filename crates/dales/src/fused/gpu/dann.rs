//! The DANN layer ([`DannLayer`]) as CubeCL kernels, mirroring `super::super::cpu::dann`.
//!
//! Forward (spec A1.2): `ze = x Wexᵀ`, `zi = x Wixᵀ`, `M = [Wei; Wei ⊙ e^α]`
//! ([`dann_mix`]), `P = zi Mᵀ (B, 2 ne)`, then one pass ([`dann_out`]) writes `ẑ = ze − P₁`,
//! `γ = P₂ + ε` and `z = g ⊙ ẑ / γ + b`. Backward: one pass ([`dann_dz`]) writes `dẑ`,
//! `dP = [−dẑ, dγ]` and `dz ẑ/γ`, whose column sums (burn's parallel reduction) are `dg`, as
//! those of `dz` are `db`; `dM = dPᵀ zi`, and one pass ([`dann_dwei`]) folds it into `dWei`
//! and `dS ⊙ S`, whose column sums are `dα`; then `dzi = dP M`, `dWex = dẑᵀ x`,
//! `dWix = dziᵀ x` and `dx = dẑ Wex + dzi Wix`.

use burn::backend::Cube;
use burn::backend::TensorMetadata;
use burn::backend::ops::FloatTensorOps;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::{buf, column_sums, empty, grid, matmul, rows, t};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::DannLayer;

/// `M = [Wei; Wei ⊙ e^α] (2 ne, ni)`, one unit per entry; `half = ne · ni`.
#[cube(launch)]
fn dann_mix<F: Float>(wei: &[F], alpha: &[F], m: &mut [F], half: usize, ni: usize) {
    let i = ABSOLUTE_POS;
    if i < m.len() {
        if i < half {
            m[i] = wei[i];
        } else {
            let k = i - half;
            m[i] = wei[k] * alpha[k % ni].exp();
        }
    }
}

/// `ẑ = ze − P₁`, `γ = P₂ + ε`, `z = g ⊙ ẑ / γ + b`, one unit per entry of `z (B, ne)`;
/// `P (B, 2 ne)` holds the subtraction then the shunt.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn dann_out<F: Float>(
    ze: &[F],
    p: &[F],
    gain: &[F],
    bias: &[F],
    zhat: &mut [F],
    gamma: &mut [F],
    z: &mut [F],
    eps: f32,
    ne: usize,
) {
    let i = ABSOLUTE_POS;
    if i < z.len() {
        let row = i / ne;
        let j = i % ne;
        let zh = ze[i] - p[row * 2 * ne + j];
        let ga = p[row * 2 * ne + ne + j] + F::cast_from(eps);
        zhat[i] = zh;
        gamma[i] = ga;
        z[i] = gain[j] * zh / ga + bias[j];
    }
}

/// One unit per entry of `dz (B, ne)`: `dẑ = dz g / γ`, `dP = [−dẑ, −dẑ ẑ/γ]`, and
/// `dz ẑ/γ`, whose column sums are `dg`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn dann_dz<F: Float>(
    dz: &[F],
    zhat: &[F],
    gamma: &[F],
    gain: &[F],
    dzhat: &mut [F],
    dp: &mut [F],
    dz_ratio: &mut [F],
    ne: usize,
) {
    let i = ABSOLUTE_POS;
    if i < dz.len() {
        let row = i / ne;
        let j = i % ne;
        let r = zhat[i] / gamma[i];
        let d = dz[i];
        let dzh = d * gain[j] / gamma[i];
        dzhat[i] = dzh;
        dz_ratio[i] = d * r;
        dp[row * 2 * ne + j] = F::new(0.0) - dzh;
        dp[row * 2 * ne + ne + j] = F::new(0.0) - dzh * r;
    }
}

/// One unit per entry of `Wei (ne, ni)`: from `dM = [dWei₁; dS] (2 ne, ni)` and `S = M₂`,
/// `dWei = dWei₁ + dS ⊙ e^α`, and `dS ⊙ S`, whose column sums are `dα`.
#[cube(launch)]
fn dann_dwei<F: Float>(dm: &[F], m: &[F], alpha: &[F], dwei: &mut [F], ds_s: &mut [F], ni: usize) {
    let k = ABSOLUTE_POS;
    if k < dwei.len() {
        let half = dwei.len();
        let ds = dm[half + k];
        dwei[k] = dm[k] + ds * alpha[k % ni].exp();
        ds_s[k] = ds * m[half + k];
    }
}

/// What the DANN layer's backward pass needs from its forward pass.
#[derive(Debug, Clone)]
pub(crate) struct DannSaved {
    x: CubeTensor,
    wex: CubeTensor,
    wix: CubeTensor,
    alpha: CubeTensor,
    gain: CubeTensor,
    /// `zi (B, ni)`.
    zi: CubeTensor,
    /// `[Wei; S] (2 ne, ni)`.
    m: CubeTensor,
    zhat: CubeTensor,
    gamma: CubeTensor,
}

fn dann_forward(inputs: [CubeTensor; 7], eps: f32) -> (CubeTensor, DannSaved) {
    let [x, wex, wix, wei, alpha, gain, bias] = inputs.map(rows);
    let (b, ne, ni) = (x.shape()[0], wex.shape()[0], wix.shape()[0]);
    let client = x.client.clone();

    let ze = matmul(x.clone(), t(&wex));
    let zi = matmul(x.clone(), t(&wix));
    let m = empty(&x, &[2 * ne, ni]);
    let (count, dim) = grid(&m, 2 * ne * ni);
    dann_mix::launch::<f32>(
        &client,
        count,
        dim,
        buf(&wei),
        buf(&alpha),
        buf(&m),
        ne * ni,
        ni,
    );
    let pm = matmul(zi.clone(), t(&m));
    let [zhat, gamma, z] = [0; 3].map(|_| empty(&x, &[b, ne]));
    let (count, dim) = grid(&z, b * ne);
    dann_out::launch::<f32>(
        &client,
        count,
        dim,
        buf(&ze),
        buf(&pm),
        buf(&gain),
        buf(&bias),
        buf(&zhat),
        buf(&gamma),
        buf(&z),
        eps,
        ne,
    );
    let saved = DannSaved {
        x,
        wex,
        wix,
        alpha,
        gain,
        zi,
        m,
        zhat,
        gamma,
    };
    (z, saved)
}

/// The gradients `[x, Wex, Wix, Wei, α, g, b]`, `x`'s only when `need_x`.
fn dann_backward(s: DannSaved, dz: CubeTensor, need_x: bool) -> [Option<CubeTensor>; 7] {
    let dz = rows(dz);
    let (b, ne, ni) = (s.x.shape()[0], s.wex.shape()[0], s.wix.shape()[0]);
    let client = dz.client.clone();

    let [dzhat, dz_ratio] = [0; 2].map(|_| empty(&dz, &[b, ne]));
    let dp = empty(&dz, &[b, 2 * ne]);
    let (count, dim) = grid(&dz, b * ne);
    dann_dz::launch::<f32>(
        &client,
        count,
        dim,
        buf(&dz),
        buf(&s.zhat),
        buf(&s.gamma),
        buf(&s.gain),
        buf(&dzhat),
        buf(&dp),
        buf(&dz_ratio),
        ne,
    );
    let dgain = column_sums(dz_ratio);
    let dbias = column_sums(dz);

    let dm = matmul(t(&dp), s.zi.clone());
    let [dwei, ds_s] = [0; 2].map(|_| empty(&dm, &[ne, ni]));
    let (count, dim) = grid(&dm, ne * ni);
    dann_dwei::launch::<f32>(
        &client,
        count,
        dim,
        buf(&dm),
        buf(&s.m),
        buf(&s.alpha),
        buf(&dwei),
        buf(&ds_s),
        ni,
    );
    let dalpha = column_sums(ds_s);

    let dzi = matmul(dp, s.m);
    let dwex = matmul(t(&dzhat), s.x.clone());
    let dwix = matmul(t(&dzi), s.x);
    let dx = need_x.then(|| Cube::float_add(matmul(dzhat, s.wex), matmul(dzi, s.wix)));
    [
        dx,
        Some(dwex),
        Some(dwix),
        Some(dwei),
        Some(dalpha),
        Some(dgain),
        Some(dbias),
    ]
}

impl Kernel<Cube, 7> for DannLayer {
    type Saved = DannSaved;

    fn forward(&self, inputs: [CubeTensor; 7], save: bool) -> (CubeTensor, Option<DannSaved>) {
        let (z, saved) = dann_forward(inputs, self.eps);
        (z, save.then_some(saved))
    }

    fn backward(
        &self,
        saved: DannSaved,
        dz: CubeTensor,
        need: [bool; 7],
    ) -> [Option<CubeTensor>; 7] {
        dann_backward(saved, dz, need[0])
    }
}
