//! Reading IDX files, raw or gzip-compressed.
//!
//! # Format
//!
//! An IDX file is a 4-byte magic number — two zero bytes, an element-type byte and a
//! dimension-count byte — followed by one big-endian `u32` size per dimension and then the
//! elements in row-major order. Element types: `0x08` unsigned byte, `0x09` signed byte,
//! `0x0B` i16, `0x0C` i32, `0x0D` f32, `0x0E` f64 (all big-endian).
//!
//! Only unsigned-byte files (all of MNIST, Fashion-MNIST and KMNIST) are supported; other
//! element types are recognised and rejected with an explicit error. Between 1 and 4
//! dimensions are accepted.
//!
//! # Robustness
//!
//! Parsing never panics. Sizes read from the header are multiplied with overflow checks and
//! compared with the real number of bytes before anything is allocated from them, and the
//! data section must match the header exactly (no missing and no trailing bytes). Gzip input
//! (detected by its magic bytes `1f 8b`, whatever the file name) is inflated to at most
//! [`MAX_DECOMPRESSED_BYTES`].

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use crate::error::{DataError, IdxErrorKind, idx_type_name};

/// Upper bound on the size of a decompressed gzip file (1 GiB), to defuse zip bombs.
pub const MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const TYPE_U8: u8 = 0x08;
const MAX_DIMS: u8 = 4;
/// Best compression ratio deflate can achieve; bounds the capacity hint taken from the
/// (untrusted) size field in the gzip trailer.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// An unsigned-byte IDX array: its dimensions and its elements in row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    dims: Vec<usize>,
    data: Vec<u8>,
}

impl IdxArray {
    /// Dimensions, outermost first (e.g. `[60000, 28, 28]` for MNIST training images).
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Elements in row-major order; its length is the product of [`dims`](Self::dims).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Splits the array into its dimensions and its data, without copying.
    pub fn into_parts(self) -> (Vec<usize>, Vec<u8>) {
        (self.dims, self.data)
    }
}

/// Reads an unsigned-byte IDX file, raw or gzip-compressed.
///
/// Compression is detected from the content (`1f 8b` magic bytes), not from the file name.
/// Error messages start with `path`.
///
/// # Errors
///
/// [`DataError::Io`] if the file cannot be read, [`DataError::Gzip`] or
/// [`DataError::TooLarge`] for bad compressed input, [`DataError::Idx`] for malformed or
/// unsupported IDX content.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray, DataError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.display().to_string();
    if is_gzip(&bytes) {
        let raw = gunzip(&bytes, &name, MAX_DECOMPRESSED_BYTES)?;
        drop(bytes);
        parse_owned(raw, &name)
    } else {
        parse_owned(bytes, &name)
    }
}

/// Parses an unsigned-byte IDX file held in memory, raw or gzip-compressed.
///
/// `name` is only used in error messages (typically the file path). This is what
/// [`read_idx`] does after reading the file, and never panics whatever the input.
///
/// # Errors
///
/// As [`read_idx`], except for [`DataError::Io`].
pub fn parse_idx(bytes: &[u8], name: &str) -> Result<IdxArray, DataError> {
    if is_gzip(bytes) {
        let raw = gunzip(bytes, name, MAX_DECOMPRESSED_BYTES)?;
        parse_owned(raw, name)
    } else {
        let header = parse_header(bytes, name)?;
        Ok(IdxArray {
            dims: header.dims,
            data: bytes[header.len..].to_vec(),
        })
    }
}

fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Parses raw IDX bytes, reusing their buffer for the data.
fn parse_owned(mut bytes: Vec<u8>, name: &str) -> Result<IdxArray, DataError> {
    let header = parse_header(&bytes, name)?;
    bytes.drain(..header.len);
    Ok(IdxArray {
        dims: header.dims,
        data: bytes,
    })
}

/// Inflates a gzip stream, failing if it would exceed `limit` bytes.
pub(crate) fn gunzip(bytes: &[u8], name: &str, limit: u64) -> Result<Vec<u8>, DataError> {
    // The trailer's ISIZE field (size mod 2^32) is only a hint: it is bounded by what the
    // real compressed length can possibly inflate to, and by the limit.
    let hint = match bytes.len().checked_sub(4).map(|at| &bytes[at..]) {
        Some(&[a, b, c, d]) => u64::from(u32::from_le_bytes([a, b, c, d])),
        _ => 0,
    };
    let bound = (bytes.len() as u64).saturating_mul(MAX_DEFLATE_RATIO);
    let capacity = usize::try_from(hint.min(bound).min(limit)).unwrap_or(0);
    let mut out = Vec::with_capacity(capacity);
    GzDecoder::new(bytes)
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|source| DataError::Gzip {
            file: name.to_owned(),
            source,
        })?;
    if out.len() as u64 > limit {
        return Err(DataError::TooLarge {
            file: name.to_owned(),
            limit,
        });
    }
    Ok(out)
}

/// A validated header: the data section after it has exactly `product(dims)` bytes.
struct Header {
    dims: Vec<usize>,
    len: usize,
}

fn parse_header(bytes: &[u8], name: &str) -> Result<Header, DataError> {
    let fail = |kind| DataError::Idx {
        file: name.to_owned(),
        kind,
    };
    if let [b0, b1, ..] = *bytes
        && (b0, b1) != (0, 0)
    {
        return Err(fail(IdxErrorKind::BadMagic { found: [b0, b1] }));
    }
    let [_, _, type_code, n_dims, ..] = *bytes else {
        return Err(fail(IdxErrorKind::TruncatedHeader {
            needed: 4,
            available: bytes.len(),
        }));
    };
    if idx_type_name(type_code).is_none() {
        return Err(fail(IdxErrorKind::UnknownType(type_code)));
    }
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(fail(IdxErrorKind::BadDimensionCount(n_dims)));
    }
    let len = 4 + 4 * usize::from(n_dims);
    let Some(size_bytes) = bytes.get(4..len) else {
        return Err(fail(IdxErrorKind::TruncatedHeader {
            needed: len,
            available: bytes.len(),
        }));
    };
    let raw_dims: Vec<u32> = size_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if type_code != TYPE_U8 {
        return Err(fail(IdxErrorKind::UnsupportedType(type_code)));
    }
    let oversized = || {
        fail(IdxErrorKind::OversizedHeader {
            dims: raw_dims.clone(),
        })
    };
    // One byte per element, so the element count is the data length.
    let expected = raw_dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
        .ok_or_else(oversized)?;
    let available = (bytes.len() - len) as u64;
    if expected > available {
        return Err(fail(IdxErrorKind::Truncated {
            expected,
            available,
            header_len: len,
        }));
    }
    if expected < available {
        return Err(fail(IdxErrorKind::TrailingBytes {
            extra: available - expected,
            expected,
        }));
    }
    let dims = raw_dims
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| oversized())?;
    Ok(Header { dims, len })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn idx(type_code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, type_code, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn err_msg(bytes: &[u8]) -> String {
        parse_idx(bytes, "f.idx").unwrap_err().to_string()
    }

    #[test]
    fn parses_raw_and_gzip() {
        let data: Vec<u8> = (0..24).collect();
        let raw = idx(0x08, &[2, 3, 4], &data);
        let a = parse_idx(&raw, "x").unwrap();
        assert_eq!(a.dims(), &[2, 3, 4]);
        assert_eq!(a.data(), &data[..]);
        let b = parse_idx(&gz(&raw), "x.gz").unwrap();
        assert_eq!(a, b);
        let (dims, d) = b.into_parts();
        assert_eq!((dims, d), (vec![2, 3, 4], data));
    }

    #[test]
    fn zero_sized_dimension_is_empty_array() {
        let a = parse_idx(&idx(0x08, &[0, 28, 28], &[]), "x").unwrap();
        assert_eq!(a.dims(), &[0, 28, 28]);
        assert!(a.data().is_empty());
    }

    #[test]
    fn header_errors() {
        assert_eq!(
            err_msg(&[0x1f, 0x00, 8, 1]),
            "f.idx: not an IDX file (first two bytes are 0x1f 0x00, expected 0x00 0x00)"
        );
        assert_eq!(
            err_msg(&[0, 0, 8]),
            "f.idx: truncated header: need 4 header bytes, file has 3"
        );
        assert!(err_msg(&[]).contains("truncated header: need 4 header bytes, file has 0"));
        assert_eq!(
            err_msg(&[0, 0, 8, 3, 0, 0, 0, 1]),
            "f.idx: truncated header: need 16 header bytes, file has 8"
        );
        assert!(err_msg(&idx(0x08, &[], &[])).contains("invalid IDX dimension count 0"));
        assert!(err_msg(&idx(0x08, &[1; 5], &[0])).contains("invalid IDX dimension count 5"));
        assert!(
            err_msg(&idx(0x0D, &[1], &[0; 4]))
                .contains("unsupported IDX element type 0x0D, expected 0x08 (unsigned byte)")
        );
        assert!(err_msg(&idx(0x0D, &[1], &[0; 4])).contains("32-bit float"));
        assert!(err_msg(&idx(0x42, &[1], &[0])).contains("unknown IDX element type 0x42"));
    }

    #[test]
    fn size_errors() {
        let m = err_msg(&idx(0x08, &[u32::MAX; 4], &[1, 2, 3]));
        assert!(m.contains("oversized header"), "{m}");
        assert!(m.contains("4294967295 x 4294967295"), "{m}");
        let m = err_msg(&idx(0x08, &[60000, 28, 28], &[0; 1000]));
        assert_eq!(
            m,
            "f.idx: truncated: header says 47040000 data bytes, file has 1000 \
             (after the 16-byte header)"
        );
        let m = err_msg(&idx(0x08, &[2, 2], &[0; 7]));
        assert_eq!(
            m,
            "f.idx: 3 bytes after the data (header says 4 data bytes)"
        );
    }

    #[test]
    fn gzip_errors() {
        let good = gz(&idx(0x08, &[4], &[1, 2, 3, 4]));
        let m = err_msg(&good[..good.len() - 3]);
        assert!(m.starts_with("f.idx: gzip decompression failed"), "{m}");
        let m = err_msg(&[0x1f, 0x8b, 0, 0, 0]);
        assert!(m.starts_with("f.idx: gzip decompression failed"), "{m}");
        // The inner content is validated like a raw file.
        let m = err_msg(&gz(&[1, 2, 3, 4]));
        assert!(m.contains("not an IDX file"), "{m}");
    }

    #[test]
    fn gzip_limit() {
        let raw = idx(0x08, &[1000], &[7; 1000]);
        let z = gz(&raw);
        assert_eq!(gunzip(&z, "z", raw.len() as u64).unwrap(), raw);
        let m = gunzip(&z, "z.gz", raw.len() as u64 - 1)
            .unwrap_err()
            .to_string();
        assert_eq!(
            m,
            format!(
                "z.gz: decompressed size exceeds the limit of {} bytes \
                 (refusing to inflate it; corrupt file or zip bomb?)",
                raw.len() - 1
            )
        );
    }

    #[test]
    fn lying_gzip_size_field_is_harmless() {
        let raw = idx(0x08, &[3], &[1, 2, 3]);
        let mut z = gz(&raw);
        let n = z.len();
        z[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        // Decompression fails on the size check, but only after a bounded allocation.
        assert!(parse_idx(&z, "z").is_err());
    }
}
