//! Agreement with the PyTorch reference on the CPU (see `common/reference.rs`).
//!
//! For each model kind, from the same weights (read through dales' checkpoint loader) and the
//! same batch of 16 Fashion-MNIST test images: the logits and the loss, every raw gradient, the
//! weights after one corrected projected SGD step, and after one step with per-layer clipping.

use crate::common::device;
use burn::tensor::Device;

fn check_kind(dev: &Device, kind: &str) {
    crate::common::reference::check_kind(kind, dev);
}

#[test]
fn mlp_matches_reference() {
    check_kind(&device(), "mlp");
}

#[test]
fn layernorm_matches_reference() {
    check_kind(&device(), "layernorm");
}

#[test]
fn columnei_matches_reference() {
    check_kind(&device(), "columnei");
}

#[test]
fn dann_matches_reference() {
    check_kind(&device(), "dann");
}

#[test]
fn dann_nocorr_matches_reference() {
    check_kind(&device(), "dann_nocorr");
}

#[test]
fn dann_subtractive_matches_reference() {
    check_kind(&device(), "dann_subtractive");
}
