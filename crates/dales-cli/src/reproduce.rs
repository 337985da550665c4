//! `dales reproduce`: one command per paper comparison.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use dales::config::TrainConfig;
use dales::learner::ModelSpec;
use dales::nn::ModelKind;
use dales::nn::seq::SeqConfig;
use dales::run::{Dataset, Outcome, Summary, Trainer, files};
use indicatif::MultiProgress;
use serde::Serialize;

use crate::compare::{RunInfo, markdown_table};
use crate::plot::{self, Panel, Series};
use crate::train::{has_run, install_ctrl_c, stop_requested, train_to_end};

/// Reproduce a paper's comparison. `dann2021`: the five feed-forward models of Cornford et al.
/// (ICLR 2021) on Fashion-MNIST with the paper's settings — MLP, LayerNorm MLP, ColumnEI, DANN and
/// DANN without the corrections — for several seeds; writes results.md/.json and curves.
/// `adaptation`: RNN+ReLU, RNN+tanh, RNN with heterogeneous gamma and ARUN (Geadah et al.) on
/// permuted pixel sequences of Fashion-MNIST (the `-small` presets, or the paper's size with
/// --full), then their accuracy under an external step drive (`dales robustness`).
/// Finished runs are kept and interrupted ones resumed when the command is run again.
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

const MODELS: [ModelKind; 5] = [
    ModelKind::Mlp,
    ModelKind::LayerNorm,
    ModelKind::ColumnEi,
    ModelKind::Dann,
    ModelKind::DannNocorr,
];

/// One row of results.json.
#[derive(Debug, Serialize)]
struct ModelResult {
    model: String,
    lr: f64,
    seeds: Vec<u64>,
    final_test_error: Vec<f64>,
    mean: f64,
    sd: f64,
    last5_mean: f64,
    best_mean: f64,
    /// Mean test error after epochs 5 and 30 (for comparisons at equal epochs).
    epoch5_mean: Option<f64>,
    epoch30_mean: Option<f64>,
    seconds_per_run: f64,
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (m, sd)
}

/// Train (or resume, or skip when finished) one run of `config` in `dir`.
fn run_one<M: ModelSpec>(
    mut config: TrainConfig<M>,
    dir: &Path,
    data: Option<PathBuf>,
    multi: &MultiProgress,
) -> Result<Outcome> {
    let name = format!("{} s{}", config.model.name(), config.seed);
    let mut trainer = if has_run(dir) {
        if done(dir, config.epochs) {
            return Ok(Outcome::Finished);
        }
        Trainer::<M>::resume(dir, data, Some(config.epochs))?
    } else {
        config.data.dir = data;
        let data = Dataset::load(&config)?;
        Trainer::new(config, data, dir)?
    };
    train_to_end(&mut trainer, dir, &name, Some(multi.clone()))
}

/// Run `job` on every item of `items` with `jobs` threads; returns the failures.
fn run_queue<T: Send + std::fmt::Display>(
    jobs: usize,
    items: Vec<T>,
    job: impl Fn(&T, &MultiProgress) -> Result<Outcome> + Sync,
) -> Vec<String> {
    let queue: Mutex<Vec<T>> = Mutex::new(items.into_iter().rev().collect());
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let multi = MultiProgress::new();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    if stop_requested() {
                        return;
                    }
                    let Some(item) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    if let Err(e) = job(&item, &multi) {
                        failures.lock().unwrap().push(format!("{item}: {e:#}"));
                    }
                }
            });
        }
    });
    failures.into_inner().unwrap()
}

/// One run of a reproduction: a model name and a seed.
struct Job(String, u64);

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} seed {}", self.0, self.1)
    }
}

/// Whether the run in `dir` has finished at least `epochs` epochs, from its summary alone (no
/// data or model is loaded for finished runs).
fn done(dir: &Path, epochs: usize) -> bool {
    std::fs::read(dir.join(files::SUMMARY))
        .ok()
        .and_then(|b| serde_json::from_slice::<Summary>(&b).ok())
        .is_some_and(|s| s.finished && s.epochs_done >= epochs)
}

pub fn run(args: ReproduceArgs) -> Result<ExitCode> {
    install_ctrl_c();
    let adaptation = args.experiment == "adaptation";
    let seeds = args.seeds.unwrap_or(if adaptation { 2 } else { 3 });
    if seeds == 0 {
        bail!("--seeds 0: at least one seed is needed");
    }
    if args.jobs == 0 {
        bail!("--jobs 0: at least one job is needed");
    }
    if args.epochs == Some(0) {
        bail!("--epochs 0: at least one epoch is needed");
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&args.experiment));
    if adaptation {
        return run_adaptation(&args, &out, seeds);
    }
    let epochs = args.epochs.unwrap_or(50);
    if args.report_only {
        write_results(&out, seeds, epochs)?;
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let items: Vec<Job> = (1..=seeds)
        .flat_map(|s| MODELS.iter().map(move |k| Job(k.to_string(), s)))
        .collect();
    let failures = run_queue(args.jobs, items, |Job(kind, seed), multi| {
        let kind: ModelKind = kind.parse().map_err(anyhow::Error::msg)?;
        let mut config = TrainConfig::paper(kind);
        config.seed = *seed;
        config.epochs = epochs;
        let dir = out.join(format!("{kind}-seed{seed}"));
        run_one(config, &dir, args.data.clone(), multi)
    });
    finish(&failures)?;
    if stop_requested() {
        return Ok(ExitCode::from(130));
    }
    write_results(&out, seeds, epochs)?;
    Ok(exit_code(&failures))
}

/// The sequence models of the adaptation comparison (the README's robustness table).
const ADAPTATION_MODELS: [&str; 4] = ["rnn-relu", "rnn-tanh", "rnn-gamma-het", "arun"];

fn run_adaptation(args: &ReproduceArgs, out: &Path, seeds: u64) -> Result<ExitCode> {
    let config_of = |name: &str, seed: u64| -> Result<TrainConfig<SeqConfig>> {
        let preset = if args.full {
            name.to_string()
        } else {
            format!("{name}-small")
        };
        let mut config = TrainConfig::sequence_preset(&preset)?;
        config.seed = seed;
        if let Some(e) = args.epochs {
            config.epochs = e;
        }
        Ok(config)
    };
    let dir_of = |name: &str, seed: u64| out.join(format!("{}-seed{seed}", name.replace('-', "_")));
    if !args.report_only {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let items: Vec<Job> = (1..=seeds)
            .flat_map(|s| ADAPTATION_MODELS.iter().map(move |k| Job(k.to_string(), s)))
            .collect();
        let failures = run_queue(args.jobs, items, |Job(name, seed), multi| {
            run_one(
                config_of(name, *seed)?,
                &dir_of(name, *seed),
                args.data.clone(),
                multi,
            )
        });
        finish(&failures)?;
        if stop_requested() {
            return Ok(ExitCode::from(130));
        }
        if !failures.is_empty() {
            return Ok(exit_code(&failures));
        }
    }
    let runs: Vec<PathBuf> = (1..=seeds)
        .flat_map(|s| ADAPTATION_MODELS.iter().map(move |k| dir_of(k, s)))
        .filter(|d| {
            let epochs = args.epochs.unwrap_or(0);
            done(d, epochs)
        })
        .collect();
    if runs.is_empty() {
        bail!("no finished run under {}", out.display());
    }
    crate::robustness::run(crate::robustness::RobustnessArgs {
        runs,
        xi: vec![0.0, 1.0, 2.5, 5.0, 10.0, 20.0],
        drive: "step".into(),
        cov: 2.0,
        limit: None,
        out: out.join("robustness"),
        data: args.data.clone(),
    })
}

/// Report failures; an interrupted reproduction says how to resume.
fn finish(failures: &[String]) -> Result<()> {
    for f in failures {
        eprintln!("error: {f}");
    }
    if stop_requested() {
        eprintln!("interrupted; run the same command again to resume");
    }
    Ok(())
}

fn exit_code(failures: &[String]) -> ExitCode {
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Gather the finished runs under `out` into results.md, results.json and curves.png/.svg.
fn write_results(out: &Path, seeds: u64, epochs: usize) -> Result<()> {
    let mut results = Vec::new();
    let mut series = Vec::new();
    for kind in MODELS {
        let runs: Vec<RunInfo> = (1..=seeds)
            .map(|s| out.join(format!("{kind}-seed{s}")))
            .filter(|d| d.join(files::SUMMARY).exists())
            .map(|d| RunInfo::read(&d))
            .collect::<Result<_>>()?;
        let done: Vec<&RunInfo> = runs.iter().filter(|r| r.summary.finished).collect();
        if done.is_empty() {
            continue;
        }
        let finals: Vec<f64> = done
            .iter()
            .filter_map(|r| r.summary.final_test_error)
            .collect();
        let (mean, sd) = mean_sd(&finals);
        let last5: Vec<f64> = done
            .iter()
            .map(|r| {
                let tail = &r.records[r.records.len().saturating_sub(5)..];
                tail.iter().map(|e| e.test_error).sum::<f64>() / tail.len() as f64
            })
            .collect();
        let best: Vec<f64> = done
            .iter()
            .filter_map(|r| r.summary.best_test_error)
            .collect();
        let secs: Vec<f64> = done.iter().map(|r| r.summary.wall_seconds).collect();
        let at = |epoch: usize| {
            let v: Vec<f64> = done
                .iter()
                .filter_map(|r| r.records.get(epoch - 1))
                .map(|e| e.test_error)
                .collect();
            (v.len() == done.len()).then(|| mean_sd(&v).0)
        };
        let n_ep = done.iter().map(|r| r.records.len()).min().unwrap_or(0);
        let curve = (0..n_ep)
            .map(|i| {
                let v: Vec<f64> = done.iter().map(|r| r.records[i].test_error).collect();
                ((i + 1) as f64, mean_sd(&v).0)
            })
            .collect();
        series.push(Series {
            label: kind.name().into(),
            points: curve,
        });
        results.push(ModelResult {
            model: kind.name().into(),
            lr: done[0].config.optim.lr,
            seeds: done.iter().map(|r| r.summary.seed).collect(),
            final_test_error: finals,
            mean,
            sd,
            last5_mean: mean_sd(&last5).0,
            best_mean: mean_sd(&best).0,
            epoch5_mean: at(5),
            epoch30_mean: at(30),
            seconds_per_run: mean_sd(&secs).0,
        });
    }
    if results.is_empty() {
        bail!("no finished run under {}", out.display());
    }
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                r.model.clone(),
                r.lr.to_string(),
                r.seeds.len().to_string(),
                format!("{:.2} ± {:.2}", r.mean, r.sd),
                format!("{:.2}", r.last5_mean),
                format!("{:.2}", r.best_mean),
                r.epoch5_mean.map(|v| format!("{v:.2}")).unwrap_or_default(),
                r.epoch30_mean
                    .map(|v| format!("{v:.2}"))
                    .unwrap_or_default(),
                format!("{:.0}", r.seconds_per_run),
            ]
        })
        .collect();
    let header = [
        "model",
        "lr",
        "seeds",
        "final test error % (mean ± sd)",
        "mean of last 5 epochs %",
        "best epoch %",
        "epoch 5 %",
        "epoch 30 %",
        "s/run",
    ];
    let table = markdown_table(&header, &rows);
    println!("{table}");
    let mut md = String::from("# dales reproduce dann2021\n\n");
    let _ = writeln!(
        md,
        "Fashion-MNIST, {epochs} epochs, batch 32, plain SGD at the paper's learning rates; test \
         error after the last epoch, mean ± sd over seeds.\n"
    );
    md += &table;
    dales::io::write_atomic(&out.join("results.md"), md.as_bytes())?;
    dales::io::write_atomic(
        &out.join("results.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
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
