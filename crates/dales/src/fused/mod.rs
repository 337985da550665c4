//! Fused operations with analytic backward passes, wired into burn's autodiff through its
//! backend-extension traits.
//!
//! On the CPU (burn's NdArray backend, f32) a DANN layer's forward is two matrix products and
//! one element-wise pass, and its backward four products and two passes, on host slices with a
//! rayon-parallel GEMM ([`dann`]); a dense layer's affine map is one product forward and two
//! backward ([`dense`]); the SGD update is one pass per parameter ([`update`]); the gamma
//! activation is one pass forward and one backward, in f32 or f64 ([`gamma`]). Everywhere else
//! (the `gpu` feature's wgpu backend, f64 outside gamma, or with [`set_enabled`]`(false)`),
//! layers run their plain tensor version, which stays the tested reference: `tests/fused.rs`
//! and `tests/gamma.rs` compare the two, forward and every gradient.
#![allow(deprecated)] // burn-ndarray is deprecated in burn 0.22; it is the CPU backend dales measured fastest.

pub mod arun_seq;
pub mod controller;
pub mod dann;
pub mod dense;
pub mod gamma;
pub mod gemm;
pub mod math;
pub mod update;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
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

/// Whether `tensors` can take the fused CPU path: all f32 on the NdArray backend, and fusing on.
pub fn applies<const D: usize>(tensors: &[&Tensor<D>]) -> bool {
    enabled()
        && tensors
            .iter()
            .all(|t| t.dtype() == DType::F32 && on_ndarray(t))
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

/// Backends with a fused DANN layer.
#[backend_extension(Autodiff, NdArray)]
pub trait DannKernels: Backend {
    /// The DANN layer's output `z (B, ne)`.
    fn dann_layer(#[extension_type] p: DannInputs<Self>) -> FloatTensor<Self>;
}

/// The DANN layer `z = g ⊙ (Wex x − Wei Wix x) / ((Wei ⊙ e^α) Wix x + ε) + b` as one fused op
/// (spec A1.2). Only for tensors where [`applies`] holds; the layer checks.
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

/// Backends with a fused affine map.
#[backend_extension(Autodiff, NdArray)]
pub trait AffineKernels: Backend {
    /// `x Wᵀ + b (B, n)`.
    fn affine(#[extension_type] p: AffineInputs<Self>) -> FloatTensor<Self>;
}

/// `x Wᵀ + b` as one fused op. Only for tensors where [`applies`] holds; the layer checks.
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
        let nodes = [p.x.node(), p.weight.node(), p.bias.node()];
        let inner = AffineInputs::<NdArray> {
            x: p.x.primitive().clone(),
            weight: p.weight.primitive().clone(),
            bias: p.bias.primitive().clone(),
        };
        match AffineBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = affine_host(&inner);
                prep.finish((inner.x, inner.weight), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(affine_host(&inner)),
        }
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

/// Backends with a fused gamma activation.
#[backend_extension(Autodiff, NdArray)]
pub trait GammaKernels: Backend {
    /// `γ(x; n, s) (B, H)`.
    fn gamma(#[extension_type] p: GammaInputs<Self>) -> FloatTensor<Self>;
}

/// `γ(x; n, s)` (spec C1) as one fused op with an analytic backward. Only for tensors where
/// [`applies_float`] holds and `n > 0`; [`crate::nn::gamma::gamma`] checks and floors `n`.
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
        let nodes = [p.x.node(), p.n.node(), p.s.node()];
        let inner = GammaInputs::<NdArray> {
            x: p.x.primitive().clone(),
            n: p.n.primitive().clone(),
            s: p.s.primitive().clone(),
        };
        match GammaBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = gamma_forward(&inner);
                prep.finish((inner.x, inner.n, inner.s), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(gamma_forward(&inner)),
        }
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
        let nodes = [
            p.x.node(),
            p.wex.node(),
            p.wix.node(),
            p.wei.node(),
            p.alpha.node(),
            p.gain.node(),
            p.bias.node(),
        ];
        let inner = DannInputs::<NdArray> {
            x: p.x.primitive().clone(),
            wex: p.wex.primitive().clone(),
            wix: p.wix.primitive().clone(),
            wei: p.wei.primitive().clone(),
            alpha: p.alpha.primitive().clone(),
            gain: p.gain.primitive().clone(),
            bias: p.bias.primitive().clone(),
        };
        match DannBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (z, saved) = forward_host(&inner);
                prep.finish((inner.x, inner.wex, inner.wix, Arc::new(saved)), z)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward_host(&inner).0),
        }
    }
}

/// The input of the fused tanh.
#[derive(ExtensionType)]
pub struct TanhInput<B: Backend> {
    pub x: FloatTensor<B>,
}

/// Backends with a fused tanh.
#[backend_extension(Autodiff, NdArray)]
pub trait TanhKernels: Backend {
    /// `tanh(x)`.
    fn tanh(#[extension_type] p: TanhInput<Self>) -> FloatTensor<Self>;
}

/// `tanh(x)` in the tensor's own precision, with the backward `dy·(1 − y²)` from the saved
/// output. burn 0.22's NdArray tanh evaluates every f32 entry through f64 `tanh`, which made
/// it the largest cost of an ARUN step (its controller has `B·H·K` units). Only where
/// [`applies_float`] holds.
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
        match TanhBackward
            .prepare::<C>([p.x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = tanh_host(&x);
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(tanh_host(&x)),
        }
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

/// Backends with a fused ARUN controller step.
#[backend_extension(Autodiff, NdArray)]
pub trait ControllerKernels: Backend {
    /// `g = tanh(a ⊗ u + g_prev W_ggᵀ + b) (R, K)`.
    fn controller_step(#[extension_type] p: ControllerInputs<Self>) -> FloatTensor<Self>;
}

/// One ARUN controller step as one fused op with an analytic backward. Only where
/// [`applies`] holds (f32 on NdArray); the cell checks.
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
        let nodes = [
            p.a.node(),
            p.g_prev.node(),
            p.u.node(),
            p.w_gg.node(),
            p.bias.node(),
        ];
        let inner = ControllerInputs::<NdArray> {
            a: p.a.primitive().clone(),
            g_prev: p.g_prev.primitive().clone(),
            u: p.u.primitive().clone(),
            w_gg: p.w_gg.primitive().clone(),
            bias: p.bias.primitive().clone(),
        };
        match ControllerBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let g = controller_host(&inner);
                prep.finish([inner.a, inner.g_prev, inner.u, inner.w_gg, g.clone()], g)
            }
            OpsKind::UnTracked(prep) => prep.finish(controller_host(&inner)),
        }
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

/// Backends with a fused ARUN sequence.
#[backend_extension(Autodiff, NdArray)]
pub trait ArunSeqKernels: Backend {
    /// The last hidden state `h_T (B, H)`.
    fn arun_sequence(#[extension_type] p: ArunSeqInputs<Self>) -> FloatTensor<Self>;
}

/// A whole ARUN sequence from the zero state as one fused op with backpropagation through
/// time; returns `h_T (B, H)`. Only where [`applies`] holds (f32 on NdArray) and without an
/// external drive; [`crate::nn::arun::ArunCell::last_hidden`] checks.
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

/// The host inputs of the fused sequence: dimensions, `xs` and the parameters.
fn arun_seq_host(p: &ArunSeqInputs<NdArray>) -> (arun_seq::Dims, Vec<f32>, arun_seq::OwnedParams) {
    let x = p.xs.shape();
    let dims = arun_seq::Dims {
        b: x[0],
        t: x[1],
        d: x[2],
        h: p.w.shape()[0],
        k: p.w_gg.shape()[0],
    };
    let params = arun_seq::OwnedParams {
        u: f32_vec(&p.u),
        w: f32_vec(&p.w),
        bias: sum_vecs(&p.u_bias, &p.w_bias),
        u_ag: f32_vec(&p.u_ag),
        w_gg: f32_vec(&p.w_gg),
        c: sum_vecs(&p.u_ag_bias, &p.w_gg_bias),
        w_gn: f32_vec(&p.w_gn),
        b_gn: f32_vec(&p.b_gn)[0],
        w_gs: f32_vec(&p.w_gs),
        b_gs: f32_vec(&p.b_gs)[0],
    };
    (dims, f32_vec(&p.xs), params)
}

impl ArunSeqKernels for NdArray {
    fn arun_sequence(p: ArunSeqInputs<Self>) -> FloatTensor<Self> {
        let (dims, xs, params) = arun_seq_host(&p);
        let (h, _) = arun_seq::forward(dims, &xs, &params.view(), false);
        host(h, &[dims.b, dims.h])
    }
}

/// The forward's tape, inputs and parameters.
#[derive(Debug, Clone)]
struct ArunSeqSaved {
    tape: arun_seq::Tape,
    xs: Vec<f32>,
    params: arun_seq::OwnedParams,
}

#[derive(Debug)]
struct ArunSeqBackward;

impl Backward<NdArray, 13> for ArunSeqBackward {
    type State = Arc<ArunSeqSaved>;

    fn backward(self, ops: Ops<Self::State, 13>, grads: &mut Gradients, _: &mut Checkpointer) {
        let nodes = ops.parents.map(|n| n.map(|n| n.id));
        let dh = grads.consume::<NdArray>(&ops.node);
        let saved = Arc::try_unwrap(ops.state).unwrap_or_else(|shared| (*shared).clone());
        let dims = saved.tape.dims();
        let p = saved.params.view();
        let g = with_f32(&dh, |dh| {
            arun_seq::backward(saved.tape, &saved.xs, &p, dh, nodes[0].is_some())
        });
        let (h, k) = (dims.h, dims.k);
        let values: [(Vec<f32>, Vec<usize>); 13] = [
            (g.x.unwrap_or_default(), vec![dims.b, dims.t, dims.d]),
            (g.u, vec![h, dims.d]),
            (g.bias.clone(), vec![h]),
            (g.w, vec![h, h]),
            (g.bias, vec![h]),
            (g.u_ag, vec![k, 1]),
            (g.c.clone(), vec![k]),
            (g.w_gg, vec![k, k]),
            (g.c, vec![k]),
            (g.w_gn, vec![1, k]),
            (vec![g.b_gn], vec![1]),
            (g.w_gs, vec![1, k]),
            (vec![g.b_gs], vec![1]),
        ];
        for (node, (v, shape)) in nodes.into_iter().zip(values) {
            if let Some(id) = node {
                grads.register::<NdArray>(id, host(v, &shape));
            }
        }
    }
}

impl<C: CheckpointStrategy> ArunSeqKernels for Autodiff<NdArray, C> {
    fn arun_sequence(p: ArunSeqInputs<Self>) -> FloatTensor<Self> {
        let nodes = [
            p.xs.node(),
            p.u.node(),
            p.u_bias.node(),
            p.w.node(),
            p.w_bias.node(),
            p.u_ag.node(),
            p.u_ag_bias.node(),
            p.w_gg.node(),
            p.w_gg_bias.node(),
            p.w_gn.node(),
            p.b_gn.node(),
            p.w_gs.node(),
            p.b_gs.node(),
        ];
        let inner = ArunSeqInputs::<NdArray> {
            xs: p.xs.primitive().clone(),
            u: p.u.primitive().clone(),
            u_bias: p.u_bias.primitive().clone(),
            w: p.w.primitive().clone(),
            w_bias: p.w_bias.primitive().clone(),
            u_ag: p.u_ag.primitive().clone(),
            u_ag_bias: p.u_ag_bias.primitive().clone(),
            w_gg: p.w_gg.primitive().clone(),
            w_gg_bias: p.w_gg_bias.primitive().clone(),
            w_gn: p.w_gn.primitive().clone(),
            b_gn: p.b_gn.primitive().clone(),
            w_gs: p.w_gs.primitive().clone(),
            b_gs: p.b_gs.primitive().clone(),
        };
        let (dims, xs, params) = arun_seq_host(&inner);
        match ArunSeqBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (h, tape) = arun_seq::forward(dims, &xs, &params.view(), true);
                let tape = tape.expect("a tape when saving");
                let saved = ArunSeqSaved { tape, xs, params };
                prep.finish(Arc::new(saved), host(h, &[dims.b, dims.h]))
            }
            OpsKind::UnTracked(prep) => {
                let (h, _) = arun_seq::forward(dims, &xs, &params.view(), false);
                prep.finish(host(h, &[dims.b, dims.h]))
            }
        }
    }
}
