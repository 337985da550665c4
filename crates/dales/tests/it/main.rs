//! The `dales` crate's integration tests, in one binary (one link of burn): each module tests
//! one part against independent truths (finite differences, closed forms, the PyTorch
//! reference, the paper's numbers).

mod common;

mod analysis;
mod arun;
mod checkpoint;
mod config_errors;
mod config_file;
mod conv;
mod dngd;
mod fused;
mod fused_sequence;
mod gamma;
mod gradcheck;
mod init_stats;
mod queue;
mod recurrent;
mod reference;
mod rnn;
mod runs;
mod sequence;
mod sweep;
mod updates;
