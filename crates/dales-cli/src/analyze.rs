//! `dales analyze`: the analyses of the adaptation paper (spec C5) on a trained sequence run,
//! each writing a CSV and a PNG/SVG plot into `<run>/analysis/` (or `--out`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use dales::analysis::fracdiff::{fit_order, linspace};
use dales::analysis::trace::{
    StepProtocol, Trace, activation, jacobian as recurrent_jacobian, record_sequences,
    recurrent_weights, step_response,
};
use dales::analysis::{AdaptationWindows, adaptation, jacobian, lyapunov};
use dales::nn::seq::SeqClassifier;
use dales::robustness::Drive;

use crate::eval::load_data;
use crate::plot::{self, Panel, Series};
use crate::robustness::{check_xi, load_run};

/// Analyse a trained sequence run (spec C5).
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    #[command(subcommand)]
    pub what: Analysis,
}

/// The analyses.
#[derive(Debug, clap::Subcommand)]
pub enum Analysis {
    /// Mean gain n_t, saturation s_t and activity h_t over test sequences under a step drive
    /// of each amplitude ξ (the controller traces of an ARUN; constants for static models).
    Traces(Common),
    /// Lyapunov spectrum (QR iteration, bits per step) of the autonomous network
    /// h ← φ(W h; n, s), with each neuron's shape averaged over the drive window of test
    /// sequences under drive ξ; the maximal exponent vs ξ.
    Lyapunov(Common),
    /// Norms of the recurrent Jacobian diag(φ'(a_t))·W along test sequences under drive ξ:
    /// the ∞-operator norm (max row sum) and the spectral norm, averaged over steps and
    /// sequences.
    Jacobian(Common),
    /// The isolated-neuron step experiment (Fig. 3): each neuron gets its own input
    /// N(0.8, 0.1²) + fresh N(0, 0.1²) noise for 150 steps, with a step drive ξ on 50 < t < 101;
    /// the adaptation index per neuron and the fractional order α* whose derivative of the
    /// mean response best matches the drive's step.
    Response(ResponseArgs),
}

/// Options shared by the analyses.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// The run directory.
    pub run: PathBuf,
    /// Drive amplitudes ξ.
    #[arg(
        long,
        value_delimiter = ',',
        allow_negative_numbers = true,
        default_value = "0,1,2.5,5,10,20"
    )]
    pub xi: Vec<f64>,
    /// Test sequences used.
    #[arg(long, default_value_t = 100)]
    pub sequences: usize,
    /// Output directory [default: <run>/analysis].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Directory holding the four IDX files [default: the run's data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// Options of `dales analyze response`.
#[derive(Debug, Clone, clap::Args)]
pub struct ResponseArgs {
    #[command(flatten)]
    pub common: Common,
    /// Remove the recurrent interactions (W ← diag W).
    #[arg(long)]
    pub isolated: bool,
    /// Trials averaged.
    #[arg(long, default_value_t = 5)]
    pub trials: usize,
}

pub fn run(args: AnalyzeArgs) -> Result<ExitCode> {
    match args.what {
        Analysis::Traces(c) => traces(&c),
        Analysis::Lyapunov(c) => lyapunov_vs_drive(&c),
        Analysis::Jacobian(c) => jacobian_vs_drive(&c),
        Analysis::Response(r) => response(&r),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn out_dir(c: &Common) -> Result<PathBuf> {
    let dir = c.out.clone().unwrap_or_else(|| c.run.join("analysis"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The model and the trace of its first `sequences` test sequences under each step drive ξ.
fn driven_traces(c: &Common) -> Result<(SeqClassifier, Vec<(f64, Trace)>)> {
    check_xi(&c.xi)?;
    if c.sequences == 0 {
        bail!("--sequences 0: at least one sequence is needed");
    }
    let (config, model) = load_run(&c.run)?;
    let data = load_data(c.data.as_ref().or(config.data.dir.as_ref()))?;
    let n = c.sequences.min(data.test.len());
    let idx: Vec<usize> = (0..n).collect();
    let mut xs = Vec::new();
    model.sequences(&data.test, &idx, &mut xs);
    let steps = model.steps();
    let mut out = Vec::new();
    for &xi in &c.xi {
        let drive = (xi > 0.0).then(|| Drive::paper_step(xi, steps));
        out.push((xi, record_sequences(&model, xs.clone(), n, drive.as_ref())?));
    }
    Ok((model, out))
}

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    dales::io::write_atomic(&dir.join(name), text.as_bytes())?;
    eprintln!("wrote {}", dir.join(name).display());
    Ok(())
}

fn traces(c: &Common) -> Result<()> {
    let (_, runs) = driven_traces(c)?;
    let dir = out_dir(c)?;
    let mut csv = String::from("xi,t,n_mean,s_mean,h_mean\n");
    let mut panels: Vec<Panel> = ["gain n_t", "saturation s_t", "activity h_t"]
        .iter()
        .map(|t| Panel {
            title: format!("mean {t}"),
            x_label: "step t".into(),
            y_label: t.to_string(),
            series: Vec::new(),
        })
        .collect();
    for (xi, tr) in &runs {
        let fields = [
            tr.population_mean(&tr.n),
            tr.population_mean(&tr.s),
            tr.population_mean(&tr.h),
        ];
        let [n, s, h] = &fields;
        for (t, ((n, s), h)) in n.iter().zip(s).zip(h).enumerate() {
            let _ = writeln!(csv, "{xi},{t},{n},{s},{h}");
        }
        for (panel, f) in panels.iter_mut().zip(&fields) {
            panel.series.push(Series {
                label: format!("ξ = {xi}"),
                points: f.iter().enumerate().map(|(t, v)| (t as f64, *v)).collect(),
            });
        }
    }
    write(&dir, "traces.csv", &csv)?;
    if runs[0].1.n.iter().all(|v| v.is_nan()) {
        panels.drain(0..2);
    }
    plot::save(&panels, &dir.join("traces"))
}

fn lyapunov_vs_drive(c: &Common) -> Result<()> {
    let (model, runs) = driven_traces(c)?;
    let dir = out_dir(c)?;
    let h = model.hidden();
    let w = recurrent_weights(&model);
    let mut csv = String::from("xi,index,exponent_bits_per_step\n");
    let mut mle = Vec::new();
    for (xi, tr) in &runs {
        // Each neuron's shape averaged over the drive window (its whole sequence for ξ = 0).
        let Drive::Step {
            position, length, ..
        } = Drive::paper_step(*xi, tr.steps)
        else {
            unreachable!()
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
                .map(|i| activation(&model, a[i], n[i], s[i]))
                .collect();
            (next, recurrent_jacobian(&model, &w, &a, &n, &s))
        };
        let les = lyapunov::spectrum(step, &h0, h, 1000, 1)?;
        for (i, le) in les.iter().enumerate() {
            let _ = writeln!(csv, "{xi},{i},{le}");
        }
        eprintln!(
            "ξ = {xi}: maximal Lyapunov exponent {:.5} bits/step",
            les[0]
        );
        mle.push((*xi, les[0]));
    }
    write(&dir, "lyapunov.csv", &csv)?;
    plot::save(
        &[Panel {
            title: "maximal Lyapunov exponent".into(),
            x_label: "drive amplitude ξ".into(),
            y_label: "bits per step".into(),
            series: vec![Series {
                label: model.config().kind.to_string(),
                points: mle,
            }],
        }],
        &dir.join("lyapunov"),
    )
}

fn jacobian_vs_drive(c: &Common) -> Result<()> {
    let (model, runs) = driven_traces(c)?;
    let dir = out_dir(c)?;
    let h = model.hidden();
    let w = recurrent_weights(&model);
    let mut csv = String::from("xi,inf_norm,spectral_norm\n");
    let (mut inf, mut spec) = (Vec::new(), Vec::new());
    for (xi, tr) in &runs {
        let (mut sum_inf, mut sum_spec, mut count) = (0.0, 0.0, 0.0);
        for t in 0..tr.steps {
            for b in 0..tr.batch.min(10) {
                let (a, n, s) = (tr.at(&tr.a, t, b), tr.at(&tr.n, t, b), tr.at(&tr.s, t, b));
                let jac = recurrent_jacobian(&model, &w, a, n, s);
                sum_inf += jacobian::inf_norm(&jac, h, h)?;
                sum_spec += jacobian::spectral_norm(&jac, h, h)?;
                count += 1.0;
            }
        }
        let (i, s) = (sum_inf / count, sum_spec / count);
        let _ = writeln!(csv, "{xi},{i},{s}");
        eprintln!("ξ = {xi}: mean ‖J‖∞ {i:.4}, mean ‖J‖₂ {s:.4}");
        inf.push((*xi, i));
        spec.push((*xi, s));
    }
    write(&dir, "jacobian.csv", &csv)?;
    plot::save(
        &[Panel {
            title: "recurrent Jacobian norms".into(),
            x_label: "drive amplitude ξ".into(),
            y_label: "mean norm".into(),
            series: vec![
                Series {
                    label: "∞-operator norm".into(),
                    points: inf,
                },
                Series {
                    label: "spectral norm".into(),
                    points: spec,
                },
            ],
        }],
        &dir.join("jacobian"),
    )
}

fn response(r: &ResponseArgs) -> Result<()> {
    let c = &r.common;
    check_xi(&c.xi)?;
    if r.trials == 0 {
        bail!("--trials 0: at least one trial is needed");
    }
    let (_, model) = load_run(&c.run)?;
    let dir = out_dir(c)?;
    let protocol = StepProtocol {
        isolated: r.isolated,
        trials: r.trials,
        ..StepProtocol::FIG3
    };
    let h = model.hidden();
    let mut responses: Vec<(f64, Vec<f64>)> = Vec::new();
    let mut per_neuron: Vec<(f64, Vec<f64>)> = Vec::new();
    let mut ai_csv = String::from("xi,neuron,adaptation_index\n");
    let mut panel = Panel {
        title: "mean response to a step drive".into(),
        x_label: "step t".into(),
        y_label: "mean h_t".into(),
        series: Vec::new(),
    };
    for &xi in &c.xi {
        let tr = step_response(&model, &protocol, xi)?;
        let mean = tr.mean_over_batch(&tr.h);
        for i in 0..h {
            let trace: Vec<f64> = (0..tr.steps).map(|t| mean[t * h + i]).collect();
            let ai = adaptation::adaptation_index(&trace, &AdaptationWindows::SPEC)?;
            let _ = writeln!(ai_csv, "{xi},{i},{ai}");
        }
        let population = tr.population_mean(&tr.h);
        panel.series.push(Series {
            label: format!("ξ = {xi}"),
            points: population
                .iter()
                .enumerate()
                .map(|(t, v)| (t as f64, *v))
                .collect(),
        });
        responses.push((xi, population));
        per_neuron.push((xi, mean));
    }
    write(&dir, "adaptation.csv", &ai_csv)?;
    // The population fit of Fig. 3: template ξ·1{|t − 75| < 25} over [40, 110), offset at t = 25.
    let template = |xi: f64, t: usize| {
        if (t as f64 - 75.0).abs() < 25.0 {
            xi
        } else {
            0.0
        }
    };
    let alphas = linspace(0.0, 1.0, 101);
    let fit = fit_order(&responses, template, 40..110, 25, &alphas)?;
    let mut csv = String::from("alpha,mse\n");
    for (a, m) in fit.alphas.iter().zip(&fit.mse) {
        let _ = writeln!(csv, "{a},{m}");
    }
    write(&dir, "fracdiff.csv", &csv)?;
    eprintln!(
        "population fractional order α* = {:.2} (MSE over ξ > 0)",
        fit.best_alpha
    );
    // Per neuron: α* in (−1, 1), template 0.8 + ξ inside the window, 0.8 outside.
    let alphas = linspace(-1.0, 1.0, 201);
    let mut neuron_csv = String::from("neuron,alpha\n");
    let mut positive = 0;
    for i in 0..h {
        let traces: Vec<(f64, Vec<f64>)> = per_neuron
            .iter()
            .map(|(xi, m)| (*xi, (0..protocol.steps).map(|t| m[t * h + i]).collect()))
            .collect();
        let tpl = |xi: f64, t: usize| 0.8 + template(xi, t);
        let f = fit_order(&traces, tpl, 40..110, 25, &alphas)?;
        positive += usize::from(f.best_alpha > 0.0);
        let _ = writeln!(neuron_csv, "{i},{}", f.best_alpha);
    }
    write(&dir, "fracdiff_neurons.csv", &neuron_csv)?;
    eprintln!("per-neuron α*: {positive} of {h} neurons have α* > 0");
    plot::save(
        &[
            panel,
            Panel {
                title: format!("fractional-order fit: α* = {:.2}", fit.best_alpha),
                x_label: "order α".into(),
                y_label: "MSE".into(),
                series: vec![Series {
                    label: "population".into(),
                    points: fit.alphas.iter().copied().zip(fit.mse.clone()).collect(),
                }],
            },
        ],
        &dir.join("response"),
    )
}
