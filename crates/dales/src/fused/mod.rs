//! Fused operations: the hot paths of training as single ops with hand-written backward
//! passes, instead of a dozen framework ops each.
//!
//! Layout:
//! - [`ops`] lists the ops. Each is a value holding its non-tensor settings and a function
//!   that dispatches itself: where its kernels run (f32 on burn's NdArray CPU backend or on the
//!   `gpu` feature's CubeCL backend, f64 on the CPU for some, and fusing on in the
//!   [`Settings`]) it runs them, anywhere else it calls the plain tensor version its caller
//!   hands it. The plain versions live with the layers (`crate::nn`) and stay the tested
//!   reference.
//! - `cpu/<op>.rs`: the op's host forward and backward on slices, with the glue that reads
//!   them from NdArray tensors (its `Kernel<NdArray>`); `cpu/gemm.rs` and `cpu/skinny.rs` are
//!   the products they share, `cpu/simd.rs` the vectorised element-wise maths.
//! - `gpu/<op>.rs`: the same op as CubeCL kernels (its `Kernel<Cube>`), with the same
//!   arithmetic as the host version.
//! - [`autodiff`]: the one piece of code that routes every op through burn's `Dispatch`
//!   backend, records it on the autodiff graph and registers its gradients.
//!
//! Adding an op: declare its value and dispatching function in `ops.rs`, write its forward
//! and backward in `cpu/<op>.rs` (and `gpu/<op>.rs`) as a `Kernel` implementation, and test
//! it against its plain version. Nothing else changes.
//!
//! This module imports nothing else of the crate: constants (the shunt's ε, the gamma's floor)
//! and the parameters of cells come in as arguments.
#![allow(deprecated)] // burn-ndarray is deprecated in burn 0.22; it is the CPU backend dales measured fastest.

pub(crate) mod autodiff;
pub(crate) mod checkpoints;
pub(crate) mod cpu;
#[cfg(feature = "gpu")]
pub(crate) mod gpu;
pub mod ops;

use std::cell::Cell;

pub use cpu::gamma::{
    Broadcast, Real, floored_partials, floored_value, gamma_partials, gamma_value,
    parts as gamma_parts,
};
pub use cpu::gemm;
pub use ops::{
    ArunParams, Conv2d, Pool, RnnAct, RnnParams, affine, arun_sequence, controller_step,
    conv_affine, conv_dann_layer, dann_layer, gamma, rnn_sequence, rnn_states, sgd_step, tanh,
};

/// How the fused ops run for the calls made inside [`Settings::run`] (or [`Settings::scope`])
/// on that thread; [`Settings::default`] elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Run the fused ops where they have kernels; `false` runs every op's plain tensor
    /// version (to measure what fusing gains, or to compare the two).
    pub fused: bool,
    /// Bytes of ARUN controller states a fused sequence may keep for its backward pass before
    /// it keeps every `⌈√T⌉`-th and recomputes the others. Results do not depend on it.
    pub memory_budget: usize,
    /// The seed of the current training step's random regularisers (the recurrent DANN's
    /// DropConnect masks), set by the trainer for each update; `None` outside training steps
    /// (evaluation, analyses), where nothing is dropped.
    pub noise_seed: Option<u64>,
    /// Run [`Settings::run`] on a pool of one thread (one per calling thread): for models
    /// whose products and passes are too small to gain from splitting, where waking a second
    /// thread costs more than it saves.
    pub serial: bool,
}

impl Default for Settings {
    /// Fused, and 4 GiB of controller states: the paper-size ARUN keeps every state up to
    /// `T = 535` and checkpoints beyond, staying within 8 GiB at `T = 784`.
    fn default() -> Self {
        Settings {
            fused: true,
            memory_budget: 4 << 30,
            noise_seed: None,
            serial: false,
        }
    }
}

thread_local! {
    static CURRENT: Cell<Option<Settings>> = const { Cell::new(None) };
    /// The one-worker pool of [`Settings::run`] with `serial`, one per calling thread (so that
    /// runs trained side by side do not queue behind each other).
    static SERIAL: rayon::ThreadPool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a pool of one thread");
}

impl Settings {
    /// The settings of the calls made now on this thread.
    pub fn current() -> Settings {
        CURRENT.with(Cell::get).unwrap_or_default()
    }

    /// Run `f` on this thread under these settings.
    pub fn scope<R>(self, f: impl FnOnce() -> R) -> R {
        /// Restores the outer settings, also when `f` panics.
        struct Restore(Option<Settings>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.replace(Some(self))));
        f()
    }

    /// Run `f` on one of rayon's worker threads under these settings, and wait for it.
    ///
    /// The fused ops split their products and passes across rayon's threads. Called from a
    /// thread outside the pool, each split hands its work to the pool and sleeps until it is
    /// done (a context switch or two, tens of microseconds, for each of the few dozen
    /// products of a training step); called from a worker, the split costs a push onto a
    /// queue. A training step therefore runs inside this.
    /// With `serial`, `f` runs on this thread's own pool of one worker instead.
    pub fn run<R: Send>(self, f: impl FnOnce() -> R + Send) -> R {
        if self.serial {
            SERIAL.with(|pool| pool.install(|| self.scope(f)))
        } else {
            rayon::scope(|_| self.scope(f))
        }
    }
}
