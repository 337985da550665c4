//! `dales analyze`: the analyses of the adaptation paper (spec C5) on a trained sequence run,
//! and the spectra of a recurrent E/I run (spec B5), each writing a CSV and a PNG/SVG plot
//! into `<run>/analysis/` (or `--out`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use dales::analysis::driven::{driven_traces, jacobian_vs_drive, lyapunov_vs_drive, response};
use dales::analysis::spectra;
use dales::analysis::trace::{StepProtocol, Trace};
use dales::nn::seq::SeqClassifier;
use dales::run::{RunDir, RunLock};

use dales::plot::{self, Mark, Panel, Series};

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
    /// Eigenvalue and singular-value spectra of a recurrent E/I run's recurrent matrices, at
    /// its initialisation (drawn again from its seed) and trained: eigenvalues in the complex
    /// plane, histograms of |λ| and σ, NSE (spec B5); spectrum.csv, spectrum_summary.csv,
    /// spectrum.md and spectrum.png/.svg.
    Spectrum(SpectrumArgs),
}

/// Options of `dales analyze spectrum`.
#[derive(Debug, Clone, clap::Args)]
pub struct SpectrumArgs {
    /// The run directory (a recurrent E/I run: rowseq-*, adding-*, or `kind = "recurrent"`).
    pub run: PathBuf,
    /// Output directory [default: <run>/analysis].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Histogram bins.
    #[arg(long, default_value_t = 40)]
    pub bins: usize,
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
        Analysis::Lyapunov(c) => lyapunov(&c),
        Analysis::Jacobian(c) => jacobian(&c),
        Analysis::Response(r) => respond(&r),
        Analysis::Spectrum(s) => spectrum(&s),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn spectrum(args: &SpectrumArgs) -> Result<()> {
    if args.bins == 0 {
        anyhow::bail!("--bins 0: a histogram needs at least one bin");
    }
    let run = RunDir::open(&args.run)?;
    let found = spectra::of_run(&run)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| args.run.join("analysis"));
    let _owner = RunLock::create(&dir)?;
    for path in plot::write_spectra(&dir, &found, args.bins)? {
        eprintln!("wrote {}", path.display());
    }
    println!("{}", spectra::summary_table(&spectra::summarise(&found)));
    Ok(())
}

/// The output directory (created), held by this command until the lock is dropped: two
/// analyses never write into one directory at once.
fn out_dir(c: &Common) -> Result<(PathBuf, RunLock)> {
    let dir = c.out.clone().unwrap_or_else(|| c.run.join("analysis"));
    let lock = RunLock::create(&dir)?;
    Ok((dir, lock))
}

/// The run's model and its traces under each step drive ξ.
fn traced(c: &Common) -> Result<(SeqClassifier, Vec<(f64, Trace)>)> {
    let run = RunDir::open(&c.run)?;
    let (_, model) = run.image_sequence()?;
    let task = run.test_task(c.data.as_deref())?;
    let traces = driven_traces(&model, task.as_ref(), c.sequences, &c.xi)?;
    Ok((model, traces))
}

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    dales::io::write_atomic(&dir.join(name), text.as_bytes())?;
    eprintln!("wrote {}", dir.join(name).display());
    Ok(())
}

/// A panel of one curve per ξ against the step.
fn per_step(title: &str, y_label: &str) -> Panel {
    Panel {
        title: title.to_string(),
        x_label: "step t".into(),
        y_label: y_label.to_string(),
        series: Vec::new(),
    }
}

fn steps(v: &[f64]) -> Vec<(f64, f64)> {
    v.iter().enumerate().map(|(t, v)| (t as f64, *v)).collect()
}

fn traces(c: &Common) -> Result<()> {
    let (_, runs) = traced(c)?;
    let (dir, _owner) = out_dir(c)?;
    let mut csv = String::from("xi,t,n_mean,s_mean,h_mean\n");
    let mut panels: Vec<Panel> = ["gain n_t", "saturation s_t", "activity h_t"]
        .iter()
        .map(|t| per_step(&format!("mean {t}"), t))
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
                mark: Mark::Line,
                label: format!("ξ = {xi}"),
                points: steps(f),
            });
        }
    }
    write(&dir, "traces.csv", &csv)?;
    if runs[0].1.n.iter().all(|v| v.is_nan()) {
        panels.drain(0..2);
    }
    Ok(plot::save(&panels, &dir.join("traces"))?)
}

fn lyapunov(c: &Common) -> Result<()> {
    let (model, runs) = traced(c)?;
    let (dir, _owner) = out_dir(c)?;
    let mut csv = String::from("xi,index,exponent_bits_per_step\n");
    let mut mle = Vec::new();
    for (xi, les) in lyapunov_vs_drive(&model, &runs, 1000)? {
        for (i, le) in les.iter().enumerate() {
            let _ = writeln!(csv, "{xi},{i},{le}");
        }
        eprintln!(
            "ξ = {xi}: maximal Lyapunov exponent {:.5} bits/step",
            les[0]
        );
        mle.push((xi, les[0]));
    }
    write(&dir, "lyapunov.csv", &csv)?;
    plot::save(
        &[Panel {
            title: "maximal Lyapunov exponent".into(),
            x_label: "drive amplitude ξ".into(),
            y_label: "bits per step".into(),
            series: vec![Series {
                mark: Mark::Line,
                label: model.config().kind.to_string(),
                points: mle,
            }],
        }],
        &dir.join("lyapunov"),
    )?;
    Ok(())
}

fn jacobian(c: &Common) -> Result<()> {
    let (model, runs) = traced(c)?;
    let (dir, _owner) = out_dir(c)?;
    let mut csv = String::from("xi,inf_norm,spectral_norm\n");
    let (mut inf, mut spec) = (Vec::new(), Vec::new());
    for j in jacobian_vs_drive(&model, &runs)? {
        let _ = writeln!(csv, "{},{},{}", j.xi, j.inf, j.spectral);
        eprintln!(
            "ξ = {}: mean ‖J‖∞ {:.4}, mean ‖J‖₂ {:.4}",
            j.xi, j.inf, j.spectral
        );
        inf.push((j.xi, j.inf));
        spec.push((j.xi, j.spectral));
    }
    write(&dir, "jacobian.csv", &csv)?;
    let series = vec![
        Series {
            mark: Mark::Line,
            label: "∞-operator norm".into(),
            points: inf,
        },
        Series {
            mark: Mark::Line,
            label: "spectral norm".into(),
            points: spec,
        },
    ];
    plot::save(
        &[Panel {
            title: "recurrent Jacobian norms".into(),
            x_label: "drive amplitude ξ".into(),
            y_label: "mean norm".into(),
            series,
        }],
        &dir.join("jacobian"),
    )?;
    Ok(())
}

fn respond(r: &ResponseArgs) -> Result<()> {
    let c = &r.common;
    let (_, model) = RunDir::open(&c.run)?.image_sequence()?;
    let protocol = StepProtocol {
        isolated: r.isolated,
        trials: r.trials,
        ..StepProtocol::FIG3
    };
    let result = response(&model, &protocol, &c.xi)?;
    let (dir, _owner) = out_dir(c)?;
    let mut ai_csv = String::from("xi,neuron,adaptation_index\n");
    for (xi, indices) in &result.adaptation {
        for (i, ai) in indices.iter().enumerate() {
            let _ = writeln!(ai_csv, "{xi},{i},{ai}");
        }
    }
    write(&dir, "adaptation.csv", &ai_csv)?;
    let mut csv = String::from("alpha,mse\n");
    for (a, m) in result.fit.alphas.iter().zip(&result.fit.mse) {
        let _ = writeln!(csv, "{a},{m}");
    }
    write(&dir, "fracdiff.csv", &csv)?;
    eprintln!(
        "population fractional order α* = {:.2} (MSE over ξ > 0)",
        result.fit.best_alpha
    );
    let mut neuron_csv = String::from("neuron,alpha\n");
    for (i, alpha) in result.neuron_alpha.iter().enumerate() {
        let _ = writeln!(neuron_csv, "{i},{alpha}");
    }
    write(&dir, "fracdiff_neurons.csv", &neuron_csv)?;
    let positive = result.neuron_alpha.iter().filter(|a| **a > 0.0).count();
    eprintln!(
        "per-neuron α*: {positive} of {} neurons have α* > 0",
        result.neuron_alpha.len()
    );
    let mut panel = per_step("mean response to a step drive", "mean h_t");
    panel.series = result
        .population
        .iter()
        .map(|(xi, p)| Series {
            mark: Mark::Line,
            label: format!("ξ = {xi}"),
            points: steps(p),
        })
        .collect();
    let fit = Panel {
        title: format!("fractional-order fit: α* = {:.2}", result.fit.best_alpha),
        x_label: "order α".into(),
        y_label: "MSE".into(),
        series: vec![Series {
            mark: Mark::Line,
            label: "population".into(),
            points: result
                .fit
                .alphas
                .iter()
                .copied()
                .zip(result.fit.mse.clone())
                .collect(),
        }],
    };
    Ok(plot::save(&[panel, fit], &dir.join("response"))?)
}
