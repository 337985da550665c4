//! The machine's fp32 peak, measured, for the "% of peak" column of `dales bench`.

use std::time::Instant;

/// Whether the CPU has AVX2 and FMA.
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the CPU has AVX-512F (and AVX2 and FMA).
fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f") && has_avx2()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The machine's fp32 peak in GFLOP/s, measured: every rayon thread runs 12 independent chains
/// of fused multiply-adds (enough to hide the FMA latency), 16 lanes wide with AVX-512 and 8
/// with AVX2, for about `seconds`, and the FLOPs of all threads are divided by the wall time.
/// `None` without AVX2 and FMA. On this project's 2-vCPU AMD EPYC VM it gives 72–77 GFLOP/s,
/// half of the 157 that two 256-bit FMA pipes per core would allow: the cores execute a 256-bit
/// FMA as two 128-bit halves. On its 2-vCPU AVX-512 Intel Xeon VM it gives about 420, twice
/// what 8-wide chains reach there.
pub fn measured_peak_gflops(seconds: f64) -> Option<f64> {
    if !has_avx2() {
        return None;
    }
    // Calibrate the iterations of one chain run on this thread, then run them on every thread.
    let mut iters = 1 << 16;
    loop {
        let start = Instant::now();
        fma_chains(iters);
        let t = start.elapsed().as_secs_f64();
        if t > seconds / 4.0 || iters > 1 << 34 {
            iters = ((iters as f64) * seconds / t.max(1e-9)) as u64;
            break;
        }
        iters *= 4;
    }
    let threads = rayon::current_num_threads();
    let start = Instant::now();
    rayon::broadcast(|_| fma_chains(iters));
    let t = start.elapsed().as_secs_f64();
    let lanes = if has_avx512() { 16.0 } else { 8.0 };
    Some(threads as f64 * iters as f64 * 12.0 * lanes * 2.0 / t / 1e9)
}

/// `iters` rounds of 12 independent FMAs, 16 lanes wide on AVX-512 CPUs and 8 on AVX2 ones;
/// returns a value that depends on all of them (so that none is optimised away).
fn fma_chains(iters: u64) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx2,fma")]
        fn run_wide(iters: u64) -> f32 {
            use std::arch::x86_64::*;
            let mul = _mm512_set1_ps(0.999_999);
            let add = _mm512_set1_ps(1e-7);
            let mut acc: [__m512; 12] = std::array::from_fn(|i| _mm512_set1_ps(i as f32));
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = _mm512_fmadd_ps(*a, mul, add);
                }
            }
            let sum = acc
                .iter()
                .fold(_mm512_setzero_ps(), |s, &a| _mm512_add_ps(s, a));
            _mm512_reduce_add_ps(sum)
        }
        if has_avx512() {
            // SAFETY: the CPU has AVX-512F, AVX2 and FMA (checked at run time).
            return std::hint::black_box(unsafe { run_wide(std::hint::black_box(iters)) });
        }
        #[target_feature(enable = "avx2,fma")]
        fn run(iters: u64) -> f32 {
            use std::arch::x86_64::*;
            let mul = _mm256_set1_ps(0.999_999);
            let add = _mm256_set1_ps(1e-7);
            let mut acc: [__m256; 12] = std::array::from_fn(|i| _mm256_set1_ps(i as f32));
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = _mm256_fmadd_ps(*a, mul, add);
                }
            }
            let mut lanes = [0.0f32; 8];
            let sum = acc
                .iter()
                .fold(_mm256_setzero_ps(), |s, &a| _mm256_add_ps(s, a));
            // SAFETY: `lanes` holds 8 f32.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
            lanes.iter().sum()
        }
        if has_avx2() {
            // SAFETY: the CPU has AVX2 and FMA (checked at run time).
            return std::hint::black_box(unsafe { run(std::hint::black_box(iters)) });
        }
    }
    let _ = iters;
    0.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn peak_is_positive_where_measured() {
        if let Some(peak) = super::measured_peak_gflops(0.05) {
            assert!(peak > 1.0, "{peak}");
        }
    }
}
