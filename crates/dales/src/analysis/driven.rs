//! The analyses of a trained sequence model that `dales analyze` runs (spec C5): its traces on
//! test sequences under the paper's step drive of each amplitude `ξ`, the Lyapunov spectrum
//! and the recurrent Jacobian's norms at those operating points, and the isolated-neuron
//! step response with its adaptation indices and fractional-order fits.

use dales_data::task::Task;

use super::adaptation::{AdaptationWindows, adaptation_index};
use super::fracdiff::{FracFit, fit_order, linspace};
use super::jacobian::{inf_norm, spectral_norm};
use super::lyapunov::spectrum;
use super::trace::{
    StepProtocol, Trace, activation, jacobian, record, recurrent_weights, step_response,
};
use crate::error::{Error, Result};
use crate::learner::Readout;
use crate::nn::seq::SeqClassifier;
use crate::robustness::{Drive, check_xi};

/// The trace of `model` on the first `sequences` examples of `task` under the paper's step
/// drive of each amplitude `ξ` in `xi` (no drive at `ξ = 0`).
pub fn driven_traces(
    model: &SeqClassifier,
    task: &dyn Task,
    sequences: usize,
    xi: &[f64],
) -> Result<Vec<(f64, Trace)>> {
    check_xi(xi)?;
    if sequences == 0 {
        return Err(Error::option(
            "--sequences",
            0,
            "at least one sequence is needed",
        ));
    }
    let n = sequences.min(task.len());
    let idx: Vec<usize> = (0..n).collect();
    let device = model.device();
    let steps = task.steps();
    let mut out = Vec::new();
    for &x in xi {
        let (inputs, _) = Readout::Last.apply(task.batch(&idx), &device);
        let drive = (x > 0.0).then(|| Drive::paper_step(x, steps));
        let drives = match &drive {
            Some(d) => {
                d.validate(steps)?;
                d.tensors(&idx, model.hidden(), steps, &device)
            }
            None => vec![None; steps],
        };
        out.push((x, record(model, inputs, &|t| drives[t].clone())?));
    }
    Ok(out)
}

/// The Lyapunov spectrum (bits per step, QR over `iterations` steps) of the autonomous
/// network `h ← φ(W h; n, s)` at each operating point of `traces`: each neuron's shape averaged
/// over the steps of the paper's drive window (the same steps for `ξ = 0`, undriven), started
/// from the last state of the first sequence.
pub fn lyapunov_vs_drive(
    model: &SeqClassifier,
    traces: &[(f64, Trace)],
    iterations: usize,
) -> Result<Vec<(f64, Vec<f64>)>> {
    let h = model.hidden();
    let w = recurrent_weights(model);
    let mut out = Vec::new();
    for (xi, tr) in traces {
        let Drive::Step {
            position, length, ..
        } = Drive::paper_step(*xi, tr.steps)
        else {
            unreachable!("a step drive")
        };
        let window = (position + 1)..(position + length).min(tr.steps);
        let mean = |f: &[f64]| -> Vec<f64> {
            let per = tr.mean_over_batch(f);
            (0..h)
                .map(|i| window.clone().map(|t| per[t * h + i]).sum::<f64>() / window.len() as f64)
                .collect()
        };
        let (n, s) = (mean(&tr.n), mean(&tr.s));
        let h0: Vec<f64> = tr.at(&tr.h, tr.steps - 1, 0).to_vec();
        let step = |x: &[f64]| {
            let a: Vec<f64> = (0..h)
                .map(|i| (0..h).map(|j| w[i * h + j] * x[j]).sum())
                .collect();
            let next: Vec<f64> = (0..h)
                .map(|i| activation(model, a[i], n[i], s[i]))
                .collect();
            (next, jacobian(model, &w, &a, &n, &s))
        };
        out.push((*xi, spectrum(step, &h0, h, iterations, 1)?));
    }
    Ok(out)
}

/// The mean norms of the recurrent Jacobian `diag(φ'(a_t))·W` along a trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JacobianAt {
    /// The drive amplitude.
    pub xi: f64,
    /// Mean ∞-operator norm (largest absolute row sum).
    pub inf: f64,
    /// Mean spectral norm.
    pub spectral: f64,
}

/// [`JacobianAt`] for each trace, averaged over every step of its first (up to) 10
/// sequences.
pub fn jacobian_vs_drive(
    model: &SeqClassifier,
    traces: &[(f64, Trace)],
) -> Result<Vec<JacobianAt>> {
    let h = model.hidden();
    let w = recurrent_weights(model);
    let mut out = Vec::new();
    for (xi, tr) in traces {
        let (mut sum_inf, mut sum_spec, mut count) = (0.0, 0.0, 0.0);
        for t in 0..tr.steps {
            for b in 0..tr.batch.min(10) {
                let (a, n, s) = (tr.at(&tr.a, t, b), tr.at(&tr.n, t, b), tr.at(&tr.s, t, b));
                let jac = jacobian(model, &w, a, n, s);
                sum_inf += inf_norm(&jac, h, h)?;
                sum_spec += spectral_norm(&jac, h, h)?;
                count += 1.0;
            }
        }
        out.push(JacobianAt {
            xi: *xi,
            inf: sum_inf / count,
            spectral: sum_spec / count,
        });
    }
    Ok(out)
}

/// The isolated-neuron step experiment (Fig. 3) at each amplitude.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Per `ξ`: the mean activity over trials and neurons at each step.
    pub population: Vec<(f64, Vec<f64>)>,
    /// Per `ξ`: each neuron's adaptation index.
    pub adaptation: Vec<(f64, Vec<f64>)>,
    /// The population's fractional order: template `ξ·1{|t − 75| < 25}` over `[40, 110)`,
    /// offset at `t = 25`, orders `0, 0.01, …, 1`.
    pub fit: FracFit,
    /// Each neuron's fractional order in `[−1, 1]`, template `0.8 + ξ` inside the window.
    pub neuron_alpha: Vec<f64>,
}

/// Run `protocol` on `model` at every amplitude of `xi` and fit the responses.
pub fn response(model: &SeqClassifier, protocol: &StepProtocol, xi: &[f64]) -> Result<Response> {
    check_xi(xi)?;
    if protocol.trials == 0 {
        return Err(Error::option("--trials", 0, "at least one trial is needed"));
    }
    let h = model.hidden();
    let (mut population, mut adaptation, mut per_neuron) = (Vec::new(), Vec::new(), Vec::new());
    for &x in xi {
        let tr = step_response(model, protocol, x)?;
        let mean = tr.mean_over_batch(&tr.h);
        let indices = (0..h)
            .map(|i| {
                let trace: Vec<f64> = (0..tr.steps).map(|t| mean[t * h + i]).collect();
                adaptation_index(&trace, &AdaptationWindows::SPEC)
            })
            .collect::<std::result::Result<Vec<f64>, _>>()?;
        adaptation.push((x, indices));
        population.push((x, tr.population_mean(&tr.h)));
        per_neuron.push((x, mean));
    }
    let template = |xi: f64, t: usize| {
        if (t as f64 - 75.0).abs() < 25.0 {
            xi
        } else {
            0.0
        }
    };
    let fit = fit_order(&population, template, 40..110, 25, &linspace(0.0, 1.0, 101))?;
    let alphas = linspace(-1.0, 1.0, 201);
    let neuron_alpha = (0..h)
        .map(|i| {
            let traces: Vec<(f64, Vec<f64>)> = per_neuron
                .iter()
                .map(|(xi, m)| (*xi, (0..protocol.steps).map(|t| m[t * h + i]).collect()))
                .collect();
            let tpl = |xi: f64, t: usize| 0.8 + template(xi, t);
            fit_order(&traces, tpl, 40..110, 25, &alphas).map(|f| f.best_alpha)
        })
        .collect::<std::result::Result<Vec<f64>, _>>()?;
    Ok(Response {
        population,
        adaptation,
        fit,
        neuron_alpha,
    })
}
