//! Matrix products with one small dimension, computed straight from the operands without
//! packing them first.
//!
//! At small batch sizes every product of a training step has the batch as one of its three
//! dimensions: the forward `x · Wᵀ` and the input gradient `dy · W` have it as `m`, the
//! weight gradient `dyᵀ · x` as `k`. A general GEMM copies ("packs") both operands into
//! cache-shaped panels first; when one dimension is 32, packing the weight matrix costs about
//! as much as the arithmetic. The two kernels here read the operands where they lie:
//!
//! - **broadcast** (`B` has unit column stride): a tile of 6 rows × 16 columns of the result
//!   lives in registers while `k` runs; each step loads 16 entries of a row of `B` and
//!   broadcasts 6 entries of `A` (any strides: this covers `A` and `Aᵀ`).
//! - **dot** (`A` has unit column stride, `B` unit row stride, i.e. `B = Wᵀ` with `W`
//!   row-major): a tile of 4 × 3 dot products along `k`, 8 lanes at a time, summed across
//!   lanes at the end.
//!
//! Both need AVX2 and FMA; [`super::gemm`] calls them only on such CPUs and only for the
//! shapes where they beat the packed GEMM, and falls back to the `gemm` crate otherwise. The
//! tests compare them against a plain triple loop on every edge case of the tiling.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// A matrix operand as a raw pointer with row and column strides, in elements.
#[derive(Clone, Copy)]
pub(crate) struct Raw {
    pub ptr: *const f32,
    pub rs: usize,
    pub cs: usize,
}

/// The destination: `m` rows `rs` apart, unit column stride.
#[derive(Clone, Copy)]
pub(crate) struct RawMut {
    pub ptr: *mut f32,
    pub rs: usize,
}

// SAFETY: the pointers are only dereferenced inside `product`, whose callers hand each thread
// a disjoint block of the destination and read-only operands that outlive the call.
unsafe impl Send for Raw {}
unsafe impl Sync for Raw {}
unsafe impl Send for RawMut {}
unsafe impl Sync for RawMut {}

/// Which kernel a product takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    Broadcast,
    Dot,
}

/// Rows of the result per broadcast tile.
const BR: usize = 6;
/// Columns of the result per broadcast tile (two vectors of 8).
const BC: usize = 16;
/// Rows of the result per broadcast tile on AVX-512 CPUs.
const BR512: usize = 8;
/// Columns of the result per broadcast tile on AVX-512 CPUs (two vectors of 16).
const BC512: usize = 32;
/// Rows of `A` per dot tile.
const DR: usize = 4;
/// Columns of the result (rows of `W`) per dot tile.
const DC: usize = 3;

/// The kernel for these operands, if one applies: `b` with unit column stride takes the
/// broadcast kernel, `a` with unit column stride and `b` with unit row stride the dot kernel.
/// `None` when the CPU lacks AVX2/FMA or the operands have neither layout. (Whether a kernel
/// is worth taking is `gemm::unpacked_wins`'s decision.)
pub(crate) fn kernel_for(a: Raw, b: Raw) -> Option<Kernel> {
    if !super::simd::has_avx2() {
        return None;
    }
    if b.cs == 1 {
        Some(Kernel::Broadcast)
    } else if a.cs == 1 && b.rs == 1 {
        Some(Kernel::Dot)
    } else {
        None
    }
}

/// `dst (m × n) = a (m × k) · b (k × n)`, or `dst += a · b` when `accumulate`, with the
/// columns of `dst` split into `parts` blocks that run on rayon's threads.
///
/// # Safety
/// The CPU has AVX2 and FMA; every index `i·rs + j·cs` with `i`, `j` in range is inside its
/// operand's allocation; `dst` is valid for writes at `i·rs + j` and overlaps neither operand.
pub(crate) unsafe fn product(
    kernel: Kernel,
    [m, k, n]: [usize; 3],
    a: Raw,
    b: Raw,
    dst: RawMut,
    accumulate: bool,
    parts: usize,
) {
    let wide = super::simd::has_avx512();
    let step = match kernel {
        Kernel::Broadcast if wide => BC512,
        Kernel::Broadcast => BC,
        Kernel::Dot => DC,
    };
    let tiles = n.div_ceil(step);
    let parts = parts.clamp(1, tiles.max(1));
    let run = move |j0: usize, j1: usize| {
        // Whole structs, not their raw-pointer fields, are captured (those are not `Send`).
        let (a, b, dst) = (a, b, dst);
        let b = Raw {
            ptr: b.ptr.wrapping_add(j0 * b.cs),
            ..b
        };
        let dst = RawMut {
            ptr: dst.ptr.wrapping_add(j0),
            ..dst
        };
        // SAFETY: the caller's contract, restricted to columns j0..j1.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            match kernel {
                Kernel::Broadcast if wide => broadcast512(m, k, j1 - j0, a, b, dst, accumulate),
                Kernel::Broadcast => broadcast(m, k, j1 - j0, a, b, dst, accumulate),
                Kernel::Dot => dot(m, k, j1 - j0, a, b, dst, accumulate),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (a, b, dst, j1, accumulate);
    };
    if parts == 1 {
        run(0, n);
        return;
    }
    let per = tiles.div_ceil(parts) * step;
    rayon::scope(|s| {
        for p in 1..parts {
            let (j0, j1) = ((p * per).min(n), ((p + 1) * per).min(n));
            if j0 < j1 {
                s.spawn(move |_| run(j0, j1));
            }
        }
        run(0, per.min(n));
    });
}

/// The broadcast kernel over the whole `m × n` result.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn broadcast(m: usize, k: usize, n: usize, a: Raw, b: Raw, dst: RawMut, acc: bool) {
    let tile_at = |i0: usize, j0: usize| {
        let (rows, width) = ((m - i0).min(BR), (n - j0).min(BC));
        let mask = tail_mask(width % 8);
        let b_j = b.ptr.wrapping_add(j0);
        let a_i = a.ptr.wrapping_add(i0 * a.rs);
        let d = dst.ptr.wrapping_add(i0 * dst.rs + j0);
        macro_rules! tile {
            ($($r:literal)*) => {
                match (rows, width) {
                    $(
                        ($r, 16) => broadcast_tile::<$r, 2, false>(k, a_i, a, b_j, b.rs, d, dst.rs, acc, mask),
                        ($r, 9..=15) => broadcast_tile::<$r, 2, true>(k, a_i, a, b_j, b.rs, d, dst.rs, acc, mask),
                        ($r, 8) => broadcast_tile::<$r, 1, false>(k, a_i, a, b_j, b.rs, d, dst.rs, acc, mask),
                        ($r, _) => broadcast_tile::<$r, 1, true>(k, a_i, a, b_j, b.rs, d, dst.rs, acc, mask),
                    )*
                    _ => unreachable!("tile rows are 1..=6"),
                }
            };
        }
        // SAFETY: the tile lies inside the caller's ranges.
        unsafe { tile!(1 2 3 4 5 6) };
    };
    for_each_tile([m, k, n], [BR, BC], tile_at);
}

/// Call `tile(i0, j0)` for every `rows × cols` tile of an `m × n` result with reduction `k`, in
/// the order of a broadcast kernel: for a weight gradient (`m > k`, `k` the batch) the result
/// is the large operand, so it is written row block by row block while B (k × n) stays in L2;
/// for an input gradient (`m` the batch) B is the large operand, read once, a column strip at a
/// time, while A (m × k) stays in L2.
#[inline(always)]
fn for_each_tile(
    [m, k, n]: [usize; 3],
    [rows, cols]: [usize; 2],
    mut tile: impl FnMut(usize, usize),
) {
    if m > k {
        for i0 in (0..m).step_by(rows) {
            for j0 in (0..n).step_by(cols) {
                tile(i0, j0);
            }
        }
    } else {
        for j0 in (0..n).step_by(cols) {
            for i0 in (0..m).step_by(rows) {
                tile(i0, j0);
            }
        }
    }
}

/// The broadcast kernel over the whole `m × n` result with 16-lane vectors, in tiles of 8 rows
/// × 32 columns (AVX-512F).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn broadcast512(m: usize, k: usize, n: usize, a: Raw, b: Raw, dst: RawMut, acc: bool) {
    let tile_at = |i0: usize, j0: usize| {
        let (rows, width) = ((m - i0).min(BR512), (n - j0).min(BC512));
        let tail = width % 16;
        let mask: __mmask16 = if tail == 0 { 0xFFFF } else { (1 << tail) - 1 };
        let b_j = b.ptr.wrapping_add(j0);
        let a_i = a.ptr.wrapping_add(i0 * a.rs);
        let d = dst.ptr.wrapping_add(i0 * dst.rs + j0);
        macro_rules! tile {
            ($($r:literal)*) => {
                match (rows, width) {
                    $(
                        ($r, 32) => tile512::<$r, 2, false>(k, a_i, a, b_j, b.rs, d, dst.rs, acc, mask),
                        ($r, 17..=31) => tile512::<$r, 2, true>(k, a_i, a, b_j, b.rs, d, dst.rs, acc, mask),
                        ($r, 16) => tile512::<$r, 1, false>(k, a_i, a, b_j, b.rs, d, dst.rs, acc, mask),
                        ($r, _) => tile512::<$r, 1, true>(k, a_i, a, b_j, b.rs, d, dst.rs, acc, mask),
                    )*
                    _ => unreachable!("tile rows are 1..=8"),
                }
            };
        }
        // SAFETY: the tile lies inside the caller's ranges.
        unsafe { tile!(1 2 3 4 5 6 7 8) };
    };
    for_each_tile([m, k, n], [BR512, BC512], tile_at);
}

/// One `R × 16V` tile of the AVX-512 broadcast kernel; with `MASKED`, the last vector holds
/// only the lanes of `mask`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn tile512<const R: usize, const V: usize, const MASKED: bool>(
    k: usize,
    a: *const f32,
    strides: Raw,
    b: *const f32,
    rs_b: usize,
    d: *mut f32,
    rs_d: usize,
    acc: bool,
    mask: __mmask16,
) {
    let load = |p: *const f32, v: usize| {
        // SAFETY: in range by the caller's contract; masked lanes are not read.
        unsafe {
            if MASKED && v == V - 1 {
                _mm512_maskz_loadu_ps(mask, p)
            } else {
                _mm512_loadu_ps(p)
            }
        }
    };
    let mut c = [[_mm512_setzero_ps(); V]; R];
    for p in 0..k {
        let row = b.wrapping_add(p * rs_b);
        let bv: [__m512; V] = std::array::from_fn(|v| load(row.wrapping_add(16 * v), v));
        let ap = a.wrapping_add(p * strides.cs);
        for (i, ci) in c.iter_mut().enumerate() {
            // SAFETY: A's entry (i, p) is in range.
            let av = _mm512_set1_ps(unsafe { *ap.wrapping_add(i * strides.rs) });
            for v in 0..V {
                ci[v] = _mm512_fmadd_ps(av, bv[v], ci[v]);
            }
        }
    }
    for (i, ci) in c.iter().enumerate() {
        let row = d.wrapping_add(i * rs_d);
        for (v, &cv) in ci.iter().enumerate() {
            let p = row.wrapping_add(16 * v);
            let out = if acc {
                _mm512_add_ps(cv, load(p, v))
            } else {
                cv
            };
            // SAFETY: the destination entries are in range; masked lanes are not written.
            unsafe {
                if MASKED && v == V - 1 {
                    _mm512_mask_storeu_ps(p, mask, out)
                } else {
                    _mm512_storeu_ps(p, out)
                }
            }
        }
    }
}

/// Lanes `0..n` set (all eight when `n == 0`, i.e. a full vector).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn tail_mask(n: usize) -> __m256i {
    let lanes = if n == 0 { 8 } else { n as i32 };
    let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), idx)
}

/// One `R × 8V` tile of the broadcast kernel; with `MASKED`, the last vector holds only the
/// lanes of `mask`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn broadcast_tile<const R: usize, const V: usize, const MASKED: bool>(
    k: usize,
    a: *const f32,
    strides: Raw,
    b: *const f32,
    rs_b: usize,
    d: *mut f32,
    rs_d: usize,
    acc: bool,
    mask: __m256i,
) {
    let load = |p: *const f32, v: usize| {
        // SAFETY: in range by the caller's contract; masked lanes are not read.
        unsafe {
            if MASKED && v == V - 1 {
                _mm256_maskload_ps(p, mask)
            } else {
                _mm256_loadu_ps(p)
            }
        }
    };
    let mut c = [[_mm256_setzero_ps(); V]; R];
    for p in 0..k {
        let row = b.wrapping_add(p * rs_b);
        let bv: [__m256; V] = std::array::from_fn(|v| load(row.wrapping_add(8 * v), v));
        let ap = a.wrapping_add(p * strides.cs);
        for (i, ci) in c.iter_mut().enumerate() {
            // SAFETY: A's entry (i, p) is in range.
            let av = _mm256_set1_ps(unsafe { *ap.wrapping_add(i * strides.rs) });
            for v in 0..V {
                ci[v] = _mm256_fmadd_ps(av, bv[v], ci[v]);
            }
        }
    }
    for (i, ci) in c.iter().enumerate() {
        let row = d.wrapping_add(i * rs_d);
        for (v, &cv) in ci.iter().enumerate() {
            let p = row.wrapping_add(8 * v);
            let out = if acc {
                _mm256_add_ps(cv, load(p, v))
            } else {
                cv
            };
            // SAFETY: the destination entries are in range; masked lanes are not written.
            unsafe {
                if MASKED && v == V - 1 {
                    _mm256_maskstore_ps(p, mask, out)
                } else {
                    _mm256_storeu_ps(p, out)
                }
            }
        }
    }
}

/// The dot kernel over the whole `m × n` result; `b` is `Wᵀ` with `W` row-major (`b.cs` is
/// the row stride of `W`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot(m: usize, k: usize, n: usize, a: Raw, b: Raw, dst: RawMut, acc: bool) {
    let mask = tail_mask(k % 8);
    let mut j0 = 0;
    while j0 < n {
        let cols = (n - j0).min(DC);
        let w = b.ptr.wrapping_add(j0 * b.cs);
        let mut i0 = 0;
        while i0 < m {
            let rows = (m - i0).min(DR);
            let a_i = a.ptr.wrapping_add(i0 * a.rs);
            let d = dst.ptr.wrapping_add(i0 * dst.rs + j0);
            macro_rules! tile {
                ($(($r:literal, $c:literal))*) => {
                    match (rows, cols) {
                        $(($r, $c) => dot_tile::<$r, $c>(k, a_i, a.rs, w, b.cs, d, dst.rs, acc, mask),)*
                        _ => unreachable!("dot tiles are at most 4 × 3"),
                    }
                };
            }
            // SAFETY: the tile lies inside the caller's ranges.
            unsafe {
                tile!((1, 1)(1, 2)(1, 3)(2, 1)(2, 2)(2, 3)(3, 1)(3, 2)(3, 3)(4, 1)(4, 2)(4, 3))
            };
            i0 += DR;
        }
        j0 += DC;
    }
}

/// One `R × C` tile of dot products of length `k`; `mask` holds the lanes of the last,
/// partial vector of `k`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn dot_tile<const R: usize, const C: usize>(
    k: usize,
    a: *const f32,
    rs_a: usize,
    w: *const f32,
    rs_w: usize,
    d: *mut f32,
    rs_d: usize,
    acc: bool,
    mask: __m256i,
) {
    let mut c = [[_mm256_setzero_ps(); C]; R];
    let full = k / 8 * 8;
    let mut p = 0;
    // SAFETY (both loops): entries p..p+8 of each row are in range, or masked off.
    while p < full {
        let wv: [__m256; C] =
            std::array::from_fn(|j| unsafe { _mm256_loadu_ps(w.wrapping_add(j * rs_w + p)) });
        for (i, ci) in c.iter_mut().enumerate() {
            let av = unsafe { _mm256_loadu_ps(a.wrapping_add(i * rs_a + p)) };
            for j in 0..C {
                ci[j] = _mm256_fmadd_ps(av, wv[j], ci[j]);
            }
        }
        p += 8;
    }
    if p < k {
        let wv: [__m256; C] = std::array::from_fn(|j| unsafe {
            _mm256_maskload_ps(w.wrapping_add(j * rs_w + p), mask)
        });
        for (i, ci) in c.iter_mut().enumerate() {
            let av = unsafe { _mm256_maskload_ps(a.wrapping_add(i * rs_a + p), mask) };
            for j in 0..C {
                ci[j] = _mm256_fmadd_ps(av, wv[j], ci[j]);
            }
        }
    }
    for (i, ci) in c.iter().enumerate() {
        for (j, &v) in ci.iter().enumerate() {
            let q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
            let q = _mm_add_ss(q, _mm_movehdup_ps(q));
            let s = _mm_cvtss_f32(q);
            let out = d.wrapping_add(i * rs_d + j);
            // SAFETY: the destination entry is in range.
            unsafe { *out = if acc { *out + s } else { s } };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        a: &[f32],
        [rs_a, cs_a]: [usize; 2],
        b: &[f32],
        [rs_b, cs_b]: [usize; 2],
        [m, k, n]: [usize; 3],
    ) -> Vec<f32> {
        let mut out = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k)
                    .map(|p| a[i * rs_a + p * cs_a] as f64 * b[p * rs_b + j * cs_b] as f64)
                    .sum::<f64>() as f32;
            }
        }
        out
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7 + seed * 13) % 23) as f32 - 11.0) / 7.0)
            .collect()
    }

    /// Every tile edge: rows 1..=13, columns 1..=35, k 1..=33 (partial, whole and several
    /// vectors), with `A` and `B` in each supported layout, overwriting and accumulating, on
    /// one and on two threads (on an AVX-512 CPU the 16-lane broadcast kernel, and the 8-lane
    /// one called directly as well).
    #[test]
    fn both_kernels_match_a_triple_loop_on_every_tile_edge() {
        if !crate::fused::cpu::simd::has_avx2() {
            eprintln!("no AVX2/FMA here: the kernels are not used on this CPU");
            return;
        }
        for m in [1, 2, 5, 6, 7, 13] {
            for n in [1, 3, 4, 8, 9, 16, 17, 35] {
                for k in [1, 7, 8, 9, 16, 19, 33] {
                    // (A strides, B strides, expected kernel)
                    let layouts = [
                        ([k, 1], [n, 1], Kernel::Broadcast), // A · B
                        ([1, m], [n, 1], Kernel::Broadcast), // Aᵀ stored (k, m)
                        ([k, 1], [1, k], Kernel::Dot),       // A · Wᵀ, W (n, k)
                    ];
                    for (sa, sb, want_kernel) in layouts {
                        let a = values(m * k, 1);
                        let b = values(k * n, 2);
                        let ra = Raw {
                            ptr: a.as_ptr(),
                            rs: sa[0],
                            cs: sa[1],
                        };
                        let rb = Raw {
                            ptr: b.as_ptr(),
                            rs: sb[0],
                            cs: sb[1],
                        };
                        // With k or n of 1 a layout is both; the broadcast kernel is taken then.
                        if sb[1] != 1 {
                            assert_eq!(kernel_for(ra, rb), Some(want_kernel));
                        }
                        let want = naive(&a, sa, &b, sb, [m, k, n]);
                        let narrow_too = want_kernel == Kernel::Broadcast
                            && crate::fused::cpu::simd::has_avx512();
                        let runs: &[usize] = if narrow_too { &[1, 2, 3] } else { &[1, 2] };
                        for &parts in runs {
                            for accumulate in [false, true] {
                                // A destination wider than n, to check the row stride.
                                let rs = n + 3;
                                let mut dst = vec![0.5f32; m * rs];
                                let out = RawMut {
                                    ptr: dst.as_mut_ptr(),
                                    rs,
                                };
                                // SAFETY: AVX2 checked; the views match the allocations.
                                // `parts` 3 on an AVX-512 CPU: the 8-lane broadcast kernel
                                // run directly, so both widths are checked there.
                                unsafe {
                                    if parts == 3 {
                                        broadcast(m, k, n, ra, rb, out, accumulate)
                                    } else {
                                        product(
                                            want_kernel,
                                            [m, k, n],
                                            ra,
                                            rb,
                                            out,
                                            accumulate,
                                            parts,
                                        )
                                    }
                                };
                                for i in 0..m {
                                    for j in 0..rs {
                                        let got = dst[i * rs + j];
                                        let expect = if j >= n {
                                            0.5
                                        } else {
                                            want[i * n + j] + if accumulate { 0.5 } else { 0.0 }
                                        };
                                        assert!(
                                            (got - expect).abs() <= 1e-5 * (1.0 + expect.abs()),
                                            "{want_kernel:?} m {m} k {k} n {n} parts {parts} acc {accumulate}: ({i}, {j}) {got} vs {expect}"
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
