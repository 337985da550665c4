//! Row-sequential images (spec B4): an image is read one row per time step, so a 28 × 28
//! image is a sequence of 28 steps of 28 pixels in `[0, 1]` (`pixel / 255`), and its label is
//! the target of the last step, the only one scored.
//!
//! ```
//! use dales_data::Split;
//! use dales_data::rows::RowSequences;
//! use dales_data::task::Task;
//!
//! let split = Split::new(vec![0, 51, 102, 255], vec![1], 2, 2, 2).unwrap();
//! let task = RowSequences::new(split);
//! let batch = task.batch(&[0]);
//! assert_eq!((batch.steps, batch.width), (2, 2));
//! assert_eq!(batch.input(0, 1), [0.4, 1.0]);
//! assert_eq!(batch.mask, [false, true]);
//! ```

use crate::Split;
use crate::task::{Batch, Task};

/// Images read one row per step, the label the target of the last step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSequences {
    split: Split,
}

impl RowSequences {
    /// The task over the images of `split`.
    pub fn new(split: Split) -> Self {
        RowSequences { split }
    }

    /// The images.
    pub fn split(&self) -> &Split {
        &self.split
    }
}

impl Task for RowSequences {
    fn len(&self) -> usize {
        self.split.len()
    }

    fn steps(&self) -> usize {
        self.split.rows()
    }

    fn width(&self) -> usize {
        self.split.cols()
    }

    fn classes(&self) -> usize {
        self.split.n_classes()
    }

    fn batch(&self, idx: &[usize]) -> Batch {
        let mut inputs = Vec::new();
        // Row-major images are already row after row: (B, rows, cols) = (B, T, d).
        self.split.gather_f32(idx, &mut inputs);
        Batch::labelled_at_last_step(&self.split, idx, (self.steps(), self.width()), inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_steps_and_the_last_is_scored() {
        // Two 3 × 2 images (3 rows of 2 pixels).
        let images: Vec<u8> = (0..12).map(|v| (v * 20) as u8).collect();
        let task = RowSequences::new(Split::new(images, vec![2, 0], 3, 2, 3).unwrap());
        assert_eq!((task.len(), task.steps(), task.width()), (2, 3, 2));
        let b = task.batch(&[1, 0]);
        // Example 0 of the batch is image 1: pixels 6..12, row t = pixels 6 + 2t, 7 + 2t.
        for t in 0..3 {
            let want = [
                (6 + 2 * t) as f32 * 20.0 / 255.0,
                (7 + 2 * t) as f32 * 20.0 / 255.0,
            ];
            assert_eq!(b.input(0, t), want);
        }
        assert_eq!(b.input(1, 0), [0.0, 20.0 / 255.0]);
        assert_eq!(b.targets, [0, 0, 0, 0, 0, 2]);
        assert_eq!(b.mask, [false, false, true, false, false, true]);
    }
}
