//! `dales bench`: training-step timings with the same cases and JSON shape as the PyTorch
//! reference's `bench.py`, and one Fashion-MNIST epoch end to end.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use dales::bench::{
    StepCase, StepTiming, time_conv_steps, time_recurrent_steps, time_sequence_steps, time_steps,
};
use dales::config::TrainConfig;
use dales::device::DeviceChoice;
use dales::fused::Settings;
use dales::nn::ModelKind;
use dales::nn::convnet::ConvFamily;
use dales::nn::recurrent_net::CellKind;
use dales::nn::seq::{SeqConfig, SeqKind};
use dales::run::{Dataset, Event, Trainer};
use serde_json::json;

use crate::peak::measured_peak_gflops;

/// Time full training steps (forward, backward, corrected update, projection) of the paper's
/// MLPs, and one training epoch end to end; print a table, or JSON with --json.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Model kinds to time, comma-separated: feed-forward kinds, and the recurrent E/I models
    /// of the spectral paper as rowseq_rnn, rowseq_dann, rowseq_colei (or `rowseq` for the
    /// three; 28 steps of 28 inputs, 1 × 100, the `rowseq-*` presets' update, at
    /// `--rowseq-batches`), and the small convnets of the `conv-*` presets as conv_dann,
    /// conv_dann_nocorr, conv_standard, conv_columnei (`conv` for conv_dann and
    /// conv_standard, as bench.py) at `--batches`.
    #[arg(long, default_value = "mlp,dann", value_delimiter = ',')]
    pub kinds: Vec<String>,
    /// Batch sizes, comma-separated.
    #[arg(long, default_value = "32,256,1024", value_delimiter = ',')]
    pub batches: Vec<usize>,
    /// Batch sizes of the rowseq_* kinds, comma-separated.
    #[arg(long, default_value = "32", value_delimiter = ',')]
    pub rowseq_batches: Vec<usize>,
    /// Timed steps per case.
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Untimed warm-up steps per case.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// A smoke test: 2 warm-up and 5 timed steps, no epoch.
    #[arg(long)]
    pub quick: bool,
    /// Also time one DANN epoch on this data directory end to end (loading, 1875 steps of 32,
    /// evaluation on the test set, saving) [default: /usr/share/datasets/fashion-mnist].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Skip the end-to-end epoch.
    #[arg(long)]
    pub no_epoch: bool,
    /// The machine's fp32 peak in GFLOP/s, for the "% of peak" column. Default: measured
    /// before the cases, with every thread running independent FMA chains as wide as the CPU's
    /// vectors (the 157 assumed two 256-bit FMA pipes per core; this project's AMD
    /// EPYC VM measures 72–77, its AVX-512 Intel Xeon VM about 420).
    #[arg(long)]
    pub peak_gflops: Option<f64>,
    /// cpu, or gpu (a dales built with --features gpu).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu"])]
    pub device: String,
    /// Print one JSON object (as `bench.py` does) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run the plain burn tensor versions instead of the fused CPU ops (to measure what the
    /// fused ops gain).
    #[arg(long)]
    pub plain: bool,
    /// Time only the full-size recurrent training step (batch 100, H 400, controller 50, Adam)
    /// of `--seq-model` at these sequence lengths, like `bench.py --arun-cpu --arun-seq T`
    /// (`--seq-timed` timed steps after 1 warm-up).
    #[arg(long, value_delimiter = ',', value_name = "T")]
    pub arun_seq: Vec<usize>,
    /// The recurrent model of `--arun-seq`: arun, or rnn-gamma-het (the reference's
    /// `--gamma-rnn` GammaRnn), rnn-relu, … (any sequence model).
    #[arg(long, default_value = "arun")]
    pub seq_model: String,
    /// Timed steps per sequence length of `--arun-seq`.
    #[arg(long, default_value_t = 2)]
    pub seq_timed: usize,
}

impl BenchArgs {
    /// The fused ops' settings: `--plain` runs the plain tensor versions.
    fn settings(&self) -> Settings {
        Settings {
            fused: !self.plain,
            ..Settings::default()
        }
    }
}

/// `dales bench --arun-seq T,…`.
fn bench_arun(args: &BenchArgs, device: &dales::device::Device) -> Result<ExitCode> {
    let kind: SeqKind = args
        .seq_model
        .parse()
        .map_err(|e| anyhow::anyhow!("--seq-model {}: {e}", args.seq_model))?;
    if args.seq_timed == 0 {
        bail!("--seq-timed 0: at least one timed step is needed");
    }
    let config = SeqConfig::paper(kind);
    // The reference's names: arun_psmnist_h400, gamma_rnn_psmnist_h400.
    let name = match kind {
        SeqKind::Arun => "arun".to_string(),
        SeqKind::RnnGammaHet => "gamma_rnn".to_string(),
        other => other.to_string(),
    };
    let name = format!("{name}_psmnist_h400");
    let timed = args.seq_timed;
    let mut results = Vec::new();
    for &t in &args.arun_seq {
        if t == 0 {
            bail!("--arun-seq 0: a sequence needs at least one step");
        }
        let ms = time_sequence_steps(&config, t, 100, [1, timed], device, args.settings())?;
        let mut sorted = ms.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        eprintln!(
            "{name} T {t}: median {median:.0} ms/step ({:.2} ms per time step), \
             projected epoch of 500 batches at T = {t}: {:.1} min",
            median / t as f64,
            median * 500.0 / 60_000.0
        );
        results.push(json!({
            "name": name, "seq_len": t, "batch": 100, "hidden": 400,
            "controller": 50, "ms": ms, "median_ms": median,
        }));
    }
    if args.json {
        println!("{}", json!({ "results": results }));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let choice = match args.device.as_str() {
        "gpu" => DeviceChoice::Gpu,
        _ => DeviceChoice::Cpu,
    };
    let device = choice.device()?;
    if !args.arun_seq.is_empty() {
        return bench_arun(&args, &device);
    }
    let mut rowseq = Vec::new();
    let mut feed_forward = Vec::new();
    let mut convs = Vec::new();
    let conv_family = |k: &str| {
        k.strip_prefix("conv_").and_then(|f| {
            ConvFamily::ALL
                .into_iter()
                .find(|c| c.name().replace('-', "_") == f)
        })
    };
    for k in &args.kinds {
        match k.as_str() {
            "rowseq" => rowseq.extend(CellKind::ALL),
            "conv" => convs.extend([ConvFamily::Dann, ConvFamily::Standard]),
            c if conv_family(c).is_some() => convs.extend(conv_family(c)),
            other => match other.strip_prefix("rowseq_") {
                Some(cell) => rowseq.push(
                    cell.parse::<CellKind>()
                        .map_err(|_| anyhow::anyhow!("--kinds: unknown recurrent kind `{k}`"))?,
                ),
                None => feed_forward.push(k),
            },
        }
    }
    let kinds = feed_forward
        .iter()
        .map(|k| {
            k.parse::<ModelKind>()
                .map_err(|_| anyhow::anyhow!("--kinds: unknown model kind `{k}`"))
        })
        .collect::<Result<Vec<_>>>()?;
    for (flag, batches) in [
        ("--batches", &args.batches),
        ("--rowseq-batches", &args.rowseq_batches),
    ] {
        if batches.contains(&0) {
            bail!("{flag}: a batch size must be at least 1");
        }
    }
    let (warmup, steps) = if args.quick {
        (2, 5)
    } else {
        (args.warmup, args.steps)
    };
    if steps == 0 {
        bail!("--steps: at least 1 timed step");
    }
    let say = |line: String| {
        if !args.json {
            println!("{line}");
        }
    };
    let peak = match args.peak_gflops {
        Some(p) if p.is_finite() && p > 0.0 => p,
        Some(p) => bail!("--peak-gflops: expected a positive number of GFLOP/s, got {p}"),
        None => measured_peak_gflops(0.5).unwrap_or(f64::NAN),
    };
    say(format!(
        "fp32 peak: {peak:.1} GFLOP/s{}",
        if args.peak_gflops.is_some() {
            " (given)"
        } else {
            " (measured: FMA chains on every thread)"
        }
    ));
    say(format!(
        "{:<28} {:>6} {:>10} {:>10} {:>12} {:>9} {:>7}   {}",
        "case",
        "batch",
        "median ms",
        "p90 ms",
        "samples/s",
        "GFLOP/s",
        "% peak",
        "forward / backward / update ms"
    ));
    let mut results = Vec::new();
    for &kind in &kinds {
        for &batch in &args.batches {
            let case = StepCase::paper(kind, batch);
            let t = time_steps(&case, warmup, steps, &device, args.settings())
                .with_context(|| format!("timing {}", case.name()))?;
            let [f, b, u] = t.median_phases_ms();
            say(format!(
                "{:<28} {:>6} {:>10.3} {:>10.3} {:>12.1} {:>9.1} {:>6.1}%   {f:.2} / {b:.2} / {u:.2}",
                case.name(),
                batch,
                t.median_ms(),
                t.p90_ms(),
                t.samples_per_s(),
                t.gflops(),
                100.0 * t.gflops() / peak
            ));
            results.push(step_json(&t, &args, peak));
        }
    }
    for &cell in &rowseq {
        for &batch in &args.rowseq_batches {
            let mut config = TrainConfig::rowseq(cell, 1);
            config.batch_size = batch;
            let name = format!("rowseq_{}_1x100", cell.name());
            let ms = time_recurrent_steps(&config, 28, [warmup, steps], &device, args.settings())
                .with_context(|| format!("timing {name}"))?;
            let (line, mut result) = model_timing(&name, batch, &ms, &args.device);
            say(line);
            let extra = json!({
                "model": cell.name(), "task": "row-sequential 28x28", "layers": 1, "hidden": 100,
            });
            merge(&mut result, extra);
            results.push(result);
        }
    }

    for &family in &convs {
        for &batch in &args.batches {
            let mut config = TrainConfig::conv(family);
            config.batch_size = batch;
            let name = config.model.name();
            let ms = time_conv_steps(&config, [warmup, steps], &device, args.settings())
                .with_context(|| format!("timing {name}"))?;
            let (line, mut result) = model_timing(&name, batch, &ms, &args.device);
            say(line);
            let arch = "conv32-pool-conv64-pool-dense256-10 (DANN: 3/6/25/1 I)";
            merge(&mut result, json!({ "model": name, "arch": arch }));
            results.push(result);
        }
    }

    let epoch = if args.quick || args.no_epoch {
        None
    } else {
        Some(time_epoch(&args, choice)?)
    };
    if let Some(e) = &epoch {
        say(format!(
            "one DANN epoch end to end: {:.2} s ({:.2} s loading, {:.2} s training, {:.2} s \
             evaluation and saving), test error {:.2} %",
            e["seconds"].as_f64().unwrap_or(f64::NAN),
            e["load_seconds"].as_f64().unwrap_or(f64::NAN),
            e["train_seconds"].as_f64().unwrap_or(f64::NAN),
            e["eval_and_save_seconds"].as_f64().unwrap_or(f64::NAN),
            e["test_error"].as_f64().unwrap_or(f64::NAN),
        ));
    }
    if args.json {
        let out = json!({
            "info": {
                "dales": env!("CARGO_PKG_VERSION"),
                "device": args.device,
                "backend": if choice == DeviceChoice::Cpu { "burn NdArray" } else { "burn wgpu" },
                "cpu_count": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
                "peak_gflops": peak,
                "peak_measured": args.peak_gflops.is_none(),
                "warmup": warmup,
                "fused": !args.plain,
                "data": "synthetic uniform[0,1) inputs, random labels",
            },
            "results": results,
            "epoch": epoch,
        });
        println!("{out}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The table line and the JSON result of a case timed as whole steps of `ms` milliseconds.
fn model_timing(name: &str, batch: usize, ms: &[f64], device: &str) -> (String, serde_json::Value) {
    let mut sorted = ms.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let p90 = sorted[(0.9 * (sorted.len() - 1) as f64) as usize];
    let per_s = batch as f64 * 1e3 / median;
    let line = format!("{name:<28} {batch:>6} {median:>10.3} {p90:>10.3} {per_s:>12.1}");
    let result = json!({
        "name": name, "device": device, "batch": batch, "steps": ms.len(),
        "median_ms": median, "p90_ms": p90, "samples_per_s": per_s,
    });
    (line, result)
}

/// Add the fields of the object `extra` to the object `into`.
fn merge(into: &mut serde_json::Value, extra: serde_json::Value) {
    if let (Some(into), serde_json::Value::Object(extra)) = (into.as_object_mut(), extra) {
        into.extend(extra);
    }
}

fn step_json(t: &StepTiming, args: &BenchArgs, peak: f64) -> serde_json::Value {
    let r4 = |v: f64| (v * 1e4).round() / 1e4;
    let [forward, backward, update] = t.median_phases_ms();
    json!({
        "name": t.case.name(),
        "device": args.device,
        "batch": t.case.batch,
        "steps": t.ms.len(),
        "median_ms": r4(t.median_ms()),
        "mean_ms": r4(t.ms.iter().sum::<f64>() / t.ms.len() as f64),
        "p10_ms": r4(t.p10_ms()),
        "p90_ms": r4(t.p90_ms()),
        "samples_per_s": (t.samples_per_s() * 10.0).round() / 10.0,
        "gflop_per_step": t.case.flops() / 1e9,
        "gflops": r4(t.gflops()),
        "percent_of_peak": r4(100.0 * t.gflops() / peak),
        "model": t.case.kind.name(),
        "median_forward_ms": r4(forward),
        "median_backward_ms": r4(backward),
        "median_update_ms": r4(update),
    })
}

/// One epoch of the DANN preset, timed from loading the data to the end of evaluation, in a
/// temporary run directory that is removed afterwards.
fn time_epoch(args: &BenchArgs, choice: DeviceChoice) -> Result<serde_json::Value> {
    let mut config = TrainConfig::paper(ModelKind::Dann);
    config.epochs = 1;
    config.device = choice;
    config.data.dir = args.data.clone();
    let dir = std::env::temp_dir().join(format!("dales-bench-epoch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let start = Instant::now();
    let data = Dataset::load(&config)?;
    let load_seconds = start.elapsed().as_secs_f64();
    let mut trainer = Trainer::new(config, data, &dir)?.with_settings(args.settings());
    let mut train_end = None;
    trainer.run(
        &mut |e| {
            // The last step's time marks the end of training.
            if let Event::Step { .. } = e {
                train_end = Some(Instant::now());
            }
        },
        &|_| false,
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let record = trainer.records()[0].clone();
    let _ = std::fs::remove_dir_all(&dir);
    let train_seconds = train_end
        .map(|t| t.duration_since(start).as_secs_f64() - load_seconds)
        .unwrap_or(f64::NAN);
    Ok(json!({
        "name": "dann_fashion_epoch",
        "seconds": seconds,
        "load_seconds": load_seconds,
        "train_seconds": train_seconds,
        "eval_and_save_seconds": seconds - load_seconds - train_seconds,
        "test_error": record.test_error,
        "steps": record.step,
    }))
}
