//! The CubeCL kernels of the `gpu` feature: each op's forward and backward as element-wise
//! kernels around burn's (cubek's) tuned matmul and reductions, with the same arithmetic and
//! the same analytic backward passes as the host versions in `super::cpu` (each file names
//! the host functions its kernels mirror), and its `Kernel<Cube>`. Tested against the plain
//! tensor versions and the host kernels on Mesa's software Vulkan driver (`tests/it/gpu.rs`).

pub(crate) mod affine;
pub(crate) mod arun_seq;
pub(crate) mod controller;
pub(crate) mod dann;
pub(crate) mod gamma;
pub(crate) mod sequence;
pub(crate) mod tanh;
pub(crate) mod update;

use burn::backend::ops::FloatTensorOps;
use burn::backend::{Cube, TensorMetadata};
use burn::tensor::{DType, FloatDType, Shape, Slice};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

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

/// A kernel argument viewing `t`'s buffer.
pub(super) fn buf(t: &CubeTensor) -> BufferArg {
    t.clone().into_buffer_arg()
}

/// `a · b` by burn's matmul, laid out in rows.
pub(super) fn matmul(a: CubeTensor, b: CubeTensor) -> CubeTensor {
    rows(Cube::float_matmul(a, b))
}

/// `aᵀ`.
pub(super) fn t(a: &CubeTensor) -> CubeTensor {
    Cube::float_transpose(a.clone())
}

/// The column sums `(n)` of `g (B, n)`, by burn's parallel reduction.
pub(super) fn column_sums(g: CubeTensor) -> CubeTensor {
    let n = g.shape()[1];
    reshape(Cube::float_sum_dim(g, 0), &[n])
}

/// `x` with `shape`.
pub(super) fn reshape(x: CubeTensor, shape: &[usize]) -> CubeTensor {
    Cube::float_reshape(x, Shape::from(shape.to_vec()))
}

/// The two dimensions of a matrix.
pub(super) fn dims2(t: &CubeTensor) -> [usize; 2] {
    let shape = t.shape();
    [shape[0], shape[1]]
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

/// Zeros of `shape` on `like`'s device.
pub(super) fn zeros(like: &CubeTensor, shape: &[usize]) -> CubeTensor {
    Cube::float_zeros(Shape::from(shape.to_vec()), &like.device, FloatDType::F32)
}

/// Row `i` of `x (m, n)`, as `(1, n)`.
pub(super) fn row(x: &CubeTensor, i: usize) -> CubeTensor {
    let slices = [
        Slice::new(i as isize, Some(i as isize + 1), 1),
        Slice::full(),
    ];
    rows(Cube::float_slice(x.clone(), &slices))
}

/// `a + b`.
pub(super) fn add(a: CubeTensor, b: CubeTensor) -> CubeTensor {
    Cube::float_add(a, b)
}
