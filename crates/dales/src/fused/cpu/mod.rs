//! The host kernels: each op's forward and backward on row-major slices (rayon-parallel, on
//! the products of [`gemm`]), and its `Kernel<NdArray>` that reads them from burn's NdArray
//! tensors and writes the results back.

pub(crate) mod affine;
pub(crate) mod arun_seq;
pub(crate) mod controller;
pub(crate) mod conv;
pub(crate) mod conv_dann;
pub(crate) mod dann;
pub(crate) mod gamma;
pub mod gemm;
pub(crate) mod pool;
pub(crate) mod sequence;
pub(crate) mod simd;
pub(crate) mod skinny;
pub(crate) mod tanh;
pub(crate) mod update;

use std::borrow::Cow;
use std::mem::MaybeUninit;

use burn::backend::TensorMetadata;
use burn::backend::ndarray::NdArrayTensor;
use burn::tensor::{Element, TensorData};
use rayon::prelude::*;

/// The float types the host kernels read from NdArray tensors.
pub(crate) trait HostFloat: Element {
    /// The entries of `t`, row-major: borrowed when its layout is, else copied.
    ///
    /// # Panics
    /// If `t` holds another dtype (the ops check their inputs' dtypes before they run).
    fn entries(t: &NdArrayTensor) -> Cow<'_, [Self]>;
}

macro_rules! host_float {
    ($t:ty, $variant:ident) => {
        impl HostFloat for $t {
            fn entries(t: &NdArrayTensor) -> Cow<'_, [$t]> {
                let NdArrayTensor::$variant(storage) = t else {
                    panic!(
                        "a host kernel in {} got a {:?} tensor",
                        stringify!($t),
                        t.dtype()
                    );
                };
                let view = storage.view();
                match view.to_slice() {
                    Some(slice) => Cow::Borrowed(slice),
                    None => Cow::Owned(view.iter().copied().collect()),
                }
            }
        }
    };
}
host_float!(f32, F32);
host_float!(f64, F64);

/// The f32 entries of `t` (see [`HostFloat::entries`]).
pub(crate) fn f32s(t: &NdArrayTensor) -> Cow<'_, [f32]> {
    f32::entries(t)
}

/// An NdArray tensor owning `values` (row-major, `shape`).
pub(crate) fn host<E: Element>(values: Vec<E>, shape: &[usize]) -> NdArrayTensor {
    NdArrayTensor::from_data(TensorData::new(values, shape.to_vec()))
}

/// The two dimensions of a matrix.
pub(crate) fn dims2(t: &NdArrayTensor) -> [usize; 2] {
    let shape = t.shape();
    [shape[0], shape[1]]
}

/// `N` row-major buffers of `rows × cols` entries written block by block by `fill(first row,
/// the block's uninitialised entries in each buffer)`, which must write every entry, and what
/// `fill` returned for each block, in block order; the blocks of `block` rows run on rayon's
/// threads, and nothing is zeroed first (for large buffers that a pass overwrites, zeroing
/// costs as much as the pass).
pub(crate) fn written_rows<const N: usize, R: Send>(
    [rows, cols]: [usize; 2],
    block: usize,
    fill: impl Fn(usize, [&mut [MaybeUninit<f32>]; N]) -> R + Sync,
) -> ([Vec<f32>; N], Vec<R>) {
    let mut out: [Vec<f32>; N] = std::array::from_fn(|_| Vec::with_capacity(rows * cols));
    let chunk = (block * cols).max(1);
    let mut blocks: Vec<Vec<&mut [MaybeUninit<f32>]>> = Vec::new();
    for v in out.iter_mut() {
        for (k, c) in v.spare_capacity_mut()[..rows * cols]
            .chunks_mut(chunk)
            .enumerate()
        {
            if blocks.len() <= k {
                blocks.push(Vec::with_capacity(N));
            }
            blocks[k].push(c);
        }
    }
    let results = blocks
        .into_par_iter()
        .enumerate()
        .map(|(k, parts)| {
            let parts: [&mut [MaybeUninit<f32>]; N] = parts
                .try_into()
                .unwrap_or_else(|_| unreachable!("one part per buffer"));
            fill(k * block, parts)
        })
        .collect();
    for v in out.iter_mut() {
        // SAFETY: `fill` wrote every entry of every block, which together cover the first
        // rows × cols entries.
        unsafe { v.set_len(rows * cols) };
    }
    (out, results)
}
