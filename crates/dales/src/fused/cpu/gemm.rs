//! Row-major matrix products on host slices: the packing-free kernels of [`super::skinny`]
//! where one dimension is small, the `gemm` crate (rayon-parallel) elsewhere.

use std::mem::MaybeUninit;

use super::skinny::{self, Raw, RawMut};

/// Which implementation a product takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The packing-free kernel where it is expected to be faster, else the `gemm` crate.
    Auto,
    /// Always the `gemm` crate.
    Packed,
    /// The packing-free kernel whenever the operands' layout and the CPU allow it.
    Unpacked,
}

/// A read-only matrix view: data with its row and column strides (in elements), so that a
/// transpose or a column block of a wider matrix is a view, not a copy.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// A contiguous row-major `(rows, cols)` matrix.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "matrix data length");
        View {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// Columns `start..start + cols` of a row-major matrix with `width` columns.
    pub fn columns(data: &'a [f32], rows: usize, width: usize, start: usize, cols: usize) -> Self {
        assert!(start + cols <= width && data.len() == rows * width);
        View {
            data: &data[start.min(data.len())..],
            rows,
            cols,
            row_stride: width,
            col_stride: 1,
        }
    }

    /// The transpose (a view of the same data).
    pub fn t(self) -> Self {
        View {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }
}

/// `dst (m × n, row-major, contiguous) = a (m × k) · b (k × n)`, or `dst += a · b` when
/// `accumulate`.
pub fn matmul(dst: &mut [f32], a: View, b: View, accumulate: bool) {
    assert_eq!(dst.len(), a.rows * b.cols, "destination size");
    matmul_strided(dst, b.cols, a, b, accumulate);
}

/// As [`matmul`], into a destination whose rows are `dst_row_stride` entries apart (e.g. a
/// column block of a wider matrix, starting at `dst[0]`).
pub fn matmul_strided(dst: &mut [f32], dst_row_stride: usize, a: View, b: View, accumulate: bool) {
    let parallel = worth_splitting(&a, &b);
    product(dst, dst_row_stride, a, b, accumulate, parallel, Path::Auto);
}

/// Whether a product is large enough to split across threads: smaller ones run on one thread,
/// where splitting them would cost more than it saves.
fn worth_splitting(a: &View, b: &View) -> bool {
    a.rows * b.cols * a.cols >= 1 << 16
}

/// As [`matmul`], through the implementation `path` (for benchmarks and tests).
pub fn matmul_with(dst: &mut [f32], a: View, b: View, accumulate: bool, path: Path) {
    assert_eq!(dst.len(), a.rows * b.cols, "destination size");
    let parallel = worth_splitting(&a, &b);
    product(dst, b.cols, a, b, accumulate, parallel, path);
}

/// As [`matmul`], on the calling thread only: for products inside a rayon task.
pub fn matmul_serial(dst: &mut [f32], a: View, b: View, accumulate: bool) {
    assert_eq!(dst.len(), a.rows * b.cols, "destination size");
    product(dst, b.cols, a, b, accumulate, false, Path::Auto);
}

/// `dst = a · b` on the calling thread into a buffer not yet initialised, which the product
/// writes entirely: for products inside a rayon task whose result is part of a larger buffer.
pub fn matmul_serial_into(dst: &mut [MaybeUninit<f32>], a: View, b: View) {
    let len = a.rows * b.cols;
    assert_eq!(dst.len(), len, "destination size");
    let out = Out {
        ptr: dst.as_mut_ptr().cast(),
        len,
    };
    // SAFETY: `dst` is an exclusively borrowed buffer of `len` entries, which the product
    // writes and (`accumulate` false) does not read.
    unsafe { product_raw(out, b.cols, a, b, false, false, Path::Auto) }
}

/// `a · b` in a new row-major `(a.rows, b.cols)` buffer. The buffer is not zeroed first: the
/// product writes every entry.
pub fn product_new(a: View, b: View) -> Vec<f32> {
    let len = a.rows * b.cols;
    let mut out = Vec::with_capacity(len);
    let parallel = worth_splitting(&a, &b);
    // SAFETY: `out` has room for `len` entries, which the product writes (and does not read:
    // `accumulate` is false) before they become its length.
    unsafe {
        product_raw(
            Out {
                ptr: out.as_mut_ptr(),
                len,
            },
            b.cols,
            a,
            b,
            false,
            parallel,
            Path::Auto,
        );
        out.set_len(len);
    }
    out
}

fn product(
    dst: &mut [f32],
    dst_row_stride: usize,
    a: View,
    b: View,
    accumulate: bool,
    parallel: bool,
    path: Path,
) {
    let out = Out {
        ptr: dst.as_mut_ptr(),
        len: dst.len(),
    };
    // SAFETY: `dst` is an exclusively borrowed, initialised buffer of `len` entries.
    unsafe { product_raw(out, dst_row_stride, a, b, accumulate, parallel, path) }
}

/// A destination buffer of `len` entries, possibly not yet initialised.
struct Out {
    ptr: *mut f32,
    len: usize,
}

/// The product into `dst`, whose rows are `dst_row_stride` entries apart.
///
/// # Safety
/// `dst` is valid for writes of `len` entries, overlaps neither operand, and is initialised
/// when `accumulate` (the product reads it then).
unsafe fn product_raw(
    dst: Out,
    dst_row_stride: usize,
    a: View,
    b: View,
    accumulate: bool,
    parallel: bool,
    path: Path,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions");
    assert!(dst_row_stride >= n, "destination rows overlap");
    a.check();
    b.check();
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        dst.len >= (m - 1) * dst_row_stride + n,
        "destination out of bounds"
    );
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                // SAFETY: row i's n entries are within `len` (asserted above).
                unsafe { std::ptr::write_bytes(dst.ptr.add(i * dst_row_stride), 0, n) };
            }
        }
        return;
    }
    let (ra, rb) = (
        Raw {
            ptr: a.data.as_ptr(),
            rs: a.row_stride,
            cs: a.col_stride,
        },
        Raw {
            ptr: b.data.as_ptr(),
            rs: b.row_stride,
            cs: b.col_stride,
        },
    );
    if let Some(kernel) = skinny::kernel_for(ra, rb)
        && (path == Path::Unpacked || path == Path::Auto && unpacked_wins(kernel, m, k, n))
    {
        let parts = if parallel {
            rayon::current_num_threads()
        } else {
            1
        };
        // Blocks of ROW_BLOCK rows of A and of the result, so that A's block stays in L2 while
        // B streams past it once per block.
        for i0 in (0..m).step_by(ROW_BLOCK) {
            let rows = (m - i0).min(ROW_BLOCK);
            let a_block = Raw {
                ptr: ra.ptr.wrapping_add(i0 * ra.rs),
                ..ra
            };
            let out = RawMut {
                ptr: dst.ptr.wrapping_add(i0 * dst_row_stride),
                rs: dst_row_stride,
            };
            // SAFETY: the CPU has AVX2 and FMA (`kernel_for`); the views and the destination
            // were bounds-checked above, the block is rows i0..i0 + rows of both, and the
            // caller guarantees `dst` overlaps neither operand.
            unsafe { skinny::product(kernel, [rows, k, n], a_block, rb, out, accumulate, parts) };
        }
        return;
    }
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every view was bounds-checked above for its shape and strides, and `dst` holds m
    // rows of n entries, `dst_row_stride` apart, overlapping neither operand (the caller's
    // contract); with `accumulate` false the gemm crate does not read it.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            1,
            dst_row_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Rows of A (and of the result) per call of the packing-free kernels.
const ROW_BLOCK: usize = 128;

/// Whether the packing-free kernel beats the packed GEMM for an `m × k · k × n` product, as
/// measured by `cargo bench -p dales --bench gemm` (docs/benchmarks.md). The dot kernel (the
/// forward `x · Wᵀ`) wins for long dot products, in row blocks of [`ROW_BLOCK`]; short ones
/// (`k < 256`) cost too much in the sums across lanes at their ends. The broadcast kernel wins
/// for the input gradient when the batch is small (at most 128) and the reduction is long: its
/// tiles are 16 columns wide, which wastes lanes on narrow results, and without packing it
/// reads a large A less well than the packed GEMM does.
///
/// On AVX2 CPUs without AVX-512 (an AMD EPYC) the dot kernel won at every batch and the
/// broadcast kernel also won the weight gradients (`k` the batch, at most 128). On AVX-512
/// CPUs (an Intel Xeon) the `gemm` crate's kernels are 16 lanes wide against these 8: there
/// the packed GEMM took every product at batch 256 and above, and every weight gradient; there
/// the broadcast kernel (16 lanes wide there, tiles of 8 × 32) keeps the input gradients with a
/// wide result (`n ≥ 256`) and the small products of a recurrent step (`m ≤ 64`, `k`, `n` <
/// 256: `h·Wᵀ` and `da·W` of a 1 × 100 RNN at batch 32), while the recurrent weight gradient
/// (100 × 896 × 100) goes to the packed GEMM; each measured on the row-sequential step
/// (docs/benchmarks.md).
fn unpacked_wins(kernel: skinny::Kernel, m: usize, k: usize, n: usize) -> bool {
    let small = |v: usize| v <= 128;
    let large = |v: usize| v >= 256;
    let wide = super::simd::has_avx512();
    match kernel {
        // A · Wᵀ: the forward product.
        skinny::Kernel::Dot => large(k) && (!wide || small(m)),
        // A · W (input gradient, batch m) or Aᵀ · B (weight gradient, batch k). Each tile of
        // rows streams all of B past its registers, which pays while B stays in cache: up to
        // 2 MiB (beyond, e.g. a weight gradient summed over tens of thousands of rows, the
        // packed GEMM was several times faster).
        skinny::Kernel::Broadcast => {
            small(m) && large(k) && (!wide || large(n)) && k * n <= 1 << 19
                || !wide && small(k) && large(n)
                || wide && m <= 64 && !large(k) && !large(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], m: usize, k: usize, b: &[f32], n: usize) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    #[test]
    fn products_with_transposes_and_column_blocks() {
        let (m, k, n) = (37, 53, 29);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0)
            .collect();
        let want = naive(&a, m, k, &b, n);
        let close = |got: &[f32]| {
            got.iter()
                .zip(&want)
                .all(|(x, y)| (x - y).abs() <= 1e-4 * (1.0 + y.abs()))
        };

        let mut dst = vec![0.0; m * n];
        matmul(&mut dst, View::new(&a, m, k), View::new(&b, k, n), false);
        assert!(close(&dst));

        // b given as its transpose
        let mut b_t = vec![0.0; n * k];
        for p in 0..k {
            for j in 0..n {
                b_t[j * k + p] = b[p * n + j];
            }
        }
        let mut dst = vec![0.0; m * n];
        matmul(
            &mut dst,
            View::new(&a, m, k),
            View::new(&b_t, n, k).t(),
            false,
        );
        assert!(close(&dst));

        // a as a column block of a wider matrix, accumulating onto a previous result
        let width = k + 4;
        let mut wide = vec![9.0; m * width];
        for i in 0..m {
            wide[i * width + 2..i * width + 2 + k].copy_from_slice(&a[i * k..(i + 1) * k]);
        }
        let mut dst = want.clone();
        matmul(
            &mut dst,
            View::columns(&wide, m, width, 2, k),
            View::new(&b, k, n),
            true,
        );
        assert!(
            dst.iter()
                .zip(&want)
                .all(|(x, y)| (x - 2.0 * y).abs() <= 1e-4 * (1.0 + y.abs()))
        );
    }
}
