//! The subcommands: each file is one command's arguments and its run, over library calls and
//! the shared modules of the binary (progress, plots, Ctrl-C); they do not import each other.

pub mod analyze;
pub mod bench;
pub mod compare;
pub mod eval;
pub mod reproduce;
pub mod robustness;
pub mod spectrum;
pub mod sweep;
pub mod train;
