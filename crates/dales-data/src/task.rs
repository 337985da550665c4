//! Supervised tasks: what a model is trained and evaluated on. A task holds a fixed set of
//! examples and turns any of them into a [`Batch`] of inputs, targets and a mask; models only
//! ever see the tensors made from it.
//!
//! - [`Images`]: each image read at once (one step of `rows × cols` pixels), its label the
//!   target.
//! - [`crate::sequence::PixelSequences`]: each image read one pixel per step, scored at the
//!   last step.
//! - [`crate::rows::RowSequences`]: each image read one row per step, scored at the last step.
//! - [`crate::copy::CopyTask`]: symbol sequences to replay after a delay, scored at every step.
//! - [`crate::adding::AddingTask`]: the adding problem, a real-valued target at the last step.
//!
//! ```
//! use dales_data::Split;
//! use dales_data::task::{Images, Task};
//!
//! let split = Split::new(vec![0, 255, 255, 0], vec![1, 0], 1, 2, 2).unwrap();
//! let task = Images::new(split);
//! let batch = task.batch(&[1, 0]);
//! assert_eq!((batch.size, batch.steps, batch.width), (2, 1, 2));
//! assert_eq!(batch.inputs, [1.0, 0.0, 0.0, 1.0]);
//! assert_eq!(batch.targets, [0, 1]);
//! assert!(batch.mask.iter().all(|&m| m));
//! ```

use std::fmt::Debug;

use crate::Split;

/// Examples of a task as arrays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Examples `B`.
    pub size: usize,
    /// Steps per example `T` (1 for an image read at once).
    pub steps: usize,
    /// Inputs per step `d`.
    pub width: usize,
    /// The inputs, `(B, T, d)` row-major.
    pub inputs: Vec<f32>,
    /// The target class of every step, `(B, T)` row-major; meaningful where `mask` is set.
    pub targets: Vec<usize>,
    /// Whether a step is scored, `(B, T)` row-major.
    pub mask: Vec<bool>,
    /// The real-valued targets of a regression task, `(B, T, k)` row-major (empty for
    /// classification).
    pub values: Vec<f32>,
}

impl Batch {
    /// The input of step `t` of example `b`.
    pub fn input(&self, b: usize, t: usize) -> &[f32] {
        let start = (b * self.steps + t) * self.width;
        &self.inputs[start..start + self.width]
    }
}

/// What a task asks of a model's output at a scored step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One of `n` classes: cross-entropy loss, error rate.
    Classes(usize),
    /// `n` real values: mean squared error.
    Values(usize),
}

/// A supervised task over a fixed set of examples.
pub trait Task: Send + Sync + Debug {
    /// Number of examples.
    fn len(&self) -> usize;

    /// Whether there is no example.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Steps per example.
    fn steps(&self) -> usize;

    /// Inputs per step.
    fn width(&self) -> usize;

    /// Target classes (targets are in `0..classes()`; 0 for a regression task).
    fn classes(&self) -> usize;

    /// Classes or real values.
    fn target(&self) -> Target {
        Target::Classes(self.classes())
    }

    /// The examples `idx`, in that order.
    ///
    /// # Panics
    /// If an index is `>= len()`.
    fn batch(&self, idx: &[usize]) -> Batch;

    /// The shape `(channels, rows, cols)` of the images a batch holds, one per example, for
    /// tasks that read images at once (`None` for sequences).
    fn image_shape(&self) -> Option<ImageShape> {
        None
    }
}

/// The shape of an image, `(channels, rows, cols)`, channel-major.
pub type ImageShape = (usize, usize, usize);

/// Images read at once: one step of `rows × cols` pixels in `[0, 1]` (`pixel / 255`), the
/// label the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    split: Split,
}

impl Images {
    /// The task over the images of `split`.
    pub fn new(split: Split) -> Self {
        Images { split }
    }

    /// The images.
    pub fn split(&self) -> &Split {
        &self.split
    }
}

impl Task for Images {
    fn len(&self) -> usize {
        self.split.len()
    }

    fn steps(&self) -> usize {
        1
    }

    fn width(&self) -> usize {
        self.split.pixels_per_image()
    }

    fn classes(&self) -> usize {
        self.split.n_classes()
    }

    fn image_shape(&self) -> Option<ImageShape> {
        let s = &self.split;
        Some((s.channels(), s.rows(), s.cols()))
    }

    fn batch(&self, idx: &[usize]) -> Batch {
        let mut inputs = Vec::new();
        self.split.gather_f32(idx, &mut inputs);
        Batch {
            size: idx.len(),
            steps: 1,
            width: self.width(),
            inputs,
            targets: labels(&self.split, idx),
            mask: vec![true; idx.len()],
            values: Vec::new(),
        }
    }
}

impl Batch {
    /// The batch of `split`'s examples `idx` as sequences of `steps` steps of `width` inputs
    /// (`inputs`, `(B, T, d)` row-major), each scored at its last step only, by its label.
    pub(crate) fn labelled_at_last_step(
        split: &Split,
        idx: &[usize],
        (steps, width): (usize, usize),
        inputs: Vec<f32>,
    ) -> Batch {
        let mut targets = vec![0; idx.len() * steps];
        let mut mask = vec![false; idx.len() * steps];
        for (b, label) in labels(split, idx).into_iter().enumerate() {
            targets[(b + 1) * steps - 1] = label;
            mask[(b + 1) * steps - 1] = true;
        }
        Batch {
            size: idx.len(),
            steps,
            width,
            inputs,
            targets,
            mask,
            values: Vec::new(),
        }
    }
}

/// The labels of `split`'s examples `idx` as classes.
pub(crate) fn labels(split: &Split, idx: &[usize]) -> Vec<usize> {
    idx.iter().map(|&i| usize::from(split.label(i))).collect()
}
