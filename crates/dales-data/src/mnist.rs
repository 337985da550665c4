//! MNIST-like datasets: four IDX files holding training and test images and labels.

use std::io;
use std::path::{Path, PathBuf};

use crate::batch::{VALIDATION_STREAM, permutation, rng_for};
use crate::error::DataError;
use crate::idx::read_idx;

/// Where the `dataset-fashion-mnist` package installs Fashion-MNIST.
pub const DEFAULT_DATA_DIR: &str = "/usr/share/datasets/fashion-mnist";

const INSTALL_HINT: &str = "; install it with `apt-get install dataset-fashion-mnist`";

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

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
    images: Vec<u8>,
    labels: Vec<u8>,
    n: usize,
    channels: usize,
    rows: usize,
    cols: usize,
    n_classes: usize,
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

/// An MNIST-format dataset (MNIST, Fashion-MNIST, KMNIST, ...): a training and a test
/// [`Split`] of same-sized grayscale images with labels in `0..n_classes()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MnistLike {
    /// The training split (`train-*` files).
    pub train: Split,
    /// The test split (`t10k-*` files).
    pub test: Split,
    /// Where the largest label is: it sets the number of classes.
    pub largest_label: LabelSite,
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

impl MnistLike {
    /// Loads the four standard files from `dir`.
    ///
    /// Each of `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
    /// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` may be gzip-compressed
    /// (`NAME.gz`, preferred when both exist) or raw (`NAME`), and the dotted variant
    /// (`train-images.idx3-ubyte[.gz]`) is also accepted. Images must be 3-D
    /// `(N, rows, cols)`, labels 1-D `(N)` with the same `N`, and both splits must have the
    /// same non-empty image size and at least one example. The number of classes is the
    /// largest label of either split plus one, and must be at least 2.
    ///
    /// A directory holding CIFAR-10 or CIFAR-100 in its binary format is read instead
    /// ([`crate::cifar`]).
    ///
    /// # Errors
    ///
    /// [`DataError::MissingDir`], [`DataError::MissingFile`], any error of
    /// [`read_idx`](crate::read_idx), [`DataError::CountMismatch`], and
    /// [`DataError::Invalid`] for content that does not form such a dataset.
    pub fn load_dir(dir: &Path) -> Result<Self, DataError> {
        load(dir, "")
    }

    /// Loads Fashion-MNIST from [`DEFAULT_DATA_DIR`]; if the directory is missing, the
    /// error says how to install it.
    ///
    /// # Errors
    ///
    /// As [`load_dir`](Self::load_dir).
    pub fn load_default() -> Result<Self, DataError> {
        load(Path::new(DEFAULT_DATA_DIR), INSTALL_HINT)
    }

    /// Number of classes (labels are in `0..n_classes()`).
    pub fn n_classes(&self) -> usize {
        self.train.n_classes()
    }

    /// Mean pixel value of the training split, in `[0, 1]`.
    pub fn pixel_mean(&self) -> f64 {
        self.train.pixel_mean()
    }

    /// Splits `n_val` validation examples off the training set, returning
    /// `(train, validation)` and dropping the test split. See [`Split::split_validation`];
    /// use `dataset.train.split_validation(..)` to keep the test split.
    ///
    /// # Errors
    ///
    /// As [`Split::split_validation`].
    pub fn split_validation(self, n_val: usize, seed: u64) -> Result<(Split, Split), DataError> {
        self.train.split_validation(n_val, seed)
    }
}

fn load(dir: &Path, hint: &str) -> Result<MnistLike, DataError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(DataError::Invalid {
                path: dir.to_path_buf(),
                reason: "data directory is not a directory".to_owned(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(DataError::MissingDir {
                dir: dir.to_path_buf(),
                hint: hint.to_owned(),
            });
        }
        Err(source) => {
            return Err(DataError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    }
    if let Some(found) = crate::cifar::detect(dir) {
        return crate::cifar::load(found);
    }
    // Locate all four files before reading any, so a missing one is reported at once.
    let train_images = find_file(dir, TRAIN_IMAGES)?;
    let train_labels = find_file(dir, TRAIN_LABELS)?;
    let test_images = find_file(dir, TEST_IMAGES)?;
    let test_labels = find_file(dir, TEST_LABELS)?;

    let train = load_pair(&train_images, &train_labels)?;
    let test = load_pair(&test_images, &test_labels)?;
    if (test.rows, test.cols) != (train.rows, train.cols) {
        return Err(DataError::Invalid {
            path: test_images,
            reason: format!(
                "images are {}x{} but the training images in {} are {}x{}",
                test.rows,
                test.cols,
                train_images.display(),
                train.rows,
                train.cols
            ),
        });
    }
    let largest_label =
        largest_label(&[(&train_labels, &train.labels), (&test_labels, &test.labels)])
            .expect("both splits hold examples");
    let n_classes = usize::from(largest_label.label) + 1;
    if n_classes < 2 {
        return Err(DataError::Invalid {
            path: train_labels,
            reason: format!(
                "all labels here and in {} are 0; a classification dataset needs at least \
                 2 classes",
                test_labels.display()
            ),
        });
    }
    Ok(MnistLike {
        train: Split { n_classes, ..train },
        test: Split { n_classes, ..test },
        largest_label,
    })
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

/// The first existing candidate file for `base`, preferring compressed files.
fn find_file(dir: &Path, base: &str) -> Result<PathBuf, DataError> {
    let dotted = base.replacen("-idx", ".idx", 1);
    let candidates = [
        format!("{base}.gz"),
        base.to_owned(),
        format!("{dotted}.gz"),
        dotted,
    ];
    if let Some(p) = candidates.iter().map(|c| dir.join(c)).find(|p| p.is_file()) {
        return Ok(p);
    }
    if let Some(p) = candidates.iter().map(|c| dir.join(c)).find(|p| p.exists()) {
        return Err(DataError::Invalid {
            path: p,
            reason: format!("is not a file; expected the IDX file {base} here"),
        });
    }
    Err(DataError::MissingFile {
        dir: dir.to_path_buf(),
        expected: base.to_owned(),
        candidates: candidates.to_vec(),
    })
}

/// Reads one images/labels pair; `n_classes` of the result is a placeholder.
fn load_pair(images_path: &Path, labels_path: &Path) -> Result<Split, DataError> {
    let invalid = |path: &Path, reason: String| DataError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let (dims, images) = read_idx(images_path)?.into_parts();
    let &[n, rows, cols] = dims.as_slice() else {
        return Err(invalid(
            images_path,
            format!(
                "expected 3-D images (N, rows, cols), found {} dimension(s) {dims:?}",
                dims.len()
            ),
        ));
    };
    if n == 0 {
        return Err(invalid(images_path, "contains no images".to_owned()));
    }
    if rows == 0 || cols == 0 {
        return Err(invalid(
            images_path,
            format!("image size {rows}x{cols} is empty"),
        ));
    }
    let (label_dims, labels) = read_idx(labels_path)?.into_parts();
    let &[n_labels] = label_dims.as_slice() else {
        return Err(invalid(
            labels_path,
            format!(
                "expected 1-D labels (N), found {} dimension(s) {label_dims:?}",
                label_dims.len()
            ),
        ));
    };
    if n_labels != n {
        return Err(DataError::CountMismatch {
            labels: labels_path.to_path_buf(),
            n_labels,
            images: images_path.to_path_buf(),
            n_images: n,
        });
    }
    Ok(Split {
        images,
        labels,
        n,
        channels: 1,
        rows,
        cols,
        n_classes: 0,
    })
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
    fn missing_default_dir_tells_how_to_install() {
        let m = load(
            Path::new("/nonexistent/dales-data/fashion-mnist"),
            INSTALL_HINT,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            m,
            "data directory /nonexistent/dales-data/fashion-mnist does not exist; \
             install it with `apt-get install dataset-fashion-mnist`"
        );
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
