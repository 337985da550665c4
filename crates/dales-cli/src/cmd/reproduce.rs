//! `dales reproduce`: one command per paper comparison.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use dales::reproduce::{Options, Reproduction};
use indicatif::MultiProgress;

use crate::training::{Named, train_queue};

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
    let reproduction = Reproduction::plan(&args.experiment, &out, &options)?;
    if !args.report_only {
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let failures = train_all(args.jobs, &reproduction);
        for f in &failures {
            eprintln!("error: {f}");
        }
        if crate::interrupt::requested() {
            eprintln!("interrupted; run the same command again to resume");
            return Ok(ExitCode::from(crate::interrupt::exit_code()));
        }
        if !failures.is_empty() {
            return Ok(ExitCode::from(1));
        }
    }
    let written = reproduction.report(&mut |line| eprintln!("{line}"))?;
    println!("{}", written.markdown);
    let files: Vec<String> = written
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    eprintln!("wrote {}", files.join(", "));
    Ok(ExitCode::SUCCESS)
}

/// Train (or resume, or skip when finished) every run, `jobs` at a time; returns the failures.
fn train_all(jobs: usize, reproduction: &Reproduction) -> Vec<String> {
    let runs = reproduction.jobs();
    let named: Vec<Named> = runs
        .iter()
        .map(|j| (&j.config, j.dir.as_path(), j.name()))
        .collect();
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    train_queue(jobs, &named, &MultiProgress::new(), &|i, result| {
        if let Err(e) = result {
            let config = &runs[i].config;
            let name = format!("{} seed {}", config.name(), config.seed());
            failures
                .lock()
                .unwrap()
                .push(format!("{name}: {}", e.message()));
        }
    });
    failures.into_inner().unwrap()
}
