//! A small, learnable synthetic dataset in the MNIST file format, for smoke tests and demos.
//!
//! Image i has class c = i mod `classes`; row c mod `side` is bright (180–239), the other rows
//! dark (20–79), with seeded noise. Any classifier that sees the rows separates the classes.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::DataError;

/// Sizes of a synthetic dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticSpec {
    /// Training images.
    pub n_train: usize,
    /// Test images.
    pub n_test: usize,
    /// Image side (images are side × side).
    pub side: usize,
    /// Number of classes (≤ 256).
    pub classes: usize,
    /// Seed of the pixel noise.
    pub seed: u64,
}

/// An IDX file of unsigned bytes with dimensions `dims`.
pub fn encode_idx_u8(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        v.extend_from_slice(&(d as u32).to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// Write the four raw IDX files of a synthetic dataset into `dir` (created if needed).
pub fn write_dataset(dir: &Path, spec: SyntheticSpec) -> Result<(), DataError> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    for (prefix, n) in [("train", spec.n_train), ("t10k", spec.n_test)] {
        let mut pixels = Vec::with_capacity(n * spec.side * spec.side);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % spec.classes;
            labels.push(c as u8);
            for r in 0..spec.side {
                let base: u8 = if r == c % spec.side { 180 } else { 20 };
                for _ in 0..spec.side {
                    pixels.push(base + rng.random_range(0..60u8));
                }
            }
        }
        for (name, bytes) in [
            (
                format!("{prefix}-images-idx3-ubyte"),
                encode_idx_u8(&[n, spec.side, spec.side], &pixels),
            ),
            (
                format!("{prefix}-labels-idx1-ubyte"),
                encode_idx_u8(&[n], &labels),
            ),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, bytes).map_err(|e| DataError::Io { path, source: e })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MnistLike;

    #[test]
    fn written_dataset_loads() {
        let dir = std::env::temp_dir().join(format!("dales-synth-{}", std::process::id()));
        let spec = SyntheticSpec {
            n_train: 12,
            n_test: 5,
            side: 4,
            classes: 3,
            seed: 1,
        };
        write_dataset(&dir, spec).unwrap();
        let d = MnistLike::load_dir(&dir).unwrap();
        assert_eq!((d.train.len(), d.test.len(), d.n_classes()), (12, 5, 3));
        assert_eq!(d.train.label(4), 1);
        assert!(d.train.image(4)[4..8].iter().all(|&p| p >= 180));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
