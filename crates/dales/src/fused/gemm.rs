//! Row-major matrix products on host slices through the `gemm` crate (rayon-parallel).

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
    // Small products run on one thread: splitting them costs more than it saves.
    let parallel = a.rows * b.cols * a.cols >= 1 << 16;
    product(dst, dst_row_stride, a, b, accumulate, parallel);
}

/// As [`matmul`], on the calling thread only: for products inside a rayon task.
pub fn matmul_serial(dst: &mut [f32], a: View, b: View, accumulate: bool) {
    assert_eq!(dst.len(), a.rows * b.cols, "destination size");
    product(dst, b.cols, a, b, accumulate, false);
}

fn product(
    dst: &mut [f32],
    dst_row_stride: usize,
    a: View,
    b: View,
    accumulate: bool,
    parallel: bool,
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
        dst.len() >= (m - 1) * dst_row_stride + n,
        "destination out of bounds"
    );
    if k == 0 {
        if !accumulate {
            for row in dst.chunks_mut(dst_row_stride).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every view was bounds-checked above for its shape and strides, and `dst` is an
    // exclusively borrowed buffer holding m rows of n entries, `dst_row_stride` apart.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
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
