//! `tanh` on the host: f32 through the vectorisable [`tanh_f32`] (within 3e-7 of libm), f64
//! through libm; backward `dy ⊙ (1 − y²)` from the saved output.

use burn::backend::NdArray;
use burn::backend::TensorMetadata;
use burn::backend::ndarray::NdArrayTensor;

use super::gamma::in_dtype;
use super::simd::tanh_f32;
use super::{HostFloat, host};
use crate::fused::autodiff::Kernel;
use crate::fused::ops::Tanh;

/// `tanh` of one entry in the kernels' precision.
trait TanhFloat:
    HostFloat + Copy + std::ops::Mul<Output = Self> + std::ops::Sub<Output = Self>
{
    const ONE: Self;
    fn kernel_tanh(self) -> Self;
}

impl TanhFloat for f32 {
    const ONE: Self = 1.0;
    fn kernel_tanh(self) -> Self {
        tanh_f32(self)
    }
}

impl TanhFloat for f64 {
    const ONE: Self = 1.0;
    fn kernel_tanh(self) -> Self {
        f64::tanh(self)
    }
}

impl Kernel<NdArray, 1> for Tanh {
    /// The output `y = tanh(x)`.
    type Saved = NdArrayTensor;

    fn forward(&self, [x]: [NdArrayTensor; 1], save: bool) -> (NdArrayTensor, Option<Self::Saved>) {
        let shape = x.shape().to_vec();
        let y = in_dtype!(x, T => {
            host(T::entries(&x).iter().map(|&a| a.kernel_tanh()).collect::<Vec<T>>(), &shape)
        });
        let saved = save.then(|| y.clone());
        (y, saved)
    }

    fn backward(
        &self,
        y: NdArrayTensor,
        dy: NdArrayTensor,
        _: [bool; 1],
    ) -> [Option<NdArrayTensor>; 1] {
        let shape = y.shape().to_vec();
        let dx = in_dtype!(y, T => {
            let (y, dy) = (T::entries(&y), T::entries(&dy));
            let v: Vec<T> = y.iter().zip(dy.iter()).map(|(&y, &g)| g * (T::ONE - y * y)).collect();
            host(v, &shape)
        });
        [Some(dx)]
    }
}
