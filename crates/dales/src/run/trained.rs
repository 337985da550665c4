//! A run's trained model applied to arrays of inputs: the logits of examples given as plain
//! numbers, for notebooks and other programs (the Python package's `Run.model()`).

use super::dir::{AnyConfig, RunDir};
use crate::error::{Error, Result};
use crate::host::{host_f64, tensor};
use crate::learner::Learner;
use crate::nn::Mlp;
use crate::nn::convnet::ConvNet;
use crate::nn::recurrent_net::RecurrentNet;
use crate::nn::seq::SeqClassifier;

/// The model in a run directory's checkpoint, without autodiff, and the shape of its inputs.
#[derive(Debug, Clone)]
pub struct TrainedModel {
    model: Model,
    input: InputShape,
}

#[derive(Debug, Clone)]
enum Model {
    FeedForward(Mlp),
    Conv(ConvNet),
    Recurrent(RecurrentNet),
    Sequence(SeqClassifier),
}

/// Apply `$f` to the model whatever its family.
macro_rules! each_model {
    ($model:expr, $m:ident => $f:expr) => {
        match $model {
            Model::FeedForward($m) => $f,
            Model::Conv($m) => $f,
            Model::Recurrent($m) => $f,
            Model::Sequence($m) => $f,
        }
    };
}

/// What one example looks like to a [`TrainedModel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputShape {
    /// A flat vector of this many numbers (any shape of that size is accepted).
    Flat(usize),
    /// A sequence of any length, of this many numbers per step.
    Sequence(usize),
}

/// Logits of a batch: row-major `rows × classes` (one row per example, or per step of each
/// example for a model that reads out every step).
#[derive(Debug, Clone, PartialEq)]
pub struct Logits {
    /// The values.
    pub values: Vec<f32>,
    /// Rows.
    pub rows: usize,
    /// Classes (outputs).
    pub classes: usize,
}

impl TrainedModel {
    /// The model of the run in `run`, checked against its configuration. Feed-forward
    /// examples are `n_in` numbers (any shape of that size), a convnet's `C·H·W` numbers
    /// (channel-major: `(C, H, W)`, or `(H, W)` for one channel), a recurrent or sequence
    /// model's sequences `(T, n_in)`.
    pub fn load(run: &RunDir) -> Result<TrainedModel> {
        let (model, input) = match &run.config {
            AnyConfig::FeedForward(c) => (
                Model::FeedForward(run.feed_forward()?.1.inference()),
                InputShape::Flat(c.model.n_in),
            ),
            AnyConfig::Conv(c) => (
                Model::Conv(run.conv()?.1.inference()),
                InputShape::Flat(c.model.in_shape.iter().product()),
            ),
            AnyConfig::Recurrent(c) => (
                Model::Recurrent(run.recurrent()?.1.inference()),
                InputShape::Sequence(c.model.n_in),
            ),
            AnyConfig::Sequence(c) => (
                Model::Sequence(run.sequence()?.1.inference()),
                InputShape::Sequence(c.model.n_in()),
            ),
        };
        Ok(TrainedModel { model, input })
    }

    /// What one example looks like.
    pub fn input_shape(&self) -> InputShape {
        self.input
    }

    /// Whether the logits have one row per step of each example (else one per example).
    pub fn every_step(&self) -> bool {
        each_model!(&self.model, m => m.readout()) == crate::learner::Readout::Every
    }

    /// The logits of the examples in `x`, a row-major array of `shape` whose first axis is
    /// the batch. A shape that does not fit the model is an error naming both.
    pub fn logits(&self, x: &[f32], shape: &[usize]) -> Result<Logits> {
        let dims = self.batch_dims(shape)?;
        if x.len() != dims.iter().product::<usize>() {
            return Err(bad_input(shape, "as many values as the shape says"));
        }
        let out = each_model!(&self.model, m => m.logits(tensor(x.to_vec(), dims, &m.device())));
        let [rows, classes] = out.dims();
        let values = host_f64(out).into_iter().map(|v| v as f32).collect();
        Ok(Logits {
            values,
            rows,
            classes,
        })
    }

    /// `shape` as the model's `(B, T, d)`.
    fn batch_dims(&self, shape: &[usize]) -> Result<[usize; 3]> {
        let Some((&b, example)) = shape.split_first() else {
            return Err(bad_input(
                shape,
                "a batch: an array whose first axis is the examples",
            ));
        };
        match self.input_shape() {
            InputShape::Flat(n) => {
                let size: usize = example.iter().product();
                if example.is_empty() || size != n {
                    return Err(bad_input(
                        shape,
                        &format!("(batch, {n}) or any (batch, …) of {n} values per example"),
                    ));
                }
                Ok([b, 1, n])
            }
            InputShape::Sequence(d) => match *example {
                [t, w] if w == d && t > 0 => Ok([b, t, d]),
                [t] if d == 1 && t > 0 => Ok([b, t, 1]),
                _ => Err(bad_input(
                    shape,
                    &format!("(batch, steps, {d}): sequences of {d} value(s) per step"),
                )),
            },
        }
    }
}

fn bad_input(shape: &[usize], expected: &str) -> Error {
    Error::option("inputs", format!("of shape {shape:?}"), expected)
}
