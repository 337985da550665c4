//! Branch-free `exp`, `ln(1 + e)` and `tanh` in f32 that the compiler can vectorise (libm's
//! `expf` is one call per entry), and [`Fast`], the f32 whose [`super::gamma::Real`] maths
//! they are. Used by the element-wise passes of the fused sequences, where the ARUN
//! controller evaluates `B·H·K` tanh's per time step.

use std::ops::{Add, Div, Mul, Neg, Sub};

/// `e^x` in f32 to within 2 ulp for `x ∈ [−87, 88]`; inputs outside are clamped there (so
/// `exp_f32(−100)` is `e^−87 ≈ 1.6e−38`, not 0). Range reduction `x = k ln 2 + r` with
/// `|r| ≤ ln2/2` (`ln 2` split in two parts so that `k ln 2` is exact), a degree-7 Taylor
/// polynomial for `e^r` (truncation error < 6e−9 relative) evaluated by Estrin's scheme, and
/// `2^k` built in the exponent bits.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75; // exactly representable, 17 significant bits
    const LN2_LO: f32 = 1.428_606_8e-6; // ln 2 − LN2_HI
    // 1.5·2^23: adding it rounds to an integer held in the low mantissa bits.
    const SHIFTER: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + SHIFTER;
    let k = shifted - SHIFTER;
    let k_bits = shifted.to_bits().wrapping_sub(SHIFTER.to_bits()) as i32;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Estrin's scheme: a short dependency chain, so that neighbouring lanes overlap.
    let r2 = r * r;
    let r4 = r2 * r2;
    let lo = (1.0 + r) + r2 * (0.5 + r * (1.0 / 6.0));
    let hi = (1.0 / 24.0 + r * (1.0 / 120.0)) + r2 * (1.0 / 720.0 + r * (1.0 / 5040.0));
    let p = lo + r4 * hi;
    let scale = f32::from_bits(((k_bits + 127) as u32) << 23);
    p * scale
}

/// `tanh` in f32 to within 3e-7 absolute: an odd Taylor polynomial below |x| = 0.1 (the first
/// omitted term is < 3e-11), `(1 − e)/(1 + e)` with `e = exp(−2|x|)` above (no cancellation
/// there: `1 − e > 0.18`). Both branches are computed and one is selected, so loops over it
/// vectorise.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let x2 = x * x;
    let small = x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 - x2 * (17.0 / 315.0))));
    let e = exp_f32(-2.0 * a);
    let large = ((1.0 - e) / (1.0 + e)).copysign(x);
    if a < 0.1 { small } else { large }
}

/// `ln(1 + e)` for `e ∈ [0, 1]` to within 3e-7 relative (f32 rounding), branch-free: `2 atanh(z)` with
/// `z = e/(2 + e) ∈ [0, 1/3]`, by its odd series to `z¹³/13` (the first omitted term is
/// `2 z¹⁵/15 < 1e-8`).
#[inline(always)]
pub fn ln_1p_unit(e: f32) -> f32 {
    let z = e / (2.0 + e);
    let z2 = z * z;
    let series = 1.0
        + z2 * (1.0 / 3.0
            + z2 * (1.0 / 5.0
                + z2 * (1.0 / 7.0 + z2 * (1.0 / 9.0 + z2 * (1.0 / 11.0 + z2 * (1.0 / 13.0))))));
    2.0 * z * series
}

/// An f32 whose `exp` and `ln(1 + e)` are [`exp_f32`] and [`ln_1p_unit`]: the gamma
/// function on it (`super::gamma`) is branch-free and vectorises.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
#[repr(transparent)]
pub struct Fast(pub f32);

macro_rules! fast_op {
    ($trait:ident, $method:ident, $op:tt) => {
        impl $trait for Fast {
            type Output = Fast;
            #[inline(always)]
            fn $method(self, rhs: Fast) -> Fast {
                Fast(self.0 $op rhs.0)
            }
        }
    };
}
fast_op!(Add, add, +);
fast_op!(Sub, sub, -);
fast_op!(Mul, mul, *);
fast_op!(Div, div, /);

impl Neg for Fast {
    type Output = Fast;
    #[inline(always)]
    fn neg(self) -> Fast {
        Fast(-self.0)
    }
}

/// Whether the CPU has AVX2 and FMA.
#[inline]
pub fn has_avx2() -> bool {
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
#[inline]
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f") && has_avx2()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A function whose body is compiled three times, as written, for AVX2 + FMA and for
/// AVX-512F, with the choice made at run time ([`has_avx512`], [`has_avx2`]), so that its
/// loops over [`exp_f32`] and [`tanh_f32`] run 8 or 16 lanes wide on CPUs that have them.
macro_rules! simd_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            fn avx2($($arg: $ty),*) {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            fn avx512($($arg: $ty),*) {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::fused::cpu::simd::has_avx512() {
                // SAFETY: the CPU has AVX-512F, AVX2 and FMA (checked at run time).
                return unsafe { avx512($($arg),*) };
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::fused::cpu::simd::has_avx2() {
                // SAFETY: the CPU has AVX2 and FMA (checked at run time).
                return unsafe { avx2($($arg),*) };
            }
            body($($arg),*)
        }
    };
}
pub(crate) use simd_fn;

/// `Σ a_j b_j` in 8 interleaved partial sums (so that it vectorises).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut acc = [0.0f32; 8];
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `Σ a_j` in 8 interleaved partial sums (so that it vectorises).
#[inline(always)]
pub fn sum(a: &[f32]) -> f32 {
    let chunks = a.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    let mut acc = [0.0f32; 8];
    for x in chunks {
        for l in 0..8 {
            acc[l] += x[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_within_two_ulp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp_f32(x) as f64;
            worst = worst.max((got - want).abs() / want);
            x += 0.001_37;
        }
        // 2 ulp of f32 is 2.4e-7 relative.
        assert!(worst < 2.4e-7, "worst relative error {worst:e}");
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(-1000.0) > 0.0 && exp_f32(-1000.0) < 2e-38);
        assert!(exp_f32(1000.0).is_finite());
    }

    #[test]
    fn tanh_within_3e7() {
        let mut worst = 0.0f64;
        let mut x = -12.0f32;
        while x < 12.0 {
            let want = (x as f64).tanh();
            worst = worst.max((tanh_f32(x) as f64 - want).abs());
            x += 0.000_731;
        }
        assert!(worst < 3e-7, "worst absolute error {worst:e}");
        assert_eq!(tanh_f32(0.0), 0.0);
        assert_eq!(tanh_f32(50.0), 1.0);
        assert_eq!(tanh_f32(-50.0), -1.0);
    }
}
