//! A model's loss and error on a task, without autodiff.

use dales_data::task::Task;

use crate::host::host_f64;
use crate::learner::Learner;
use crate::train::{Targets, count_correct};

/// Mean cross-entropy and error (%) of `model` on `task`, over its scored rows, in chunks of
/// `chunk` examples, without autodiff; for a regression task the mean squared error twice.
pub fn evaluate<L: Learner>(model: &L, task: &dyn Task, chunk: usize) -> (f64, f64) {
    let model = model.inference();
    let device = model.device();
    score(task.len(), chunk, |idx| {
        let (inputs, targets) = model.readout().apply(task.batch(idx), &device);
        (host_f64(model.logits(inputs)), targets)
    })
}

/// Mean cross-entropy and error (%) over the scored rows of the first `n` examples, in chunks
/// of `chunk`, from `batch(idx)`: the row-major host logits of examples `idx` and the targets
/// of their rows. For real-valued targets, the mean squared error (over the scored rows and
/// the outputs) as both the loss and the error.
pub fn score(
    n: usize,
    chunk: usize,
    mut batch: impl FnMut(&[usize]) -> (Vec<f64>, Targets),
) -> (f64, f64) {
    let (mut loss, mut correct, mut rows) = (0.0f64, 0usize, 0usize);
    let mut regression = false;
    let all: Vec<usize> = (0..n).collect();
    for idx in all.chunks(chunk.max(1)) {
        let (logits, targets) = batch(idx);
        let c = logits.len() / targets.classes.len().max(1);
        if targets.is_regression() {
            regression = true;
            for ((out, want), &s) in logits
                .chunks_exact(c)
                .zip(targets.values.chunks_exact(c))
                .zip(&targets.scored)
            {
                if s {
                    loss += out
                        .iter()
                        .zip(want)
                        .map(|(o, &w)| (o - f64::from(w)).powi(2))
                        .sum::<f64>()
                        / c as f64;
                }
            }
            rows += targets.count();
            continue;
        }
        let scored = targets.classes.iter().zip(&targets.scored);
        for (row, (&label, &s)) in logits.chunks_exact(c).zip(scored) {
            if s {
                let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                loss += lse - row[label];
            }
        }
        correct += count_correct(&logits, c, &targets);
        rows += targets.count();
    }
    let rows = rows.max(1) as f64;
    if regression {
        return (loss / rows, loss / rows);
    }
    (loss / rows, 100.0 * (1.0 - correct as f64 / rows))
}

/// Logits of the first `n` examples of `task` (the `--logits-out` of `dales eval`).
pub fn first_logits<L: Learner>(model: &L, task: &dyn Task, n: usize) -> Vec<Vec<f64>> {
    let model = model.inference();
    let idx: Vec<usize> = (0..n.min(task.len())).collect();
    let (inputs, _) = model.readout().apply(task.batch(&idx), &model.device());
    let logits = host_f64(model.logits(inputs));
    let c = logits.len() / idx.len().max(1);
    logits.chunks_exact(c.max(1)).map(|r| r.to_vec()).collect()
}
