//! Images as pixel sequences, for the sequential tasks of the adaptation paper (spec C3): one
//! pixel per time step in row-major order (sMNIST), optionally in a fixed seeded permutation
//! (psMNIST), optionally after `p × p` average pooling so that a 28 × 28 image becomes 196
//! steps at `p = 2` (a variant that trains on a CPU).
//!
//! [`PixelSequences`] is the task: an image per sequence, its label the target of the last
//! step.
//!
//! ```
//! use dales_data::sequence::SequenceSpec;
//!
//! let spec = SequenceSpec { pool: 2, permutation_seed: Some(400) };
//! let order = spec.order(28, 28).unwrap();
//! assert_eq!(order.len(), 196);
//! let image = vec![255u8; 28 * 28];
//! let mut seq = Vec::new();
//! spec.append(&image, 28, 28, &order, &mut seq);
//! assert_eq!(seq, vec![1.0; 196]);
//! ```

use crate::Split;
use crate::batch::{permutation, rng_for};
use crate::error::DataError;
use crate::task::{Batch, Task};

/// ChaCha8 stream of the pixel permutation (see [`crate::batch`]): distinct from the
/// validation split's and every epoch order's.
pub const PERMUTATION_STREAM: u64 = u64::MAX - 1;

/// How an image becomes a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceSpec {
    /// Average-pooling factor (1: every pixel is a step).
    pub pool: usize,
    /// Seed of the fixed pixel permutation (psMNIST); `None` keeps row-major order (sMNIST).
    pub permutation_seed: Option<u64>,
}

impl SequenceSpec {
    /// Steps per sequence for `rows × cols` images.
    pub fn steps(&self, rows: usize, cols: usize) -> Result<usize, DataError> {
        self.check(rows, cols)?;
        Ok((rows / self.pool) * (cols / self.pool))
    }

    fn check(&self, rows: usize, cols: usize) -> Result<(), DataError> {
        if self.pool == 0 || !rows.is_multiple_of(self.pool) || !cols.is_multiple_of(self.pool) {
            return Err(DataError::InvalidArgument {
                reason: format!(
                    "sequence pooling factor {} must be ≥ 1 and divide the image size {rows} × {cols}",
                    self.pool
                ),
            });
        }
        Ok(())
    }

    /// The order in which the pooled pixels are presented: step `t` shows pooled pixel
    /// `order[t]` (row-major index). Identity without a permutation seed.
    pub fn order(&self, rows: usize, cols: usize) -> Result<Vec<usize>, DataError> {
        let steps = self.steps(rows, cols)?;
        Ok(match self.permutation_seed {
            Some(seed) => permutation(steps, &mut rng_for(seed, PERMUTATION_STREAM)),
            None => (0..steps).collect(),
        })
    }

    /// Append the sequence of one `rows × cols` byte image to `out`: pooled pixel values in
    /// [0, 1] in the given `order` (from [`SequenceSpec::order`]).
    ///
    /// # Panics
    /// If `image` is not `rows × cols` or `order` does not fit the pooled image (programming
    /// errors; [`SequenceSpec::order`] checks the sizes).
    pub fn append(
        &self,
        image: &[u8],
        rows: usize,
        cols: usize,
        order: &[usize],
        out: &mut Vec<f32>,
    ) {
        assert_eq!(image.len(), rows * cols, "image is rows × cols");
        let p = self.pool;
        let pooled_cols = cols / p;
        let divisor = 255.0 * (p * p) as f32;
        out.extend(order.iter().map(|&k| {
            let (r, c) = (k / pooled_cols * p, k % pooled_cols * p);
            let sum: u32 = (r..r + p)
                .flat_map(|row| image[row * cols + c..row * cols + c + p].iter())
                .map(|&v| u32::from(v))
                .sum();
            sum as f32 / divisor
        }));
    }
}

/// Images read as pixel sequences ([`SequenceSpec`]): one pooled pixel per step, the label the
/// target of the last step (the only one scored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PixelSequences {
    split: Split,
    spec: SequenceSpec,
    order: Vec<usize>,
}

impl PixelSequences {
    /// The task over the images of `split`, read as `spec` says.
    ///
    /// # Errors
    /// As [`SequenceSpec::order`], when the pooling factor does not divide the image size.
    pub fn new(split: Split, spec: SequenceSpec) -> Result<Self, DataError> {
        let order = spec.order(split.rows(), split.cols())?;
        Ok(PixelSequences { split, spec, order })
    }

    /// The images.
    pub fn split(&self) -> &Split {
        &self.split
    }
}

impl Task for PixelSequences {
    fn len(&self) -> usize {
        self.split.len()
    }

    fn steps(&self) -> usize {
        self.order.len()
    }

    fn width(&self) -> usize {
        1
    }

    fn classes(&self) -> usize {
        self.split.n_classes()
    }

    fn batch(&self, idx: &[usize]) -> Batch {
        let steps = self.steps();
        let mut inputs = Vec::with_capacity(idx.len() * steps);
        for &i in idx {
            let (rows, cols) = (self.split.rows(), self.split.cols());
            self.spec
                .append(self.split.image(i), rows, cols, &self.order, &mut inputs);
        }
        Batch::labelled_at_last_step(&self.split, idx, (steps, 1), inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_pooling() {
        let image: Vec<u8> = (0..16).map(|v| (v * 10) as u8).collect(); // 4 × 4
        let plain = SequenceSpec {
            pool: 1,
            permutation_seed: None,
        };
        let mut seq = Vec::new();
        plain.append(&image, 4, 4, &plain.order(4, 4).unwrap(), &mut seq);
        let want: Vec<f32> = image.iter().map(|&v| v as f32 / 255.0).collect();
        assert_eq!(seq, want);

        // 2 × 2 blocks: top-left holds 0, 10, 40, 50 → mean 25.
        let pooled = SequenceSpec {
            pool: 2,
            permutation_seed: None,
        };
        let mut seq = Vec::new();
        pooled.append(&image, 4, 4, &pooled.order(4, 4).unwrap(), &mut seq);
        let want = [25.0, 45.0, 105.0, 125.0].map(|v: f32| v / 255.0);
        for (g, w) in seq.iter().zip(want) {
            assert!((g - w).abs() < 1e-7);
        }
    }

    #[test]
    fn permutation_is_seeded_and_reorders() {
        let spec = SequenceSpec {
            pool: 1,
            permutation_seed: Some(400),
        };
        let order = spec.order(28, 28).unwrap();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..784).collect::<Vec<_>>());
        assert_eq!(order, spec.order(28, 28).unwrap());
        let other = SequenceSpec {
            permutation_seed: Some(600),
            ..spec
        }
        .order(28, 28)
        .unwrap();
        assert_ne!(order, other);
        let image: Vec<u8> = (0..784).map(|v| (v % 251) as u8).collect();
        let mut seq = Vec::new();
        spec.append(&image, 28, 28, &order, &mut seq);
        for (t, &k) in order.iter().enumerate() {
            assert_eq!(seq[t], image[k] as f32 / 255.0);
        }
    }

    #[test]
    fn bad_pooling_is_an_error() {
        for pool in [0, 3] {
            let e = SequenceSpec {
                pool,
                permutation_seed: None,
            }
            .steps(28, 28)
            .unwrap_err();
            assert!(e.to_string().contains(&format!("factor {pool}")), "{e}");
        }
    }

    #[test]
    fn pixel_sequences_score_the_last_step() {
        let images: Vec<u8> = (0..32).map(|v| (v * 8) as u8).collect(); // two 4 × 4 images
        let split = Split::new(images, vec![3, 1], 4, 4, 4).unwrap();
        let spec = SequenceSpec {
            pool: 2,
            permutation_seed: None,
        };
        let task = PixelSequences::new(split.clone(), spec).unwrap();
        assert_eq!(
            (task.len(), task.steps(), task.width(), task.classes()),
            (2, 4, 1, 4)
        );
        let b = task.batch(&[1, 0]);
        let mut want = Vec::new();
        let order = spec.order(4, 4).unwrap();
        spec.append(split.image(1), 4, 4, &order, &mut want);
        spec.append(split.image(0), 4, 4, &order, &mut want);
        assert_eq!(b.inputs, want);
        assert_eq!(b.targets, [0, 0, 0, 1, 0, 0, 0, 3]);
        let scored: Vec<usize> = (0..8).filter(|&i| b.mask[i]).collect();
        assert_eq!(scored, [3, 7]);
    }
}
