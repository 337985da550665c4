//! Whole sequences through the fused op or step by step: `h_T` and every gradient of a
//! classifier's loss, on any device.

use burn::tensor::{DType, Device, Tensor};
use dales::nn::recurrent::Recurrent;
use dales::nn::seq::{SeqCell, SeqClassifier, SeqConfig, SeqKind};
use dales::nn::{Layer, ParamValue, Parameterised};
use dales::train::cross_entropy;

use super::{assert_as_accurate, host, uniform};

/// `h_T` and the gradient of every parameter (cell and readout) of a cross-entropy loss on
/// the classifier's logits, with the cell rolled over `xs (B, T, 1)` as one fused op
/// (`fused`, where it applies) or step by step.
pub fn outputs(
    model: &SeqClassifier,
    xs: Tensor<3>,
    labels: &[usize],
    fused: bool,
) -> Vec<(String, Vec<f64>)> {
    let h = if fused {
        model.last_hidden(xs, &|_| None)
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

/// A seeded classifier of `kind` on the CPU with the given sizes.
pub fn classifier(
    kind: SeqKind,
    hidden: usize,
    controller: usize,
    pool: usize,
    device: &Device,
) -> SeqClassifier {
    SeqConfig {
        hidden,
        controller,
        pool,
        ..SeqConfig::paper(kind)
    }
    .init_seeded(21, device)
    .unwrap()
}

/// The same model with every parameter moved to `device` in `dtype`.
pub fn moved(model: &SeqClassifier, device: &Device, dtype: DType) -> SeqClassifier {
    super::map_params(model, |v| match v {
        ParamValue::Matrix(t) => ParamValue::Matrix(t.to_device(device).cast(dtype)),
        ParamValue::Vector(t) => ParamValue::Vector(t.to_device(device).cast(dtype)),
    })
}

/// `batch` sequences of `steps` U(0, 1) pixels, `(B, T, 1)`.
pub fn pixel_sequences(
    batch: usize,
    steps: usize,
    seed: u64,
    device: &Device,
    dtype: DType,
) -> Tensor<3> {
    uniform(batch, steps, seed, device)
        .reshape([batch, steps, 1])
        .cast(dtype)
}

/// The fused op against the step-by-step cell, both in f32 on `device`, with the f64 CPU
/// truth, over `steps`-step sequences: every output as accurate as the step-by-step one
/// (`model` lives on the CPU).
pub fn compare(
    kind: SeqKind,
    model: &SeqClassifier,
    (labels, steps): (&[usize], usize),
    n_outputs: usize,
    device: &Device,
) {
    let cpu = dales::device::cpu().autodiff();
    let xs = pixel_sequences(labels.len(), steps, 5, &cpu, DType::F32);
    let on = moved(model, device, DType::F32);
    let fused = outputs(&on, xs.clone().to_device(device), labels, true);
    let stepwise = outputs(&on, xs.clone().to_device(device), labels, false);
    let truth = outputs(&super::as_f64(model), xs.cast(DType::F64), labels, false);
    assert_eq!(fused.len(), n_outputs, "{kind}");
    // The fused op ran: its f32 rounding differs from the step-by-step cell's somewhere.
    assert_ne!(fused, stepwise, "{kind}: the fused path did not run");
    for ((name, fast), ((_, plain), (_, truth))) in fused.iter().zip(stepwise.iter().zip(&truth)) {
        assert_as_accurate(&format!("{kind} {name}"), fast, plain, truth, 1e-5);
    }
}

/// [`compare`] for every RNN activation over 49-step sequences (`hidden` 24, pool 4).
pub fn compare_rnn_cells(device: &Device) {
    let cpu = dales::device::cpu().autodiff();
    for kind in [
        SeqKind::RnnRelu,
        SeqKind::RnnTanh,
        SeqKind::RnnSoftplus,
        SeqKind::RnnGamma,
        SeqKind::RnnGammaHet,
    ] {
        let model = classifier(kind, 24, 6, 4, &cpu);
        let gamma = matches!(kind, SeqKind::RnnGamma | SeqKind::RnnGammaHet);
        // h_T, u, u_bias, v, v_bias (and n, s), the readout's weight and bias.
        let n = if gamma { 9 } else { 7 };
        compare(
            kind,
            &model,
            (&[3, 1, 4, 1, 5, 9], model.steps()),
            n,
            device,
        );
    }
}

/// [`compare`] for ARUN (`hidden` 24, controller 6) over `steps`-step sequences.
pub fn compare_arun(device: &Device, steps: usize) {
    let model = classifier(SeqKind::Arun, 24, 6, 4, &dales::device::cpu().autodiff());
    // h_T, 12 cell tensors, the readout's weight and bias.
    compare(
        SeqKind::Arun,
        &model,
        (&[3, 1, 4, 1, 5, 9], steps),
        15,
        device,
    );
}
