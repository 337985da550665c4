//! The fused DANN layer, affine map, tanh, ARUN controller step, gamma activation and
//! plain-SGD update on the `gpu` feature's CubeCL backend: the same ops, the same arithmetic
//! and the same analytic backward passes as the host versions ([`super::dann`],
//! [`super::dense`], [`super::controller`], [`super::gamma`], [`super::update`]), with each
//! element-wise pass one CubeCL kernel and each product burn's (cubek's) tuned matmul.
//!
//! DANN layer, forward (spec A1.2): `ze = x Wexᵀ`, `zi = x Wixᵀ`, `M = [Wei; Wei ⊙ e^α]`
//! ([`dann_mix`]), `P = zi Mᵀ (B, 2 ne)`, then one pass ([`dann_out`]) writes `ẑ = ze − P₁`,
//! `γ = P₂ + ε` and `z = g ⊙ ẑ / γ + b`. Backward: one pass ([`dann_dz`]) writes `dẑ`,
//! `dP = [−dẑ, dγ]` and `dz ẑ/γ`, whose column sums (burn's parallel reduction,
//! [`column_sums`]) are `dg`, as those of `dz` are `db`; `dM = dPᵀ zi`, and one pass
//! ([`dann_dwei`]) folds it into `dWei` and `dS ⊙ S`, whose column sums are `dα`; then
//! `dzi = dP M`, `dWex = dẑᵀ x`, `dWix = dziᵀ x` and `dx = dẑ Wex + dzi Wix`.
//!
//! Affine map `x Wᵀ + b`: one product and one bias pass ([`add_bias`]) forward; backward
//! `dx = dy W`, `dW = dyᵀ x` and the column sums `db` ([`column_sums`]).
//!
//! tanh: burn's kernel forward, and one kernel ([`tanh_grad`]) for `dy ⊙ (1 − y²)` backward.
//!
//! ARUN controller step `g = tanh(a ⊗ u + g_prev W_ggᵀ + b)`: one product and one kernel
//! ([`controller_out`]) forward; backward `dp = dg ⊙ (1 − g²)` ([`tanh_grad`]), the column
//! sums `db`, and four products for `da`, `dg_prev`, `du`, `dW_gg`.
//!
//! Gamma: one pass forward ([`gamma_fwd`]) and one backward ([`gamma_bwd`]) over `x (B, H)`,
//! `n` and `s` indexed in place as `(1, 1)`, `(1, H)` or `(B, H)`; the per-entry `dn`, `ds` are
//! then summed to their parameter's shape.
//!
//! Tested against the plain tensor versions on Mesa's software Vulkan driver (`tests/gpu.rs`).

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Cube, TensorMetadata};
use burn::tensor::{DType, Shape};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::{
    AffineInputs, AffineKernels, ControllerInputs, ControllerKernels, DannInputs, DannKernels,
    GammaInputs, GammaKernels, TanhInput, TanhKernels, record,
};
use crate::nn::dann::SHUNT_EPS;

/// The shunt's `ε` in f32.
const EPS: f32 = SHUNT_EPS as f32;

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
    ne: usize,
) {
    let i = ABSOLUTE_POS;
    if i < z.len() {
        let row = i / ne;
        let j = i % ne;
        let zh = ze[i] - p[row * 2 * ne + j];
        let ga = p[row * 2 * ne + ne + j] + F::new(EPS);
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

/// The width of `x (B, h)` and the shapes `(rows, cols)` of `n` and `s`, each 1 or the full
/// size.
#[derive(CubeLaunch, CubeType)]
struct GammaShape {
    h: usize,
    n_rows: usize,
    n_cols: usize,
    s_rows: usize,
    s_cols: usize,
}

/// `n` and `s` at entry `i` of `x`.
#[cube]
fn params_at<F: Float>(n: &[F], s: &[F], i: usize, shape: &GammaShape) -> (F, F) {
    let row = i / shape.h;
    let col = i % shape.h;
    let nv = n[(row % shape.n_rows) * shape.n_cols + col % shape.n_cols];
    let sv = s[(row % shape.s_rows) * shape.s_cols + col % shape.s_cols];
    (nv, sv)
}

/// `(softplus_n(x), σ(n x))`, stable for `n > 0` (see [`super::gamma::parts`]).
#[cube]
pub(super) fn gamma_parts<F: Float>(x: F, n: F) -> (F, F) {
    let z = n * x;
    let e = (F::new(0.0) - z.abs()).exp();
    let softplus = (z.max(F::new(0.0)) + e.log1p()) / n;
    let sigma = select(
        z >= F::new(0.0),
        F::new(1.0) / (F::new(1.0) + e),
        e / (F::new(1.0) + e),
    );
    (softplus, sigma)
}

/// `γ(x; n, s)`, one unit per entry of `x (B, H)`.
#[cube(launch)]
fn gamma_fwd<F: Float>(x: &[F], n: &[F], s: &[F], y: &mut [F], shape: GammaShape) {
    let i = ABSOLUTE_POS;
    if i < y.len() {
        let (nv, sv) = params_at(n, s, i, &shape);
        let (softplus, sigma) = gamma_parts::<F>(x[i], nv);
        y[i] = (F::new(1.0) - sv) * softplus + sv * sigma;
    }
}

/// `dx`, and the per-entry `dn`, `ds` (each `(B, H)`), from `dy`; one unit per entry.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn gamma_bwd<F: Float>(
    x: &[F],
    n: &[F],
    s: &[F],
    dy: &[F],
    dx: &mut [F],
    dn: &mut [F],
    ds: &mut [F],
    shape: GammaShape,
) {
    let i = ABSOLUTE_POS;
    if i < dx.len() {
        let (nv, sv) = params_at(n, s, i, &shape);
        let g = dy[i];
        let (px, pn, ps) = gamma_partials::<F>(x[i], nv, sv);
        dx[i] = g * px;
        dn[i] = g * pn;
        ds[i] = g * ps;
    }
}

/// The partials `(∂γ/∂x, ∂γ/∂n, ∂γ/∂s)` of `γ(x; n, s)` (see [`super::gamma`]).
#[cube]
pub(super) fn gamma_partials<F: Float>(x: F, n: F, s: F) -> (F, F, F) {
    let (softplus, sigma) = gamma_parts::<F>(x, n);
    let slope = sigma * (F::new(1.0) - sigma);
    let one_minus_s = F::new(1.0) - s;
    let px = one_minus_s * sigma + s * n * slope;
    let pn = one_minus_s * (x * sigma - softplus) / n + s * x * slope;
    (px, pn, sigma - softplus)
}

/// One plain-SGD update entry by entry: `p − lr g`, or exponentiated gradient
/// `p · exp(−lr · sign(p) · g)`, then optionally the projection onto `[0, ∞)` (NaN passes).
#[cube(launch)]
fn sgd_update(
    p: &[f32],
    g: &[f32],
    out: &mut [f32],
    lr: f32,
    #[comptime] exponentiated: bool,
    #[comptime] nonneg: bool,
) {
    let i = ABSOLUTE_POS;
    if i < out.len() {
        let pv = p[i];
        let mut v = pv - lr * g[i];
        if exponentiated {
            let sign = select(pv > 0.0, 1.0f32, select(pv < 0.0, -1.0f32, 0.0f32));
            v = pv * (sign * g[i] * (0.0 - lr)).exp();
        }
        if nonneg {
            v = select(v < 0.0, 0.0f32, v);
        }
        out[i] = v;
    }
}

/// [`super::update::sgd_step`] on the GPU: one kernel for the rule and the projection.
pub(crate) fn sgd_step(
    p: CubeTensor,
    g: CubeTensor,
    lr: f32,
    exponentiated: bool,
    nonneg: bool,
) -> CubeTensor {
    let (p, g) = (rows(p), rows(g));
    let out = empty(&p, &p.shape().to_vec());
    let (count, dim) = grid(&out, out.shape().num_elements());
    sgd_update::launch(
        &p.client,
        count,
        dim,
        buf(&p),
        buf(&g),
        buf(&out),
        lr,
        exponentiated,
        nonneg,
    );
    out
}

/// `y += b` down every row of `y (B, n)`, one unit per entry.
#[cube(launch)]
fn add_bias<F: Float>(y: &mut [F], bias: &[F], n: usize) {
    let i = ABSOLUTE_POS;
    if i < y.len() {
        y[i] += bias[i % n];
    }
}

/// `g = tanh(h + a ⊗ u + b)` for `h = g_prev W_ggᵀ (R, K)`, one unit per entry.
#[cube(launch)]
fn controller_out<F: Float>(h: &[F], a: &[F], u: &[F], bias: &[F], g: &mut [F], k: usize) {
    let i = ABSOLUTE_POS;
    if i < g.len() {
        let r = i / k;
        let c = i % k;
        g[i] = (h[i] + a[r] * u[c] + bias[c]).tanh();
    }
}

/// `dp = dg ⊙ (1 − g²)` for `g = tanh(·)`, one unit per entry.
#[cube(launch)]
fn tanh_grad<F: Float>(g: &[F], dg: &[F], dp: &mut [F]) {
    let i = ABSOLUTE_POS;
    if i < dp.len() {
        dp[i] = dg[i] * (F::new(1.0) - g[i] * g[i]);
    }
}

/// Units per cube of the kernels above.
const UNITS: u32 = 256;

/// The launch grid for `units` units on `like`'s device, one per kernel position: cubecl
/// spreads the cubes over two grid dimensions when one would exceed the device's limit, and
/// may round the count up (every kernel checks its bounds).
pub(super) fn grid(like: &CubeTensor, units: usize) -> (CubeCount, CubeDim) {
    let dim = CubeDim::new_1d(UNITS);
    let count = cubecl::calculate_cube_count_elemwise(&like.client, units.max(1), dim);
    (count, dim)
}

/// A row-major f32 tensor, laid out in rows if it was not.
pub(super) fn rows(t: CubeTensor) -> CubeTensor {
    assert_eq!(t.dtype, DType::F32, "the CubeCL kernels run in f32");
    into_contiguous(t)
}

/// An uninitialised row-major f32 tensor of `shape` on `like`'s device.
pub(super) fn empty(like: &CubeTensor, shape: &[usize]) -> CubeTensor {
    empty_device_contiguous_dtype(
        like.client.clone(),
        like.device.clone(),
        Shape::from(shape.to_vec()),
        DType::F32,
    )
}

pub(super) fn buf(t: &CubeTensor) -> BufferArg {
    t.clone().into_buffer_arg()
}

pub(super) fn matmul(a: CubeTensor, b: CubeTensor) -> CubeTensor {
    rows(Cube::float_matmul(a, b))
}

pub(super) fn t(a: &CubeTensor) -> CubeTensor {
    Cube::float_transpose(a.clone())
}

/// Register each computed gradient in `values` for its input's node, where that input
/// needs one.
pub(super) fn register<const N: usize>(
    grads: &mut Gradients,
    nodes: [Option<NodeId>; N],
    values: [Option<CubeTensor>; N],
) {
    for (node, g) in nodes.into_iter().zip(values) {
        if let (Some(id), Some(g)) = (node, g) {
            grads.register::<Cube>(id, g);
        }
    }
}

/// The column sums `(n)` of `g (B, n)`, by burn's parallel reduction.
fn column_sums(g: CubeTensor) -> CubeTensor {
    let n = g.shape()[1];
    reshape(Cube::float_sum_dim(g, 0), &[n])
}

pub(super) fn reshape(x: CubeTensor, shape: &[usize]) -> CubeTensor {
    Cube::float_reshape(x, Shape::from(shape.to_vec()))
}

/// What the DANN layer's backward pass needs from its forward pass.
#[derive(Debug, Clone)]
struct DannSaved {
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

fn dann_forward(p: &DannInputs<Cube>) -> (CubeTensor, DannSaved) {
    let x = rows(p.x.clone());
    let [wex, wix, wei] = [&p.wex, &p.wix, &p.wei].map(|t| rows(t.clone()));
    let [alpha, gain, bias] = [&p.alpha, &p.gain, &p.bias].map(|t| rows(t.clone()));
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

impl DannKernels for Cube {
    fn dann_layer(p: DannInputs<Self>) -> FloatTensor<Self> {
        dann_forward(&p).0
    }
}

#[derive(Debug)]
struct DannCubeBackward;

impl Backward<Cube, 7> for DannCubeBackward {
    type State = DannSaved;

    fn backward(self, ops: Ops<Self::State, 7>, grads: &mut Gradients, _: &mut Checkpointer) {
        let nodes = ops.parents.map(|n| n.map(|n| n.id));
        let dz = grads.consume::<Cube>(&ops.node);
        let g = dann_backward(ops.state, dz, nodes[0].is_some());
        register(grads, nodes, g);
    }
}

impl<C: CheckpointStrategy> DannKernels for Autodiff<Cube, C> {
    fn dann_layer(p: DannInputs<Self>) -> FloatTensor<Self> {
        let (nodes, inner) = p.split();
        let forward = || dann_forward(&inner);
        record::<_, C, _, 7>(DannCubeBackward, nodes, forward, || forward().0)
    }
}

/// `x Wᵀ + b`: burn's matmul, then one kernel adds the bias.
fn affine_forward(p: &AffineInputs<Cube>) -> CubeTensor {
    let x = rows(p.x.clone());
    let bias = rows(p.bias.clone());
    let y = matmul(x, t(&p.weight));
    let [b, n] = dims2(&y);
    let (count, dim) = grid(&y, b * n);
    add_bias::launch::<f32>(&y.client, count, dim, buf(&y), buf(&bias), n);
    y
}

impl AffineKernels for Cube {
    fn affine(p: AffineInputs<Self>) -> FloatTensor<Self> {
        affine_forward(&p)
    }
}

#[derive(Debug)]
struct AffineCubeBackward;

impl Backward<Cube, 3> for AffineCubeBackward {
    /// The input `x` and the weight `W`.
    type State = (CubeTensor, CubeTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, w_node, b_node] = ops.parents.map(|n| n.map(|n| n.id));
        let dy = rows(grads.consume::<Cube>(&ops.node));
        let (x, w) = ops.state;
        if let Some(id) = x_node {
            grads.register::<Cube>(id, matmul(dy.clone(), w));
        }
        if let Some(id) = w_node {
            grads.register::<Cube>(id, matmul(t(&dy), x));
        }
        if let Some(id) = b_node {
            grads.register::<Cube>(id, column_sums(dy));
        }
    }
}

impl<C: CheckpointStrategy> AffineKernels for Autodiff<Cube, C> {
    fn affine(p: AffineInputs<Self>) -> FloatTensor<Self> {
        let (nodes, inner) = p.split();
        record::<_, C, _, 3>(
            AffineCubeBackward,
            nodes,
            || {
                let state = (inner.x.clone(), inner.weight.clone());
                (affine_forward(&inner), state)
            },
            || affine_forward(&inner),
        )
    }
}

/// One ARUN controller step: burn's matmul for `g_prev W_ggᵀ`, then one kernel.
fn controller_forward(p: &ControllerInputs<Cube>) -> CubeTensor {
    let [a, u, bias] = [&p.a, &p.u, &p.bias].map(|t| rows(t.clone()));
    controller_state(&a, &p.g_prev, &u, &p.w_gg, &bias)
}

/// `g = tanh(a ⊗ u + g_prev W_ggᵀ + bias) (R, K)` for row-major `a (R)`, `u (K)` and
/// `bias (K)` (any shapes with those entries).
pub(super) fn controller_state(
    a: &CubeTensor,
    g_prev: &CubeTensor,
    u: &CubeTensor,
    w_gg: &CubeTensor,
    bias: &CubeTensor,
) -> CubeTensor {
    let h = matmul(g_prev.clone(), t(w_gg));
    let [r, k] = dims2(&h);
    let g = empty(&h, &[r, k]);
    let (count, dim) = grid(&g, r * k);
    controller_out::launch::<f32>(
        &h.client,
        count,
        dim,
        buf(&h),
        buf(a),
        buf(u),
        buf(bias),
        buf(&g),
        k,
    );
    g
}

impl ControllerKernels for Cube {
    fn controller_step(p: ControllerInputs<Self>) -> FloatTensor<Self> {
        controller_forward(&p)
    }
}

#[derive(Debug)]
struct ControllerCubeBackward;

impl Backward<Cube, 5> for ControllerCubeBackward {
    /// `a (R, 1)`, `g_prev`, `u (K, 1)`, `W_gg` and the output `g`.
    type State = [CubeTensor; 5];

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        let nodes = ops.parents.map(|n| n.map(|n| n.id));
        let dg = rows(grads.consume::<Cube>(&ops.node));
        let [a, g_prev, u, w_gg, g] = ops.state;
        let [r, k] = dims2(&g);
        let dp = empty(&g, &[r, k]);
        let (count, dim) = grid(&g, r * k);
        tanh_grad::launch::<f32>(&g.client, count, dim, buf(&g), buf(&dg), buf(&dp));
        let db = Cube::float_sum_dim(dp.clone(), 0);
        let values = [
            matmul(dp.clone(), u),
            matmul(dp.clone(), w_gg),
            matmul(t(&dp), a),
            matmul(t(&dp), g_prev),
            db,
        ];
        register(grads, nodes, values.map(Some));
    }
}

impl<C: CheckpointStrategy> ControllerKernels for Autodiff<Cube, C> {
    fn controller_step(p: ControllerInputs<Self>) -> FloatTensor<Self> {
        let (nodes, inner) = p.split();
        record::<_, C, _, 5>(
            ControllerCubeBackward,
            nodes,
            || {
                let g = controller_forward(&inner);
                let state = [&inner.a, &inner.g_prev, &inner.u, &inner.w_gg, &g].map(|t| t.clone());
                (g, state)
            },
            || controller_forward(&inner),
        )
    }
}

impl TanhKernels for Cube {
    fn tanh(p: TanhInput<Self>) -> FloatTensor<Self> {
        Cube::float_tanh(p.x)
    }
}

#[derive(Debug)]
struct TanhCubeBackward;

impl Backward<Cube, 1> for TanhCubeBackward {
    /// The output `y = tanh(x)`.
    type State = CubeTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents.map(|n| n.map(|n| n.id));
        let dy = rows(grads.consume::<Cube>(&ops.node));
        let y = rows(ops.state);
        if let Some(id) = node {
            let dx = empty(&y, &y.shape().to_vec());
            let (count, dim) = grid(&y, y.shape().num_elements());
            tanh_grad::launch::<f32>(&y.client, count, dim, buf(&y), buf(&dy), buf(&dx));
            grads.register::<Cube>(id, dx);
        }
    }
}

impl<C: CheckpointStrategy> TanhKernels for Autodiff<Cube, C> {
    fn tanh(p: TanhInput<Self>) -> FloatTensor<Self> {
        let x = p.x.primitive().clone();
        let forward = || Cube::float_tanh(x.clone());
        record::<_, C, _, 1>(
            TanhCubeBackward,
            [p.x.node()],
            || {
                let y = forward();
                (y.clone(), y)
            },
            forward,
        )
    }
}

/// A gamma activation's inputs laid out in rows, with the shapes of `n` and `s`.
#[derive(Debug, Clone)]
struct GammaArgs {
    x: CubeTensor,
    n: CubeTensor,
    s: CubeTensor,
}

impl GammaArgs {
    fn new(p: GammaInputs<Cube>) -> Self {
        let [x, n, s] = [p.x, p.n, p.s].map(rows);
        let [b, h] = dims2(&x);
        for (name, t) in [("n", &n), ("s", &s)] {
            let d = dims2(t);
            assert!(
                super::gamma::Broadcast::of(d, [b, h]).is_some(),
                "gamma: {name} has shape {d:?}; for x of shape [{b}, {h}] it must be [1, 1], \
                 [1, {h}] or [{b}, {h}]"
            );
        }
        GammaArgs { x, n, s }
    }

    /// The launch argument of [`GammaShape`].
    fn shape(&self) -> GammaShapeLaunch {
        let [_, h] = dims2(&self.x);
        let [nr, nc] = dims2(&self.n);
        let [sr, sc] = dims2(&self.s);
        GammaShapeLaunch::new(h, nr, nc, sr, sc)
    }
}

pub(super) fn dims2(t: &CubeTensor) -> [usize; 2] {
    let shape = t.shape();
    [shape[0], shape[1]]
}

fn gamma_forward(a: &GammaArgs) -> CubeTensor {
    let [b, h] = dims2(&a.x);
    let y = empty(&a.x, &[b, h]);
    let (count, dim) = grid(&a.x, b * h);
    gamma_fwd::launch::<f32>(
        &a.x.client,
        count,
        dim,
        buf(&a.x),
        buf(&a.n),
        buf(&a.s),
        buf(&y),
        a.shape(),
    );
    y
}

/// A per-entry gradient `(B, H)` summed down to a parameter's shape `(rows, cols)`.
pub(super) fn sum_to(g: CubeTensor, [rows, cols]: [usize; 2]) -> CubeTensor {
    let [b, h] = dims2(&g);
    let g = if rows == 1 && b > 1 {
        Cube::float_sum_dim(g, 0)
    } else {
        g
    };
    if cols == 1 && h > 1 {
        Cube::float_sum_dim(g, 1)
    } else {
        g
    }
}

impl GammaKernels for Cube {
    fn gamma(p: GammaInputs<Self>) -> FloatTensor<Self> {
        gamma_forward(&GammaArgs::new(p))
    }
}

#[derive(Debug)]
struct GammaCubeBackward;

impl Backward<Cube, 3> for GammaCubeBackward {
    type State = GammaArgs;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let nodes = ops.parents.map(|n| n.map(|n| n.id));
        let dy = rows(grads.consume::<Cube>(&ops.node));
        let a = ops.state;
        let [b, h] = dims2(&a.x);
        let [dx, dn, ds] = [0; 3].map(|_| empty(&a.x, &[b, h]));
        let (count, dim) = grid(&a.x, b * h);
        gamma_bwd::launch::<f32>(
            &a.x.client,
            count,
            dim,
            buf(&a.x),
            buf(&a.n),
            buf(&a.s),
            buf(&dy),
            buf(&dx),
            buf(&dn),
            buf(&ds),
            a.shape(),
        );
        let dn = sum_to(dn, dims2(&a.n));
        let ds = sum_to(ds, dims2(&a.s));
        register(grads, nodes, [dx, dn, ds].map(Some));
    }
}

impl<C: CheckpointStrategy> GammaKernels for Autodiff<Cube, C> {
    fn gamma(p: GammaInputs<Self>) -> FloatTensor<Self> {
        let (nodes, inner) = p.split();
        let args = GammaArgs::new(inner);
        record::<_, C, _, 3>(
            GammaCubeBackward,
            nodes,
            || (gamma_forward(&args), args.clone()),
            || gamma_forward(&args),
        )
    }
}
