//! # dales
//!
//! Biologically constrained neural networks on [burn](https://burn.dev): Dale's-principle
//! networks with separate excitatory and inhibitory populations (DANN, Cornford et al., ICLR
//! 2021), their baselines (MLP, layer-norm MLP, sign-constrained ColumnEI), corrected
//! sign-preserving updates, and checkpoints that PyTorch code loads.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use dales::nn::{MlpConfig, ModelKind};
//! use dales::optim::{Clip, Method, Optimizer, RuleTable};
//! use dales::train::cross_entropy;
//!
//! let device = dales::device::cpu().autodiff();
//! let kind = ModelKind::Dann;
//! let mut model = MlpConfig::paper(kind).init_seeded(1, &device).unwrap();
//! let mut optim = Optimizer::new(Method::SGD, Clip::NONE, RuleTable::for_kind(kind));
//! optim.check(&model).unwrap();
//! let x = Tensor::<2>::ones([2, 784], &device);
//! let loss = cross_entropy(model.forward(x), &[3, 7]);
//! model = optim.step(0.1107, model, &mut loss.backward());
//! ```
//!
//! - [`nn`]: layers ([`nn::DannDense`], [`nn::ColumnEiDense`], …), initialisations, models.
//! - [`optim`]: parameter groups, update rules, the [`optim::Optimizer`].
//! - [`checkpoint`]: the `dales-ff/1` safetensors format.

pub mod analysis;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod error;
pub mod fused;
pub mod io;
pub mod learner;
pub mod nn;
pub mod optim;
pub mod robustness;
pub mod run;
pub mod train;

pub use error::{Error, Result};
