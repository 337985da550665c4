//! One training step — forward, loss (cross-entropy, or the mean squared error of a
//! regression task), backward, the optimiser's update — written once, for a run
//! ([`crate::run::Trainer`]) and for the benchmark ([`crate::bench`]).

use std::time::Instant;

use burn::tensor::{Tensor, TensorData, activation::log_softmax};

use crate::fused::Settings;
use crate::host::host_f64;
use crate::nn::Parameterised;
use crate::optim::Optimizer;

/// The target of every row of a model's outputs — a class, or real values for a regression
/// task — and whether the row is scored.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    /// One class per row (unused for regression).
    pub classes: Vec<usize>,
    /// Whether a row counts in the loss and the error.
    pub scored: Vec<bool>,
    /// Regression targets, `k` per row, row-major; empty for classification.
    pub values: Vec<f32>,
}

impl Targets {
    /// Every row scored, one class each.
    pub fn all(classes: Vec<usize>) -> Self {
        let scored = vec![true; classes.len()];
        Targets {
            classes,
            scored,
            values: Vec::new(),
        }
    }

    /// Whether the targets are real values (the loss is the mean squared error).
    pub fn is_regression(&self) -> bool {
        !self.values.is_empty()
    }

    /// Rows scored.
    pub fn count(&self) -> usize {
        self.scored.iter().filter(|&&s| s).count()
    }
}

/// Mean cross-entropy of `logits (B, C)` against class indices `labels (B)`.
///
/// # Panics
/// If `labels.len()` differs from B or a label is ≥ C (an internal invariant: datasets are
/// validated when loaded).
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize]) -> Tensor<1> {
    scored_cross_entropy(logits, labels, &vec![true; labels.len()])
}

/// Mean cross-entropy of `logits (R, C)` against `labels (R)` over the rows `scored` marks.
///
/// # Panics
/// As [`cross_entropy`], or if `scored` has another length or marks no row.
pub fn scored_cross_entropy(logits: Tensor<2>, labels: &[usize], scored: &[bool]) -> Tensor<1> {
    let [rows, c] = logits.dims();
    assert_eq!(labels.len(), rows, "one label per row");
    assert_eq!(scored.len(), rows, "one mask entry per row");
    let mut onehot = vec![0f32; rows * c];
    let mut n = 0usize;
    for (i, (&y, &s)) in labels.iter().zip(scored).enumerate() {
        assert!(y < c, "label {y} out of range for {c} classes");
        if s {
            onehot[i * c + y] = 1.0;
            n += 1;
        }
    }
    assert!(n > 0, "no scored row");
    let device = logits.device();
    let target = Tensor::<2>::from_data(
        TensorData::new(onehot, [rows, c]),
        (&device, logits.dtype()),
    );
    -(log_softmax(logits, 1) * target).sum() / n as f64
}

/// Mean squared error of `outputs (R, k)` against `values (R·k)` over the rows `scored` marks
/// (the mean over those rows and the `k` outputs, as PyTorch's `MSELoss`).
///
/// # Panics
/// If the lengths disagree or no row is scored.
pub fn scored_mse(outputs: Tensor<2>, values: &[f32], scored: &[bool]) -> Tensor<1> {
    let [rows, k] = outputs.dims();
    assert_eq!(values.len(), rows * k, "k values per row");
    assert_eq!(scored.len(), rows, "one mask entry per row");
    let n = scored.iter().filter(|&&s| s).count();
    assert!(n > 0, "no scored row");
    let device = outputs.device();
    let dtype = outputs.dtype();
    let target = Tensor::<2>::from_data(
        TensorData::new(values.to_vec(), [rows, k]),
        (&device, dtype),
    );
    let mask: Vec<f32> = scored.iter().map(|&s| f32::from(u8::from(s))).collect();
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [rows, 1]), (&device, dtype));
    ((outputs - target) * mask).square().sum() / (n * k) as f64
}

/// The loss of `outputs` against `targets`: cross-entropy over classes, or the mean squared
/// error of real-valued targets.
pub fn loss(outputs: Tensor<2>, targets: &Targets) -> Tensor<1> {
    if targets.is_regression() {
        scored_mse(outputs, &targets.values, &targets.scored)
    } else {
        scored_cross_entropy(outputs, &targets.classes, &targets.scored)
    }
}

/// Scored rows of `logits` (row-major, `classes` per row) whose largest entry is the target's.
pub fn count_correct(logits: &[f64], classes: usize, targets: &Targets) -> usize {
    logits
        .chunks_exact(classes)
        .zip(&targets.classes)
        .zip(&targets.scored)
        .filter(|((row, y), s)| {
            let best = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i);
            **s && best == Some(**y)
        })
        .count()
}

/// What one training step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// The batch's loss before the update (no update when it is not finite).
    pub loss: f32,
    /// Scored rows predicted right before the update (0 for regression).
    pub correct: usize,
    /// Milliseconds in the forward pass (with the loss), the backward pass and the update.
    pub phases_ms: [f64; 3],
}

/// One training step of `model` on rayon's workers under `settings`: `logits(model)`, the
/// loss against `targets` ([`loss`]), backpropagation, and `optim`'s update at `lr`. A loss
/// that is not finite leaves the model as it was.
pub fn step<M: Parameterised + Clone + Send>(
    model: &mut M,
    optim: &mut Optimizer,
    lr: f64,
    settings: Settings,
    logits: impl FnOnce(&M) -> Tensor<2> + Send,
    targets: &Targets,
) -> StepReport {
    let ms = |t: &Instant| t.elapsed().as_secs_f64() * 1e3;
    settings.run(|| {
        let start = Instant::now();
        let logits = logits(model);
        let classes = logits.dims()[1];
        let correct = if targets.is_regression() {
            0
        } else {
            count_correct(&host_f64(logits.clone()), classes, targets)
        };
        let loss = loss(logits, targets);
        let loss_value = loss.clone().into_scalar::<f32>();
        let forward = ms(&start);
        let (mut backward, mut update) = (0.0, 0.0);
        if loss_value.is_finite() {
            let mut grads = loss.backward();
            backward = ms(&start) - forward;
            *model = optim.step(lr, model.clone(), &mut grads);
            update = ms(&start) - forward - backward;
        }
        StepReport {
            loss: loss_value,
            correct,
            phases_ms: [forward, backward, update],
        }
    })
}
