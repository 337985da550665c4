//! The adding problem (spec B4), a long-memory regression benchmark: each step shows a value
//! `U(0, 1)` and a marker bit; exactly two steps are marked, one in each half of the sequence,
//! and the target, read after the last step, is the sum of the two marked values. Predicting
//! the mean, 1, gives a mean squared error of 1/6 (the variance of a sum of two uniforms).
//!
//! ```
//! use dales_data::adding::AddingSpec;
//! use dales_data::task::{Target, Task};
//!
//! let task = AddingSpec { length: 20 }.generate(5, 1).unwrap();
//! assert_eq!((task.steps(), task.width(), task.target()), (20, 2, Target::Values(1)));
//! let batch = task.batch(&[3]);
//! let marked: f32 = (0..20)
//!     .map(|t| batch.input(0, t))
//!     .filter(|x| x[1] == 1.0)
//!     .map(|x| x[0])
//!     .sum();
//! assert_eq!(batch.values[19], marked);
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::DataError;
use crate::task::{Batch, Target, Task};

/// The length of the adding problem's sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddingSpec {
    /// Steps per sequence (the paper: 20).
    pub length: usize,
}

impl AddingSpec {
    /// `n` sequences drawn from `seed`: per sequence the `length` values, then the two marked
    /// positions (uniform in the first half, uniform in the second).
    ///
    /// # Errors
    /// If the sequences are shorter than 2 steps or `n` is 0.
    pub fn generate(&self, n: usize, seed: u64) -> Result<AddingTask, DataError> {
        let length = self.length;
        if length < 2 {
            return Err(DataError::InvalidArgument {
                reason: format!("adding-problem length {length} must be at least 2"),
            });
        }
        if n == 0 {
            return Err(DataError::InvalidArgument {
                reason: "the adding problem needs at least 1 sequence".to_owned(),
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let half = length / 2;
        let mut inputs = Vec::with_capacity(n * length * 2);
        let mut targets = Vec::with_capacity(n);
        for _ in 0..n {
            let values: Vec<f32> = (0..length).map(|_| rng.random::<f32>()).collect();
            let first = rng.random_range(0..half);
            let second = rng.random_range(half..length);
            for (t, &v) in values.iter().enumerate() {
                let marked = t == first || t == second;
                inputs.extend([v, if marked { 1.0 } else { 0.0 }]);
            }
            targets.push(values[first] + values[second]);
        }
        Ok(AddingTask {
            length,
            inputs,
            targets,
        })
    }
}

/// Sequences of the adding problem, each scored at its last step.
#[derive(Debug, Clone, PartialEq)]
pub struct AddingTask {
    length: usize,
    /// `(n, length, 2)`: value, marker.
    inputs: Vec<f32>,
    /// `(n)`: the sum of the two marked values.
    targets: Vec<f32>,
}

impl AddingTask {
    /// The target of sequence `i`.
    pub fn target_of(&self, i: usize) -> f32 {
        self.targets[i]
    }
}

impl Task for AddingTask {
    fn len(&self) -> usize {
        self.targets.len()
    }

    fn steps(&self) -> usize {
        self.length
    }

    fn width(&self) -> usize {
        2
    }

    fn classes(&self) -> usize {
        0
    }

    fn target(&self) -> Target {
        Target::Values(1)
    }

    fn batch(&self, idx: &[usize]) -> Batch {
        let (t, b) = (self.length, idx.len());
        let mut inputs = Vec::with_capacity(b * t * 2);
        let mut values = vec![0.0f32; b * t];
        let mut mask = vec![false; b * t];
        for (row, &i) in idx.iter().enumerate() {
            inputs.extend_from_slice(&self.inputs[i * t * 2..(i + 1) * t * 2]);
            values[(row + 1) * t - 1] = self.targets[i];
            mask[(row + 1) * t - 1] = true;
        }
        Batch {
            size: b,
            steps: t,
            width: 2,
            inputs,
            targets: vec![0; b * t],
            mask,
            values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_markers_one_per_half_and_the_sum() {
        let task = AddingSpec { length: 20 }.generate(500, 7).unwrap();
        let b = task.batch(&(0..500).collect::<Vec<_>>());
        let mut mean = 0.0f64;
        for i in 0..500 {
            let marks: Vec<usize> = (0..20).filter(|&t| b.input(i, t)[1] == 1.0).collect();
            assert_eq!(marks.len(), 2);
            assert!(marks[0] < 10 && marks[1] >= 10);
            let sum = b.input(i, marks[0])[0] + b.input(i, marks[1])[0];
            assert_eq!(b.values[i * 20 + 19], sum);
            assert!(b.mask[i * 20 + 19] && !b.mask[i * 20 + 18]);
            assert!((0..20).all(|t| (0.0..1.0).contains(&b.input(i, t)[0])));
            mean += f64::from(sum) / 500.0;
        }
        // The sum of two U(0, 1) has mean 1 and sd √(1/6) ≈ 0.41: 500 draws, 4 s.e. = 0.073.
        assert!((mean - 1.0).abs() < 0.073, "{mean}");
        assert_eq!(task, AddingSpec { length: 20 }.generate(500, 7).unwrap());
        assert!(AddingSpec { length: 1 }.generate(5, 0).is_err());
    }
}
