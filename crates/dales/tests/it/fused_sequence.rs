//! Whole sequences as one fused op with a hand-written backward through time
//! (`dales::fused::rnn_sequence`, `dales::fused::arun_sequence`) against the step-by-step
//! cells in f32 and in f64: `h_T` and the gradient of every parameter, for ARUN and every RNN
//! activation.

use burn::tensor::DType;
use dales::fused::Settings;
use dales::nn::seq::SeqKind;

use crate::common::device;
use crate::common::sequence::{classifier, outputs, pixel_sequences};

#[test]
fn fused_arun_sequence_matches_the_step_by_step_cell_and_f64_truth() {
    crate::common::sequence::compare_arun(&device(), 49);
}

#[test]
fn fused_rnn_sequences_match_the_step_by_step_cells_and_f64_truth() {
    crate::common::sequence::compare_rnn_cells(&device());
}

/// With a memory budget of 0 the ARUN keeps every ⌈√T⌉-th controller state and recomputes
/// the rest in the backward: the results are bit-identical to keeping all of them. T = 50 is
/// not a multiple of the interval 8, so the first segment is short.
#[test]
fn recomputed_controller_states_give_identical_results() {
    let model = classifier(SeqKind::Arun, 16, 4, 4, &device());
    let labels = [2, 7, 1];
    let xs = pixel_sequences(labels.len(), 50, 8, &device(), DType::F32);
    let kept = outputs(&model, xs.clone(), &labels, true);
    let tight = Settings {
        memory_budget: 0,
        ..Settings::default()
    };
    let recomputed = tight.scope(|| outputs(&model, xs, &labels, true));
    assert_eq!(kept, recomputed);
}
