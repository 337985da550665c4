//! `parse_idx` never panics, and rejects every truncation of a valid file.

use crate::common::{gz, idx};
use dales_data::parse_idx;
use proptest::prelude::*;

fn valid_file() -> impl Strategy<Value = Vec<u8>> {
    (1u32..5, 1u32..6, 1u32..6).prop_flat_map(|(n, r, c)| {
        proptest::collection::vec(any::<u8>(), (n * r * c) as usize)
            .prop_map(move |data| idx(0x08, &[n, r, c], &data))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse_idx(&bytes, "random");
    }

    #[test]
    fn random_headers_never_panic(
        type_code in prop_oneof![Just(0x08u8), any::<u8>()],
        n_dims in 0u8..7,
        dims in proptest::collection::vec(any::<u32>(), 6),
        tail in proptest::collection::vec(any::<u8>(), 0..32),
    ) {
        let mut bytes = vec![0, 0, type_code, n_dims];
        for d in &dims {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend_from_slice(&tail);
        let cut = 4 + 4 * usize::from(n_dims.min(6)) + tail.len() / 2;
        let _ = parse_idx(&bytes[..cut.min(bytes.len())], "header");
        let _ = parse_idx(&gz(&bytes), "header.gz");
    }

    #[test]
    fn valid_files_parse(file in valid_file()) {
        let a = parse_idx(&file, "raw").unwrap();
        let b = parse_idx(&gz(&file), "raw.gz").unwrap();
        prop_assert_eq!(a.data(), &file[16..]);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn truncated_raw_is_err(file in valid_file(), frac in 0.0f64..1.0) {
        let cut = ((file.len() as f64) * frac) as usize;
        prop_assert!(parse_idx(&file[..cut], "raw").is_err());
    }

    #[test]
    fn truncated_gzip_is_err(file in valid_file(), frac in 0.0f64..1.0) {
        let z = gz(&file);
        let cut = ((z.len() as f64) * frac) as usize;
        prop_assert!(parse_idx(&z[..cut], "gz").is_err());
    }

    #[test]
    fn extended_raw_is_err(file in valid_file(), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        let mut f = file;
        f.extend_from_slice(&extra);
        prop_assert!(parse_idx(&f, "raw").is_err());
    }

    #[test]
    fn corrupted_files_never_panic(
        file in valid_file(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        compressed in any::<bool>(),
    ) {
        let mut f = if compressed { gz(&file) } else { file };
        for (at, byte) in flips {
            let i = at.index(f.len());
            f[i] = byte;
        }
        let _ = parse_idx(&f, "corrupt");
    }
}
