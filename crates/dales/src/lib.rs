//! # dales
//!
//! Biologically constrained neural networks on [burn](https://burn.dev): Dale's-principle
//! networks with separate excitatory and inhibitory populations (DANN, Cornford et al., ICLR
//! 2021), their baselines (MLP, layer-norm MLP, sign-constrained ColumnEI), corrected
//! sign-preserving updates, and checkpoints that PyTorch code loads; and single-neuron
//! adaptation (Geadah et al., PLOS CB 2024): gamma units with learned shapes and ARUN.
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
//! - [`nn`]: layers ([`nn::DannDense`], [`nn::ColumnEiDense`], …), initialisations, models;
//!   the recurrent models of the adaptation paper ([`nn::rnn`], [`nn::arun`], [`nn::seq`]) on
//!   one recurrent core ([`nn::recurrent`]); the recurrent E/I networks of the spectral paper
//!   ([`nn::recurrent_net`]: standard, DANN and ColEI cells, [`nn::spectrum`]).
//! - [`optim`]: parameter groups, update rules, the [`optim::Optimizer`].
//! - [`run`]: training runs for any [`learner::ModelSpec`] (feed-forward or sequence models).
//! - [`robustness`]: input transforms and external drives (spec C4); [`analysis`]: Lyapunov
//!   exponents, Jacobian norms, fractional differentiation, adaptation index (spec C5).
//! - [`checkpoint`]: the `dales-ff/1` safetensors format (sequence models: `dales-seq/1`,
//!   [`learner::load_seq`]; recurrent E/I networks: `dales-rnn/1`, [`recurrent_run`]).

pub mod alloc;
pub mod analysis;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod conv_run;
pub mod device;
pub mod error;
pub mod fused;
pub mod host;
pub mod io;
pub mod learner;
pub mod nn;
pub mod optim;
pub mod plot;
pub mod presets;
pub mod queue;
pub mod recurrent_run;
pub mod report;
pub mod reproduce;
pub mod robustness;
pub mod run;
pub mod stats;
pub mod sweep;
pub mod train;

pub use error::{Error, Result};
