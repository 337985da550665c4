//! One-command paper reproductions (`dales reproduce NAME`): each is a list of presets
//! trained for several seeds, written as data in `configs/reproduce/NAME.toml`, and a report
//! over the finished runs.

mod reproduction;
pub mod spectral;

pub use reproduction::{Reproduction, Written, all_names};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::report::{markdown_table, mean_sd};
use crate::run::{AnyConfig, EpochRecord, Overrides, RunDir, Summary};

/// The reproductions dales ships, by name, with their definition files.
const EXPERIMENTS: [(&str, &str); 3] = [
    (
        "dann2021",
        include_str!("../../../configs/reproduce/dann2021.toml"),
    ),
    (
        "dann2021-conv",
        include_str!("../../../configs/reproduce/dann2021-conv.toml"),
    ),
    (
        "adaptation",
        include_str!("../../../configs/reproduce/adaptation.toml"),
    ),
];

/// What a reproduction reports once its runs are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    /// Final test errors per model (mean ± sd over seeds) and the mean learning curves.
    Errors,
    /// Accuracy under the paper's step drive ([`crate::robustness::Sweep::paper`]).
    Robustness,
}

/// A reproduction, as read from its definition file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// What the runs train on, for the report's caption.
    pub description: String,
    /// The presets trained, in table order.
    pub presets: Vec<String>,
    /// The presets at the paper's full size, where the default ones are scaled down.
    #[serde(default)]
    pub full_presets: Option<Vec<String>>,
    /// Seeds per preset (1, 2, …, seeds).
    pub seeds: u64,
    /// Epochs per run (absent: each preset's own).
    #[serde(default)]
    pub epochs: Option<usize>,
    /// The report.
    pub report: Report,
}

/// How a reproduction is run: its size, seeds, epochs and data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// The full-size presets.
    pub full: bool,
    /// Seeds per preset (default: the experiment's).
    pub seeds: Option<u64>,
    /// Epochs per run (default: the experiment's, else each preset's).
    pub epochs: Option<usize>,
    /// The dataset directory (default: Fashion-MNIST).
    pub data: Option<PathBuf>,
}

/// One run of a reproduction.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its configuration (preset, seed, epochs, data directory).
    pub config: AnyConfig,
    /// Its run directory.
    pub dir: PathBuf,
}

impl Job {
    /// Its short name while it trains: model and seed, `dann s2`.
    pub fn name(&self) -> String {
        format!("{} s{}", self.config.name(), self.config.seed())
    }
}

/// Names of the reproductions.
pub fn names() -> Vec<&'static str> {
    EXPERIMENTS.iter().map(|(n, _)| *n).collect()
}

impl Experiment {
    /// The reproduction called `name`.
    pub fn named(name: &str) -> Result<Experiment> {
        let (_, text) = EXPERIMENTS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| {
                Error::config("experiment", name, format!("one of {}", names().join(", ")))
            })?;
        let origin = PathBuf::from(format!("configs/reproduce/{name}.toml"));
        let experiment: Experiment = toml::from_str(text).map_err(|e| Error::ConfigFile {
            path: origin.clone(),
            message: e.to_string(),
        })?;
        experiment.check()?;
        Ok(experiment)
    }

    fn check(&self) -> Result<()> {
        for name in self
            .presets
            .iter()
            .chain(self.full_presets.iter().flatten())
        {
            AnyConfig::preset(name)?;
        }
        Ok(())
    }

    /// The presets trained: the full-size ones with `full` (an error where there are none).
    pub fn preset_names(&self, full: bool) -> Result<&[String]> {
        match (full, &self.full_presets) {
            (false, _) => Ok(&self.presets),
            (true, Some(p)) => Ok(p),
            (true, None) => Err(Error::option(
                "--full",
                "",
                "this reproduction trains at the paper's size already",
            )),
        }
    }

    /// Every run, seed by seed: each preset under `options`, in `out/<model kind>-seed<seed>`.
    pub fn jobs(&self, out: &Path, options: &Options) -> Result<Vec<Job>> {
        let presets = self.preset_names(options.full)?;
        let seeds = options.seeds.unwrap_or(self.seeds);
        if seeds == 0 {
            return Err(Error::option("--seeds", 0, "at least one seed is needed"));
        }
        if options.epochs == Some(0) {
            return Err(Error::option("--epochs", 0, "at least one epoch is needed"));
        }
        let mut jobs = Vec::new();
        for seed in 1..=seeds {
            for name in presets {
                let mut config = AnyConfig::preset(name)?;
                config.apply(&Overrides {
                    data: options.data.clone(),
                    epochs: options.epochs.or(self.epochs),
                    seed: Some(seed),
                    ..Overrides::default()
                })?;
                let dir = out.join(format!("{}-seed{seed}", config.name()));
                jobs.push(Job { config, dir });
            }
        }
        Ok(jobs)
    }
}

/// One model's row of an [`Report::Errors`] report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelResult {
    /// Model kind.
    pub model: String,
    /// Learning rate.
    pub lr: f64,
    /// Seeds of the finished runs.
    pub seeds: Vec<u64>,
    /// Test error (%) after the last epoch, per seed.
    pub final_test_error: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation.
    pub sd: f64,
    /// Mean over seeds of the mean of the last 5 epochs.
    pub last5_mean: f64,
    /// Mean over seeds of the best epoch.
    pub best_mean: f64,
    /// Mean test error after epochs 5 and 30 (for comparisons at equal epochs).
    pub epoch5_mean: Option<f64>,
    /// See `epoch5_mean`.
    pub epoch30_mean: Option<f64>,
    /// Mean wall seconds per run.
    pub seconds_per_run: f64,
    /// Mean test error over seeds after each epoch.
    #[serde(skip)]
    pub curve: Vec<(f64, f64)>,
}

/// The finished runs of `jobs`, grouped by model in job order.
fn finished_by_model(jobs: &[Job]) -> Result<Vec<(String, Vec<FinishedRun>)>> {
    let mut groups: Vec<(String, Vec<FinishedRun>)> = Vec::new();
    for job in jobs {
        let name = job.config.name();
        if !groups.iter().any(|(n, _)| *n == name) {
            groups.push((name.clone(), Vec::new()));
        }
        if !RunDir::finished(&job.dir, 0) {
            continue;
        }
        let run = RunDir::open(&job.dir)?;
        let finished = FinishedRun {
            lr: run.config.lr(),
            summary: run.summary()?,
            records: run.records()?,
        };
        let group = groups.iter_mut().find(|(n, _)| *n == name);
        group.expect("added above").1.push(finished);
    }
    Ok(groups)
}

/// What an errors report reads of a finished run.
struct FinishedRun {
    lr: f64,
    summary: Summary,
    records: Vec<EpochRecord>,
}

/// The [`Report::Errors`] rows of the finished runs among `jobs` (models without a finished
/// run are left out).
pub fn error_results(jobs: &[Job]) -> Result<Vec<ModelResult>> {
    let mut results = Vec::new();
    for (model, done) in finished_by_model(jobs)? {
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
        results.push(ModelResult {
            model,
            lr: done[0].lr,
            seeds: done.iter().map(|r| r.summary.seed).collect(),
            final_test_error: finals,
            mean,
            sd,
            last5_mean: mean_sd(&last5).0,
            best_mean: mean_sd(&best).0,
            epoch5_mean: at(5),
            epoch30_mean: at(30),
            seconds_per_run: mean_sd(&secs).0,
            curve,
        });
    }
    if results.is_empty() {
        return Err(Error::config(
            "reproduction",
            "(no finished run)",
            "at least one finished run: train them first",
        ));
    }
    Ok(results)
}

/// The markdown table of [`error_results`].
pub fn errors_table(results: &[ModelResult]) -> String {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let opt = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_default();
            vec![
                r.model.clone(),
                r.lr.to_string(),
                r.seeds.len().to_string(),
                format!("{:.2} ± {:.2}", r.mean, r.sd),
                format!("{:.2}", r.last5_mean),
                format!("{:.2}", r.best_mean),
                opt(r.epoch5_mean),
                opt(r.epoch30_mean),
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
    markdown_table(&header, &rows)
}

/// Write the [`Report::Errors`] report of reproduction `name` into `out`: `results.md` (a
/// caption and [`errors_table`]) and `results.json`; returns the rows.
pub fn write_errors(
    out: &Path,
    name: &str,
    experiment: &Experiment,
    jobs: &[Job],
) -> Result<Vec<ModelResult>> {
    let results = error_results(jobs)?;
    let epochs = jobs.iter().map(|j| j.config.epochs()).max().unwrap_or(0);
    let md = format!(
        "# dales reproduce {name}\n\n{}, {epochs} epochs; test error after the last epoch, mean \
         ± sd over seeds.\n\n{}",
        experiment.description,
        errors_table(&results)
    );
    write_atomic(&out.join("results.md"), md.as_bytes())?;
    let json = serde_json::to_string_pretty(&results).expect("results serialise");
    write_atomic(&out.join("results.json"), json.as_bytes())?;
    Ok(results)
}
