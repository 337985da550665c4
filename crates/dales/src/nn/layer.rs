//! The interface every feed-forward layer offers to models, optimisers and checkpoints.

use burn::tensor::Tensor;

use super::param::{Fan, ParamEntry, ParamValue};

/// A feed-forward layer: `(B, n_in) → (B, n_out)`, no nonlinearity inside.
///
/// Besides its forward pass a layer lists its parameters ([`Layer::entries`]) with their
/// checkpoint names and roles, and takes new values back in the same order
/// ([`Layer::with_values`]). Optimisers and checkpoints only use these two methods.
pub trait Layer: Sized + Clone {
    /// Pre-activation `z` for a batch `x` of shape `(B, n_in)`; returns `(B, n_out)`.
    fn forward(&self, x: Tensor<2>) -> Tensor<2>;

    /// Number of inputs `d`.
    fn n_in(&self) -> usize;

    /// Number of outputs (excitatory units only, for E/I layers).
    fn n_out(&self) -> usize;

    /// Fan sizes used by gradient corrections.
    fn fan(&self) -> Fan {
        Fan {
            d: self.n_in(),
            ne: self.n_out(),
        }
    }

    /// Parameters and fixed buffers in a fixed order, with names and roles.
    fn entries(&self) -> Vec<ParamEntry>;

    /// The same layer holding `values`, given in the order of [`Layer::entries`].
    ///
    /// # Panics
    /// If the number of values or a shape differs from [`Layer::entries`] (callers check shapes
    /// first and report a typed error, see [`crate::checkpoint`]).
    fn with_values(self, values: Vec<ParamValue>) -> Self;
}

/// Check that `values` match `entries` in number and shape (an internal invariant).
pub(crate) fn assert_same_shapes(entries: &[ParamEntry], values: &[ParamValue]) {
    assert_eq!(
        entries.len(),
        values.len(),
        "wrong number of parameter values"
    );
    for (e, v) in entries.iter().zip(values) {
        assert_eq!(e.value.shape(), v.shape(), "shape of `{}`", e.name);
    }
}
