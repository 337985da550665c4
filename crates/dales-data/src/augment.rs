//! Training-time augmentation of images: a random crop of the zero-padded image and a random
//! horizontal flip, the standard CIFAR recipe (off by default: the DANN paper's loader has
//! none).
//!
//! Each example of a batch draws its crop offset and flip from a generator seeded by the
//! batch's seed, so a run that resumes draws the same augmentations.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::task::{Batch, ImageShape};

/// The `[data.augment]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Zero padding on each side before a random crop back to the image size (0: no crop).
    #[serde(default)]
    pub crop_padding: usize,
    /// Flip each image left–right with probability ½.
    #[serde(default)]
    pub flip: bool,
}

impl Augment {
    /// Check the settings against images of `shape` (`None`: the task has no images).
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidArgument`] naming `data.augment` for a task without images or a
    /// padding of at least the image size.
    pub fn check(&self, shape: Option<ImageShape>) -> Result<(), DataError> {
        let Some((_, rows, cols)) = shape else {
            return Err(DataError::InvalidArgument {
                reason: "`data.augment` is for images read at once (the feed-forward models); \
                         this task has no image batches"
                    .to_owned(),
            });
        };
        if self.crop_padding >= rows.min(cols) {
            return Err(DataError::InvalidArgument {
                reason: format!(
                    "`data.augment.crop_padding` = {}: less than the image size {rows}x{cols}",
                    self.crop_padding
                ),
            });
        }
        Ok(())
    }

    /// Augment every image of `batch` (one step per example, `shape` images) in place, with
    /// draws from `seed`.
    ///
    /// # Panics
    /// If the batch's width is not the image size of `shape` (checked by [`Augment::check`]
    /// when the run starts).
    pub fn apply(&self, batch: &mut Batch, (channels, rows, cols): ImageShape, seed: u64) {
        assert_eq!(
            batch.width * batch.steps,
            channels * rows * cols,
            "image batch"
        );
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let p = self.crop_padding as i64;
        let mut out = vec![0.0f32; channels * rows * cols];
        for image in batch.inputs.chunks_mut(channels * rows * cols) {
            // The crop's top-left corner in padded coordinates, then the flip.
            let (dy, dx) = (
                rng.random_range(0..=2 * p) - p,
                rng.random_range(0..=2 * p) - p,
            );
            let flip = self.flip && rng.random_bool(0.5);
            for c in 0..channels {
                for r in 0..rows {
                    for col in 0..cols {
                        let src_col = if flip { cols - 1 - col } else { col } as i64 + dx;
                        let src_row = r as i64 + dy;
                        let inside = (0..rows as i64).contains(&src_row)
                            && (0..cols as i64).contains(&src_col);
                        out[(c * rows + r) * cols + col] = if inside {
                            image[(c * rows + src_row as usize) * cols + src_col as usize]
                        } else {
                            0.0
                        };
                    }
                }
            }
            image.copy_from_slice(&out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(images: Vec<f32>, width: usize) -> Batch {
        let size = images.len() / width;
        Batch {
            size,
            steps: 1,
            width,
            inputs: images,
            targets: vec![0; size],
            mask: vec![true; size],
            values: Vec::new(),
        }
    }

    /// A flip alone mirrors each row; over many images about half are flipped.
    #[test]
    fn flip_mirrors_rows_half_the_time() {
        let image: Vec<f32> = (0..6).map(|v| v as f32).collect(); // 1 × 2 × 3
        let mut b = batch(image.repeat(400), 6);
        let aug = Augment {
            crop_padding: 0,
            flip: true,
        };
        aug.apply(&mut b, (1, 2, 3), 9);
        let mirrored = [2.0, 1.0, 0.0, 5.0, 4.0, 3.0];
        let mut flipped = 0;
        for img in b.inputs.chunks(6) {
            if img == mirrored {
                flipped += 1;
            } else {
                assert_eq!(img, image.as_slice());
            }
        }
        // Binomial(400, ½): 200 ± 10; 5 sd either side.
        assert!((150..=250).contains(&flipped), "{flipped}");
    }

    /// A crop is a shift of the image with zeros coming in, the same in every channel, every
    /// shift in −p..=p drawn; the same seed draws the same crops.
    #[test]
    fn crops_shift_every_channel_alike_and_are_seeded() {
        let (c, h, w) = (2, 4, 4);
        let image: Vec<f32> = (0..c * h * w).map(|v| 1.0 + v as f32).collect();
        let aug = Augment {
            crop_padding: 1,
            flip: false,
        };
        let mut b = batch(image.repeat(200), c * h * w);
        aug.apply(&mut b, (c, h, w), 3);
        let mut shifts = std::collections::BTreeSet::new();
        for img in b.inputs.chunks(c * h * w) {
            // Find the shift that explains the image.
            let found = (-1i64..=1)
                .flat_map(|dy| (-1i64..=1).map(move |dx| (dy, dx)))
                .find(|&(dy, dx)| {
                    (0..c * h * w).all(|k| {
                        let (ch, r, col) = (k / (h * w), (k / w) % h, k % w);
                        let (sr, sc) = (r as i64 + dy, col as i64 + dx);
                        let want = if (0..h as i64).contains(&sr) && (0..w as i64).contains(&sc) {
                            image[(ch * h + sr as usize) * w + sc as usize]
                        } else {
                            0.0
                        };
                        img[k] == want
                    })
                })
                .expect("every crop is a shift");
            shifts.insert(found);
        }
        assert_eq!(shifts.len(), 9);
        let mut again = batch(image.repeat(200), c * h * w);
        aug.apply(&mut again, (c, h, w), 3);
        assert_eq!(again.inputs, b.inputs);
    }

    #[test]
    fn settings_are_checked_against_the_images() {
        let aug = Augment {
            crop_padding: 4,
            flip: true,
        };
        aug.check(Some((3, 32, 32))).unwrap();
        let e = aug.check(Some((1, 4, 4))).unwrap_err().to_string();
        assert!(e.contains("data.augment.crop_padding"), "{e}");
        let e = aug.check(None).unwrap_err().to_string();
        assert!(e.contains("data.augment"), "{e}");
    }
}
