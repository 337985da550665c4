//! `dales sweep`: seeds and hyper-parameter grids from a sweep file, trained here in parallel
//! or as a SLURM job array, and collected into one table.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use dales::report::markdown_table;
use dales::sweep::manifest::clear_failure;
use dales::sweep::slurm::SlurmOptions;
use dales::sweep::{
    Collection, Ended, Manifest, Metric, Status, SweepDir, SweepFile, collect, settle,
};
use indicatif::MultiProgress;

use crate::progress::Overall;
use crate::training::{Named, train_one, train_queue};

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

/// The sweep of `plan`'s file set up in `out`.
fn prepare(plan: &PlanArgs, out: Option<&Path>) -> Result<SweepDir> {
    Ok(SweepDir::create(&plan.file, plan.data.as_deref(), out)?)
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
    let sweep = prepare(&args.plan, args.out.as_deref())?;
    let (manifest, out) = (&sweep.manifest, &sweep.dir);
    let configs = sweep.pending()?;
    let total = sweep.plan.runs.len();
    eprintln!(
        "sweep `{}`: {total} runs, {} done, {} to train, {jobs} at a time; directory {}",
        manifest.name,
        total - configs.len(),
        configs.len(),
        out.display()
    );
    let queue: Vec<Named> = configs
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
        let (ended, unrecorded) = settle(dir, result);
        if let Some(e) = unrecorded {
            eprintln!("warning: {}", e.message());
        }
        let line = match ended {
            Ended::Finished => format!("{name}: finished"),
            Ended::Interrupted => return,
            Ended::InUse(error) => format!("{name}: skipped: {error}"),
            Ended::Diverged(_) => format!("{name}: diverged (a result: not trained again)"),
            Ended::Failed(error) => {
                failures.lock().unwrap().push(format!("{name}: {error}"));
                format!(
                    "{name}: failed (its error is in {}/error.txt)",
                    dir.display()
                )
            }
        };
        overall.lock().unwrap().ended(&line);
    });
    overall.into_inner().unwrap().finish();
    if crate::interrupt::requested() {
        eprintln!("interrupted; run the same command again to resume");
        return Ok(ExitCode::from(crate::interrupt::exit_code()));
    }
    let collection = collect(out, None)?;
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
    let sweep = prepare(&args.plan, args.out.as_deref())?;
    let (manifest, out) = (&sweep.manifest, &sweep.dir);
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
    let Some(script) = sweep.write_slurm(&dales, &options)? else {
        eprintln!(
            "all {} runs of `{}` are finished; collect them with: dales sweep collect {}",
            manifest.runs.len(),
            manifest.name,
            out.display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let path = script.path.display();
    eprintln!(
        "wrote {path} ({} of {} runs to train)",
        script.tasks,
        manifest.runs.len()
    );
    if !args.submit {
        eprintln!("submit it with: sbatch {path}");
        return Ok(ExitCode::SUCCESS);
    }
    let job = script.submit()?;
    println!("{job}");
    eprintln!(
        "submitted job array {job} ({} tasks); logs in {}; then: dales sweep collect {}",
        script.tasks,
        out.join("slurm").display(),
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
    let (ended, unrecorded) = settle(&dir, train_one(&config, &dir, &run.dir));
    if let Some(e) = unrecorded {
        return Err(e.into());
    }
    match ended {
        Ended::Finished => Ok(ExitCode::SUCCESS),
        Ended::Interrupted => {
            eprintln!("stopped; the run resumes when its task runs again");
            Ok(ExitCode::from(crate::interrupt::exit_code()))
        }
        Ended::Diverged(error) => {
            eprintln!("{error}\nrecorded as diverged: the sweep's result for this setting");
            Ok(ExitCode::SUCCESS)
        }
        Ended::InUse(error) | Ended::Failed(error) => bail!("{error}"),
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
    let written = c.write()?;
    println!("{}", c.markdown());
    eprintln!("wrote {} in {}", written.join(", "), c.dir.display());
    Ok(())
}
