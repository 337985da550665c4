//! Whole sequences as one fused op with a hand-written backward through time
//! (`dales::fused::sequence`, `dales::fused::arun_seq`) against the step-by-step cells in f32
//! and in f64: `h_T` and the gradient of every parameter, for ARUN and every RNN activation.

mod common;

use burn::tensor::{DType, Tensor};
use common::{assert_as_accurate, device, host, uniform};
use dales::nn::recurrent::Recurrent;
use dales::nn::seq::{SeqCell, SeqClassifier, SeqConfig, SeqKind};
use dales::nn::{ParamValue, Parameterised};
use dales::train::cross_entropy;

/// `h_T` and the gradient of every parameter (cell and readout) of a cross-entropy loss on
/// the classifier's logits, with the cell rolled over `xs (B, T, 1)` as one fused op
/// (`fused`, where it applies) or step by step.
fn outputs(
    model: &SeqClassifier,
    xs: Tensor<3>,
    labels: &[usize],
    fused: bool,
) -> Vec<(String, Vec<f64>)> {
    use dales::nn::Layer;
    let h = if fused {
        model.last_hidden_of(xs, &|_| None)
    } else {
        match &model.cell {
            SeqCell::Rnn(c) => c.run(xs, |_| None),
            SeqCell::Arun(c) => c.output(&c.run(xs, |_| None)),
            _ => unreachable!("RNN and ARUN only"),
        }
    };
    let loss = cross_entropy(model.readout.forward(h.clone()), labels);
    let grads = loss.backward();
    let mut out = vec![("h_T".to_string(), host(h))];
    for layer in model.param_layers() {
        for e in layer.entries {
            let g = match &e.value {
                ParamValue::Matrix(t) => host(t.grad(&grads).expect("a gradient")),
                ParamValue::Vector(t) => host(t.grad(&grads).expect("a gradient")),
            };
            out.push((format!("{}.{}", layer.name, e.name), g));
        }
    }
    out
}

fn classifier(kind: SeqKind, hidden: usize, controller: usize, pool: usize) -> SeqClassifier {
    SeqConfig {
        hidden,
        controller,
        pool,
        ..SeqConfig::paper(kind)
    }
    .init_seeded(21, &device())
    .unwrap()
}

fn pixel_sequences(batch: usize, steps: usize, seed: u64, dtype: DType) -> Tensor<3> {
    uniform(batch, steps, seed, &device())
        .reshape([batch, steps, 1])
        .cast(dtype)
}

/// The fused op against the step-by-step cell in f32 and in f64, every output.
fn compare(kind: SeqKind, model: &SeqClassifier, labels: &[usize], n_outputs: usize) {
    let xs = pixel_sequences(labels.len(), model.steps(), 5, DType::F32);
    let fused = outputs(model, xs.clone(), labels, true);
    let stepwise = outputs(model, xs.clone(), labels, false);
    let truth = outputs(&common::as_f64(model), xs.cast(DType::F64), labels, false);
    assert_eq!(fused.len(), n_outputs, "{kind}");
    // The fused op ran: its f32 rounding differs from the step-by-step cell's somewhere.
    assert_ne!(fused, stepwise, "{kind}: the fused path did not run");
    for ((name, fast), ((_, plain), (_, truth))) in fused.iter().zip(stepwise.iter().zip(&truth)) {
        assert_as_accurate(&format!("{kind} {name}"), fast, plain, truth, 1e-5);
    }
}

#[test]
fn fused_arun_sequence_matches_the_step_by_step_cell_and_f64_truth() {
    let model = classifier(SeqKind::Arun, 24, 6, 4); // 49 steps
    // h_T, 12 cell tensors, the readout's weight and bias.
    compare(SeqKind::Arun, &model, &[3, 1, 4, 1, 5, 9], 15);
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
        let model = classifier(kind, 24, 6, 4);
        let gamma = matches!(kind, SeqKind::RnnGamma | SeqKind::RnnGammaHet);
        // h_T, u, u_bias, v, v_bias (and n, s), the readout's weight and bias.
        compare(kind, &model, &[3, 1, 4, 1, 5, 9], if gamma { 9 } else { 7 });
    }
}

/// With a memory budget of 0 the ARUN keeps every ⌈√T⌉-th controller state and recomputes
/// the rest in the backward: the results are bit-identical to keeping all of them. T = 50 is
/// not a multiple of the interval 8, so the first segment is short.
#[test]
fn recomputed_controller_states_give_identical_results() {
    use dales::fused::arun_seq::{memory_budget, set_memory_budget};
    let model = classifier(SeqKind::Arun, 16, 4, 4);
    let labels = [2, 7, 1];
    let xs = pixel_sequences(labels.len(), 50, 8, DType::F32);
    let kept = outputs(&model, xs.clone(), &labels, true);
    let budget = memory_budget();
    set_memory_budget(0);
    let recomputed = outputs(&model, xs, &labels, true);
    set_memory_budget(budget);
    assert_eq!(kept, recomputed);
}
