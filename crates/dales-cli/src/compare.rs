//! `dales compare`: a table and overlaid learning curves of several runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use dales::config::TrainConfig;
use dales::run::{EpochRecord, Summary, files, read_metrics};

use crate::plot::{self, Panel, Series};

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

/// What a run directory holds.
pub struct RunInfo {
    pub dir: PathBuf,
    pub config: TrainConfig,
    pub summary: Summary,
    pub records: Vec<EpochRecord>,
}

impl RunInfo {
    pub fn read(dir: &Path) -> Result<RunInfo> {
        let config = TrainConfig::from_file(&dir.join(files::CONFIG))
            .with_context(|| format!("{} is not a dales run directory", dir.display()))?;
        let path = dir.join(files::SUMMARY);
        let summary: Summary = serde_json::from_slice(
            &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("{}: not a dales summary", path.display()))?;
        let records = read_metrics(&dir.join(files::METRICS))?;
        Ok(RunInfo {
            dir: dir.to_path_buf(),
            config,
            summary,
            records,
        })
    }

    /// Short label: the directory name.
    pub fn label(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.dir.display().to_string())
    }
}

/// A markdown table (also readable in a terminal).
pub fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let cells: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut s = line(header.iter().map(|h| h.to_string()).collect());
    s += &line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for r in rows {
        s += &line(r.clone());
    }
    s
}

pub fn run(args: CompareArgs) -> Result<ExitCode> {
    let runs: Vec<RunInfo> = args
        .runs
        .iter()
        .map(|d| RunInfo::read(d))
        .collect::<Result<_>>()?;
    if runs.iter().all(|r| r.records.is_empty()) {
        bail!("none of the runs has a completed epoch");
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let s = &r.summary;
            vec![
                r.label(),
                s.kind.clone(),
                s.seed.to_string(),
                format!("{}/{}", s.epochs_done, s.epochs),
                r.config.optim.lr.to_string(),
                s.final_test_error
                    .map(|e| format!("{e:.2}"))
                    .unwrap_or_default(),
                s.best_test_error
                    .map(|e| format!("{e:.2}"))
                    .unwrap_or_default(),
                s.final_train_loss
                    .map(|e| format!("{e:.4}"))
                    .unwrap_or_default(),
                format!("{:.0}", s.wall_seconds),
            ]
        })
        .collect();
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
    let series = runs
        .iter()
        .map(|r| Series {
            label: r.label(),
            points: r
                .records
                .iter()
                .map(|e| (e.epoch as f64, e.test_error))
                .collect(),
        })
        .collect();
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
