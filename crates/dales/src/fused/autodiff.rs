//! The one piece of code that wires every fused op into burn: an op supplies its forward and
//! backward on each backend ([`Kernel`]); this routes a call through burn's `Dispatch`
//! backend to the right backend ([`FusedBackend`]), records it on the autodiff graph when an
//! input needs a gradient ([`record`]), and registers the gradients its backward returns
//! ([`Grad`]).

use std::fmt::Debug;

#[cfg(feature = "gpu")]
use burn::backend::Cube;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, Backend, BackendTensor, Dispatch, DispatchAutodiffContext, DispatchTensor,
    DispatchTensorKind, ExtensionType, NdArray, backend_extension,
};
use burn::tensor::Tensor;

/// A fused op's forward and backward on backend `B`, for its `N` tensor inputs (in the order
/// the op documents). The op value itself holds its non-tensor settings (an activation, ε, a
/// memory budget).
pub(crate) trait Kernel<B: Backend, const N: usize> {
    /// What the backward needs from the forward.
    type Saved: Clone + Send + Debug + 'static;

    /// The output, and with `save` what [`Kernel::backward`] needs.
    fn forward(
        &self,
        inputs: [FloatTensor<B>; N],
        save: bool,
    ) -> (FloatTensor<B>, Option<Self::Saved>);

    /// The gradients of the inputs, from the output's gradient `dy`; an input whose `need` is
    /// false may get `None`.
    fn backward(
        &self,
        saved: Self::Saved,
        dy: FloatTensor<B>,
        need: [bool; N],
    ) -> [Option<FloatTensor<B>>; N];
}

/// With the `gpu` feature, an op's kernels on the CubeCL backend; nothing without it.
#[cfg(feature = "gpu")]
pub(crate) trait GpuKernel<const N: usize>: Kernel<Cube, N> {}
#[cfg(feature = "gpu")]
impl<K: Kernel<Cube, N>, const N: usize> GpuKernel<N> for K {}
/// With the `gpu` feature, an op's kernels on the CubeCL backend; nothing without it.
#[cfg(not(feature = "gpu"))]
pub(crate) trait GpuKernel<const N: usize> {}
#[cfg(not(feature = "gpu"))]
impl<K, const N: usize> GpuKernel<N> for K {}

/// A fused op: a value with kernels on every backend dales runs on.
pub(crate) trait Op<const N: usize>:
    Kernel<NdArray, N> + GpuKernel<N> + Clone + Debug + Send + Sync + 'static
{
}
impl<K, const N: usize> Op<N> for K where
    K: Kernel<NdArray, N> + GpuKernel<N> + Clone + Debug + Send + Sync + 'static
{
}

/// The tensor inputs of one fused call, on any backend.
#[derive(Debug)]
pub(crate) struct Inputs<B: Backend>(Vec<FloatTensor<B>>);

impl<B: Backend> Inputs<B> {
    fn array<const N: usize>(self) -> [FloatTensor<B>; N] {
        let n = self.0.len();
        self.0
            .try_into()
            .unwrap_or_else(|_| panic!("a fused op of {N} inputs was called with {n}"))
    }
}

// What `#[derive(ExtensionType)]` writes for a struct of named tensors, for a list of them.
impl<B: Backend> ExtensionType<B> for Inputs<B> {
    type Target = Inputs<Dispatch>;

    fn map_to_dispatch<F>(self, map_kind: F, autodiff: DispatchAutodiffContext) -> Self::Target
    where
        F: Fn(BackendTensor<B>) -> DispatchTensorKind,
    {
        Inputs(
            self.0
                .into_iter()
                .map(|t| DispatchTensor {
                    kind: map_kind(BackendTensor::Float(t)),
                    autodiff,
                })
                .collect(),
        )
    }

    fn map_from_dispatch<F>(target: Self::Target, unwrap_kind: F) -> Self
    where
        F: Fn(DispatchTensor) -> BackendTensor<B>,
    {
        Inputs(
            target
                .0
                .into_iter()
                .map(|t| unwrap_kind(t).float())
                .collect(),
        )
    }

    fn routing_tensor(target: &Self::Target) -> Option<&DispatchTensor> {
        target.0.first()
    }

    fn routing_float_tensor(target: &Self::Target) -> Option<&DispatchTensor> {
        target.0.first()
    }

    fn autodiff_context(target: &Self::Target) -> DispatchAutodiffContext {
        target
            .0
            .iter()
            .fold(DispatchAutodiffContext::Disabled, |c, t| {
                c.merge(t.autodiff)
            })
    }
}

/// The backends with fused ops: NdArray, the `gpu` feature's CubeCL backend, and autodiff over
/// either.
#[backend_extension(Autodiff, NdArray, Cube: cfg(feature = "gpu"))]
pub(crate) trait FusedBackend: Backend {
    /// Run `op` on `inputs`.
    fn fused<K: Op<N>, const N: usize>(
        #[extension_type] inputs: Inputs<Self>,
        op: K,
    ) -> FloatTensor<Self>;
}

impl FusedBackend for NdArray {
    fn fused<K: Op<N>, const N: usize>(inputs: Inputs<Self>, op: K) -> FloatTensor<Self> {
        Kernel::<NdArray, N>::forward(&op, inputs.array(), false).0
    }
}

impl<C: CheckpointStrategy> FusedBackend for Autodiff<NdArray, C> {
    fn fused<K: Op<N>, const N: usize>(inputs: Inputs<Self>, op: K) -> FloatTensor<Self> {
        record::<NdArray, C, K, N>(op, inputs)
    }
}

#[cfg(feature = "gpu")]
impl FusedBackend for Cube {
    fn fused<K: Op<N>, const N: usize>(inputs: Inputs<Self>, op: K) -> FloatTensor<Self> {
        Kernel::<Cube, N>::forward(&op, inputs.array(), false).0
    }
}

#[cfg(feature = "gpu")]
impl<C: CheckpointStrategy> FusedBackend for Autodiff<Cube, C> {
    fn fused<K: Op<N>, const N: usize>(inputs: Inputs<Self>, op: K) -> FloatTensor<Self> {
        record::<Cube, C, K, N>(op, inputs)
    }
}

/// A fused op with host kernels only: where its inputs live on the GPU, its dispatching
/// function calls its plain version (burn's own ops there), so its call never reaches the GPU
/// backend.
pub(crate) trait HostOp<const N: usize>:
    Kernel<NdArray, N> + Clone + Debug + Send + Sync + 'static
{
}
impl<K, const N: usize> HostOp<N> for K where
    K: Kernel<NdArray, N> + Clone + Debug + Send + Sync + 'static
{
}

/// The backends of [`HostOp`]s (the GPU's only to satisfy the dispatch; see
/// [`call_host`]).
#[backend_extension(Autodiff, NdArray, Cube: cfg(feature = "gpu"))]
pub(crate) trait HostBackend: Backend {
    /// Run `op` on `inputs`.
    fn host_fused<K: HostOp<N>, const N: usize>(
        #[extension_type] inputs: Inputs<Self>,
        op: K,
    ) -> FloatTensor<Self>;
}

impl HostBackend for NdArray {
    fn host_fused<K: HostOp<N>, const N: usize>(inputs: Inputs<Self>, op: K) -> FloatTensor<Self> {
        Kernel::<NdArray, N>::forward(&op, inputs.array(), false).0
    }
}

impl<C: CheckpointStrategy> HostBackend for Autodiff<NdArray, C> {
    fn host_fused<K: HostOp<N>, const N: usize>(inputs: Inputs<Self>, op: K) -> FloatTensor<Self> {
        record::<NdArray, C, K, N>(op, inputs)
    }
}

#[cfg(feature = "gpu")]
const HOST_ONLY: &str = "a host-only fused op was called on GPU tensors: its dispatching \
                         function must call the plain version there";

#[cfg(feature = "gpu")]
impl HostBackend for Cube {
    fn host_fused<K: HostOp<N>, const N: usize>(_: Inputs<Self>, _: K) -> FloatTensor<Self> {
        unreachable!("{HOST_ONLY}")
    }
}

#[cfg(feature = "gpu")]
impl<C: CheckpointStrategy> HostBackend for Autodiff<Cube, C> {
    fn host_fused<K: HostOp<N>, const N: usize>(_: Inputs<Self>, _: K) -> FloatTensor<Self> {
        unreachable!("{HOST_ONLY}")
    }
}

/// Run `op` on autodiff inputs: tracked (its forward saves what the backward needs, and the
/// call becomes a node of the graph) when an input needs a gradient, untracked otherwise.
fn record<B, C, K, const N: usize>(
    op: K,
    inputs: Inputs<Autodiff<B, C>>,
) -> FloatTensor<Autodiff<B, C>>
where
    B: Backend,
    C: CheckpointStrategy,
    K: Kernel<B, N> + Clone + Debug + Send + 'static,
{
    let inputs = inputs.array::<N>();
    let nodes = inputs.each_ref().map(|t| t.node());
    let inner = inputs.map(|t| t.into_primitive());
    match Grad(op.clone())
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (y, saved) = op.forward(inner, true);
            prep.finish(saved.expect("a forward asked to save returns its state"), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(op.forward(inner, false).0),
    }
}

/// An op's node on the autodiff graph: its backward registers the gradient of every input
/// that needs one.
#[derive(Debug)]
struct Grad<K>(K);

impl<B, K, const N: usize> Backward<B, N> for Grad<K>
where
    B: Backend,
    K: Kernel<B, N> + Debug + Send + 'static,
{
    type State = K::Saved;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let nodes = ops.parents.map(|n| n.map(|n| n.id));
        let dy = grads.consume::<B>(&ops.node);
        let values = self.0.backward(ops.state, dy, nodes.map(|n| n.is_some()));
        for (node, g) in nodes.into_iter().zip(values) {
            if let (Some(id), Some(g)) = (node, g) {
                grads.register::<B>(id, g);
            }
        }
    }
}

/// Call `op` on tensors already turned into dispatch primitives, and return its output as a
/// tensor of rank `D`.
pub(crate) fn call<K: Op<N>, const N: usize, const D: usize>(
    op: K,
    inputs: [FloatTensor<Dispatch>; N],
) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedBackend>::fused(Inputs(inputs.into()), op))
}

/// As [`call`], for a [`HostOp`] on host tensors.
pub(crate) fn call_host<K: HostOp<N>, const N: usize, const D: usize>(
    op: K,
    inputs: [FloatTensor<Dispatch>; N],
) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as HostBackend>::host_fused(
        Inputs(inputs.into()),
        op,
    ))
}
