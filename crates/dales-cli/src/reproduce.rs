//! `dales reproduce`: one command per paper comparison.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use dales::config::TrainConfig;
use dales::nn::ModelKind;
use dales::run::{Dataset, Outcome, Summary, Trainer, files};
use indicatif::MultiProgress;
use serde::Serialize;

use crate::compare::{RunInfo, markdown_table};
use crate::plot::{self, Panel, Series};
use crate::train::{has_run, install_ctrl_c, stop_requested, train_to_end};

/// Reproduce a paper's comparison. `dann2021`: the five feed-forward models of Cornford et al.
/// (ICLR 2021) on Fashion-MNIST with the paper's settings — MLP, LayerNorm MLP, ColumnEI, DANN and
/// DANN without the corrections — for several seeds; writes results.md/.json and curves.
/// Finished runs are kept and interrupted ones resumed when the command is run again.
#[derive(Debug, clap::Args)]
pub struct ReproduceArgs {
    /// The experiment: dann2021.
    #[arg(value_parser = ["dann2021"])]
    pub experiment: String,
    /// Epochs per run.
    #[arg(long, default_value_t = 50)]
    pub epochs: usize,
    /// Seeds per model (1, 2, …, K).
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Output directory.
    #[arg(long, default_value = "runs/dann2021")]
    pub out: PathBuf,
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

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (m, sd)
}

fn run_one(
    kind: ModelKind,
    seed: u64,
    args: &ReproduceArgs,
    multi: &MultiProgress,
) -> Result<Outcome> {
    let dir = args.out.join(format!("{kind}-seed{seed}"));
    let name = format!("{kind} s{seed}");
    let mut trainer = if has_run(&dir) {
        if done(&dir, args.epochs) {
            return Ok(Outcome::Finished);
        }
        Trainer::resume(&dir, args.data.clone(), Some(args.epochs))?
    } else {
        let mut config = TrainConfig::paper(kind);
        config.seed = seed;
        config.epochs = args.epochs;
        config.data.dir = args.data.clone();
        let data = Dataset::load(&config)?;
        Trainer::new(config, data, &dir)?
    };
    train_to_end(&mut trainer, &dir, &name, Some(multi.clone()))
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
    if args.seeds == 0 {
        bail!("--seeds 0: at least one seed is needed");
    }
    if args.jobs == 0 {
        bail!("--jobs 0: at least one job is needed");
    }
    if args.report_only {
        write_results(&args.out, args.seeds, args.epochs)?;
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let queue: Mutex<Vec<(ModelKind, u64)>> = Mutex::new(
        (1..=args.seeds)
            .flat_map(|s| MODELS.iter().map(move |&k| (k, s)))
            .rev()
            .collect(),
    );
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let multi = MultiProgress::new();
    std::thread::scope(|scope| {
        for _ in 0..args.jobs {
            scope.spawn(|| {
                loop {
                    if stop_requested() {
                        return;
                    }
                    let Some((kind, seed)) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    match run_one(kind, seed, &args, &multi) {
                        Ok(_) => {}
                        Err(e) => failures
                            .lock()
                            .unwrap()
                            .push(format!("{kind} seed {seed}: {e:#}")),
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    for f in &failures {
        eprintln!("error: {f}");
    }
    if stop_requested() {
        eprintln!("interrupted; run the same command again to resume");
        return Ok(ExitCode::from(130));
    }
    write_results(&args.out, args.seeds, args.epochs)?;
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
