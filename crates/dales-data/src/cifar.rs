//! The CIFAR-10 and CIFAR-100 binary formats ("CIFAR-10 binary version", "CIFAR-100 binary
//! version" of Krizhevsky's distribution): 32 × 32 colour images with their labels.
//!
//! A file is a sequence of records, each its label byte(s) then 3072 pixel bytes: the red
//! plane, the green plane and the blue plane, each 32 rows of 32 (channel-major, as PyTorch
//! lays out an image tensor).
//! - CIFAR-10: `data_batch_1.bin` … `data_batch_5.bin` (training, 10 000 records each) and
//!   `test_batch.bin`; one label byte, 0–9.
//! - CIFAR-100: `train.bin` and `test.bin`; a coarse label byte (0–19) then the fine one
//!   (0–99), which dales trains on.
//!
//! The files may sit in the directory given or in the archive's own subdirectory
//! (`cifar-10-batches-bin`, `cifar-100-binary`). Every record is checked; an error names the
//! file and, for a bad label, the record.

use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::split::{LabelSite, Split, largest_label};

/// Image side.
const SIDE: usize = 32;
/// Colour planes.
const CHANNELS: usize = 3;
/// Pixel bytes per record.
const PIXELS: usize = CHANNELS * SIDE * SIDE;

/// Which CIFAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Ten classes, one label byte.
    Cifar10,
    /// A hundred fine classes after a coarse label byte.
    Cifar100,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Cifar10 => "CIFAR-10",
            Format::Cifar100 => "CIFAR-100",
        }
    }

    fn label_bytes(self) -> usize {
        match self {
            Format::Cifar10 => 1,
            Format::Cifar100 => 2,
        }
    }

    fn classes(self) -> usize {
        match self {
            Format::Cifar10 => 10,
            Format::Cifar100 => 100,
        }
    }

    /// The archive's subdirectory.
    fn subdir(self) -> &'static str {
        match self {
            Format::Cifar10 => "cifar-10-batches-bin",
            Format::Cifar100 => "cifar-100-binary",
        }
    }

    /// The file whose presence marks the format.
    fn marker(self) -> &'static str {
        match self {
            Format::Cifar10 => "data_batch_1.bin",
            Format::Cifar100 => "train.bin",
        }
    }
}

/// The CIFAR format whose files are in `dir` (or its archive subdirectory), if any.
pub fn detect(dir: &Path) -> Option<(Format, PathBuf)> {
    [Format::Cifar10, Format::Cifar100]
        .into_iter()
        .flat_map(|f| [(f, dir.to_path_buf()), (f, dir.join(f.subdir()))])
        .find(|(f, d)| d.join(f.marker()).exists())
}

/// Read the training and test files of `format` from `dir`: the training split, the test
/// split and where the largest label is.
///
/// # Errors
///
/// [`DataError::MissingFile`] without the test file, [`DataError::Io`] for unreadable files,
/// [`DataError::Invalid`] for a file that is not a whole number of records, empty, or holds a
/// label out of range (naming the record).
pub fn load((format, dir): (Format, PathBuf)) -> Result<(Split, Split, LabelSite), DataError> {
    let train_files: Vec<PathBuf> = match format {
        Format::Cifar10 => (1..=5)
            .map(|k| dir.join(format!("data_batch_{k}.bin")))
            .filter(|p| p.exists())
            .collect(),
        Format::Cifar100 => vec![dir.join("train.bin")],
    };
    let test_name = match format {
        Format::Cifar10 => "test_batch.bin",
        Format::Cifar100 => "test.bin",
    };
    let test_file = dir.join(test_name);
    if !test_file.is_file() {
        return Err(DataError::MissingFile {
            dir: dir.clone(),
            expected: test_name.to_owned(),
            candidates: vec![test_name.to_owned()],
        });
    }
    let train = train_files
        .iter()
        .map(|p| read_file(p, format))
        .collect::<Result<Vec<_>, _>>()?;
    let test = [read_file(&test_file, format)?];
    let site = {
        let files: Vec<(&Path, &[u8])> = train_files
            .iter()
            .zip(&train)
            .map(|(p, (_, l))| (p.as_path(), l.as_slice()))
            .chain([(test_file.as_path(), test[0].1.as_slice())])
            .collect();
        largest_label(&files).expect("every file holds a record")
    };
    let split = |parts: &[(Vec<u8>, Vec<u8>)]| {
        let images = parts.iter().flat_map(|(i, _)| i.iter().copied()).collect();
        let labels = parts.iter().flat_map(|(_, l)| l.iter().copied()).collect();
        Split::with_channels(images, labels, CHANNELS, SIDE, SIDE, format.classes())
    };
    Ok((split(&train)?, split(&test)?, site))
}

/// The pixels and labels of one file.
fn read_file(path: &Path, format: Format) -> Result<(Vec<u8>, Vec<u8>), DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |reason: String| DataError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let record = format.label_bytes() + PIXELS;
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(invalid(format!(
            "{} bytes are not a whole number of {}-byte {} records ({} label byte(s) and \
             3 × 32 × 32 pixels each); the file is truncated or not {}",
            bytes.len(),
            record,
            format.name(),
            format.label_bytes(),
            format.name()
        )));
    }
    let n = bytes.len() / record;
    let mut images = Vec::with_capacity(n * PIXELS);
    let mut labels = Vec::with_capacity(n);
    for (index, r) in bytes.chunks_exact(record).enumerate() {
        // The last label byte is the one trained on (CIFAR-100's fine label).
        let label = r[format.label_bytes() - 1];
        if usize::from(label) >= format.classes() {
            return Err(invalid(format!(
                "label {label} at record {index}: {} labels are 0–{}",
                format.name(),
                format.classes() - 1
            )));
        }
        labels.push(label);
        images.extend_from_slice(&r[format.label_bytes()..]);
    }
    Ok((images, labels))
}
