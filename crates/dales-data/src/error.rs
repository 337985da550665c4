//! Error types of `dales-data`.
//!
//! Every message starts with the file (or directory) it is about, followed by what was
//! wrong and, where useful, what was expected.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while reading or preparing a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// Reading a file failed at the operating-system level.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },

    /// A file starts with the gzip magic bytes but does not decompress.
    #[error("{file}: gzip decompression failed: {source}")]
    Gzip {
        /// The file (or caller-supplied name) being decompressed.
        file: String,
        /// The error reported by the decompressor.
        #[source]
        source: io::Error,
    },

    /// A gzip file decompresses to more than the allowed number of bytes.
    #[error(
        "{file}: decompressed size exceeds the limit of {limit} bytes \
         (refusing to inflate it; corrupt file or zip bomb?)"
    )]
    TooLarge {
        /// The file (or caller-supplied name) being decompressed.
        file: String,
        /// The limit in bytes.
        limit: u64,
    },

    /// The (decompressed) content is not a valid IDX file we can use.
    #[error("{file}: {kind}")]
    Idx {
        /// The file (or caller-supplied name) being parsed.
        file: String,
        /// What exactly is wrong.
        kind: IdxErrorKind,
    },

    /// The data directory does not exist.
    #[error("data directory {} does not exist{hint}", .dir.display())]
    MissingDir {
        /// The directory that was looked for.
        dir: PathBuf,
        /// Either empty or a `"; ..."` suffix telling how to install the data.
        hint: String,
    },

    /// One of the four dataset files is missing from the data directory.
    #[error(
        "{}: missing {expected}: none of {} exists",
        .dir.display(),
        .candidates.join(", ")
    )]
    MissingFile {
        /// The data directory.
        dir: PathBuf,
        /// The standard (uncompressed) file name, e.g. `train-images-idx3-ubyte`.
        expected: String,
        /// All file names that were tried, in order of preference.
        candidates: Vec<String>,
    },

    /// A label file and its image file disagree on the number of examples.
    #[error(
        "{}: label count {n_labels} does not match image count {n_images} in {}",
        .labels.display(),
        .images.display()
    )]
    CountMismatch {
        /// The label file.
        labels: PathBuf,
        /// Number of labels in it.
        n_labels: usize,
        /// The image file.
        images: PathBuf,
        /// Number of images in it.
        n_images: usize,
    },

    /// A well-formed IDX file whose content does not fit the dataset (wrong rank, empty,
    /// inconsistent image size, too few classes, ...).
    #[error("{}: {reason}", .path.display())]
    Invalid {
        /// The offending file.
        path: PathBuf,
        /// What is wrong and what was expected.
        reason: String,
    },

    /// A caller-supplied argument is out of range (validation size, batch size, split
    /// contents passed to [`Split::new`](crate::Split::new)).
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What is wrong and what was expected.
        reason: String,
    },
}

/// The ways an IDX file can be malformed, see [`DataError::Idx`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdxErrorKind {
    /// The first two bytes are not zero.
    BadMagic {
        /// The first two bytes of the file.
        found: [u8; 2],
    },
    /// The file ends inside the header.
    TruncatedHeader {
        /// Header bytes needed (4, or 4 + 4 × dims once the dimension count is known).
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The element type byte is not one defined by the IDX format.
    UnknownType(u8),
    /// A valid IDX element type other than unsigned byte.
    UnsupportedType(u8),
    /// The dimension count is 0 or larger than 4.
    BadDimensionCount(u8),
    /// The product of the dimensions does not fit in memory addresses.
    OversizedHeader {
        /// The dimensions claimed by the header.
        dims: Vec<u32>,
    },
    /// The data section is shorter than the header claims.
    Truncated {
        /// Data bytes the header claims.
        expected: u64,
        /// Data bytes present after the header.
        available: u64,
        /// Length of the header in bytes.
        header_len: usize,
    },
    /// The data section is longer than the header claims.
    TrailingBytes {
        /// Number of extra bytes.
        extra: u64,
        /// Data bytes the header claims.
        expected: u64,
    },
}

/// Human-readable name of an IDX element type code, if it is one.
pub(crate) fn idx_type_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "16-bit integer",
        0x0C => "32-bit integer",
        0x0D => "32-bit float",
        0x0E => "64-bit float",
        _ => return None,
    })
}

impl fmt::Display for IdxErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic { found } => write!(
                f,
                "not an IDX file (first two bytes are 0x{:02x} 0x{:02x}, expected 0x00 0x00)",
                found[0], found[1]
            ),
            Self::TruncatedHeader { needed, available } => write!(
                f,
                "truncated header: need {needed} header bytes, file has {available}"
            ),
            Self::UnknownType(code) => write!(
                f,
                "unknown IDX element type 0x{code:02X}, expected 0x08 (unsigned byte)"
            ),
            Self::UnsupportedType(code) => write!(
                f,
                "unsupported IDX element type 0x{code:02X}, expected 0x08 (unsigned byte); \
                 this file holds {} values",
                idx_type_name(*code).unwrap_or("unknown")
            ),
            Self::BadDimensionCount(n) => {
                write!(f, "invalid IDX dimension count {n}, expected 1 to 4")
            }
            Self::OversizedHeader { dims } => {
                let dims: Vec<String> = dims.iter().map(u32::to_string).collect();
                write!(
                    f,
                    "oversized header: dimensions {} describe more data than can be addressed",
                    dims.join(" x ")
                )
            }
            Self::Truncated {
                expected,
                available,
                header_len,
            } => write!(
                f,
                "truncated: header says {expected} data bytes, file has {available} \
                 (after the {header_len}-byte header)"
            ),
            Self::TrailingBytes { extra, expected } => write!(
                f,
                "{extra} bytes after the data (header says {expected} data bytes)"
            ),
        }
    }
}
