//! `dales compare`: a table and overlaid learning curves of several runs.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use dales::report::markdown_table;
use dales::run::RunDir;

use dales::plot::{self, Mark, Panel, Series};

/// Compare runs: prints a table, writes it as compare.md, and draws compare.png/.svg with the
/// runs' evaluation-error curves overlaid.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Run directories.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Where compare.md and compare.png/.svg go.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
}

pub fn run(args: CompareArgs) -> Result<ExitCode> {
    let mut rows = Vec::new();
    let mut series = Vec::new();
    for dir in &args.runs {
        let run = RunDir::open(dir)?;
        let s = run.summary()?;
        let records = run.records()?;
        let opt =
            |v: Option<f64>, digits: usize| v.map(|e| format!("{e:.digits$}")).unwrap_or_default();
        rows.push(vec![
            run.label(),
            s.kind.clone(),
            s.seed.to_string(),
            format!("{}/{}", s.epochs_done, s.epochs),
            run.config.lr().to_string(),
            opt(s.final_test_error, 2),
            opt(s.best_test_error, 2),
            opt(s.final_train_loss, 4),
            format!("{:.0}", s.wall_seconds),
        ]);
        series.push(Series {
            mark: Mark::Line,
            label: run.label(),
            points: records
                .iter()
                .map(|e| (e.epoch as f64, e.test_error))
                .collect(),
        });
    }
    if series.iter().all(|s| s.points.is_empty()) {
        bail!("none of the runs has a completed epoch");
    }
    let header = [
        "run",
        "kind",
        "seed",
        "epochs",
        "lr",
        "final error %",
        "best error %",
        "train loss",
        "seconds",
    ];
    let table = markdown_table(&header, &rows);
    println!("{table}");
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut md = String::from("# dales compare\n\n");
    let _ = writeln!(
        md,
        "Evaluation error after each run's last completed epoch.\n"
    );
    md += &table;
    dales::io::write_atomic(&args.out.join("compare.md"), md.as_bytes())?;
    let panel = Panel {
        x_label: "epoch".into(),
        title: "evaluation error".into(),
        y_label: "error (%)".into(),
        series,
    };
    plot::save(&[panel], &args.out.join("compare"))?;
    eprintln!(
        "wrote {} and {}.png/.svg",
        args.out.join("compare.md").display(),
        args.out.join("compare").display()
    );
    Ok(ExitCode::SUCCESS)
}
