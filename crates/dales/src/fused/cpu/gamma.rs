//! The gamma activation (spec C1) on the host, written once: the scalar function and its
//! partials for every float type the kernels and analyses use ([`Real`]: f32 and f64 through
//! libm, and the branch-free [`Fast`] f32 of the fused sequences), and the fused op's batch
//! forward and backward.
//!
//! `γ(x; n, s) = (1 − s)·softplus_n(x) + s·σ(n x)` with `softplus_n(x) = ln(1 + e^{n x})/n`,
//! evaluated without overflow for any `n > 0` and finite `x`: with `z = n x` and
//! `e = e^{−|z|} ∈ (0, 1]`, `softplus_n(x) = (max(z, 0) + ln(1 + e))/n` and, with
//! `q = 1/(1 + e)`, `σ(z) = q` for `z ≥ 0`, `e·q` otherwise.
//!
//! Partials (spec C1), with `σ' = σ(1 − σ)`:
//! - `∂γ/∂x = (1 − s)·σ + s·n·σ'`
//! - `∂γ/∂n = (1 − s)·(x σ − softplus_n)/n + s·x·σ'`
//! - `∂γ/∂s = σ − softplus_n`
//!
//! The network floors the gain (`γ(x; max(n, n_min), s)`, with `∂γ/∂n = 0` where the floor is
//! active): [`floored_value`], [`floored_partials`]. The CubeCL kernels (`gpu/gamma.rs`)
//! mirror [`parts`], [`gamma_value`] and [`gamma_partials`] line by line.
//!
//! In the fused op, `n` and `s` broadcast against `x (B, H)`: one value for all, one per
//! neuron `(1, H)`, or one per sample and neuron `(B, H)`. Their gradients are summed back to
//! their own shape.

use std::ops::{Add, Div, Mul, Neg, Sub};

use burn::backend::NdArray;
use burn::backend::TensorMetadata;
use burn::backend::ndarray::NdArrayTensor;

use super::simd::{Fast, exp_f32, ln_1p_unit};
use super::{HostFloat, dims2, host};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::Gamma;

/// The float types the gamma function runs in.
pub trait Real:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    fn exp(self) -> Self;
    /// `ln(1 + e)` for `e ∈ [0, 1]`.
    fn ln_1p(self) -> Self;
    fn abs(self) -> Self;
    /// The larger of the two; the other when one is NaN.
    fn max(self, other: Self) -> Self;
}

macro_rules! libm_real {
    ($t:ty) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
        }
    };
}
libm_real!(f32);
libm_real!(f64);

impl Real for Fast {
    const ZERO: Self = Fast(0.0);
    const ONE: Self = Fast(1.0);
    #[inline(always)]
    fn exp(self) -> Self {
        Fast(exp_f32(self.0))
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        Fast(ln_1p_unit(self.0))
    }
    #[inline(always)]
    fn abs(self) -> Self {
        Fast(self.0.abs())
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        Fast(self.0.max(other.0))
    }
}

/// `(softplus_n(x), σ(n x))`, stable for `n > 0`.
#[inline(always)]
pub fn parts<T: Real>(x: T, n: T) -> (T, T) {
    let z = n * x;
    let e = (-z.abs()).exp();
    let softplus = (z.max(T::ZERO) + e.ln_1p()) / n;
    let q = T::ONE / (T::ONE + e);
    let sigma = if z >= T::ZERO { q } else { e * q };
    (softplus, sigma)
}

/// `γ(x; n, s)` for `n > 0`.
#[inline(always)]
pub fn gamma_value<T: Real>(x: T, n: T, s: T) -> T {
    let (softplus, sigma) = parts(x, n);
    (T::ONE - s) * softplus + s * sigma
}

/// `(∂γ/∂x, ∂γ/∂n, ∂γ/∂s)` at `(x; n, s)` for `n > 0`.
#[inline(always)]
pub fn gamma_partials<T: Real>(x: T, n: T, s: T) -> (T, T, T) {
    let (softplus, sigma) = parts(x, n);
    let slope = sigma * (T::ONE - sigma);
    let one_minus_s = T::ONE - s;
    let px = one_minus_s * sigma + s * n * slope;
    let pn = one_minus_s * (x * sigma - softplus) / n + s * x * slope;
    (px, pn, sigma - softplus)
}

/// `γ(x; max(n, n_min), s)`.
#[inline(always)]
pub fn floored_value<T: Real>(x: T, n: T, s: T, n_min: T) -> T {
    gamma_value(x, n.max(n_min), s)
}

/// The partials of [`floored_value`]: those of [`gamma_partials`] at `max(n, n_min)`, with
/// `∂γ/∂n = 0` where `n < n_min`.
#[inline(always)]
pub fn floored_partials<T: Real>(x: T, n: T, s: T, n_min: T) -> (T, T, T) {
    let (px, pn, ps) = gamma_partials(x, n.max(n_min), s);
    let pn = if n < n_min { T::ZERO } else { pn };
    (px, pn, ps)
}

/// How a shape parameter (`n` or `s`) broadcasts against `x (B, H)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broadcast {
    /// One value, shape `(1, 1)`.
    Scalar,
    /// One per neuron, shape `(1, H)`.
    PerNeuron,
    /// One per sample and neuron, shape `(B, H)`.
    Full,
}

impl Broadcast {
    /// The broadcast of a `(rows, cols)` parameter against `x (b, h)`, if it is one of the three.
    pub fn of([rows, cols]: [usize; 2], [b, h]: [usize; 2]) -> Option<Broadcast> {
        match (rows, cols) {
            (1, 1) => Some(Broadcast::Scalar),
            (1, c) if c == h => Some(Broadcast::PerNeuron),
            (r, c) if r == b && c == h => Some(Broadcast::Full),
            _ => None,
        }
    }

    #[inline]
    fn index(self, row: usize, col: usize, h: usize) -> usize {
        match self {
            Broadcast::Scalar => 0,
            Broadcast::PerNeuron => col,
            Broadcast::Full => row * h + col,
        }
    }

    /// Entries of a parameter of this broadcast.
    pub fn len(self, b: usize, h: usize) -> usize {
        match self {
            Broadcast::Scalar => 1,
            Broadcast::PerNeuron => h,
            Broadcast::Full => b * h,
        }
    }
}

/// A batch: `x (b, h)` with its shape parameters.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a, T> {
    pub x: &'a [T],
    pub n: &'a [T],
    pub s: &'a [T],
    pub b: usize,
    pub h: usize,
    pub n_shape: Broadcast,
    pub s_shape: Broadcast,
}

impl<T> Batch<'_, T> {
    fn check(&self) {
        assert_eq!(self.x.len(), self.b * self.h, "x is (B, H)");
        assert_eq!(self.n.len(), self.n_shape.len(self.b, self.h), "n's shape");
        assert_eq!(self.s.len(), self.s_shape.len(self.b, self.h), "s's shape");
    }
}

/// `γ(x; n, s)`, entry by entry.
pub fn forward<T: Real>(p: Batch<T>) -> Vec<T> {
    p.check();
    let mut out = Vec::with_capacity(p.x.len());
    for row in 0..p.b {
        for col in 0..p.h {
            let x = p.x[row * p.h + col];
            let n = p.n[p.n_shape.index(row, col, p.h)];
            let s = p.s[p.s_shape.index(row, col, p.h)];
            out.push(gamma_value(x, n, s));
        }
    }
    out
}

/// Gradients `(dx, dn, ds)` from the output gradient `dy (b, h)`; `dn` and `ds` have the
/// shapes of `n` and `s`.
pub fn backward<T: Real>(p: Batch<T>, dy: &[T]) -> (Vec<T>, Vec<T>, Vec<T>) {
    p.check();
    assert_eq!(dy.len(), p.x.len(), "dy is (B, H)");
    let mut dx = Vec::with_capacity(p.x.len());
    let mut dn = vec![T::ZERO; p.n.len()];
    let mut ds = vec![T::ZERO; p.s.len()];
    for row in 0..p.b {
        for col in 0..p.h {
            let i = row * p.h + col;
            let (x, g) = (p.x[i], dy[i]);
            let ni = p.n_shape.index(row, col, p.h);
            let si = p.s_shape.index(row, col, p.h);
            let (n, s) = (p.n[ni], p.s[si]);
            let (px, pn, ps) = gamma_partials(x, n, s);
            dx.push(g * px);
            dn[ni] = dn[ni] + g * pn;
            ds[si] = ds[si] + g * ps;
        }
    }
    (dx, dn, ds)
}

/// `run` on the batch of NdArray inputs `x`, `n`, `s` in their float type `T`.
fn with_batch<T: HostFloat + Real, R>(
    [x, n, s]: &[NdArrayTensor; 3],
    run: impl FnOnce(Batch<T>) -> R,
) -> R {
    let [b, h] = dims2(x);
    let shape = |t: &NdArrayTensor| {
        Broadcast::of(dims2(t), [b, h]).unwrap_or_else(|| {
            panic!(
                "gamma: a shape parameter of shape {:?} for x ({b}, {h})",
                t.shape()
            )
        })
    };
    let (xv, nv, sv) = (T::entries(x), T::entries(n), T::entries(s));
    run(Batch {
        x: &xv,
        n: &nv,
        s: &sv,
        b,
        h,
        n_shape: shape(n),
        s_shape: shape(s),
    })
}

/// Run `$body` with `$T` the float type of the NdArray tensor `$like` (f32 or f64).
macro_rules! in_dtype {
    ($like:expr, $T:ident => $body:expr) => {
        match $like.dtype() {
            burn::tensor::DType::F64 => {
                type $T = f64;
                $body
            }
            _ => {
                type $T = f32;
                $body
            }
        }
    };
}
pub(crate) use in_dtype;

impl Kernel<NdArray, 3> for Gamma {
    /// The inputs.
    type Saved = [NdArrayTensor; 3];

    fn forward(
        &self,
        inputs: [NdArrayTensor; 3],
        save: bool,
    ) -> (NdArrayTensor, Option<Self::Saved>) {
        let shape = inputs[0].shape().to_vec();
        let y =
            in_dtype!(inputs[0], T => with_batch::<T, _>(&inputs, |p| host(forward(p), &shape)));
        (y, save.then_some(inputs))
    }

    fn backward(
        &self,
        inputs: Self::Saved,
        dy: NdArrayTensor,
        _: [bool; 3],
    ) -> [Option<NdArrayTensor>; 3] {
        let [sx, sn, ss] = inputs.each_ref().map(|t| t.shape().to_vec());
        let grads = in_dtype!(inputs[0], T => with_batch::<T, _>(&inputs, |p| {
            let (dx, dn, ds) = backward(p, &T::entries(&dy));
            [host(dx, &sx), host(dn, &sn), host(ds, &ss)]
        }));
        grads.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_far_out() {
        // n x = ±1e7: no overflow, softplus → relu, σ → step.
        let (sp, sig) = parts(1e4f32, 1e3);
        assert_eq!((sp, sig), (1e4, 1.0));
        let (sp, sig) = parts(-1e4f32, 1e3);
        assert_eq!((sp, sig), (0.0, 0.0));
        let (sp, sig) = parts(0.0f64, 2.0);
        assert!((sp - 2f64.ln() / 2.0).abs() < 1e-15 && sig == 0.5);
    }

    #[test]
    fn broadcast_shapes() {
        assert_eq!(Broadcast::of([1, 1], [4, 3]), Some(Broadcast::Scalar));
        assert_eq!(Broadcast::of([1, 3], [4, 3]), Some(Broadcast::PerNeuron));
        assert_eq!(Broadcast::of([4, 3], [4, 3]), Some(Broadcast::Full));
        assert_eq!(Broadcast::of([4, 1], [4, 3]), None);
    }

    #[test]
    fn gamma_parts_match_the_libm_version() {
        for i in 0..20_000 {
            let x = -30.0 + 60.0 * (i as f32) / 20_000.0;
            for n in [0.001f32, 0.5, 1.0, 5.0, 7.3, 100.0] {
                let (Fast(sp), Fast(sig)) = parts(Fast(x), Fast(n));
                let (sp64, sig64) = parts(x as f64, n as f64);
                let tol = |v: f64| 1e-6 * (1.0 + v.abs());
                assert!(
                    (sp as f64 - sp64).abs() <= tol(sp64),
                    "softplus x {x} n {n}"
                );
                assert!((sig as f64 - sig64).abs() <= 3e-7, "sigma x {x} n {n}");
            }
        }
        let mut e = 0.0f32;
        let mut worst = 0.0f64;
        while e <= 1.0 {
            let want = (e as f64).ln_1p();
            worst = worst
                .max((super::super::simd::ln_1p_unit(e) as f64 - want).abs() / want.max(1e-38));
            e += 0.000_37;
        }
        assert!(worst < 3e-7, "ln_1p_unit: worst relative error {worst:e}");
    }
}
