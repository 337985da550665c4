//! Fused operations with analytic backward passes, wired into burn's autodiff through its
//! backend-extension traits.
//!
//! On the CPU (burn's NdArray backend, f32) a DANN layer's forward is two matrix products and
//! one element-wise pass, and its backward four products and two passes, on host slices with a
//! rayon-parallel GEMM ([`dann`]); a dense layer's affine map is one product forward and two
//! backward ([`dense`]); the SGD update is one pass per parameter ([`update`]); the gamma
//! activation is one pass forward and one backward, in f32 or f64 ([`gamma`]); a whole RNN or
//! ARUN sequence is one forward and one backward through time ([`sequence`], [`arun_seq`]).
//! On the `gpu` feature's wgpu backend the DANN layer, the affine map, tanh, the ARUN
//! controller step, the gamma activation, the SGD update and whole RNN and ARUN sequences run
//! as CubeCL kernels with the same analytic backward passes ([`cube`], [`cube_seq`], f32).
//! Everywhere else (the other ops on the GPU, f64 outside gamma, or with
//! [`set_enabled`]`(false)`), layers run their plain tensor version, which stays the tested
//! reference: `tests/fused.rs`, `tests/gamma.rs`, `tests/fused_sequence.rs` and, on the GPU,
//! `tests/gpu.rs` compare the two, forward and every gradient.
#![allow(deprecated)] // burn-ndarray is deprecated in burn 0.22; it is the CPU backend dales measured fastest.

pub mod arun_seq;
pub mod controller;
#[cfg(feature = "gpu")]
mod cube;
#[cfg(feature = "gpu")]
mod cube_seq;
pub mod dann;
pub mod dense;
pub mod gamma;
pub mod gemm;
pub mod math;
pub mod sequence;
pub(crate) mod skinny;
pub mod update;

/// Run `f` on one of rayon's worker threads and wait for it.
///
/// The fused ops split their products and passes across rayon's threads. Called from a thread
/// outside the pool, each split hands its work to the pool and sleeps until it is done (a
/// context switch or two, tens of microseconds, for each of the few dozen products of a
/// training step); called from a worker, the split costs a push onto a queue. A training step
/// therefore runs inside this.
pub fn on_workers<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::ndarray::NdArrayTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, Backend, Dispatch, DispatchDevice, ExtensionType, NdArray, TensorMetadata,
    backend_extension,
};
use burn::tensor::{DType, Element, Tensor, TensorData};

pub use math::tanh_f32;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turn the fused CPU paths on or off for the whole process (on by default); off, every layer
/// runs its plain tensor version. For benchmarks and comparisons.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::SeqCst);
}

/// Whether the fused CPU paths are on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::SeqCst)
}

/// Whether `t` lives on the NdArray (CPU) backend.
fn on_ndarray<const D: usize>(t: &Tensor<D>) -> bool {
    matches!(t.device().inner().as_dispatch(), DispatchDevice::NdArray(_))
}

/// Whether `t` lives on the `gpu` feature's CubeCL (wgpu) backend.
fn on_cube<const D: usize>(t: &Tensor<D>) -> bool {
    #[cfg(feature = "gpu")]
    return matches!(t.device().inner().as_dispatch(), DispatchDevice::Cube(_));
    #[cfg(not(feature = "gpu"))]
    {
        let _ = t;
        false
    }
}

/// Whether `tensors` can take the fused CPU path: all f32 on the NdArray backend, and fusing on.
pub fn applies<const D: usize>(tensors: &[&Tensor<D>]) -> bool {
    enabled()
        && tensors
            .iter()
            .all(|t| t.dtype() == DType::F32 && on_ndarray(t))
}

/// Whether `tensors` can take a fused op that also has CubeCL kernels ([`dann_layer`],
/// [`affine`], [`tanh`], [`controller_step`], [`gamma`]): [`applies`], or all f32 on the
/// `gpu` feature's backend with fusing on.
pub fn applies_with_gpu<const D: usize>(tensors: &[&Tensor<D>]) -> bool {
    applies(tensors) || applies_on_gpu(tensors)
}

/// Whether `tensors` are all f32 on the `gpu` feature's backend, with fusing on.
fn applies_on_gpu<const D: usize>(tensors: &[&Tensor<D>]) -> bool {
    enabled()
        && tensors
            .iter()
            .all(|t| t.dtype() == DType::F32 && on_cube(t))
}

/// Whether a whole sequence can run as one fused op ([`arun_sequence`], [`rnn_sequence`]):
/// `xs` and `params` f32 on one backend with the op (the CPU's NdArray or the `gpu`
/// feature's), fusing on, and no drive at any step.
pub fn sequence_applies(
    xs: &Tensor<3>,
    params: &[&Tensor<2>],
    drive: &dyn Fn(usize) -> Option<Tensor<2>>,
) -> bool {
    let placed =
        (applies(&[xs]) && applies(params)) || (applies_on_gpu(&[xs]) && applies_on_gpu(params));
    placed && (0..xs.dims()[1]).all(|t| drive(t).is_none())
}

/// Record a fused op on burn's autodiff graph: `tracked` runs it and returns its output and the
/// state its backward pass needs, `untracked` runs it when no input needs a gradient.
fn record<B: Backend, C: CheckpointStrategy, O: Backward<B, N>, const N: usize>(
    op: O,
    nodes: [NodeGuard; N],
    tracked: impl FnOnce() -> (FloatTensor<B>, O::State),
    untracked: impl FnOnce() -> FloatTensor<B>,
) -> FloatTensor<Autodiff<B, C>> {
    match op.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (output, state) = tracked();
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(untracked()),
    }
}

/// The inputs of a DANN layer.
#[derive(ExtensionType)]
pub struct DannInputs<B: Backend> {
    pub x: FloatTensor<B>,
    pub wex: FloatTensor<B>,
    pub wix: FloatTensor<B>,
    pub wei: FloatTensor<B>,
    pub alpha: FloatTensor<B>,
    pub gain: FloatTensor<B>,
    pub bias: FloatTensor<B>,
}

impl<B: Backend, C: CheckpointStrategy> DannInputs<Autodiff<B, C>> {
    /// The inputs' autodiff nodes (in the order of the struct) and their inner tensors.
    fn split(&self) -> ([NodeGuard; 7], DannInputs<B>) {
        let nodes = [
            self.x.node(),
            self.wex.node(),
            self.wix.node(),
            self.wei.node(),
            self.alpha.node(),
            self.gain.node(),
            self.bias.node(),
        ];
        let inner = DannInputs::<B> {
            x: self.x.primitive().clone(),
            wex: self.wex.primitive().clone(),
            wix: self.wix.primitive().clone(),
            wei: self.wei.primitive().clone(),
            alpha: self.alpha.primitive().clone(),
            gain: self.gain.primitive().clone(),
            bias: self.bias.primitive().clone(),
        };
        (nodes, inner)
    }
}

/// Backends with a fused DANN layer.
#[backend_extension(Autodiff, NdArray, Cube: cfg(feature = "gpu"))]
pub trait DannKernels: Backend {
    /// The DANN layer's output `z (B, ne)`.
    fn dann_layer(#[extension_type] p: DannInputs<Self>) -> FloatTensor<Self>;
}

/// The DANN layer `z = g ⊙ (Wex x − Wei Wix x) / ((Wei ⊙ e^α) Wix x + ε) + b` as one fused op
/// (spec A1.2). Only for tensors where [`applies_with_gpu`] holds; the layer checks.
pub fn dann_layer(
    x: Tensor<2>,
    [wex, wix, wei]: [Tensor<2>; 3],
    [alpha, gain, bias]: [Tensor<1>; 3],
) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as DannKernels>::dann_layer(DannInputs {
        x: x.into_dispatch(),
        wex: wex.into_dispatch(),
        wix: wix.into_dispatch(),
        wei: wei.into_dispatch(),
        alpha: alpha.into_dispatch(),
        gain: gain.into_dispatch(),
        bias: bias.into_dispatch(),
    }))
}

/// Borrow an f32 NdArray tensor as a row-major slice (copying only if its layout is not
/// contiguous, e.g. a broadcast gradient).
fn with_f32<R>(t: &NdArrayTensor, f: impl FnOnce(&[f32]) -> R) -> R {
    match t {
        NdArrayTensor::F32(storage) => {
            let view = storage.view();
            let standard = view.as_standard_layout();
            f(standard
                .as_slice()
                .expect("a standard-layout array is contiguous"))
        }
        other => panic!("expected an f32 tensor, got {:?}", other.dtype()),
    }
}

/// Borrow an f64 NdArray tensor as a row-major slice (copying only if not contiguous).
fn with_f64<R>(t: &NdArrayTensor, f: impl FnOnce(&[f64]) -> R) -> R {
    match t {
        NdArrayTensor::F64(storage) => {
            let view = storage.view();
            let standard = view.as_standard_layout();
            f(standard
                .as_slice()
                .expect("a standard-layout array is contiguous"))
        }
        other => panic!("expected an f64 tensor, got {:?}", other.dtype()),
    }
}

/// Whether `tensors` can take a fused CPU path that runs in f32 and f64: all of one of the
/// two dtypes on the NdArray backend, and fusing on.
pub fn applies_float<const D: usize>(tensors: &[&Tensor<D>]) -> bool {
    let Some(first) = tensors.first() else {
        return false;
    };
    let dtype = first.dtype();
    enabled()
        && matches!(dtype, DType::F32 | DType::F64)
        && tensors.iter().all(|t| t.dtype() == dtype && on_ndarray(t))
}

/// An NdArray tensor owning `values` (row-major, `shape`), f32 or f64.
fn host<E: Element>(values: Vec<E>, shape: &[usize]) -> NdArrayTensor {
    NdArrayTensor::from_data(TensorData::new(values, shape.to_vec()))
}

fn dims_of(p: &DannInputs<NdArray>) -> dann::Dims {
    let x = p.x.shape();
    let wix = p.wix.shape();
    dann::Dims {
        b: x[0],
        d: x[1],
        ne: p.wex.shape()[0],
        ni: wix[0],
    }
}

/// Run the host forward on NdArray inputs.
fn forward_host(p: &DannInputs<NdArray>) -> (NdArrayTensor, dann::Saved) {
    let dims = dims_of(p);
    let (z, saved) = with_f32(&p.x, |x| {
        with_f32(&p.wex, |wex| {
            with_f32(&p.wix, |wix| {
                with_f32(&p.wei, |wei| {
                    with_f32(&p.alpha, |alpha| {
                        with_f32(&p.gain, |gain| {
                            with_f32(&p.bias, |bias| {
                                dann::forward(
                                    dims,
                                    x,
                                    dann::Params {
                                        wex,
                                        wix,
                                        wei,
                                        alpha,
                                        gain,
                                        bias,
                                    },
                                )
                            })
                        })
                    })
                })
            })
        })
    });
    (host(z, &[dims.b, dims.ne]), saved)
}

/// The inputs of an affine map.
#[derive(ExtensionType)]
pub struct AffineInputs<B: Backend> {
    pub x: FloatTensor<B>,
    pub weight: FloatTensor<B>,
    pub bias: FloatTensor<B>,
}

impl<B: Backend, C: CheckpointStrategy> AffineInputs<Autodiff<B, C>> {
    /// The inputs' autodiff nodes (`x`, `W`, `b`) and their inner tensors.
    fn split(&self) -> ([NodeGuard; 3], AffineInputs<B>) {
        let nodes = [self.x.node(), self.weight.node(), self.bias.node()];
        let inner = AffineInputs::<B> {
            x: self.x.primitive().clone(),
            weight: self.weight.primitive().clone(),
            bias: self.bias.primitive().clone(),
        };
        (nodes, inner)
    }
}

/// Backends with a fused affine map.
#[backend_extension(Autodiff, NdArray, Cube: cfg(feature = "gpu"))]
pub trait AffineKernels: Backend {
    /// `x Wᵀ + b (B, n)`.
    fn affine(#[extension_type] p: AffineInputs<Self>) -> FloatTensor<Self>;
}

/// `x Wᵀ + b` as one fused op. Only for tensors where [`applies_with_gpu`] holds; the layer
/// checks.
pub fn affine(x: Tensor<2>, weight: Tensor<2>, bias: Tensor<1>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as AffineKernels>::affine(AffineInputs {
        x: x.into_dispatch(),
        weight: weight.into_dispatch(),
        bias: bias.into_dispatch(),
    }))
}

fn affine_host(p: &AffineInputs<NdArray>) -> NdArrayTensor {
    let [b, d] = [p.x.shape()[0], p.x.shape()[1]];
    let n = p.weight.shape()[0];
    let y = with_f32(&p.x, |x| {
        with_f32(&p.weight, |w| {
            with_f32(&p.bias, |bias| dense::forward(x, w, bias, b, d))
        })
    });
    host(y, &[b, n])
}

impl AffineKernels for NdArray {
    fn affine(p: AffineInputs<Self>) -> FloatTensor<Self> {
        affine_host(&p)
    }
}

#[derive(Debug)]
struct AffineBackward;

impl Backward<NdArray, 3> for AffineBackward {
    /// The input `x` and the weight `W`.
    type State = (NdArrayTensor, NdArrayTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, w_node, b_node] = ops.parents.map(|n| n.map(|n| n.id));
        let dy = grads.consume::<NdArray>(&ops.node);
        let (x, w) = ops.state;
        let [b, d] = [x.shape()[0], x.shape()[1]];
        let n = w.shape()[0];
        let g = with_f32(&x, |x| {
            with_f32(&w, |w| {
                with_f32(&dy, |dy| {
                    dense::backward(x, w, dy, [b, d, n], x_node.is_some())
                })
            })
        });
        if let (Some(id), Some(dx)) = (x_node, g.x) {
            grads.register::<NdArray>(id, host(dx, &[b, d]));
        }
        if let Some(id) = w_node {
            grads.register::<NdArray>(id, host(g.weight, &[n, d]));
        }
        if let Some(id) = b_node {
            grads.register::<NdArray>(id, host(g.bias, &[n]));
        }
    }
}

impl<C: CheckpointStrategy> AffineKernels for Autodiff<NdArray, C> {
    fn affine(p: AffineInputs<Self>) -> FloatTensor<Self> {
        let (nodes, inner) = p.split();
        record::<_, C, _, 3>(
            AffineBackward,
            nodes,
            || {
                let state = (inner.x.clone(), inner.weight.clone());
                (affine_host(&inner), state)
            },
            || affine_host(&inner),
        )
    }
}

/// The inputs of the gamma activation: `x (B, H)` and its shape parameters `n`, `s`, each
/// `(1, 1)`, `(1, H)` or `(B, H)`.
#[derive(ExtensionType)]
pub struct GammaInputs<B: Backend> {
    pub x: FloatTensor<B>,
    pub n: FloatTensor<B>,
    pub s: FloatTensor<B>,
}

impl<B: Backend, C: CheckpointStrategy> GammaInputs<Autodiff<B, C>> {
    /// The inputs' autodiff nodes (`x`, `n`, `s`) and their inner tensors.
    fn split(&self) -> ([NodeGuard; 3], GammaInputs<B>) {
        let nodes = [self.x.node(), self.n.node(), self.s.node()];
        let inner = GammaInputs::<B> {
            x: self.x.primitive().clone(),
            n: self.n.primitive().clone(),
            s: self.s.primitive().clone(),
        };
        (nodes, inner)
    }
}

/// Backends with a fused gamma activation.
#[backend_extension(Autodiff, NdArray, Cube: cfg(feature = "gpu"))]
pub trait GammaKernels: Backend {
    /// `γ(x; n, s) (B, H)`.
    fn gamma(#[extension_type] p: GammaInputs<Self>) -> FloatTensor<Self>;
}

/// `γ(x; n, s)` (spec C1) as one fused op with an analytic backward. Only for tensors where
/// [`applies_float`] or [`applies_with_gpu`] holds and `n > 0`; [`crate::nn::gamma::gamma`]
/// checks and floors `n`.
pub fn gamma(x: Tensor<2>, n: Tensor<2>, s: Tensor<2>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as GammaKernels>::gamma(GammaInputs {
        x: x.into_dispatch(),
        n: n.into_dispatch(),
        s: s.into_dispatch(),
    }))
}

fn dims2(t: &NdArrayTensor) -> [usize; 2] {
    let shape = t.shape();
    [shape[0], shape[1]]
}

/// Run a host gamma kernel on NdArray inputs in their own float type.
fn gamma_host<R>(
    p: &GammaInputs<NdArray>,
    f32_kernel: impl FnOnce(gamma::Batch<f32>) -> R,
    f64_kernel: impl FnOnce(gamma::Batch<f64>) -> R,
) -> R {
    let [b, h] = dims2(&p.x);
    let shape = |t: &NdArrayTensor| {
        gamma::Broadcast::of(dims2(t), [b, h]).unwrap_or_else(|| {
            panic!(
                "gamma: a shape parameter of shape {:?} for x ({b}, {h})",
                t.shape()
            )
        })
    };
    let (n_shape, s_shape) = (shape(&p.n), shape(&p.s));
    macro_rules! run {
        ($with:ident, $kernel:expr) => {
            $with(&p.x, |x| {
                $with(&p.n, |n| {
                    $with(&p.s, |s| {
                        $kernel(gamma::Batch {
                            x,
                            n,
                            s,
                            b,
                            h,
                            n_shape,
                            s_shape,
                        })
                    })
                })
            })
        };
    }
    match &p.x {
        NdArrayTensor::F64(_) => run!(with_f64, f64_kernel),
        _ => run!(with_f32, f32_kernel),
    }
}

fn gamma_forward(p: &GammaInputs<NdArray>) -> NdArrayTensor {
    let shape = p.x.shape().to_vec();
    gamma_host(
        p,
        |b| host(gamma::forward(b), &shape),
        |b| host(gamma::forward(b), &shape),
    )
}

impl GammaKernels for NdArray {
    fn gamma(p: GammaInputs<Self>) -> FloatTensor<Self> {
        gamma_forward(&p)
    }
}

#[derive(Debug)]
struct GammaBackward;

impl Backward<NdArray, 3> for GammaBackward {
    /// The inputs.
    type State = (NdArrayTensor, NdArrayTensor, NdArrayTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, n_node, s_node] = ops.parents.map(|n| n.map(|n| n.id));
        let dy = grads.consume::<NdArray>(&ops.node);
        let (x, n, s) = ops.state;
        let shapes = [x.shape().to_vec(), n.shape().to_vec(), s.shape().to_vec()];
        let p = GammaInputs::<NdArray> { x, n, s };
        let [dx, dn, ds] = gamma_host(
            &p,
            |b| {
                let (dx, dn, ds) = with_f32(&dy, |dy| gamma::backward(b, dy));
                [
                    host(dx, &shapes[0]),
                    host(dn, &shapes[1]),
                    host(ds, &shapes[2]),
                ]
            },
            |b| {
                let (dx, dn, ds) = with_f64(&dy, |dy| gamma::backward(b, dy));
                [
                    host(dx, &shapes[0]),
                    host(dn, &shapes[1]),
                    host(ds, &shapes[2]),
                ]
            },
        );
        for (node, g) in [(x_node, dx), (n_node, dn), (s_node, ds)] {
            if let Some(id) = node {
                grads.register::<NdArray>(id, g);
            }
        }
    }
}

impl<C: CheckpointStrategy> GammaKernels for Autodiff<NdArray, C> {
    fn gamma(p: GammaInputs<Self>) -> FloatTensor<Self> {
        let (nodes, inner) = p.split();
        record::<_, C, _, 3>(
            GammaBackward,
            nodes,
            || {
                let state = (inner.x.clone(), inner.n.clone(), inner.s.clone());
                (gamma_forward(&inner), state)
            },
            || gamma_forward(&inner),
        )
    }
}

impl DannKernels for NdArray {
    fn dann_layer(p: DannInputs<Self>) -> FloatTensor<Self> {
        forward_host(&p).0
    }
}

#[derive(Debug)]
struct DannBackward;

impl Backward<NdArray, 7> for DannBackward {
    /// The input `x`, `Wex`, `Wix` and the forward pass's intermediates.
    type State = (
        NdArrayTensor,
        NdArrayTensor,
        NdArrayTensor,
        Arc<dann::Saved>,
    );

    fn backward(self, ops: Ops<Self::State, 7>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, wex, wix, wei, alpha, gain, bias] = ops.parents.map(|n| n.map(|n| n.id));
        let dz = grads.consume::<NdArray>(&ops.node);
        let (x, wex_t, wix_t, saved) = ops.state;
        let [b, d] = [x.shape()[0], x.shape()[1]];
        let g = with_f32(&x, |x| {
            with_f32(&wex_t, |we| {
                with_f32(&wix_t, |wi| {
                    with_f32(&dz, |dz| {
                        dann::backward(&saved, x, [we, wi], dz, x_node.is_some())
                    })
                })
            })
        });
        let (ne, ni) = (g.bias.len(), g.alpha.len());
        let mut register = |node: Option<NodeId>, v, shape: &[usize]| {
            if let Some(id) = node {
                grads.register::<NdArray>(id, host(v, shape));
            }
        };
        if let Some(dx) = g.x {
            register(x_node, dx, &[b, d]);
        }
        register(wex, g.wex, &[ne, d]);
        register(wix, g.wix, &[ni, d]);
        register(wei, g.wei, &[ne, ni]);
        register(alpha, g.alpha, &[ni]);
        register(gain, g.gain, &[ne]);
        register(bias, g.bias, &[ne]);
    }
}

impl<C: CheckpointStrategy> DannKernels for Autodiff<NdArray, C> {
    fn dann_layer(p: DannInputs<Self>) -> FloatTensor<Self> {
        let (nodes, inner) = p.split();
        record::<_, C, _, 7>(
            DannBackward,
            nodes,
            || {
                let (z, saved) = forward_host(&inner);
                let (x, wex, wix) = (inner.x.clone(), inner.wex.clone(), inner.wix.clone());
                (z, (x, wex, wix, Arc::new(saved)))
            },
            || forward_host(&inner).0,
        )
    }
}

/// The input of the fused tanh.
#[derive(ExtensionType)]
pub struct TanhInput<B: Backend> {
    pub x: FloatTensor<B>,
}

/// Backends with a fused tanh.
#[backend_extension(Autodiff, NdArray, Cube: cfg(feature = "gpu"))]
pub trait TanhKernels: Backend {
    /// `tanh(x)`.
    fn tanh(#[extension_type] p: TanhInput<Self>) -> FloatTensor<Self>;
}

/// `tanh(x)` in the tensor's own precision, with the backward `dy·(1 − y²)` from the saved
/// output. burn 0.22's NdArray tanh evaluates every f32 entry through f64 `tanh`, which made
/// it the largest cost of an ARUN step (its controller has `B·H·K` units). Only where
/// [`applies_float`] or [`applies_with_gpu`] holds.
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as TanhKernels>::tanh(TanhInput {
        x: x.into_dispatch(),
    }))
}

fn tanh_host(x: &NdArrayTensor) -> NdArrayTensor {
    let shape = x.shape().to_vec();
    match x.dtype() {
        DType::F64 => with_f64(x, |v| host(v.iter().map(|a| a.tanh()).collect(), &shape)),
        _ => with_f32(x, |v| {
            host(v.iter().map(|&a| tanh_f32(a)).collect(), &shape)
        }),
    }
}

impl TanhKernels for NdArray {
    fn tanh(p: TanhInput<Self>) -> FloatTensor<Self> {
        tanh_host(&p.x)
    }
}

#[derive(Debug)]
struct TanhBackward;

impl Backward<NdArray, 1> for TanhBackward {
    /// The output `y = tanh(x)`.
    type State = NdArrayTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents.map(|n| n.map(|n| n.id));
        let dy = grads.consume::<NdArray>(&ops.node);
        let y = ops.state;
        let shape = y.shape().to_vec();
        let dx = match y.dtype() {
            DType::F64 => with_f64(&y, |y| {
                with_f64(&dy, |dy| {
                    let v: Vec<f64> = y.iter().zip(dy).map(|(y, g)| g * (1.0 - y * y)).collect();
                    host(v, &shape)
                })
            }),
            _ => with_f32(&y, |y| {
                with_f32(&dy, |dy| {
                    let v: Vec<f32> = y.iter().zip(dy).map(|(y, g)| g * (1.0 - y * y)).collect();
                    host(v, &shape)
                })
            }),
        };
        if let Some(id) = node {
            grads.register::<NdArray>(id, dx);
        }
    }
}

impl<C: CheckpointStrategy> TanhKernels for Autodiff<NdArray, C> {
    fn tanh(p: TanhInput<Self>) -> FloatTensor<Self> {
        let x = p.x.primitive().clone();
        record::<_, C, _, 1>(
            TanhBackward,
            [p.x.node()],
            || {
                let y = tanh_host(&x);
                (y.clone(), y)
            },
            || tanh_host(&x),
        )
    }
}

/// The inputs of one ARUN controller step ([`controller`]): `a (R, 1)`, `g_prev (R, K)`,
/// `u = U_ag (K, 1)`, `w_gg (K, K)`, `bias (1, K)`.
#[derive(ExtensionType)]
pub struct ControllerInputs<B: Backend> {
    pub a: FloatTensor<B>,
    pub g_prev: FloatTensor<B>,
    pub u: FloatTensor<B>,
    pub w_gg: FloatTensor<B>,
    pub bias: FloatTensor<B>,
}

impl<B: Backend, C: CheckpointStrategy> ControllerInputs<Autodiff<B, C>> {
    /// The inputs' autodiff nodes (in the order of the struct) and their inner tensors.
    fn split(&self) -> ([NodeGuard; 5], ControllerInputs<B>) {
        let nodes = [
            self.a.node(),
            self.g_prev.node(),
            self.u.node(),
            self.w_gg.node(),
            self.bias.node(),
        ];
        let inner = ControllerInputs::<B> {
            a: self.a.primitive().clone(),
            g_prev: self.g_prev.primitive().clone(),
            u: self.u.primitive().clone(),
            w_gg: self.w_gg.primitive().clone(),
            bias: self.bias.primitive().clone(),
        };
        (nodes, inner)
    }
}

/// Backends with a fused ARUN controller step.
#[backend_extension(Autodiff, NdArray, Cube: cfg(feature = "gpu"))]
pub trait ControllerKernels: Backend {
    /// `g = tanh(a ⊗ u + g_prev W_ggᵀ + b) (R, K)`.
    fn controller_step(#[extension_type] p: ControllerInputs<Self>) -> FloatTensor<Self>;
}

/// One ARUN controller step as one fused op with an analytic backward. Only where
/// [`applies_with_gpu`] holds; the cell checks.
pub fn controller_step(
    a: Tensor<2>,
    g_prev: Tensor<2>,
    u: Tensor<2>,
    w_gg: Tensor<2>,
    bias: Tensor<2>,
) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as ControllerKernels>::controller_step(
        ControllerInputs {
            a: a.into_dispatch(),
            g_prev: g_prev.into_dispatch(),
            u: u.into_dispatch(),
            w_gg: w_gg.into_dispatch(),
            bias: bias.into_dispatch(),
        },
    ))
}

fn controller_dims(p: &ControllerInputs<NdArray>) -> controller::Dims {
    let [r, k] = dims2(&p.g_prev);
    controller::Dims { r, k }
}

fn controller_host(p: &ControllerInputs<NdArray>) -> NdArrayTensor {
    let dims = controller_dims(p);
    let g = with_f32(&p.a, |a| {
        with_f32(&p.g_prev, |gp| {
            with_f32(&p.u, |u| {
                with_f32(&p.w_gg, |w| {
                    with_f32(&p.bias, |b| controller::forward(a, gp, u, w, b, dims))
                })
            })
        })
    });
    host(g, &[dims.r, dims.k])
}

impl ControllerKernels for NdArray {
    fn controller_step(p: ControllerInputs<Self>) -> FloatTensor<Self> {
        controller_host(&p)
    }
}

#[derive(Debug)]
struct ControllerBackward;

impl Backward<NdArray, 5> for ControllerBackward {
    /// `a`, `g_prev`, `u`, `W_gg` and the output `g`.
    type State = [NdArrayTensor; 5];

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        let nodes = ops.parents.map(|n| n.map(|n| n.id));
        let dg = grads.consume::<NdArray>(&ops.node);
        let [a, g_prev, u, w_gg, g] = ops.state;
        let [r, k] = dims2(&g_prev);
        let dims = controller::Dims { r, k };
        let d = with_f32(&a, |a| {
            with_f32(&g_prev, |gp| {
                with_f32(&u, |u| {
                    with_f32(&w_gg, |w| {
                        with_f32(&g, |g| {
                            with_f32(&dg, |dg| controller::backward(a, gp, u, w, g, dg, dims))
                        })
                    })
                })
            })
        });
        let values = [
            (d.a, vec![r, 1]),
            (d.g_prev, vec![r, k]),
            (d.u, vec![k, 1]),
            (d.w_gg, vec![k, k]),
            (d.bias, vec![1, k]),
        ];
        for (node, (v, shape)) in nodes.into_iter().zip(values) {
            if let Some(id) = node {
                grads.register::<NdArray>(id, host(v, &shape));
            }
        }
    }
}

impl<C: CheckpointStrategy> ControllerKernels for Autodiff<NdArray, C> {
    fn controller_step(p: ControllerInputs<Self>) -> FloatTensor<Self> {
        let (nodes, inner) = p.split();
        record::<_, C, _, 5>(
            ControllerBackward,
            nodes,
            || {
                let g = controller_host(&inner);
                let state = [&inner.a, &inner.g_prev, &inner.u, &inner.w_gg, &g].map(|t| t.clone());
                (g, state)
            },
            || controller_host(&inner),
        )
    }
}

/// The inputs of a whole ARUN sequence ([`arun_seq`]): `xs (B, T, d)` and the cell's twelve
/// parameters, shaped as in [`crate::nn::arun::ArunCell`].
#[derive(ExtensionType)]
pub struct ArunSeqInputs<B: Backend> {
    pub xs: FloatTensor<B>,
    pub u: FloatTensor<B>,
    pub u_bias: FloatTensor<B>,
    pub w: FloatTensor<B>,
    pub w_bias: FloatTensor<B>,
    pub u_ag: FloatTensor<B>,
    pub u_ag_bias: FloatTensor<B>,
    pub w_gg: FloatTensor<B>,
    pub w_gg_bias: FloatTensor<B>,
    pub w_gn: FloatTensor<B>,
    pub b_gn: FloatTensor<B>,
    pub w_gs: FloatTensor<B>,
    pub b_gs: FloatTensor<B>,
}

impl<B: Backend, C: CheckpointStrategy> ArunSeqInputs<Autodiff<B, C>> {
    /// The inputs' autodiff nodes (in the order of the struct) and their inner tensors.
    fn split(&self) -> ([NodeGuard; 13], ArunSeqInputs<B>) {
        let nodes = [
            self.xs.node(),
            self.u.node(),
            self.u_bias.node(),
            self.w.node(),
            self.w_bias.node(),
            self.u_ag.node(),
            self.u_ag_bias.node(),
            self.w_gg.node(),
            self.w_gg_bias.node(),
            self.w_gn.node(),
            self.b_gn.node(),
            self.w_gs.node(),
            self.b_gs.node(),
        ];
        let inner = ArunSeqInputs::<B> {
            xs: self.xs.primitive().clone(),
            u: self.u.primitive().clone(),
            u_bias: self.u_bias.primitive().clone(),
            w: self.w.primitive().clone(),
            w_bias: self.w_bias.primitive().clone(),
            u_ag: self.u_ag.primitive().clone(),
            u_ag_bias: self.u_ag_bias.primitive().clone(),
            w_gg: self.w_gg.primitive().clone(),
            w_gg_bias: self.w_gg_bias.primitive().clone(),
            w_gn: self.w_gn.primitive().clone(),
            b_gn: self.b_gn.primitive().clone(),
            w_gs: self.w_gs.primitive().clone(),
            b_gs: self.b_gs.primitive().clone(),
        };
        (nodes, inner)
    }
}

/// Backends with a fused ARUN sequence.
#[backend_extension(Autodiff, NdArray, Cube: cfg(feature = "gpu"))]
pub trait ArunSeqKernels: Backend {
    /// The last hidden state `h_T (B, H)`.
    fn arun_sequence(#[extension_type] p: ArunSeqInputs<Self>) -> FloatTensor<Self>;
}

/// A whole ARUN sequence from the zero state as one fused op with backpropagation through
/// time; returns `h_T (B, H)`. Only where [`sequence_applies`] holds (f32 on the CPU or the
/// GPU, no external drive); [`crate::nn::arun::ArunCell::last_hidden`] checks.
pub fn arun_sequence(xs: Tensor<3>, cell: &crate::nn::arun::ArunCell) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as ArunSeqKernels>::arun_sequence(ArunSeqInputs {
        xs: xs.into_dispatch(),
        u: cell.u.val().into_dispatch(),
        u_bias: cell.u_bias.val().into_dispatch(),
        w: cell.w.val().into_dispatch(),
        w_bias: cell.w_bias.val().into_dispatch(),
        u_ag: cell.u_ag.val().into_dispatch(),
        u_ag_bias: cell.u_ag_bias.val().into_dispatch(),
        w_gg: cell.w_gg.val().into_dispatch(),
        w_gg_bias: cell.w_gg_bias.val().into_dispatch(),
        w_gn: cell.w_gn.val().into_dispatch(),
        b_gn: cell.b_gn.val().into_dispatch(),
        w_gs: cell.w_gs.val().into_dispatch(),
        b_gs: cell.b_gs.val().into_dispatch(),
    }))
}

fn f32_vec(t: &NdArrayTensor) -> Vec<f32> {
    with_f32(t, |v| v.to_vec())
}

fn sum_vecs(a: &NdArrayTensor, b: &NdArrayTensor) -> Vec<f32> {
    f32_vec(a)
        .iter()
        .zip(f32_vec(b))
        .map(|(x, y)| x + y)
        .collect()
}

/// The sizes, host inputs and recurrence parameters of a fused sequence.
fn main_host(
    xs: &NdArrayTensor,
    [u, u_bias, w, w_bias]: [&NdArrayTensor; 4],
) -> (sequence::Dims, Vec<f32>, sequence::Main) {
    let x = xs.shape();
    let dims = sequence::Dims {
        b: x[0],
        t: x[1],
        d: x[2],
        h: w.shape()[0],
    };
    let main = sequence::Main {
        u: f32_vec(u),
        w: f32_vec(w),
        bias: sum_vecs(u_bias, w_bias),
    };
    (dims, f32_vec(xs), main)
}

/// What a fused sequence's backward needs: the tape, the inputs, the parameters and the cell.
#[derive(Debug, Clone)]
struct SeqSaved<C> {
    tape: sequence::Tape,
    xs: Vec<f32>,
    main: sequence::Main,
    cell: C,
}

/// Run a fused sequence forward; with `save`, also what its backward needs.
fn sequence_forward<C: sequence::Cell>(
    dims: sequence::Dims,
    xs: Vec<f32>,
    main: sequence::Main,
    mut cell: C,
    save: bool,
) -> (NdArrayTensor, Option<SeqSaved<C>>) {
    let (h, tape) = sequence::forward(dims, &xs, &main, &mut cell, save);
    let saved = tape.map(|tape| SeqSaved {
        tape,
        xs,
        main,
        cell,
    });
    (host(h, &[dims.b, dims.h]), saved)
}

/// The backward of a fused sequence: the recurrence's gradients, then the cell's.
fn sequence_backward<C: sequence::Cell + Clone>(
    saved: Arc<SeqSaved<C>>,
    dh: &NdArrayTensor,
    want_x: bool,
) -> (sequence::Dims, sequence::MainGrads, C) {
    let SeqSaved {
        tape,
        xs,
        main,
        mut cell,
    } = Arc::try_unwrap(saved).unwrap_or_else(|shared| (*shared).clone());
    let dims = tape.dims();
    let g = with_f32(dh, |dh| {
        sequence::backward(tape, &xs, &main, &mut cell, dh, want_x)
    });
    (dims, g, cell)
}

/// Register `values` (with their shapes) as the gradients of `nodes`.
fn register_all<const N: usize>(
    grads: &mut Gradients,
    nodes: [Option<NodeId>; N],
    values: [(Vec<f32>, Vec<usize>); N],
) {
    for (node, (v, shape)) in nodes.into_iter().zip(values) {
        if let Some(id) = node {
            grads.register::<NdArray>(id, host(v, &shape));
        }
    }
}

fn arun_controller(p: &ArunSeqInputs<NdArray>, rows: usize, steps: usize) -> arun_seq::Controller {
    let params = arun_seq::OwnedParams {
        u_ag: f32_vec(&p.u_ag),
        w_gg: f32_vec(&p.w_gg),
        c: sum_vecs(&p.u_ag_bias, &p.w_gg_bias),
        w_gn: f32_vec(&p.w_gn),
        b_gn: f32_vec(&p.b_gn)[0],
        w_gs: f32_vec(&p.w_gs),
        b_gs: f32_vec(&p.b_gs)[0],
    };
    arun_seq::Controller::new(params, rows, steps)
}

fn arun_seq_run(
    p: &ArunSeqInputs<NdArray>,
    save: bool,
) -> (NdArrayTensor, Option<SeqSaved<arun_seq::Controller>>) {
    let (dims, xs, main) = main_host(&p.xs, [&p.u, &p.u_bias, &p.w, &p.w_bias]);
    let cell = arun_controller(p, dims.rows(), dims.t);
    sequence_forward(dims, xs, main, cell, save)
}

impl ArunSeqKernels for NdArray {
    fn arun_sequence(p: ArunSeqInputs<Self>) -> FloatTensor<Self> {
        arun_seq_run(&p, false).0
    }
}

#[derive(Debug)]
struct ArunSeqBackward;

impl Backward<NdArray, 13> for ArunSeqBackward {
    type State = Arc<SeqSaved<arun_seq::Controller>>;

    fn backward(self, ops: Ops<Self::State, 13>, grads: &mut Gradients, _: &mut Checkpointer) {
        let nodes = ops.parents.map(|n| n.map(|n| n.id));
        let dh = grads.consume::<NdArray>(&ops.node);
        let (dims, g, cell) = sequence_backward(ops.state, &dh, nodes[0].is_some());
        let c = cell.grads();
        let (h, k) = (dims.h, c.u_ag.len());
        let values: [(Vec<f32>, Vec<usize>); 13] = [
            (g.x.unwrap_or_default(), vec![dims.b, dims.t, dims.d]),
            (g.u, vec![h, dims.d]),
            (g.bias.clone(), vec![h]),
            (g.w, vec![h, h]),
            (g.bias, vec![h]),
            (c.u_ag, vec![k, 1]),
            (c.c.clone(), vec![k]),
            (c.w_gg, vec![k, k]),
            (c.c, vec![k]),
            (c.w_gn, vec![1, k]),
            (vec![c.b_gn], vec![1]),
            (c.w_gs, vec![1, k]),
            (vec![c.b_gs], vec![1]),
        ];
        register_all(grads, nodes, values);
    }
}

impl<C: CheckpointStrategy> ArunSeqKernels for Autodiff<NdArray, C> {
    fn arun_sequence(p: ArunSeqInputs<Self>) -> FloatTensor<Self> {
        let (nodes, inner) = p.split();
        record::<_, C, _, 13>(
            ArunSeqBackward,
            nodes,
            || {
                let (h, saved) = arun_seq_run(&inner, true);
                (h, Arc::new(saved.expect("saved when tracked")))
            },
            || arun_seq_run(&inner, false).0,
        )
    }
}

/// The activation of a fused RNN sequence (a plain value, not a tensor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RnnAct {
    Relu,
    Tanh,
    Softplus,
    /// A learned gamma with the `n`, `s` inputs.
    Gamma,
}

/// The inputs of a whole RNN sequence: `xs (B, T, d)`, the cell's parameters, and for
/// [`RnnAct::Gamma`] its shape `n`, `s` (`(1, 1)` or `(1, H)`; ignored otherwise).
#[derive(ExtensionType)]
pub struct RnnSeqInputs<B: Backend> {
    pub xs: FloatTensor<B>,
    pub u: FloatTensor<B>,
    pub u_bias: FloatTensor<B>,
    pub v: FloatTensor<B>,
    pub v_bias: FloatTensor<B>,
    pub n: FloatTensor<B>,
    pub s: FloatTensor<B>,
    pub act: RnnAct,
}

impl<B: Backend, C: CheckpointStrategy> RnnSeqInputs<Autodiff<B, C>> {
    /// The inputs' autodiff nodes (in the order of the struct) and their inner tensors.
    fn split(&self) -> ([NodeGuard; 7], RnnSeqInputs<B>) {
        let nodes = [
            self.xs.node(),
            self.u.node(),
            self.u_bias.node(),
            self.v.node(),
            self.v_bias.node(),
            self.n.node(),
            self.s.node(),
        ];
        let inner = RnnSeqInputs::<B> {
            xs: self.xs.primitive().clone(),
            u: self.u.primitive().clone(),
            u_bias: self.u_bias.primitive().clone(),
            v: self.v.primitive().clone(),
            v_bias: self.v_bias.primitive().clone(),
            n: self.n.primitive().clone(),
            s: self.s.primitive().clone(),
            act: self.act,
        };
        (nodes, inner)
    }
}

/// Backends with a fused RNN sequence.
#[backend_extension(Autodiff, NdArray, Cube: cfg(feature = "gpu"))]
pub trait RnnSeqKernels: Backend {
    /// The last hidden state `h_T (B, H)`.
    fn rnn_sequence(#[extension_type] p: RnnSeqInputs<Self>) -> FloatTensor<Self>;
}

/// A whole RNN sequence from `h_0 = 0` as one fused op with backpropagation through time;
/// returns `h_T (B, H)`. Only where [`sequence_applies`] holds;
/// [`crate::nn::rnn::RnnCell::last_hidden`] checks. `n`, `s` are the gamma's shape (any
/// `(1, 1)` tensors for the fixed activations).
pub fn rnn_sequence(
    xs: Tensor<3>,
    [u, v]: [Tensor<2>; 2],
    [u_bias, v_bias]: [Tensor<1>; 2],
    [n, s]: [Tensor<2>; 2],
    act: RnnAct,
) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as RnnSeqKernels>::rnn_sequence(RnnSeqInputs {
        xs: xs.into_dispatch(),
        u: u.into_dispatch(),
        u_bias: u_bias.into_dispatch(),
        v: v.into_dispatch(),
        v_bias: v_bias.into_dispatch(),
        n: n.into_dispatch(),
        s: s.into_dispatch(),
        act,
    }))
}

fn rnn_seq_run(
    p: &RnnSeqInputs<NdArray>,
    save: bool,
) -> (NdArrayTensor, Option<SeqSaved<sequence::Pointwise>>) {
    let (dims, xs, main) = main_host(&p.xs, [&p.u, &p.u_bias, &p.v, &p.v_bias]);
    let act = match p.act {
        RnnAct::Relu => sequence::Activation::Relu,
        RnnAct::Tanh => sequence::Activation::Tanh,
        RnnAct::Softplus => sequence::Activation::Softplus,
        RnnAct::Gamma => sequence::Activation::Gamma {
            n: f32_vec(&p.n),
            s: f32_vec(&p.s),
        },
    };
    sequence_forward(dims, xs, main, sequence::Pointwise::new(act, dims.h), save)
}

impl RnnSeqKernels for NdArray {
    fn rnn_sequence(p: RnnSeqInputs<Self>) -> FloatTensor<Self> {
        rnn_seq_run(&p, false).0
    }
}

#[derive(Debug)]
struct RnnSeqBackward;

impl Backward<NdArray, 7> for RnnSeqBackward {
    /// The saved sequence and the shapes of `n` and `s`.
    type State = (Arc<SeqSaved<sequence::Pointwise>>, Vec<usize>);

    fn backward(self, ops: Ops<Self::State, 7>, grads: &mut Gradients, _: &mut Checkpointer) {
        let nodes = ops.parents.map(|n| n.map(|n| n.id));
        let dh = grads.consume::<NdArray>(&ops.node);
        let (saved, ns_shape) = ops.state;
        let (dims, g, cell) = sequence_backward(saved, &dh, nodes[0].is_some());
        let (dn, ds) = cell.gamma_grads();
        let h = dims.h;
        let values: [(Vec<f32>, Vec<usize>); 7] = [
            (g.x.unwrap_or_default(), vec![dims.b, dims.t, dims.d]),
            (g.u, vec![h, dims.d]),
            (g.bias.clone(), vec![h]),
            (g.w, vec![h, h]),
            (g.bias, vec![h]),
            (dn, ns_shape.clone()),
            (ds, ns_shape),
        ];
        register_all(grads, nodes, values);
    }
}

impl<C: CheckpointStrategy> RnnSeqKernels for Autodiff<NdArray, C> {
    fn rnn_sequence(p: RnnSeqInputs<Self>) -> FloatTensor<Self> {
        let (nodes, inner) = p.split();
        let ns_shape = inner.n.shape().to_vec();
        record::<_, C, _, 7>(
            RnnSeqBackward,
            nodes,
            || {
                let (h, saved) = rnn_seq_run(&inner, true);
                let saved = Arc::new(saved.expect("saved when tracked"));
                (h, (saved, ns_shape))
            },
            || rnn_seq_run(&inner, false).0,
        )
    }
}
