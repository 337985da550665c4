//! Trajectories of trained sequence models, recorded step by step for the analyses: the
//! pre-activations `a_t`, the activity `h_t` and the gamma shape `(n_t, s_t)` of every neuron
//! (constant for the static models, set by the controller for an ARUN).
//!
//! [`StepProtocol`] is the paper's isolated-neuron experiment (spec C5, fractional-order
//! differentiation, Fig. 3): the input weights act as a diagonal, so neuron `i` receives its
//! own input `u_i·x_{i,t}` with `x_i ~ N(0.8, 0.1²)` fixed per trial plus fresh `N(0, σ²)`
//! noise each step, and a step drive `ξ` on `onset < t < offset`.

use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::host::host_f64 as host;
use crate::nn::gamma::{slope as gamma_prime, value as gamma};
use crate::nn::recurrent::Recurrent;
use crate::nn::rnn::{Activation, preactivation};
use crate::nn::seq::{SeqCell, SeqClassifier};
use crate::nn::{ParamValue, Parameterised};

/// Per-step values, indexed `(t·batch + b)·hidden + i`.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Steps recorded.
    pub steps: usize,
    /// Sequences.
    pub batch: usize,
    /// Neurons.
    pub hidden: usize,
    /// Pre-activations `a_t`.
    pub a: Vec<f64>,
    /// Activity `h_t`.
    pub h: Vec<f64>,
    /// Gain `n_t` (NaN for activations without a shape).
    pub n: Vec<f64>,
    /// Saturation `s_t` (NaN for activations without a shape).
    pub s: Vec<f64>,
}

impl Trace {
    /// `field` averaged over sequences: `(steps, hidden)` row-major.
    pub fn mean_over_batch(&self, field: &[f64]) -> Vec<f64> {
        let (b, h) = (self.batch, self.hidden);
        let mut out = vec![0.0; self.steps * h];
        for t in 0..self.steps {
            for seq in 0..b {
                let row = &field[(t * b + seq) * h..(t * b + seq + 1) * h];
                for (o, v) in out[t * h..(t + 1) * h].iter_mut().zip(row) {
                    *o += v / b as f64;
                }
            }
        }
        out
    }

    /// `field` averaged over sequences and neurons: one value per step.
    pub fn population_mean(&self, field: &[f64]) -> Vec<f64> {
        let per = self.batch * self.hidden;
        field
            .chunks_exact(per)
            .map(|c| c.iter().sum::<f64>() / per as f64)
            .collect()
    }

    /// The slice of step `t`, sequence `b`.
    pub fn at<'a>(&self, field: &'a [f64], t: usize, b: usize) -> &'a [f64] {
        let start = (t * self.batch + b) * self.hidden;
        &field[start..start + self.hidden]
    }
}

/// Run `model` (without autodiff) on `xs (batch, steps, 1)` with `drive(t)` and record every
/// step.
///
/// # Errors
/// For the gated cells (LSTM, GRU): the analyses are those of spec C5, defined for units with
/// one pre-activation and a shape.
pub fn record(
    model: &SeqClassifier,
    xs: Tensor<3>,
    drive: &dyn Fn(usize) -> Option<Tensor<2>>,
) -> crate::Result<Trace> {
    check_analysable(model)?;
    let model = model.inference();
    let [batch, steps, _] = xs.dims();
    let hidden = model.hidden();
    let mut tr = Trace {
        steps,
        batch,
        hidden,
        a: Vec::new(),
        h: Vec::new(),
        n: Vec::new(),
        s: Vec::new(),
    };
    let x_at = |t: usize| {
        xs.clone()
            .slice([0..batch, t..t + 1, 0..1])
            .reshape([batch, 1])
    };
    match &model.cell {
        SeqCell::Rnn(cell) => {
            let p = cell.prepare();
            let mut h = cell.zero_state(batch);
            let (n, s) = match (&cell.n, &cell.s) {
                (Some(n), Some(s)) => (host(n.val()), host(s.val())),
                _ => (vec![f64::NAN], vec![f64::NAN]),
            };
            for t in 0..steps {
                let a = preactivation(&p, x_at(t), h, drive(t));
                h = cell.activate(a.clone());
                tr.a.extend(host(a));
                tr.h.extend(host(h.clone()));
                for _ in 0..batch {
                    tr.n.extend((0..hidden).map(|i| n[i % n.len()]));
                    tr.s.extend((0..hidden).map(|i| s[i % s.len()]));
                }
            }
        }
        SeqCell::Arun(cell) => {
            let p = cell.prepare();
            let mut state = cell.zero_state(batch);
            for t in 0..steps {
                let (next, a) = cell.step_traced(&p, x_at(t), state, drive(t));
                state = next;
                tr.a.extend(host(a));
                tr.h.extend(host(state.h.clone()));
                tr.n.extend(host(state.n.clone()));
                tr.s.extend(host(state.s.clone()));
            }
        }
        SeqCell::Lstm(_) | SeqCell::Gru(_) => unreachable!("checked above"),
    }
    Ok(tr)
}

/// The analyses need units with one pre-activation each: RNN and ARUN cells.
fn check_analysable(model: &SeqClassifier) -> crate::Result<()> {
    match &model.cell {
        SeqCell::Rnn(_) | SeqCell::Arun(_) => Ok(()),
        SeqCell::Lstm(_) | SeqCell::Gru(_) => Err(crate::Error::config(
            "model.kind",
            model.config().kind,
            "an RNN or ARUN model (the analyses of spec C5 are defined for them)",
        )),
    }
}

/// The slope `φ'(a)` of a model's activation, with the shape `(n, s)` for gamma units (`n`
/// floored at [`crate::nn::gamma::N_MIN`] as in the network).
pub fn slope(model: &SeqClassifier, a: f64, n: f64, s: f64) -> f64 {
    match &model.cell {
        SeqCell::Arun(_) => gamma_prime(a, n, s),
        SeqCell::Lstm(_) | SeqCell::Gru(_) => f64::NAN,
        SeqCell::Rnn(cell) => match cell.activation {
            Activation::Relu => f64::from(u8::from(a > 0.0)),
            Activation::Tanh => 1.0 - a.tanh().powi(2),
            Activation::Softplus => 1.0 / (1.0 + (-a).exp()),
            Activation::Gamma(_) => gamma_prime(a, n, s),
        },
    }
}

/// `φ(a)` of a model's units, with the shape `(n, s)` for gamma units (`n` floored as in the
/// network; NaN for gated cells).
pub fn activation(model: &SeqClassifier, a: f64, n: f64, s: f64) -> f64 {
    match &model.cell {
        SeqCell::Arun(_) => gamma(a, n, s),
        SeqCell::Lstm(_) | SeqCell::Gru(_) => f64::NAN,
        SeqCell::Rnn(cell) => match cell.activation {
            Activation::Relu => a.max(0.0),
            Activation::Tanh => a.tanh(),
            Activation::Softplus => gamma(a, 1.0, 0.0),
            Activation::Gamma(_) => gamma(a, n, s),
        },
    }
}

/// The recurrent Jacobian `diag(φ'(a; n, s))·W (H, H)` at pre-activations `a` with shapes
/// `n`, `s` (one per neuron), for `w` from [`recurrent_weights`].
pub fn jacobian(model: &SeqClassifier, w: &[f64], a: &[f64], n: &[f64], s: &[f64]) -> Vec<f64> {
    let h = a.len();
    let mut jac = vec![0.0; h * h];
    for (i, row) in jac.chunks_exact_mut(h).enumerate() {
        let d = slope(model, a[i], n[i], s[i]);
        for (j, v) in row.iter_mut().zip(&w[i * h..(i + 1) * h]) {
            *j = d * v;
        }
    }
    jac
}

/// The recurrent weights (`V` or `W_hh`; a gated cell's stacked `W_h`), row-major.
pub fn recurrent_weights(model: &SeqClassifier) -> Vec<f64> {
    let t = match &model.cell {
        SeqCell::Rnn(c) => c.v.val(),
        SeqCell::Arun(c) => c.w.val(),
        SeqCell::Lstm(c) => c.w_h.val(),
        SeqCell::Gru(c) => c.w_h.val(),
    };
    host(t)
}

/// The isolated-neuron experiment of spec C5 (Fig. 3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepProtocol {
    /// Steps per trial (150).
    pub steps: usize,
    /// The drive is on for `onset < t < offset` (50, 101).
    pub onset: usize,
    /// See `onset`.
    pub offset: usize,
    /// Mean of each neuron's input (0.8).
    pub input_mean: f64,
    /// Std of the per-trial input draw (0.1).
    pub input_std: f64,
    /// Std of the fresh per-step input noise (0.1 in Fig. 3, 5 in Fig. 4).
    pub noise_std: f64,
    /// Trials averaged (5).
    pub trials: usize,
    /// Remove the recurrent interactions: `W_hh ← diag(W_hh)`.
    pub isolated: bool,
    /// Seed of the inputs.
    pub seed: u64,
}

impl StepProtocol {
    /// Fig. 3's setting.
    pub const FIG3: StepProtocol = StepProtocol {
        steps: 150,
        onset: 50,
        offset: 101,
        input_mean: 0.8,
        input_std: 0.1,
        noise_std: 0.1,
        trials: 5,
        isolated: false,
        seed: 0,
    };
}

/// Run the step protocol with drive amplitude `xi` and record the trials (batch = trials).
/// The input enters through the drive (`ext_t = u ⊙ x_t + ξ·1{onset < t < offset}`) with a
/// zero sequence input, which makes `U` act as a diagonal.
pub fn step_response(
    model: &SeqClassifier,
    protocol: &StepProtocol,
    xi: f64,
) -> crate::Result<Trace> {
    check_analysable(model)?;
    let model = if protocol.isolated {
        isolate(model)
    } else {
        model.inference()
    };
    let device = model.device();
    let (b, h, steps) = (protocol.trials, model.hidden(), protocol.steps);
    let u: Vec<f64> = match &model.cell {
        SeqCell::Rnn(c) => host(c.u.val()),
        SeqCell::Arun(c) => host(c.u.val()),
        SeqCell::Lstm(_) | SeqCell::Gru(_) => unreachable!("checked above"),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(protocol.seed);
    let base = Normal::new(protocol.input_mean, protocol.input_std).expect("finite std");
    let noise = Normal::new(0.0, protocol.noise_std).expect("finite std");
    let x0: Vec<f64> = (0..b * h).map(|_| base.sample(&mut rng)).collect();
    let drives: Vec<Tensor<2>> = (0..steps)
        .map(|t| {
            let on = protocol.onset < t && t < protocol.offset;
            let v: Vec<f32> = x0
                .iter()
                .enumerate()
                .map(|(k, x)| {
                    let i = k % h;
                    (u[i] * (x + noise.sample(&mut rng)) + if on { xi } else { 0.0 }) as f32
                })
                .collect();
            Tensor::from_data(TensorData::new(v, [b, h]), &device)
        })
        .collect();
    let xs = Tensor::<3>::zeros([b, steps, 1], &device);
    record(&model, xs, &|t| Some(drives[t].clone()))
}

/// `model` without autodiff and with its recurrent weights reduced to their diagonal.
pub fn isolate(model: &SeqClassifier) -> SeqClassifier {
    let model = model.inference();
    let layers = model.param_layers();
    let values = layers
        .into_iter()
        .map(|l| {
            let is_cell = l.name == "cell";
            l.entries
                .into_iter()
                .map(
                    |e| match (&e.value, is_cell && matches!(e.name, "v" | "w")) {
                        (ParamValue::Matrix(t), true) => {
                            let [r, c] = t.dims();
                            let eye: Vec<f32> = (0..r * c)
                                .map(|k| f32::from(u8::from(k / c == k % c)))
                                .collect();
                            let eye =
                                Tensor::<2>::from_data(TensorData::new(eye, [r, c]), &t.device());
                            ParamValue::Matrix(t.clone() * eye)
                        }
                        _ => e.value,
                    },
                )
                .collect()
        })
        .collect();
    model.with_layer_values(values)
}

/// Record `model` on pixel sequences `xs` (`(batch, steps)` row-major, from
/// [`SeqClassifier::sequences`]) under `drive` (none: undriven).
pub fn record_sequences(
    model: &SeqClassifier,
    xs: Vec<f32>,
    batch: usize,
    drive: Option<&crate::robustness::Drive>,
) -> crate::Result<Trace> {
    let steps = model.steps();
    let device = model.device();
    let drives = match drive {
        Some(d) => {
            d.validate(steps)?;
            d.tensors(
                &(0..batch).collect::<Vec<_>>(),
                model.hidden(),
                steps,
                &device,
            )
        }
        None => vec![None; steps],
    };
    let input = Tensor::<3>::from_data(TensorData::new(xs, [batch, steps, 1]), &device);
    record(model, input, &|t| drives[t].clone())
}
