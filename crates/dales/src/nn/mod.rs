//! Layers and models.

pub mod arun;
pub mod colei_rnn;
pub mod column_ei;
pub mod conv;
pub mod conv_dann;
pub mod convnet;
pub mod dann;
pub mod dann_rnn;
pub mod dense;
pub mod effective;
pub mod gamma;
pub mod gated;
pub mod init;
pub mod layer;
pub mod mlp;
pub mod param;
pub mod recurrent;
pub mod recurrent_net;
pub mod rnn;
pub mod seq;
pub mod spectrum;
pub mod standard_rnn;
pub mod transplant;

pub use column_ei::{ColumnEiConfig, ColumnEiDense};
pub use dann::{DannConfig, DannDense, DannParts, EiDense, SHUNT_EPS};
pub use dense::{Dense, DenseConfig, DenseLayerNorm};
pub use init::InitRng;
pub use layer::Layer;
pub use mlp::{AnyLayer, FASHION_MNIST_PIXEL_MEAN, Mlp, MlpConfig, ModelKind};
pub use param::{Fan, ParamEntry, ParamLayer, ParamRole, ParamValue, Parameterised};
