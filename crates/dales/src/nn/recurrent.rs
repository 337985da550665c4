//! The recurrent core: every recurrent cell is one `step(input, state) -> state`, and sequences,
//! drives and analyses are built on that step alone.
//!
//! A cell implements [`Recurrent`]. [`Recurrent::prepare`] does the per-sequence work once
//! (bias sums, concatenated readouts), then [`Recurrent::step`] advances the state by one time
//! step with an optional external drive `ext_t (B, H)` added to every hidden pre-activation
//! (spec C4). [`run`] rolls a cell over a `(B, T, in)` input. The E/I recurrent cells plug in
//! by implementing the same trait.
//!
//! ```
//! use dales::nn::InitRng;
//! use dales::nn::recurrent::{Recurrent, run};
//! use dales::nn::rnn::{Activation, RnnConfig};
//!
//! let device = dales::device::cpu();
//! let cell = RnnConfig::new(1, 8, Activation::Tanh).init(&mut InitRng::new(1), &device).unwrap();
//! let xs = burn::tensor::Tensor::<3>::ones([2, 5, 1], &device);
//! let state = run(&cell, xs, |_| None);
//! assert_eq!(cell.output(&state).dims(), [2, 8]);
//! ```

use burn::tensor::Tensor;

/// A recurrent cell: a state, and one step that advances it.
pub trait Recurrent {
    /// Everything the cell carries from one step to the next (`h`, and `g` or `c`).
    type State: Clone;
    /// Per-sequence precomputation shared by every step.
    type Prepared;

    /// Hidden units `H` (the width of [`Recurrent::output`]).
    fn hidden(&self) -> usize;

    /// The initial state for `batch` sequences (all zeros in every model of spec C2).
    fn zero_state(&self, batch: usize) -> Self::State;

    /// Work done once per sequence.
    fn prepare(&self) -> Self::Prepared;

    /// One step: the state after input `x_t (B, in)`, with `drive (B, H)` added to the hidden
    /// pre-activations.
    fn step(
        &self,
        prepared: &Self::Prepared,
        x_t: Tensor<2>,
        state: Self::State,
        drive: Option<Tensor<2>>,
    ) -> Self::State;

    /// The hidden activity `h (B, H)` of a state (what a readout sees).
    fn output(&self, state: &Self::State) -> Tensor<2>;
}

/// Roll `cell` over `xs (B, T, in)` from the zero state, with `drive(t)` the external drive at
/// step `t` (or `None`), and return the last state.
pub fn run<C: Recurrent>(
    cell: &C,
    xs: Tensor<3>,
    drive: impl Fn(usize) -> Option<Tensor<2>>,
) -> C::State {
    let [b, steps, d] = xs.dims();
    let prepared = cell.prepare();
    let mut state = cell.zero_state(b);
    for t in 0..steps {
        let x_t = xs.clone().slice([0..b, t..t + 1, 0..d]).reshape([b, d]);
        state = cell.step(&prepared, x_t, state, drive(t));
    }
    state
}

/// Roll `cell` over `xs (B, T, in)` from the zero state without a drive and return the output
/// `h_t (B, H)` of every step (for tasks with a readout at every step, such as the copy task).
pub fn outputs<C: Recurrent>(cell: &C, xs: Tensor<3>) -> Vec<Tensor<2>> {
    let [b, steps, d] = xs.dims();
    let prepared = cell.prepare();
    let mut state = cell.zero_state(b);
    let mut out = Vec::with_capacity(steps);
    for t in 0..steps {
        let x_t = xs.clone().slice([0..b, t..t + 1, 0..d]).reshape([b, d]);
        state = cell.step(&prepared, x_t, state, None);
        out.push(cell.output(&state));
    }
    out
}
