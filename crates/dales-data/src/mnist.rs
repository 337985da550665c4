//! MNIST-like datasets: four IDX files holding training and test images and labels.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::idx::read_idx;
use crate::split::{LabelSite, Split, largest_label};

/// Where the `dataset-fashion-mnist` package installs Fashion-MNIST.
pub const DEFAULT_DATA_DIR: &str = "/usr/share/datasets/fashion-mnist";

const INSTALL_HINT: &str = "; install it with `apt-get install dataset-fashion-mnist`";

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

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
        let (train, test, largest_label) = crate::cifar::load(found)?;
        return Ok(MnistLike {
            train,
            test,
            largest_label,
        });
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
}
