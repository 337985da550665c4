//! Image datasets for `dales`: IDX (MNIST, Fashion-MNIST, KMNIST) and the CIFAR-10/100 binary
//! format ([`cifar`]).
//!
//! * [`read_idx`] / [`parse_idx`] read unsigned-byte IDX files, raw or gzip-compressed,
//!   validating every size against the real data before allocating.
//! * [`MnistLike`] loads the four standard files of a dataset directory (or a CIFAR
//!   directory) into two [`Split`]s that keep pixels as bytes and convert batches to `f32` on
//!   demand.
//! * [`Split::split_validation`] splits off a seeded validation set, and [`EpochOrder`]
//!   gives the seeded batch order of each epoch, reproducible from `(seed, epoch)` alone.
//!
//! # Example
//!
//! ```no_run
//! use dales_data::{EpochOrder, MnistLike};
//!
//! # fn main() -> Result<(), dales_data::DataError> {
//! let data = MnistLike::load_default()?; // /usr/share/datasets/fashion-mnist
//! let (train, val) = data.train.split_validation(5_000, 42)?;
//! let order = EpochOrder::new(train.len(), 32, 42)?;
//! let (mut x, mut y) = (Vec::new(), Vec::new());
//! for batch in &order.batches(0) {
//!     train.gather_f32(batch, &mut x); // batch.len() × 784 values in [0, 1]
//!     train.gather_labels(batch, &mut y); // batch.len() labels in 0..10
//!     // ... feed x and y to the network
//! }
//! println!("{} validation and {} test images", val.len(), data.test.len());
//! # Ok(())
//! # }
//! ```

pub mod adding;
pub mod augment;
pub mod batch;
pub mod cifar;
pub mod copy;
mod error;
mod idx;
mod mnist;
pub mod rows;
pub mod sequence;
mod split;
pub mod synthetic;
pub mod task;

pub use batch::{EpochBatches, EpochOrder, VALIDATION_STREAM};
pub use error::{DataError, IdxErrorKind};
pub use idx::{IdxArray, MAX_DECOMPRESSED_BYTES, parse_idx, read_idx};
pub use mnist::{DEFAULT_DATA_DIR, MnistLike};
pub use split::{LabelSite, Split};
