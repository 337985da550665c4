//! Whole sequences as one fused op with a hand-written backward through time
//! (`dales::fused::sequence`, `dales::fused::arun_seq`) against the step-by-step cells in f32
//! and in f64: `h_T` and the gradient of every parameter, for ARUN and every RNN activation.

mod common;

use burn::tensor::DType;
use common::device;
use common::sequence::{classifier, compare, outputs, pixel_sequences};
use dales::nn::seq::SeqKind;

#[test]
fn fused_arun_sequence_matches_the_step_by_step_cell_and_f64_truth() {
    let model = classifier(SeqKind::Arun, 24, 6, 4, &device()); // 49 steps
    // h_T, 12 cell tensors, the readout's weight and bias.
    let labels = [3, 1, 4, 1, 5, 9];
    compare(
        SeqKind::Arun,
        &model,
        (&labels, model.steps()),
        15,
        &device(),
    );
}

#[test]
fn fused_rnn_sequences_match_the_step_by_step_cells_and_f64_truth() {
    for kind in [
        SeqKind::RnnRelu,
        SeqKind::RnnTanh,
        SeqKind::RnnSoftplus,
        SeqKind::RnnGamma,
        SeqKind::RnnGammaHet,
    ] {
        let model = classifier(kind, 24, 6, 4, &device());
        let gamma = matches!(kind, SeqKind::RnnGamma | SeqKind::RnnGammaHet);
        // h_T, u, u_bias, v, v_bias (and n, s), the readout's weight and bias.
        let n = if gamma { 9 } else { 7 };
        compare(
            kind,
            &model,
            (&[3, 1, 4, 1, 5, 9], model.steps()),
            n,
            &device(),
        );
    }
}

/// With a memory budget of 0 the ARUN keeps every ⌈√T⌉-th controller state and recomputes
/// the rest in the backward: the results are bit-identical to keeping all of them. T = 50 is
/// not a multiple of the interval 8, so the first segment is short.
#[test]
fn recomputed_controller_states_give_identical_results() {
    use dales::fused::arun_seq::{memory_budget, set_memory_budget};
    let model = classifier(SeqKind::Arun, 16, 4, 4, &device());
    let labels = [2, 7, 1];
    let xs = pixel_sequences(labels.len(), 50, 8, &device(), DType::F32);
    let kept = outputs(&model, xs.clone(), &labels, true);
    let budget = memory_budget();
    set_memory_budget(0);
    let recomputed = outputs(&model, xs, &labels, true);
    set_memory_budget(budget);
    assert_eq!(kept, recomputed);
}
