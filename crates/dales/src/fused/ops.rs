//! The fused ops: each is a value (its non-tensor settings) whose kernels live in
//! [`super::cpu`] and [`super::gpu`] under the op's name, and a function that dispatches
//! itself: where the op has kernels for its inputs (see [`Settings`]), the function runs them
//! through [`super::autodiff`]; anywhere else it calls the plain tensor version the caller
//! hands it, which stays the tested reference.
//!
//! | op | inputs | kernels |
//! |---|---|---|
//! | [`dann_layer`] | `x`, `Wex`, `Wix`, `Wei`, `α`, `g`, `b` | f32 host and GPU |
//! | [`affine`] | `x`, `W`, `b` | f32 host and GPU |
//! | [`tanh`] | `x` | f32 and f64 host, f32 GPU |
//! | [`gamma`] | `x`, `n`, `s` | f32 and f64 host, f32 GPU |
//! | [`controller_step`] | `a`, `g_prev`, `U_ag`, `W_gg`, `b` | f32 host and GPU |
//! | [`rnn_sequence`], [`rnn_states`] | `xs`, `U`, `b_U`, `V`, `b_V`, `n`, `s` | f32 host and GPU |
//! | [`arun_sequence`] | `xs` and the twelve ARUN parameters | f32 host and GPU |
//! | [`sgd_step`] | `p`, `g` (no autodiff) | f32 host and GPU |
//! | [`conv_dann_layer`] | `x`, `Wex`, `Wix`, `Wei`, `α`, `g`, `b` | f32 host |
//! | [`conv_affine`] | `x`, `W`, `b` | f32 host |
//!
//! The conv ops have host kernels only: on the GPU their callers' plain versions run burn's
//! own convolutions. Each outputs the layer's maps, or ReLU then max-pooling of them
//! ([`Pool`]), made image by image while the maps are in cache.

use burn::backend::DispatchDevice;
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{DType, Tensor};

use super::Settings;
use super::autodiff::{call, call_host};

/// Where a tensor lives, as the fused ops see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// burn's NdArray backend, the CPU.
    Host(DType),
    /// The `gpu` feature's CubeCL backend.
    #[cfg(feature = "gpu")]
    Gpu(DType),
    /// Anywhere else: no fused op.
    Other,
}

impl Place {
    fn of<const D: usize>(t: &Tensor<D>) -> Place {
        let dtype = t.dtype();
        match t.device().inner().as_dispatch() {
            DispatchDevice::NdArray(_) => Place::Host(dtype),
            #[cfg(feature = "gpu")]
            DispatchDevice::Cube(_) => Place::Gpu(dtype),
            #[allow(unreachable_patterns)]
            _ => Place::Other,
        }
    }
}

/// The one place of all `places`, if they agree.
fn common(places: &[Place]) -> Option<Place> {
    let first = *places.first()?;
    places.iter().all(|p| *p == first).then_some(first)
}

/// Whether an op runs fused on inputs at `places`: fusing is on (see [`Settings`]), the
/// inputs share one place, and that place is f32 on the host or the GPU, or also f64 on the
/// host for ops with f64 host kernels (`host_f64`).
fn fuses(places: &[Place], host_f64: bool) -> bool {
    Settings::current().fused
        && match common(places) {
            Some(Place::Host(DType::F32)) => true,
            #[cfg(feature = "gpu")]
            Some(Place::Gpu(DType::F32)) => true,
            Some(Place::Host(DType::F64)) => host_f64,
            _ => false,
        }
}

/// Whether a host-only op runs fused: fusing is on and every input is f32 on the host.
fn fuses_on_host(places: &[Place]) -> bool {
    Settings::current().fused && common(places) == Some(Place::Host(DType::F32))
}

/// The places of tensors of any rank.
macro_rules! places {
    ($($t:expr),+ $(,)?) => { [$(Place::of(&$t)),+] };
}

/// The DANN layer (spec A1.2) `z = g ⊙ (Wex x − Wei Wix x) / ((Wei ⊙ e^α) Wix x + ε) + b`.
/// Inputs `x (B, d)`, `Wex (ne, d)`, `Wix (ni, d)`, `Wei (ne, ni)`, `α (ni)`, `g (ne)`,
/// `b (ne)`; output `z (B, ne)`. Kernels: [`super::cpu::dann`], [`super::gpu::dann`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct DannLayer {
    /// `ε` of the shunt.
    pub eps: f32,
}

/// [`DannLayer`] fused where it runs, else `plain` on the same inputs.
pub fn dann_layer(
    x: Tensor<2>,
    w: [Tensor<2>; 3],
    v: [Tensor<1>; 3],
    eps: f64,
    plain: impl FnOnce(Tensor<2>, [Tensor<2>; 3], [Tensor<1>; 3]) -> Tensor<2>,
) -> Tensor<2> {
    let [wex, wix, wei] = w;
    let [alpha, gain, bias] = v;
    if !fuses(&places!(x, wex, wix, wei, alpha, gain, bias), false) {
        return plain(x, [wex, wix, wei], [alpha, gain, bias]);
    }
    let op = DannLayer { eps: eps as f32 };
    let [x, wex, wix, wei] = [x, wex, wix, wei].map(Tensor::into_dispatch);
    let [alpha, gain, bias] = [alpha, gain, bias].map(Tensor::into_dispatch);
    call(op, [x, wex, wix, wei, alpha, gain, bias])
}

/// The affine map `y = x Wᵀ + b` of a dense layer (spec A1.1). Inputs `x (B, d)`, `W (n, d)`,
/// `b (n)`; output `y (B, n)`. Kernels: [`super::cpu::affine`], [`super::gpu::affine`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Affine;

/// [`Affine`] fused where it runs, else `plain`.
pub fn affine(
    x: Tensor<2>,
    weight: Tensor<2>,
    bias: Tensor<1>,
    plain: impl FnOnce(Tensor<2>, Tensor<2>, Tensor<1>) -> Tensor<2>,
) -> Tensor<2> {
    if !fuses(&places!(x, weight, bias), false) {
        return plain(x, weight, bias);
    }
    let [x, weight] = [x, weight].map(Tensor::into_dispatch);
    call(Affine, [x, weight, bias.into_dispatch()])
}

/// `y = tanh(x)` entry by entry, with the backward `dy ⊙ (1 − y²)` from the saved output.
/// burn 0.22's NdArray tanh evaluates every f32 entry through f64, which made it the largest
/// cost of an ARUN step (its controller has `B·H·K` units). Kernels: [`super::cpu::tanh`],
/// [`super::gpu::tanh`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tanh;

/// [`Tanh`] fused where it runs, else `plain`.
pub fn tanh<const D: usize>(x: Tensor<D>, plain: impl FnOnce(Tensor<D>) -> Tensor<D>) -> Tensor<D> {
    if !fuses(&places!(x), true) {
        return plain(x);
    }
    call(Tanh, [x.into_dispatch()])
}

/// The gamma activation (spec C1) `γ(x; n, s) = (1 − s)·softplus_n(x) + s·σ(n x)` for
/// `n > 0`. Inputs `x (B, H)` and its shape `n`, `s`, each `(1, 1)`, `(1, H)` or `(B, H)`
/// ([`super::Broadcast`]); output `(B, H)`. Kernels: [`super::cpu::gamma`],
/// [`super::gpu::gamma`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gamma;

/// [`Gamma`] fused where it runs, else `plain`. `n` must be positive.
pub fn gamma(
    x: Tensor<2>,
    n: Tensor<2>,
    s: Tensor<2>,
    plain: impl FnOnce(Tensor<2>, Tensor<2>, Tensor<2>) -> Tensor<2>,
) -> Tensor<2> {
    if !fuses(&places!(x, n, s), true) {
        return plain(x, n, s);
    }
    call(Gamma, [x, n, s].map(Tensor::into_dispatch))
}

/// One ARUN controller step (spec C2) `g = tanh(a ⊗ u + g_prev W_ggᵀ + b)`. Inputs
/// `a (R, 1)`, `g_prev (R, K)`, `u = U_ag (K, 1)`, `W_gg (K, K)`, `b (1, K)`; output
/// `g (R, K)`. Kernels: [`super::cpu::controller`], [`super::gpu::controller`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ControllerStep;

/// [`ControllerStep`] fused where it runs, else `plain`.
pub fn controller_step(
    [a, g_prev, u, w_gg, bias]: [Tensor<2>; 5],
    plain: impl FnOnce([Tensor<2>; 5]) -> Tensor<2>,
) -> Tensor<2> {
    if !fuses(&places!(a, g_prev, u, w_gg, bias), false) {
        return plain([a, g_prev, u, w_gg, bias]);
    }
    call(
        ControllerStep,
        [a, g_prev, u, w_gg, bias].map(Tensor::into_dispatch),
    )
}

/// The nonlinearity of a fused RNN sequence.
// One value per call, moved at once into the op: boxing the gamma's tensors saves nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum RnnAct {
    /// `max(a, 0)`.
    Relu,
    /// `tanh(a)`.
    Tanh,
    /// `ln(1 + e^a)`.
    Softplus,
    /// `γ(a; max(n, n_min), s)` with `n`, `s` of shape `(1, 1)` or `(1, H)`; the gradient of
    /// `n` is 0 where the floor is active.
    Gamma {
        n: Tensor<2>,
        s: Tensor<2>,
        n_min: f64,
    },
}

/// The activation of an [`RnnSequence`], without its tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    Relu,
    Tanh,
    Softplus,
    Gamma,
}

/// A whole RNN sequence (spec C2) from `h_0 = 0`: `a_t = x_t Uᵀ + b_U + h_{t−1} Vᵀ + b_V`,
/// `h_t = φ(a_t)`, with a hand-written backward through time. Inputs `xs (B, T, d)`,
/// `U (H, d)`, `b_U (H)`, `V (H, H)`, `b_V (H)`, and the gamma's `n`, `s` (`(1, 1)` or
/// `(1, H)`; unused for the fixed activations); output `h_T (B, H)`, or with `every` all
/// states `h_1..h_T (B, T, H)` (a layer that feeds another). Kernels:
/// [`super::cpu::sequence`], [`super::gpu::sequence`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RnnSequence {
    pub act: Act,
    /// The floor of the gamma's `n`.
    pub n_min: f32,
    /// Output every state, not only the last.
    pub every: bool,
}

/// The parameters of a fused RNN sequence.
#[derive(Debug, Clone)]
pub struct RnnParams {
    /// `U (H, d)`.
    pub u: Tensor<2>,
    /// `b_U (H)`.
    pub u_bias: Tensor<1>,
    /// `V (H, H)`.
    pub v: Tensor<2>,
    /// `b_V (H)`.
    pub v_bias: Tensor<1>,
    /// The nonlinearity.
    pub act: RnnAct,
}

/// [`RnnSequence`] fused where it runs and no step has a `drive`, else `plain(xs)`.
pub fn rnn_sequence(
    xs: Tensor<3>,
    p: RnnParams,
    drive: &dyn Fn(usize) -> Option<Tensor<2>>,
    plain: impl FnOnce(Tensor<3>) -> Tensor<2>,
) -> Tensor<2> {
    if driven(&xs, drive) {
        return plain(xs);
    }
    sequence_call(xs, p, false, plain)
}

/// Every state `h_1..h_T (B, T, H)` of an [`RnnSequence`] without drive: fused where it runs,
/// else `plain(xs)`.
pub fn rnn_states(
    xs: Tensor<3>,
    p: RnnParams,
    plain: impl FnOnce(Tensor<3>) -> Tensor<3>,
) -> Tensor<3> {
    sequence_call(xs, p, true, plain)
}

/// The fused [`RnnSequence`] call, or `plain(xs)` where the op does not run.
fn sequence_call<const D: usize>(
    xs: Tensor<3>,
    p: RnnParams,
    every: bool,
    plain: impl FnOnce(Tensor<3>) -> Tensor<D>,
) -> Tensor<D> {
    let (act, n, s, n_min) = match p.act {
        RnnAct::Relu => (Act::Relu, None, None, 0.0),
        RnnAct::Tanh => (Act::Tanh, None, None, 0.0),
        RnnAct::Softplus => (Act::Softplus, None, None, 0.0),
        RnnAct::Gamma { n, s, n_min } => (Act::Gamma, Some(n), Some(s), n_min),
    };
    let zero = || Tensor::zeros([1, 1], (&p.v.device(), p.v.dtype()));
    let (n, s) = (n.unwrap_or_else(zero), s.unwrap_or_else(zero));
    if !fuses(&places!(xs, p.u, p.u_bias, p.v, p.v_bias, n, s), false) {
        return plain(xs);
    }
    let op = RnnSequence {
        act,
        n_min: n_min as f32,
        every,
    };
    let [u, v, n, s] = [p.u, p.v, n, s].map(Tensor::into_dispatch);
    let [u_bias, v_bias] = [p.u_bias, p.v_bias].map(Tensor::into_dispatch);
    call(op, [xs.into_dispatch(), u, u_bias, v, v_bias, n, s])
}

/// Whether any step of `xs (B, T, d)` has a drive.
fn driven(xs: &Tensor<3>, drive: &dyn Fn(usize) -> Option<Tensor<2>>) -> bool {
    (0..xs.dims()[1]).any(|t| drive(t).is_some())
}

/// A whole ARUN sequence (spec C2) from the zero state, with a hand-written backward through
/// time: the recurrence of [`RnnSequence`] with `h_t = γ(a_t; max(n_t, n_min), s_t)`, where
/// every neuron's controller sets `(n_t, s_t)`:
/// `g_t = tanh(a_t U_ag + g_{t−1} W_ggᵀ + b_ag + b_gg)`, `n_t = W_gn g_t + b_gn`,
/// `s_t = W_gs g_t + b_gs`. Inputs `xs (B, T, d)` then the parameters in the order of
/// [`ArunParams`]; output `h_T (B, H)`. Kernels: [`super::cpu::arun_seq`],
/// [`super::gpu::arun_seq`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArunSequence {
    /// The floor of `n_t`.
    pub n_min: f32,
    /// Bytes of controller states kept for the backward ([`Settings::memory_budget`]).
    pub budget: usize,
}

/// The parameters of a fused ARUN sequence.
#[derive(Debug, Clone)]
pub struct ArunParams {
    /// `U (H, d)`.
    pub u: Tensor<2>,
    /// `b_U (H)`.
    pub u_bias: Tensor<1>,
    /// `W (H, H)`.
    pub w: Tensor<2>,
    /// `b_W (H)`.
    pub w_bias: Tensor<1>,
    /// `U_ag (K, 1)`.
    pub u_ag: Tensor<2>,
    /// `b_ag (K)`.
    pub u_ag_bias: Tensor<1>,
    /// `W_gg (K, K)`.
    pub w_gg: Tensor<2>,
    /// `b_gg (K)`.
    pub w_gg_bias: Tensor<1>,
    /// `W_gn (1, K)`.
    pub w_gn: Tensor<2>,
    /// `b_gn (1)`.
    pub b_gn: Tensor<1>,
    /// `W_gs (1, K)`.
    pub w_gs: Tensor<2>,
    /// `b_gs (1)`.
    pub b_gs: Tensor<1>,
}

/// [`ArunSequence`] fused where it runs and no step has a `drive`, else `plain(xs)`.
pub fn arun_sequence(
    xs: Tensor<3>,
    p: ArunParams,
    n_min: f64,
    drive: &dyn Fn(usize) -> Option<Tensor<2>>,
    plain: impl FnOnce(Tensor<3>) -> Tensor<2>,
) -> Tensor<2> {
    let placed = fuses(
        &places!(
            xs,
            p.u,
            p.u_bias,
            p.w,
            p.w_bias,
            p.u_ag,
            p.u_ag_bias,
            p.w_gg,
            p.w_gg_bias,
            p.w_gn,
            p.b_gn,
            p.w_gs,
            p.b_gs
        ),
        false,
    );
    if !placed || driven(&xs, drive) {
        return plain(xs);
    }
    let op = ArunSequence {
        n_min: n_min as f32,
        budget: Settings::current().memory_budget,
    };
    let [u, w, u_ag, w_gg, w_gn, w_gs] =
        [p.u, p.w, p.u_ag, p.w_gg, p.w_gn, p.w_gs].map(Tensor::into_dispatch);
    let [u_bias, w_bias, u_ag_bias, w_gg_bias, b_gn, b_gs] =
        [p.u_bias, p.w_bias, p.u_ag_bias, p.w_gg_bias, p.b_gn, p.b_gs].map(Tensor::into_dispatch);
    call(
        op,
        [
            xs.into_dispatch(),
            u,
            u_bias,
            w,
            w_bias,
            u_ag,
            u_ag_bias,
            w_gg,
            w_gg_bias,
            w_gn,
            b_gn,
            w_gs,
            b_gs,
        ],
    )
}

/// The last stages of a plain-SGD update (spec D1 rule, then projection) as one pass over a
/// flattened parameter `p` and its (corrected, clipped) gradient `g`:
/// `p − lr g` or, exponentiated, `p · exp(−lr · sign(p) · g)`, then with `nonneg` the
/// projection onto `[0, ∞)` (NaN passes). Runs without autodiff. Kernels:
/// [`super::cpu::update`], [`super::gpu::update`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct SgdStep {
    pub lr: f32,
    pub exponentiated: bool,
    pub nonneg: bool,
}

/// [`SgdStep`] fused where it runs, else `plain(p, g)`; `p` and `g` are flat and without
/// autodiff.
pub fn sgd_step(
    p: Tensor<1>,
    g: Tensor<1>,
    lr: f64,
    [exponentiated, nonneg]: [bool; 2],
    plain: impl FnOnce(Tensor<1>, Tensor<1>) -> Tensor<1>,
) -> Tensor<1> {
    if !fuses(&places!(p, g), false) {
        return plain(p, g);
    }
    let op = SgdStep {
        lr: lr as f32,
        exponentiated,
        nonneg,
    };
    call(op, [p, g].map(Tensor::into_dispatch))
}

/// The settings of a 2-D convolution (cross-correlation, as PyTorch's `conv2d`): kernel
/// `(kh, kw)`, stride, zero padding on both sides, dilation; one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2d {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

impl Conv2d {
    /// The output height and width on inputs of `size`: `⌊(n + 2p − δ(k − 1) − 1)/s⌋ + 1`,
    /// 0 where the padded input is smaller than the dilated kernel.
    pub fn output_size(&self, size: [usize; 2]) -> [usize; 2] {
        std::array::from_fn(|a| {
            let span = self.dilation[a] * (self.kernel[a] - 1) + 1;
            match (size[a] + 2 * self.padding[a]).checked_sub(span) {
                Some(room) => room / self.stride[a] + 1,
                None => 0,
            }
        })
    }

    /// The same settings as burn's.
    pub fn options(&self) -> burn::tensor::ops::ConvOptions<2> {
        burn::tensor::ops::ConvOptions::new(self.stride, self.padding, self.dilation, 1)
    }
}

/// The conv DANN layer (spec A4): `E = conv(x, Wex)`, `I = conv(x, Wix)`, and per pixel
/// `z = g ⊙ (E − Wei I) / ((Wei ⊙ e^α) I + ε) + b`. Inputs `x (B, C, H, W)`, the
/// filters flattened `Wex (C_e, C·kh·kw)`, `Wix (C_i, C·kh·kw)`, `Wei (C_e, C_i)`,
/// `α (C_i)`, `g (C_e)`, `b (C_e)`; output `z (B, C_e, OH, OW)`, or its ReLU max-pooled
/// ([`Pool`]). Kernels: [`super::cpu::conv_dann`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvDannLayer {
    pub conv: Conv2d,
    /// `ε` of the shunt.
    pub eps: f32,
    pub pool: Pool,
}

/// What a conv op outputs: the layer's maps `(B, C, OH, OW)` as they are, or `max(0, ·)`
/// then max-pooling with windows of `p × p` (kernel = stride = `p`, floor), `(B, C, OH/p,
/// OW/p)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// The maps.
    None,
    /// ReLU, then max-pooling of this size.
    ReluMax(usize),
}

impl Pool {
    /// The plain version on a layer's maps: as they are, or `relu` then burn's `max_pool2d`
    /// (the reference of the fused ops' pooled outputs).
    pub fn plain(self, maps: Tensor<4>) -> Tensor<4> {
        match self {
            Pool::None => maps,
            Pool::ReluMax(p) => max_pool2d(relu(maps), MaxPoolOptions::new([p; 2])),
        }
    }
}

/// [`ConvDannLayer`] fused on the host, else `plain` on the same inputs.
pub fn conv_dann_layer(
    x: Tensor<4>,
    w: [Tensor<2>; 3],
    v: [Tensor<1>; 3],
    conv: Conv2d,
    eps: f64,
    pool: Pool,
    plain: impl FnOnce(Tensor<4>, [Tensor<2>; 3], [Tensor<1>; 3]) -> Tensor<4>,
) -> Tensor<4> {
    let [wex, wix, wei] = w;
    let [alpha, gain, bias] = v;
    if !fuses_on_host(&places!(x, wex, wix, wei, alpha, gain, bias)) {
        return plain(x, [wex, wix, wei], [alpha, gain, bias]);
    }
    let op = ConvDannLayer {
        conv,
        eps: eps as f32,
        pool,
    };
    let [wex, wix, wei] = [wex, wix, wei].map(Tensor::into_dispatch);
    let [alpha, gain, bias] = [alpha, gain, bias].map(Tensor::into_dispatch);
    call_host(op, [x.into_dispatch(), wex, wix, wei, alpha, gain, bias])
}

/// A plain convolution with bias, `y = conv(x, W) + b`. Inputs `x (B, C, H, W)`, the
/// filters flattened `W (C_out, C·kh·kw)`, `b (C_out)`; output `(B, C_out, OH, OW)`, or its
/// ReLU max-pooled ([`Pool`]). Kernels: [`super::cpu::conv`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvAffine {
    pub conv: Conv2d,
    pub pool: Pool,
}

/// [`ConvAffine`] fused on the host, else `plain`.
pub fn conv_affine(
    x: Tensor<4>,
    weight: Tensor<2>,
    bias: Tensor<1>,
    conv: Conv2d,
    pool: Pool,
    plain: impl FnOnce(Tensor<4>, Tensor<2>, Tensor<1>) -> Tensor<4>,
) -> Tensor<4> {
    if !fuses_on_host(&places!(x, weight, bias)) {
        return plain(x, weight, bias);
    }
    let op = ConvAffine { conv, pool };
    call_host(
        op,
        [
            x.into_dispatch(),
            weight.into_dispatch(),
            bias.into_dispatch(),
        ],
    )
}
