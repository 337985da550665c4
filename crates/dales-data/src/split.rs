//! Labelled images as bytes ([`Split`]) and where a dataset's labels came from
//! ([`LabelSite`]): what every dataset reader produces.

use std::path::{Path, PathBuf};

use crate::batch::{VALIDATION_STREAM, permutation, rng_for};
use crate::error::DataError;

/// Labelled images kept as bytes (one byte per pixel, one per label) to keep memory small;
/// they are converted to `f32` in `[0, 1]` one batch at a time with
/// [`gather_f32`](Self::gather_f32).
///
/// Colour images (CIFAR) keep their channels one after the other (channel-major, `C × rows ×
/// cols`, as PyTorch's tensors).
///
/// Invariants: `images.len() == len() * pixels_per_image()`, `labels.len() == len()`, every
/// label is `< n_classes()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub(crate) images: Vec<u8>,
    pub(crate) labels: Vec<u8>,
    pub(crate) n: usize,
    pub(crate) channels: usize,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) n_classes: usize,
}

impl Split {
    /// Builds a split from row-major pixel bytes (`labels.len()` images of `rows × cols`)
    /// and their labels.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidArgument`] if `rows`, `cols` or `n_classes` is 0, if the number
    /// of pixels is not `labels.len() * rows * cols`, or if a label is `>= n_classes`.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u8>,
        rows: usize,
        cols: usize,
        n_classes: usize,
    ) -> Result<Self, DataError> {
        Split::with_channels(images, labels, 1, rows, cols, n_classes)
    }

    /// As [`Split::new`] for images of `channels` planes of `rows × cols` each.
    ///
    /// # Errors
    ///
    /// As [`Split::new`]; `channels` must be at least 1.
    pub fn with_channels(
        images: Vec<u8>,
        labels: Vec<u8>,
        channels: usize,
        rows: usize,
        cols: usize,
        n_classes: usize,
    ) -> Result<Self, DataError> {
        let invalid = |reason: String| Err(DataError::InvalidArgument { reason });
        if rows == 0 || cols == 0 || channels == 0 {
            return invalid(format!("image size {channels} × {rows}x{cols} is empty"));
        }
        if n_classes == 0 {
            return invalid("number of classes must be at least 1".to_owned());
        }
        let n = labels.len();
        let pixels = channels.checked_mul(rows).and_then(|p| p.checked_mul(cols));
        if pixels.and_then(|p| p.checked_mul(n)) != Some(images.len()) {
            return invalid(format!(
                "{} pixel bytes are not {n} images of {channels} × {rows}x{cols}",
                images.len()
            ));
        }
        if let Some(&bad) = labels.iter().find(|&&l| usize::from(l) >= n_classes) {
            return invalid(format!("label {bad} out of range for {n_classes} classes"));
        }
        Ok(Self {
            images,
            labels,
            n,
            channels,
            rows,
            cols,
            n_classes,
        })
    }

    /// Colour channels per image (1 for the grey MNIST-format images, 3 for CIFAR).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the split has no examples.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Image height in pixels.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Image width in pixels.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `channels() * rows() * cols()`, the input dimension of a network.
    pub fn pixels_per_image(&self) -> usize {
        self.channels * self.rows * self.cols
    }

    /// Number of classes of the dataset (labels are in `0..n_classes()`).
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// All pixels, image after image, row-major.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Raw pixels of image `i`.
    ///
    /// # Panics
    ///
    /// If `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        self.check_index(i);
        let p = self.pixels_per_image();
        &self.images[i * p..(i + 1) * p]
    }

    /// Label of example `i`.
    ///
    /// # Panics
    ///
    /// If `i >= len()`.
    pub fn label(&self, i: usize) -> u8 {
        self.check_index(i);
        self.labels[i]
    }

    /// Pixels of image `i` as `pixel / 255.0`, row-major.
    ///
    /// # Panics
    ///
    /// If `i >= len()`.
    pub fn image_f32(&self, i: usize) -> impl ExactSizeIterator<Item = f32> + '_ {
        self.image(i).iter().map(|&p| to_unit(p))
    }

    /// Writes the images at `indices` into `out` (cleared first, capacity reused) as a
    /// row-major `indices.len() × pixels_per_image()` matrix of `pixel / 255.0`.
    ///
    /// # Panics
    ///
    /// If an index is `>= len()`.
    pub fn gather_f32(&self, indices: &[usize], out: &mut Vec<f32>) {
        out.clear();
        out.reserve(indices.len() * self.pixels_per_image());
        for &i in indices {
            out.extend(self.image_f32(i));
        }
    }

    /// Writes the labels at `indices` into `out` (cleared first), as `i64` for integer
    /// tensors.
    ///
    /// # Panics
    ///
    /// If an index is `>= len()`.
    pub fn gather_labels(&self, indices: &[usize], out: &mut Vec<i64>) {
        out.clear();
        out.extend(indices.iter().map(|&i| i64::from(self.label(i))));
    }

    /// Mean of all pixels as `pixel / 255`, in `[0, 1]`; NaN for an empty split.
    pub fn pixel_mean(&self) -> f64 {
        let sum: u64 = self.images.iter().map(|&p| u64::from(p)).sum();
        sum as f64 / (self.images.len() as f64 * 255.0)
    }

    /// A new split with the examples at `indices`, in that order.
    ///
    /// # Panics
    ///
    /// If an index is `>= len()`.
    pub fn subset(&self, indices: &[usize]) -> Split {
        let mut images = Vec::with_capacity(indices.len() * self.pixels_per_image());
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Split {
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            n: indices.len(),
            ..*self
        }
    }

    /// Splits off `n_val` examples for validation, returning `(train, validation)`.
    ///
    /// A permutation `perm` of `0..len()` is drawn from `seed` (ChaCha8, stream
    /// [`VALIDATION_STREAM`](crate::VALIDATION_STREAM); see the [`batch`](crate::batch)
    /// module docs). The last `n_val` entries of `perm` form the validation set and the
    /// others the training set; both keep the examples in their original order. The two
    /// are disjoint and together hold every example exactly once. The same `(seed, len(),
    /// n_val)` always gives the same split.
    ///
    /// The training part is compacted in place, so peak memory stays close to the size
    /// of `self`.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidArgument`] unless `1 <= n_val < len()`.
    pub fn split_validation(self, n_val: usize, seed: u64) -> Result<(Split, Split), DataError> {
        if n_val == 0 || n_val >= self.n {
            return Err(DataError::InvalidArgument {
                reason: format!(
                    "validation size {n_val} must be at least 1 and less than the {} \
                     training examples",
                    self.n
                ),
            });
        }
        let perm = permutation(self.n, &mut rng_for(seed, VALIDATION_STREAM));
        let n_train = self.n - n_val;
        let mut val_idx = perm[n_train..].to_vec();
        val_idx.sort_unstable();
        let val = self.subset(&val_idx);

        let mut train_idx = perm;
        train_idx.truncate(n_train);
        train_idx.sort_unstable();
        let p = self.pixels_per_image();
        let Split {
            mut images,
            mut labels,
            ..
        } = self;
        // Sorted indices satisfy `train_idx[k] >= k`, so moving example `train_idx[k]` to
        // slot `k` never overwrites an example still to be moved.
        for (k, &i) in train_idx.iter().enumerate() {
            if i != k {
                images.copy_within(i * p..(i + 1) * p, k * p);
                labels[k] = labels[i];
            }
        }
        images.truncate(n_train * p);
        images.shrink_to_fit();
        labels.truncate(n_train);
        labels.shrink_to_fit();
        let train = Split {
            images,
            labels,
            n: n_train,
            ..val
        };
        Ok((train, val))
    }

    fn check_index(&self, i: usize) {
        assert!(
            i < self.n,
            "example index {i} out of range for a split of {} examples",
            self.n
        );
    }
}

fn to_unit(p: u8) -> f32 {
    f32::from(p) / 255.0
}

/// A label in a label file: `label 200 at index 17 of …/train-labels-idx1-ubyte`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSite {
    /// The label file.
    pub file: PathBuf,
    /// The record's index (0-based).
    pub index: usize,
    /// The label.
    pub label: u8,
}

impl std::fmt::Display for LabelSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "label {} at index {} of {}",
            self.label,
            self.index,
            self.file.display()
        )
    }
}

/// The first record holding the largest label among `files` (each a label file and its
/// labels, in order); `None` without labels.
pub(crate) fn largest_label(files: &[(&Path, &[u8])]) -> Option<LabelSite> {
    let mut best: Option<LabelSite> = None;
    for (file, labels) in files {
        let Some(label) = labels.iter().copied().max() else {
            continue;
        };
        if best.as_ref().is_some_and(|b| b.label >= label) {
            continue;
        }
        let index = labels
            .iter()
            .position(|&l| l == label)
            .expect("the maximum is present");
        best = Some(LabelSite {
            file: file.to_path_buf(),
            index,
            label,
        });
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> Split {
        // 2x2 images whose pixels all equal the example index, label = index % 3.
        let images = (0..n).flat_map(|i| [i as u8; 4]).collect();
        let labels = (0..n).map(|i| (i % 3) as u8).collect();
        Split::new(images, labels, 2, 2, 3).unwrap()
    }

    #[test]
    fn new_validates() {
        let e = |r: Result<Split, DataError>| r.unwrap_err().to_string();
        assert!(
            e(Split::new(vec![0; 4], vec![0], 0, 4, 2)).contains("image size 1 × 0x4 is empty")
        );
        assert!(e(Split::new(vec![0; 4], vec![0], 2, 2, 0)).contains("at least 1"));
        assert!(
            e(Split::new(vec![0; 5], vec![0], 2, 2, 2))
                .contains("5 pixel bytes are not 1 images of 1 × 2x2")
        );
        assert!(e(Split::new(vec![0; 4], vec![2], 2, 2, 2)).contains("label 2 out of range"));
        assert!(
            e(Split::with_channels(vec![0; 12], vec![0, 1], 3, 2, 2, 2))
                .contains("12 pixel bytes are not 2 images of 3 × 2x2")
        );
        let colour = Split::with_channels(vec![0; 24], vec![0, 1], 3, 2, 2, 2).unwrap();
        assert_eq!((colour.channels(), colour.pixels_per_image()), (3, 12));
        let empty = Split::new(vec![], vec![], 2, 2, 2).unwrap();
        assert!(empty.is_empty());
        assert!(empty.pixel_mean().is_nan());
    }

    #[test]
    fn accessors_and_gather() {
        let s = Split::new(vec![0, 255, 51, 102, 1, 2, 3, 4], vec![1, 0], 2, 2, 2).unwrap();
        assert_eq!(
            (s.len(), s.rows(), s.cols(), s.pixels_per_image()),
            (2, 2, 2, 4)
        );
        assert_eq!(s.n_classes(), 2);
        assert_eq!(s.image(1), &[1, 2, 3, 4]);
        assert_eq!(s.label(0), 1);
        let first: Vec<f32> = s.image_f32(0).collect();
        assert_eq!(first, [0.0, 1.0, 0.2, 0.4]);
        let mut buf = vec![9.0; 100];
        s.gather_f32(&[1, 0, 1], &mut buf);
        assert_eq!(buf.len(), 12);
        assert_eq!(&buf[4..8], &first[..]);
        assert_eq!(buf[0], 1.0 / 255.0);
        let mut labels = vec![7];
        s.gather_labels(&[1, 0, 1], &mut labels);
        assert_eq!(labels, [0, 1, 0]);
        let mean = (255 + 51 + 102 + 10) as f64 / (8.0 * 255.0);
        assert!((s.pixel_mean() - mean).abs() < 1e-12);
    }

    #[test]
    #[should_panic(expected = "example index 2 out of range for a split of 2 examples")]
    fn gather_out_of_range_panics() {
        let s = Split::new(vec![0; 8], vec![0, 1], 2, 2, 2).unwrap();
        s.gather_f32(&[0, 2], &mut Vec::new());
    }

    #[test]
    fn subset_copies_in_order() {
        let s = toy(10);
        let sub = s.subset(&[7, 2, 2]);
        assert_eq!(sub.len(), 3);
        assert_eq!(sub.images(), &[7, 7, 7, 7, 2, 2, 2, 2, 2, 2, 2, 2]);
        assert_eq!(sub.labels(), &[1, 2, 2]);
        assert_eq!(sub.n_classes(), 3);
    }

    #[test]
    fn split_validation_partitions() {
        let (train, val) = toy(100).split_validation(30, 5).unwrap();
        assert_eq!((train.len(), val.len()), (70, 30));
        assert_eq!(train.images().len(), 70 * 4);
        assert_eq!(train.labels().len(), 70);
        // Each image's pixels identify the example: check consistency and disjointness.
        let ids = |s: &Split| -> Vec<usize> {
            (0..s.len())
                .map(|i| {
                    let id = s.image(i)[0] as usize;
                    assert!(s.image(i).iter().all(|&p| p as usize == id));
                    assert_eq!(s.label(i) as usize, id % 3);
                    id
                })
                .collect()
        };
        let (t, v) = (ids(&train), ids(&val));
        assert!(t.windows(2).all(|w| w[0] < w[1]), "train keeps file order");
        assert!(v.windows(2).all(|w| w[0] < w[1]), "val keeps file order");
        let mut all: Vec<usize> = t.iter().chain(&v).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        // Not simply the last 30 examples.
        assert_ne!(v, (70..100).collect::<Vec<_>>());

        let (train2, val2) = toy(100).split_validation(30, 5).unwrap();
        assert_eq!((&train, &val), (&train2, &val2));
        let (_, val3) = toy(100).split_validation(30, 6).unwrap();
        assert_ne!(val, val3);
    }

    #[test]
    fn split_validation_golden() {
        // Guards reproducibility of published runs against dependency upgrades.
        let (_, val) = toy(20).split_validation(4, 42).unwrap();
        let ids: Vec<u8> = (0..4).map(|i| val.image(i)[0]).collect();
        assert_eq!(ids, [6, 9, 11, 16]);
    }

    #[test]
    fn split_validation_rejects_bad_sizes() {
        for n_val in [0, 10, 11] {
            let m = toy(10).split_validation(n_val, 0).unwrap_err().to_string();
            assert!(
                m.contains(&format!("validation size {n_val} must be at least 1")),
                "{m}"
            );
        }
        let (t, v) = toy(10).split_validation(9, 0).unwrap();
        assert_eq!((t.len(), v.len()), (1, 9));
    }
}
