//! `dales sweep`: seeds and hyper-parameter grids from a sweep file, trained here in parallel
//! or as a SLURM job array, and collected into one table.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use dales::report::markdown_table;
use dales::run::{AnyConfig, Outcome};
use dales::sweep::manifest::{clear_failure, record_failure};
use dales::sweep::slurm::{SlurmOptions, script};
use dales::sweep::{Collection, Manifest, Metric, Plan, Status, SweepFile, collect};
use indicatif::MultiProgress;

use crate::progress::Overall;
use crate::training::{train_any, train_queue};
use dales::plot::{self, Mark, Panel, Series};

/// Sweeps over seeds and any configuration keys (see configs/sweeps/): `plan` lists the runs,
/// `run` trains them here, `slurm` writes (and submits) a SLURM job array, `task` trains one
/// run of a sweep directory (what each array task does), `collect` tabulates the results.
/// Finished runs are kept and interrupted ones resumed whenever a sweep is run again.
#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    #[command(subcommand)]
    command: SweepCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SweepCommand {
    /// Print the runs of a sweep file: id, run directory, settings.
    Plan(PlanArgs),
    /// Train the runs of a sweep file here, several at a time, then collect them.
    Run(RunArgs),
    /// Write the sbatch script of a sweep's job array (one task per unfinished run); with
    /// --submit, submit it.
    Slurm(SlurmArgs),
    /// Train run ID of the sweep in SWEEP_DIR (what each array task runs).
    Task(TaskArgs),
    /// One table (collect.csv, collect.md) of the finished runs in a directory — a sweep's,
    /// or any directory of runs — and plots of the metric against each swept value and of
    /// the best settings' learning curves.
    Collect(CollectArgs),
}

#[derive(Debug, clap::Args)]
struct PlanArgs {
    /// The sweep file (TOML).
    file: PathBuf,
    /// Directory of every run's data [default: each configuration's].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// The sweep directory [default: runs/<sweep name>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Runs trained at the same time [default: the CPU cores ÷ --threads].
    #[arg(long)]
    jobs: Option<usize>,
    /// Threads of each run.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

#[derive(Debug, clap::Args)]
struct SlurmArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// The sweep directory, on a file system the cluster's nodes share [default:
    /// runs/<sweep name>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// --partition of each task [default: the cluster's].
    #[arg(long)]
    partition: Option<String>,
    /// --time limit of each task, e.g. 2:00:00 [default: the partition's].
    #[arg(long)]
    time: Option<String>,
    /// CPUs (and threads) of each task.
    #[arg(long, default_value_t = 1)]
    cpus_per_task: usize,
    /// --mem of each task, e.g. 4G [default: the cluster's].
    #[arg(long)]
    mem: Option<String>,
    /// GPUs of each task (runs with device = "gpu").
    #[arg(long)]
    gpus_per_task: Option<u32>,
    /// At most this many tasks at once.
    #[arg(long)]
    max_concurrent: Option<usize>,
    /// Seconds before the time limit at which a run saves its state and stops.
    #[arg(long, default_value_t = 120)]
    term_before: u32,
    /// A further #SBATCH argument, e.g. --sbatch-arg=--account=lab (repeatable).
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// Submit the script with sbatch and print the job id.
    #[arg(long)]
    submit: bool,
}

#[derive(Debug, clap::Args)]
struct TaskArgs {
    /// The sweep directory (holding sweep.json).
    sweep_dir: PathBuf,
    /// The run's id (the array task id).
    id: usize,
}

#[derive(Debug, clap::Args)]
struct CollectArgs {
    /// A sweep directory, or any directory of run directories.
    dir: PathBuf,
    /// Rank settings by final_test_error, best_test_error, last5_test_error or
    /// final_test_loss [default: the sweep's, else final_test_error].
    #[arg(long)]
    metric: Option<String>,
}

pub fn run(args: SweepArgs) -> Result<ExitCode> {
    match args.command {
        SweepCommand::Plan(a) => plan(a),
        SweepCommand::Run(a) => run_local(a),
        SweepCommand::Slurm(a) => slurm(a),
        SweepCommand::Task(a) => task(a),
        SweepCommand::Collect(a) => collect_cmd(a),
    }
}

/// The sweep file's runs, its manifest and the sweep directory (absolute), written.
fn prepare(plan: &PlanArgs, out: Option<&Path>) -> Result<(Plan, Manifest, PathBuf)> {
    let file = SweepFile::read(&plan.file)?;
    let runs = file.plan(plan.data.as_deref())?;
    let manifest = Manifest::new(&file, &runs);
    let out = out.map_or_else(|| PathBuf::from("runs").join(&file.name), Path::to_path_buf);
    let out = std::path::absolute(&out).with_context(|| format!("{}", out.display()))?;
    manifest.write(&out)?;
    Ok((runs, manifest, out))
}

fn plan(args: PlanArgs) -> Result<ExitCode> {
    let file = SweepFile::read(&args.file)?;
    let plan = file.plan(args.data.as_deref())?;
    let mut header = vec!["id".to_string(), "run directory".to_string()];
    header.extend(plan.keys.iter().cloned());
    let rows: Vec<Vec<String>> = plan
        .runs
        .iter()
        .map(|r| {
            let mut row = vec![r.id.to_string(), r.dir.clone()];
            row.extend(
                r.settings
                    .iter()
                    .map(|(_, v)| dales::sweep::plan::value_text(v)),
            );
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", markdown_table(&header, &rows))?;
    writeln!(
        out,
        "sweep `{}`: {} settings × {} seeds = {} runs, ranked by {}",
        file.name,
        file.settings(),
        file.seeds.len(),
        plan.runs.len(),
        file.metric.name()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn run_local(args: RunArgs) -> Result<ExitCode> {
    crate::interrupt::install();
    if args.threads == 0 || args.jobs == Some(0) {
        bail!("--jobs and --threads: at least 1");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = args.jobs.unwrap_or((cores / args.threads).max(1));
    // The runs share one pool of threads.
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs * args.threads)
        .build_global()
        .context("starting the thread pool")?;
    let (plan, manifest, out) = prepare(&args.plan, args.out.as_deref())?;
    let mut configs = Vec::new();
    for run in &plan.runs {
        let dir = out.join(&run.dir);
        if !dales::sweep::manifest::status(&dir).done() {
            clear_failure(&dir)?;
            configs.push((run, dir));
        }
    }
    let total = plan.runs.len();
    eprintln!(
        "sweep `{}`: {total} runs, {} done, {} to train, {jobs} at a time; directory {}",
        manifest.name,
        total - configs.len(),
        configs.len(),
        out.display()
    );
    let queue: Vec<(&AnyConfig, &Path, String)> = configs
        .iter()
        .map(|(r, d)| (&r.config, d.as_path(), r.dir.clone()))
        .collect();
    let multi = MultiProgress::new();
    let overall = Mutex::new(Overall::new(
        &manifest.name,
        total - configs.len(),
        total,
        &multi,
    ));
    let failures = Mutex::new(Vec::new());
    train_queue(jobs, &queue, &multi, &|i, result| {
        let (_, dir, name) = &queue[i];
        let line = match result {
            Ok(Outcome::Finished) => format!("{name}: finished"),
            Ok(Outcome::Interrupted) => return,
            Err(e) => {
                let error = format!("{e:#}");
                match failure(&e) {
                    // Another process trains it (a task of the same sweep): not this run's fault.
                    Failure::InUse => format!("{name}: skipped: {error}"),
                    kind => {
                        let diverged = kind == Failure::Diverged;
                        if let Err(e) = record_failure(dir, &error, diverged) {
                            eprintln!("warning: {e}");
                        }
                        if diverged {
                            format!("{name}: diverged (a result: not trained again)")
                        } else {
                            failures.lock().unwrap().push(format!("{name}: {error}"));
                            format!(
                                "{name}: failed (its error is in {}/error.txt)",
                                dir.display()
                            )
                        }
                    }
                }
            }
        };
        overall.lock().unwrap().ended(&line);
    });
    overall.into_inner().unwrap().finish();
    if crate::interrupt::requested() {
        eprintln!("interrupted; run the same command again to resume");
        return Ok(ExitCode::from(crate::interrupt::exit_code()));
    }
    let collection = collect(&out, None)?;
    report(&collection)?;
    let failures = failures.into_inner().unwrap();
    if !failures.is_empty() {
        eprintln!("{} runs failed:", failures.len());
        for f in &failures {
            eprintln!("  {f}");
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn slurm(args: SlurmArgs) -> Result<ExitCode> {
    let (_, manifest, out) = prepare(&args.plan, args.out.as_deref())?;
    let ids: Vec<usize> = manifest
        .runs
        .iter()
        .filter(|r| !r.status(&out).done())
        .map(|r| r.id)
        .collect();
    if ids.is_empty() {
        eprintln!(
            "all {} runs of `{}` are finished; collect them with: dales sweep collect {}",
            manifest.runs.len(),
            manifest.name,
            out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let options = SlurmOptions {
        partition: args.partition,
        time: args.time,
        cpus_per_task: args.cpus_per_task,
        mem: args.mem,
        gpus_per_task: args.gpus_per_task,
        max_concurrent: args.max_concurrent,
        term_before: args.term_before,
        extra: args.sbatch_args,
    };
    let dales = std::env::current_exe().context("finding the dales executable")?;
    let text = script(&manifest.name, &out, &dales, &ids, &options);
    let logs = out.join("slurm");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let path = logs.join("sweep.sbatch");
    dales::io::write_atomic(&path, text.as_bytes())?;
    eprintln!(
        "wrote {} ({} of {} runs to train)",
        path.display(),
        ids.len(),
        manifest.runs.len()
    );
    if !args.submit {
        eprintln!("submit it with: sbatch {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let output = std::process::Command::new("sbatch")
        .arg("--parsable")
        .arg(&path)
        .output()
        .context("running sbatch (is SLURM installed and on PATH?)")?;
    if !output.status.success() {
        bail!(
            "sbatch {} failed ({}): {}",
            path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let reply = String::from_utf8_lossy(&output.stdout);
    let job = reply.trim().split(';').next().unwrap_or_default();
    println!("{job}");
    eprintln!(
        "submitted job array {job} ({} tasks); logs in {}; then: dales sweep collect {}",
        ids.len(),
        logs.display(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn task(args: TaskArgs) -> Result<ExitCode> {
    crate::interrupt::install();
    let manifest = Manifest::read(&args.sweep_dir)?;
    let run = manifest.run(&args.sweep_dir, args.id)?;
    let dir = args.sweep_dir.join(&run.dir);
    match run.status(&args.sweep_dir) {
        Status::Finished => {
            eprintln!("{}: already finished", dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        Status::Diverged(e) => {
            eprintln!("{}: diverged before ({e})", dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let config = run.config(&args.sweep_dir)?;
    clear_failure(&dir)?;
    eprintln!(
        "sweep `{}` run {} of {}: {}",
        manifest.name,
        run.id,
        manifest.runs.len(),
        dir.display()
    );
    match train_any(&config, &dir, &run.dir, None) {
        Ok(Outcome::Finished) => Ok(ExitCode::SUCCESS),
        Ok(Outcome::Interrupted) => {
            eprintln!("stopped; the run resumes when its task runs again");
            Ok(ExitCode::from(crate::interrupt::exit_code()))
        }
        Err(e) => {
            let kind = failure(&e);
            if kind != Failure::InUse {
                record_failure(&dir, &format!("{e:#}"), kind == Failure::Diverged)?;
            }
            if kind == Failure::Diverged {
                eprintln!("{e:#}\nrecorded as diverged: the sweep's result for this setting");
                return Ok(ExitCode::SUCCESS);
            }
            Err(e)
        }
    }
}

/// How a run of a sweep failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Its training diverged: a result of its setting, not a fault.
    Diverged,
    /// Another process holds its directory.
    InUse,
    /// Anything else: recorded, and retried by the next `run` or submission.
    Error,
}

fn failure(e: &anyhow::Error) -> Failure {
    match e.downcast_ref::<dales::Error>() {
        Some(dales::Error::Diverged { .. }) => Failure::Diverged,
        Some(dales::Error::InUse { .. }) => Failure::InUse,
        _ => Failure::Error,
    }
}

fn collect_cmd(args: CollectArgs) -> Result<ExitCode> {
    let metric = args
        .metric
        .as_deref()
        .map(|m| Metric::parse(m, "--metric"))
        .transpose()?;
    let collection = collect(&args.dir, metric)?;
    report(&collection)?;
    Ok(ExitCode::SUCCESS)
}

/// Write the collection's files and plots, and print its tables.
fn report(c: &Collection) -> Result<()> {
    c.write()?;
    println!("{}", c.markdown());
    let mut written = vec!["collect.csv", "collect.md", "collect.json"];
    let metric = c.metric.name();
    let profiles: Vec<Panel> = c
        .profiles()
        .into_iter()
        .map(|p| {
            let (x_label, tx): (String, fn(f64) -> f64) = if p.log {
                (format!("log10 {}", p.key), f64::log10)
            } else {
                (p.key.clone(), |x| x)
            };
            Panel {
                title: format!("{metric} against {}", p.key),
                x_label,
                y_label: format!("{metric} (mean over seeds)"),
                series: p
                    .series
                    .into_iter()
                    .map(|(model, points)| Series {
                        mark: Mark::Line,
                        label: model,
                        points: points.into_iter().map(|(x, y)| (tx(x), y)).collect(),
                    })
                    .collect(),
            }
        })
        .filter(|p| {
            p.series
                .iter()
                .any(|s| s.points.iter().any(|q| q.1.is_finite()))
        })
        .collect();
    if !profiles.is_empty() {
        plot::save(&profiles, &c.dir.join("collect-values"))?;
        written.push("collect-values.png/.svg");
    }
    let mut series = Vec::new();
    for p in c.best_per_model() {
        let line = p.curve.iter().map(|&(e, m, _)| (e, m));
        let upper = p.curve.iter().map(|&(e, m, sd)| (e, m + sd));
        let lower = p.curve.iter().rev().map(|&(e, m, sd)| (e, m - sd));
        series.push(Series {
            mark: Mark::Line,
            label: p.point.clone(),
            points: line.collect(),
        });
        series.push(Series {
            mark: Mark::Band,
            label: String::new(),
            points: upper.chain(lower).collect(),
        });
    }
    let finite = series
        .iter()
        .any(|s| s.points.iter().any(|q| q.1.is_finite()));
    if finite {
        let panel = Panel {
            title: "best setting per model: error, mean ± sd over seeds".into(),
            x_label: "epoch".into(),
            y_label: "evaluation error".into(),
            series,
        };
        plot::save(&[panel], &c.dir.join("collect-curves"))?;
        written.push("collect-curves.png/.svg");
    }
    eprintln!("wrote {} in {}", written.join(", "), c.dir.display());
    Ok(())
}
