//! Helpers shared by the integration tests: IDX encoding and self-deleting temp dirs.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::Compression;
use flate2::write::GzEncoder;

/// A fresh directory under the system temp dir, deleted on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("dales-data-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Encodes an IDX file with the given element type, dimensions and data bytes.
pub fn idx(type_code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, type_code, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// `n` images of `rows × cols` whose pixels are `(i * 7 + j) % 256`, as an IDX file.
pub fn images(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let len = (n * rows * cols) as usize;
    let data: Vec<u8> = (0..len)
        .map(|j| ((j / (rows * cols) as usize) * 7 + j) as u8)
        .collect();
    idx(0x08, &[n, rows, cols], &data)
}

/// `n` labels `i % n_classes`, as an IDX file.
pub fn labels(n: u32, n_classes: u8) -> Vec<u8> {
    let data: Vec<u8> = (0..n).map(|i| (i % u32::from(n_classes)) as u8).collect();
    idx(0x08, &[n], &data)
}

/// Writes a small gzip-compressed dataset (`n_train`/`n_test` images of 4×3, 5 classes).
pub fn write_dataset(dir: &TempDir, n_train: u32, n_test: u32) {
    dir.write("train-images-idx3-ubyte.gz", &gz(&images(n_train, 4, 3)));
    dir.write("train-labels-idx1-ubyte.gz", &gz(&labels(n_train, 5)));
    dir.write("t10k-images-idx3-ubyte.gz", &gz(&images(n_test, 4, 3)));
    dir.write("t10k-labels-idx1-ubyte.gz", &gz(&labels(n_test, 5)));
}
