//! `read_idx` on real files: raw and gzip, and error messages naming the path.

use crate::common::{TempDir, gz, idx};
use dales_data::{DataError, IdxErrorKind, read_idx};

fn err(path: &std::path::Path) -> String {
    read_idx(path).unwrap_err().to_string()
}

#[test]
fn round_trip_raw_and_gzip() {
    let dir = TempDir::new("rt");
    let data: Vec<u8> = (0..=255).cycle().take(5 * 7 * 3).collect();
    let raw = idx(0x08, &[5, 7, 3], &data);
    let a = read_idx(dir.write("a-idx3-ubyte", &raw)).unwrap();
    assert_eq!(a.dims(), &[5, 7, 3]);
    assert_eq!(a.data(), &data[..]);
    let b = read_idx(dir.write("a-idx3-ubyte.gz", &gz(&raw))).unwrap();
    assert_eq!(a, b);
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let dir = TempDir::new("detect");
    let raw = idx(0x08, &[3], &[1, 2, 3]);
    // Compressed data without .gz, raw data with .gz: both read correctly.
    let a = read_idx(dir.write("labels", &gz(&raw))).unwrap();
    let b = read_idx(dir.write("labels.gz", &raw)).unwrap();
    assert_eq!(a.data(), &[1, 2, 3]);
    assert_eq!(a, b);
}

#[test]
fn errors_name_the_file() {
    let dir = TempDir::new("errs");
    let p = dir.write("bad-magic", &[0x1f, 0x00, 0x08, 0x01, 0, 0, 0, 0]);
    assert_eq!(
        err(&p),
        format!(
            "{}: not an IDX file (first two bytes are 0x1f 0x00, expected 0x00 0x00)",
            p.display()
        )
    );

    let p = dir.write("short.gz", &gz(&idx(0x08, &[60000, 28, 28], &[0; 1000])));
    assert_eq!(
        err(&p),
        format!(
            "{}: truncated: header says 47040000 data bytes, file has 1000 \
             (after the 16-byte header)",
            p.display()
        )
    );

    let p = dir.write("long", &idx(0x08, &[10], &[0; 15]));
    assert_eq!(
        err(&p),
        format!(
            "{}: 5 bytes after the data (header says 10 data bytes)",
            p.display()
        )
    );

    let p = dir.write("floats", &idx(0x0D, &[2], &[0; 8]));
    let m = err(&p);
    assert!(
        m.starts_with(&format!(
            "{}: unsupported IDX element type 0x0D, expected 0x08 (unsigned byte)",
            p.display()
        )),
        "{m}"
    );
    for code in [0x09, 0x0B, 0x0C, 0x0E] {
        let p = dir.write("other", &idx(code, &[1], &[0; 8]));
        assert!(err(&p).contains(&format!("unsupported IDX element type 0x{code:02X}")));
    }

    let p = dir.write("huge", &idx(0x08, &[u32::MAX, u32::MAX, u32::MAX], &[]));
    let m = err(&p);
    assert!(
        m.starts_with(&format!("{}: oversized header", p.display())),
        "{m}"
    );

    let p = dir.write("dims0", &idx(0x08, &[], &[]));
    assert!(err(&p).contains("invalid IDX dimension count 0, expected 1 to 4"));
    let p = dir.write("dims5", &idx(0x08, &[1, 1, 1, 1, 1], &[0]));
    assert!(err(&p).contains("invalid IDX dimension count 5, expected 1 to 4"));

    let p = dir.write("header", &[0, 0, 8, 2, 0, 0, 0]);
    assert_eq!(
        err(&p),
        format!(
            "{}: truncated header: need 12 header bytes, file has 7",
            p.display()
        )
    );

    let p = dir.write("empty", &[]);
    assert!(err(&p).contains("truncated header"));

    let good = gz(&idx(0x08, &[100], &[3; 100]));
    let p = dir.write("cut.gz", &good[..good.len() / 2]);
    let m = err(&p);
    assert!(
        m.starts_with(&format!("{}: gzip decompression failed", p.display())),
        "{m}"
    );
}

#[test]
fn error_kinds_are_matchable() {
    let dir = TempDir::new("kinds");
    let p = dir.write("f", &idx(0x08, &[4], &[0; 2]));
    match read_idx(&p).unwrap_err() {
        DataError::Idx {
            file,
            kind:
                IdxErrorKind::Truncated {
                    expected: 4,
                    available: 2,
                    header_len: 8,
                },
        } => assert_eq!(file, p.display().to_string()),
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn missing_file_is_io_error() {
    let dir = TempDir::new("missing");
    let p = dir.path().join("nope");
    let e = read_idx(&p).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }));
    assert!(e.to_string().starts_with(&format!("{}: ", p.display())));
}
