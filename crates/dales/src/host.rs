//! Tensors to host vectors and back.

use burn::tensor::{Device, Tensor, TensorData};

/// A tensor's values on the host, row-major, as f64.
pub fn host_f64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("float data")
}

/// A float32 tensor of `shape` holding `values` (row-major) on `device`.
pub fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}
