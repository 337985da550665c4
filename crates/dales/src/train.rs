//! Training helpers shared by the CLI and the tests.

use burn::tensor::{Tensor, TensorData, activation::log_softmax};

/// Mean cross-entropy of `logits (B, C)` against class indices `labels (B)`.
///
/// # Panics
/// If `labels.len()` differs from B or a label is ≥ C (an internal invariant: datasets are
/// validated when loaded).
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize]) -> Tensor<1> {
    let [b, c] = logits.dims();
    assert_eq!(labels.len(), b, "one label per example");
    let mut onehot = vec![0f32; b * c];
    for (i, &y) in labels.iter().enumerate() {
        assert!(y < c, "label {y} out of range for {c} classes");
        onehot[i * c + y] = 1.0;
    }
    let device = logits.device();
    let target = Tensor::<2>::from_data(TensorData::new(onehot, [b, c]), (&device, logits.dtype()));
    -(log_softmax(logits, 1) * target).sum() / b as f64
}
