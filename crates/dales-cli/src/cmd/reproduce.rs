//! `dales reproduce`: one command per paper comparison.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use dales::config::TrainConfig;
use dales::learner::ModelSpec;
use dales::reproduce::{Experiment, Job, Options, Report, errors_table, write_errors};
use dales::robustness::Sweep;
use dales::run::{AnyConfig, Dataset, Outcome, RunDir, Trainer};
use indicatif::MultiProgress;

use crate::plot::{self, Panel, Series};
use crate::training::run_to_end;

/// Reproduce a paper's comparison (the lists are configs/reproduce/NAME.toml). `dann2021`: the
/// five feed-forward models of Cornford et al. (ICLR 2021) on Fashion-MNIST with the paper's
/// settings — MLP, LayerNorm MLP, ColumnEI, DANN and DANN without the corrections — for
/// several seeds; writes results.md/.json and curves. `adaptation`: RNN+ReLU, RNN+tanh, RNN
/// with heterogeneous gamma and ARUN (Geadah et al.) on permuted pixel sequences of
/// Fashion-MNIST (the `-small` presets, or the paper's size with --full), then their accuracy
/// under an external step drive (`dales robustness`). Finished runs are kept and interrupted
/// ones resumed when the command is run again.
#[derive(Debug, clap::Args)]
pub struct ReproduceArgs {
    /// The experiment: dann2021 or adaptation.
    #[arg(value_parser = ["dann2021", "adaptation"])]
    pub experiment: String,
    /// Epochs per run [default: dann2021 50; adaptation the presets' (6 small, 100 full)].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seeds per model (1, 2, …, K) [default: dann2021 3, adaptation 2].
    #[arg(long)]
    pub seeds: Option<u64>,
    /// adaptation: the paper's full size (784 steps, H 400, K 50, 100 epochs) instead of the
    /// CPU-sized presets.
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
    let experiment = Experiment::named(&args.experiment)?;
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
    let jobs = experiment.jobs(&out, &options)?;
    if !args.report_only {
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let failures = run_queue(args.jobs, &jobs);
        for f in &failures {
            eprintln!("error: {f}");
        }
        if crate::interrupt::requested() {
            eprintln!("interrupted; run the same command again to resume");
            return Ok(ExitCode::from(130));
        }
        if !failures.is_empty() {
            return Ok(ExitCode::from(1));
        }
    }
    match experiment.report {
        Report::Errors => errors_report(&args.experiment, &experiment, &jobs, &out)?,
        Report::Robustness => robustness_report(&jobs, &out, args.data.clone())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Train (or resume, or skip when finished) every job with `threads` runs at a time; returns
/// the failures.
fn run_queue(threads: usize, jobs: &[Job]) -> Vec<String> {
    let queue: Mutex<Vec<&Job>> = Mutex::new(jobs.iter().rev().collect());
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let multi = MultiProgress::new();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    if crate::interrupt::requested() {
                        return;
                    }
                    let Some(job) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let result = match &job.config {
                        AnyConfig::FeedForward(c) => run_one(c, &job.dir, &multi),
                        AnyConfig::Sequence(c) => run_one(c, &job.dir, &multi),
                        AnyConfig::Recurrent(c) => run_one(c, &job.dir, &multi),
                    };
                    if let Err(e) = result {
                        let name = format!("{} seed {}", job.config.name(), job.config.seed());
                        failures.lock().unwrap().push(format!("{name}: {e:#}"));
                    }
                }
            });
        }
    });
    failures.into_inner().unwrap()
}

/// Train (or resume, or skip when finished) one run of `config` in `dir`.
fn run_one<M: ModelSpec>(
    config: &TrainConfig<M>,
    dir: &Path,
    multi: &MultiProgress,
) -> Result<Outcome> {
    let name = format!("{} s{}", config.model.name(), config.seed);
    let mut trainer = if RunDir::resumable(dir) {
        if RunDir::finished(dir, config.epochs) {
            return Ok(Outcome::Finished);
        }
        Trainer::<M>::resume(dir, config.data.dir.clone(), Some(config.epochs))?
    } else {
        let data = Dataset::load(config)?;
        Trainer::new(config.clone(), data, dir)?
    };
    run_to_end(&mut trainer, dir, &name, Some(multi.clone()))
}

/// results.md, results.json and the mean curves of the finished runs.
fn errors_report(name: &str, experiment: &Experiment, jobs: &[Job], out: &Path) -> Result<()> {
    let results = write_errors(out, name, experiment, jobs)?;
    println!("{}", errors_table(&results));
    let series = results
        .iter()
        .map(|r| Series {
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
