//! `dales reproduce`: one command per paper comparison.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use dales::reproduce::{Experiment, Job, Options, Report, errors_table, spectral, write_errors};
use dales::robustness::Sweep;
use dales::run::{AnyConfig, RunDir};
use indicatif::MultiProgress;

use crate::training::train_queue;
use dales::plot::{self, Mark, Panel, Series};

/// Reproduce a paper's comparison (the lists are configs/reproduce/NAME.toml). `dann2021`: the
/// six feed-forward models of Cornford et al. (ICLR 2021) on Fashion-MNIST with the paper's
/// settings — MLP, LayerNorm MLP, ColumnEI, DANN, DANN without the corrections and the DANN
/// trained by the diagonal natural gradient — for several seeds; writes results.md/.json and curves.
/// `dann2021-conv`: the paper's convolutional comparison on Fashion-MNIST — the small
/// convnet as conv DANN, standard, ColumnEI and DANN without the corrections (10 epochs, 3
/// seeds; --full: the E/I and standard VGG16 on CIFAR-10 from --data). `adaptation`: RNN+ReLU, RNN+tanh, RNN
/// with heterogeneous gamma and ARUN (Geadah et al.) on permuted pixel sequences of
/// Fashion-MNIST (the `-small` presets, or the paper's size with --full), then their accuracy
/// under an external step drive (`dales robustness`). `dale2023`: the spectral paper (Li et
/// al., NeurIPS 2023) — RNN, DANN and ColEI RNNs on row-sequential images (1 and 3 layers),
/// NSE at init against final error across E:I ratios and sizes, the spectrum-transplant and
/// sign ablation, and the adding problem (20 epochs and 3 seeds; --full: 30 epochs, 5 seeds
/// and the size 1000). Finished runs are kept and interrupted ones resumed when the command
/// is run again.
#[derive(Debug, clap::Args)]
pub struct ReproduceArgs {
    /// The experiment: dann2021, dann2021-conv, adaptation or dale2023.
    #[arg(value_parser = ["dann2021", "dann2021-conv", "adaptation", "dale2023"])]
    pub experiment: String,
    /// Epochs per run [default: dann2021 50, dann2021-conv 10; adaptation the presets' (6 small, 100 full);
    /// dale2023 20 (30 full) for the row-sequential parts, 100 for the adding problem].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seeds per model (1, 2, …, K) [default: dann2021 3, dann2021-conv 3, adaptation 2, dale2023 3 (5 full)].
    #[arg(long)]
    pub seeds: Option<u64>,
    /// adaptation: the paper's full size (784 steps, H 400, K 50, 100 epochs) instead of the
    /// CPU-sized presets; dale2023: 30 epochs, 5 seeds and the size 1000 in the NSE part.
    #[arg(long)]
    pub full: bool,
    /// Output directory [default: runs/<experiment>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Directory holding the four IDX files [default: /usr/share/datasets/fashion-mnist].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Runs trained at the same time.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Train nothing: write the results of the runs finished so far.
    #[arg(long)]
    pub report_only: bool,
}

pub fn run(args: ReproduceArgs) -> Result<ExitCode> {
    crate::interrupt::install();
    if args.jobs == 0 {
        bail!("--jobs 0: at least one job is needed");
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&args.experiment));
    let options = Options {
        full: args.full,
        seeds: args.seeds,
        epochs: args.epochs,
        data: args.data.clone(),
    };
    if args.experiment == "dale2023" {
        return dale2023(&args, &out, &options);
    }
    let experiment = Experiment::named(&args.experiment)?;
    let jobs = experiment.jobs(&out, &options)?;
    if let Some(code) = train_all(&args, &out, &jobs)? {
        return Ok(code);
    }
    match experiment.report {
        Report::Errors => errors_report(&args.experiment, &experiment, &jobs, &out)?,
        Report::Robustness => robustness_report(&jobs, &out, args.data.clone())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Train every job unless `--report-only`; the exit code when the command must stop there
/// (interrupted, or a run failed).
fn train_all(args: &ReproduceArgs, out: &Path, jobs: &[Job]) -> Result<Option<ExitCode>> {
    if args.report_only {
        return Ok(None);
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let failures = run_queue(args.jobs, jobs);
    for f in &failures {
        eprintln!("error: {f}");
    }
    if crate::interrupt::requested() {
        eprintln!("interrupted; run the same command again to resume");
        return Ok(Some(ExitCode::from(crate::interrupt::exit_code())));
    }
    if !failures.is_empty() {
        return Ok(Some(ExitCode::from(1)));
    }
    Ok(None)
}

/// `dales reproduce dale2023`: every part's runs, then results.md, runs.csv and the plots.
fn dale2023(args: &ReproduceArgs, out: &Path, options: &Options) -> Result<ExitCode> {
    let jobs = spectral::jobs(out, options)?;
    let plain: Vec<Job> = jobs.iter().map(|j| j.job.clone()).collect();
    if let Some(code) = train_all(args, out, &plain)? {
        return Ok(code);
    }
    let data = match &args.data {
        Some(d) => format!("images from {}", d.display()),
        None => "Fashion-MNIST".to_string(),
    };
    let results = spectral::write_report(out, &jobs, &data)?;
    println!("{}", spectral::report_markdown(&results, &data));
    let summaries = spectral::summarise(&results);
    let curves = |part: spectral::Part, title: &str, y: &str| Panel {
        x_label: "epoch".into(),
        title: title.to_string(),
        y_label: y.to_string(),
        series: summaries
            .iter()
            .filter(|s| s.part == part)
            .map(|s| Series {
                mark: Mark::Line,
                label: s.condition.clone(),
                points: s
                    .curve
                    .iter()
                    .enumerate()
                    .map(|(e, v)| ((e + 1) as f64, *v))
                    .collect(),
            })
            .collect(),
    };
    let mut panels = vec![
        curves(
            spectral::Part::Rowseq,
            "row-sequential: test error",
            "error (%)",
        ),
        curves(
            spectral::Part::Transplant,
            "transplant ablation: test error",
            "error (%)",
        ),
        curves(spectral::Part::Adding, "adding problem: test MSE", "MSE"),
    ];
    panels.retain(|p| !p.series.is_empty());
    if !panels.is_empty() {
        plot::save(&panels, &out.join("curves"))?;
    }
    let nse: Vec<&spectral::RunResult> = results
        .iter()
        .filter(|r| r.part == spectral::Part::Nse)
        .collect();
    if !nse.is_empty() {
        let mut series: Vec<Series> = Vec::new();
        for r in &nse {
            let label = format!("n = {}", r.hidden);
            let point = (r.nse_init, r.final_error);
            match series.iter_mut().find(|s| s.label == label) {
                Some(s) => s.points.push(point),
                None => series.push(Series {
                    mark: Mark::Dots,
                    label,
                    points: vec![point],
                }),
            }
        }
        if let Some(fit) = spectral::nse_regression(&results) {
            let xs = nse.iter().map(|r| r.nse_init);
            let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                (a.min(x), b.max(x))
            });
            series.push(Series {
                mark: Mark::Line,
                label: format!("fit: r = {:.2}, p = {:.1e}", fit.r, fit.p),
                points: vec![
                    (lo, fit.slope * lo + fit.intercept),
                    (hi, fit.slope * hi + fit.intercept),
                ],
            });
        }
        let panel = Panel {
            x_label: "NSE at initialisation".into(),
            title: "ColEI: E:I ratio 1, 9, 99".into(),
            y_label: "final test error (%)".into(),
            series,
        };
        plot::save(&[panel], &out.join("nse"))?;
    }
    eprintln!(
        "wrote {}/results.md, conditions.csv, runs.csv, curves.png/.svg, nse.png/.svg",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Train (or resume, or skip when finished) every job with `threads` runs at a time; returns
/// the failures.
fn run_queue(threads: usize, jobs: &[Job]) -> Vec<String> {
    let runs: Vec<(&AnyConfig, &Path, String)> = jobs
        .iter()
        .map(|j| {
            let name = format!("{} s{}", j.config.name(), j.config.seed());
            (&j.config, j.dir.as_path(), name)
        })
        .collect();
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    train_queue(threads, &runs, &MultiProgress::new(), &|i, result| {
        if let Err(e) = result {
            let job = &jobs[i];
            let name = format!("{} seed {}", job.config.name(), job.config.seed());
            failures.lock().unwrap().push(format!("{name}: {e:#}"));
        }
    });
    failures.into_inner().unwrap()
}

/// results.md, results.json and the mean curves of the finished runs.
fn errors_report(name: &str, experiment: &Experiment, jobs: &[Job], out: &Path) -> Result<()> {
    let results = write_errors(out, name, experiment, jobs)?;
    println!("{}", errors_table(&results));
    let series = results
        .iter()
        .map(|r| Series {
            mark: Mark::Line,
            label: r.model.clone(),
            points: r.curve.clone(),
        })
        .collect();
    let panel = Panel {
        x_label: "epoch".into(),
        title: "test error (mean over seeds)".into(),
        y_label: "error (%)".into(),
        series,
    };
    plot::save(&[panel], &out.join("curves"))?;
    eprintln!(
        "wrote {}/results.md, results.json, curves.png/.svg",
        out.display()
    );
    Ok(())
}

/// The paper's robustness sweep over the finished runs, into `out/robustness`.
fn robustness_report(jobs: &[Job], out: &Path, data: Option<PathBuf>) -> Result<()> {
    let runs: Vec<&Job> = jobs
        .iter()
        .filter(|j| RunDir::finished(&j.dir, j.config.epochs()))
        .collect();
    if runs.is_empty() {
        bail!("no finished run under {}", out.display());
    }
    let sweep = Sweep {
        data,
        ..Sweep::paper()
    };
    let mut results = Vec::new();
    for job in runs {
        let result = sweep.run(&job.dir, |xi, accuracy| {
            eprintln!("{}: ξ = {xi}: accuracy {accuracy:.2}%", job.dir.display());
        })?;
        results.push(result);
    }
    let dir = out.join("robustness");
    sweep.write(&dir, &results)?;
    plot::save(&[plot::sweep(&sweep, &results)], &dir.join("robustness"))?;
    print!("{}", sweep.table(&results));
    eprintln!(
        "wrote robustness.csv, robustness.md and robustness.png/.svg in {}",
        dir.display()
    );
    Ok(())
}
