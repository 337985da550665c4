//! The gamma activation (spec C1) on host slices: forward, and the analytic gradients for `x`,
//! `n` and `s`, in f32 or f64.
//!
//! `γ(x; n, s) = (1 − s)·softplus_n(x) + s·σ(n x)` with `softplus_n(x) = ln(1 + e^{n x})/n`,
//! evaluated without overflow for any `n > 0` and finite `x`: with `z = n x` and
//! `e = e^{−|z|} ∈ (0, 1]`, `softplus_n(x) = (max(z, 0) + ln(1 + e))/n` and
//! `σ(z) = 1/(1 + e)` for `z ≥ 0`, `e/(1 + e)` otherwise.
//!
//! Gradients (spec C1):
//! - `∂γ/∂x = (1 − s)·σ + s·n·σ(1 − σ)`
//! - `∂γ/∂n = (1 − s)·(x σ − softplus_n)/n + s·x·σ(1 − σ)`
//! - `∂γ/∂s = σ − softplus_n`
//!
//! `n` and `s` broadcast against `x (B, H)`: one value for all, one per neuron `(1, H)`, or one
//! per sample and neuron `(B, H)`. Their gradients are summed back to their own shape.

use std::ops::{Add, Div, Mul, Neg, Sub};

/// The float types the host kernels run in.
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
    fn ln_1p(self) -> Self;
    fn abs(self) -> Self;
}

macro_rules! real {
    ($t:ty) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
        }
    };
}
real!(f32);
real!(f64);

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

/// `(softplus_n(x), σ(n x))`, stable for `n > 0`.
#[inline]
pub fn parts<T: Real>(x: T, n: T) -> (T, T) {
    let z = n * x;
    let e = (-z.abs()).exp();
    let pos = if z > T::ZERO { z } else { T::ZERO };
    let softplus = (pos + e.ln_1p()) / n;
    let sigma = if z >= T::ZERO {
        T::ONE / (T::ONE + e)
    } else {
        e / (T::ONE + e)
    };
    (softplus, sigma)
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
            let (softplus, sigma) = parts(x, n);
            out.push((T::ONE - s) * softplus + s * sigma);
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
            let (softplus, sigma) = parts(x, n);
            let slope = sigma * (T::ONE - sigma);
            let one_minus_s = T::ONE - s;
            dx.push(g * (one_minus_s * sigma + s * n * slope));
            dn[ni] = dn[ni] + g * (one_minus_s * (x * sigma - softplus) / n + s * x * slope);
            ds[si] = ds[si] + g * (sigma - softplus);
        }
    }
    (dx, dn, ds)
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
}
