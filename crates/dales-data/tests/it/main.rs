//! The `dales-data` crate's integration tests, in one binary.

mod common;

mod cifar;
mod fashion_mnist;
mod idx_files;
mod mnist_dir;
mod proptest_idx;
