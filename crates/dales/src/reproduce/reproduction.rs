//! A reproduction from plan to report: its runs, planned from its definition and the
//! options, and its report over the finished ones — tables, results and plots written into
//! its directory. `dales reproduce` and Python's `dales.reproduce` both go through it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::spectral::{self, SpectralJob};
use super::{Experiment, Job, Options, Report, errors_table, names, write_errors};
use crate::error::{Error, Result};
use crate::plot::{self, Mark, Panel, Series};
use crate::queue::QueuedRun;
use crate::robustness::Sweep;
use crate::run::RunDir;

/// The spectral paper's reproduction, planned in code rather than from a definition file.
const SPECTRAL: &str = "dale2023";

/// A planned reproduction.
#[derive(Debug, Clone)]
pub struct Reproduction {
    /// Its name (`dann2021`, `dann2021-conv`, `adaptation`, `dale2023`).
    pub name: String,
    /// Its output directory.
    pub out: PathBuf,
    data: Option<PathBuf>,
    plan: Plan,
}

#[derive(Debug, Clone)]
enum Plan {
    /// Presets over seeds, reported as the definition says.
    Presets(Experiment, Vec<Job>),
    /// The spectral paper's four parts.
    Spectral(Vec<SpectralJob>),
}

/// A reproduction's report, as written.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    /// The report's tables (markdown), as the command line prints them.
    pub markdown: String,
    /// What the tables were computed from: one entry per model (errors reports), per run
    /// (the robustness sweep, the spectral paper's runs).
    pub results: serde_json::Value,
    /// The files written.
    pub files: Vec<PathBuf>,
}

/// Every reproduction's name.
pub fn all_names() -> Vec<&'static str> {
    let mut all = names();
    all.push(SPECTRAL);
    all
}

impl Reproduction {
    /// Reproduction `name` with `options`, its runs in `out`.
    pub fn plan(name: &str, out: &Path, options: &Options) -> Result<Reproduction> {
        if !all_names().contains(&name) {
            let expected = format!("one of {}", all_names().join(", "));
            return Err(Error::config("experiment", name, expected));
        }
        let plan = if name == SPECTRAL {
            Plan::Spectral(spectral::jobs(out, options)?)
        } else {
            let experiment = Experiment::named(name)?;
            let jobs = experiment.jobs(out, options)?;
            Plan::Presets(experiment, jobs)
        };
        Ok(Reproduction {
            name: name.to_string(),
            out: out.to_path_buf(),
            data: options.data.clone(),
            plan,
        })
    }

    /// Its runs, in training order.
    pub fn jobs(&self) -> Vec<&Job> {
        match &self.plan {
            Plan::Presets(_, jobs) => jobs.iter().collect(),
            Plan::Spectral(jobs) => jobs.iter().map(|j| &j.job).collect(),
        }
    }

    /// Its runs, for [`crate::queue::train_queue`].
    pub fn queued(&self) -> Vec<QueuedRun<'_>> {
        self.jobs()
            .into_iter()
            .map(|j| QueuedRun {
                config: &j.config,
                dir: &j.dir,
            })
            .collect()
    }

    /// The report over the runs finished so far, written into the output directory;
    /// `progress` hears of the slower steps (the robustness sweep's evaluations).
    pub fn report(&self, progress: &mut dyn FnMut(&str)) -> Result<Written> {
        std::fs::create_dir_all(&self.out).map_err(|e| Error::io(&self.out, e))?;
        match &self.plan {
            Plan::Presets(experiment, jobs) => match experiment.report {
                Report::Errors => self.errors(experiment, jobs),
                Report::Robustness => self.robustness(jobs, progress),
            },
            Plan::Spectral(jobs) => self.spectral(jobs),
        }
    }

    fn files(&self, names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(|n| self.out.join(n)).collect()
    }

    /// results.md, results.json and the mean test-error curves per model.
    fn errors(&self, experiment: &Experiment, jobs: &[Job]) -> Result<Written> {
        let results = write_errors(&self.out, &self.name, experiment, jobs)?;
        let series = results
            .iter()
            .map(|r| Series {
                mark: Mark::Line,
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
        plot::save(&[panel], &self.out.join("curves"))?;
        Ok(Written {
            markdown: errors_table(&results),
            results: json(&results),
            files: self.files(&["results.md", "results.json", "curves.png", "curves.svg"]),
        })
    }

    /// The paper's robustness sweep over the finished runs, into `out/robustness`.
    fn robustness(&self, jobs: &[Job], progress: &mut dyn FnMut(&str)) -> Result<Written> {
        let runs: Vec<&Job> = jobs
            .iter()
            .filter(|j| RunDir::finished(&j.dir, j.config.epochs()))
            .collect();
        if runs.is_empty() {
            return Err(Error::run(&self.out, "no finished run to sweep"));
        }
        let sweep = Sweep {
            data: self.data.clone(),
            ..Sweep::paper()
        };
        let mut results = Vec::new();
        for job in runs {
            let result = sweep.run(&job.dir, |xi, accuracy| {
                let dir = job.dir.display();
                progress(&format!("{dir}: ξ = {xi}: accuracy {accuracy:.2}%"));
            })?;
            results.push(result);
        }
        let dir = self.out.join("robustness");
        sweep.write(&dir, &results)?;
        plot::save(&[plot::sweep(&sweep, &results)], &dir.join("robustness"))?;
        let files = [
            "robustness/robustness.csv",
            "robustness/robustness.md",
            "robustness/robustness.png",
            "robustness/robustness.svg",
        ];
        Ok(Written {
            markdown: sweep.table(&results),
            results: json(&results),
            files: self.files(&files),
        })
    }

    /// results.md, conditions.csv, runs.csv and the plots of the spectral paper.
    fn spectral(&self, jobs: &[SpectralJob]) -> Result<Written> {
        let data = match &self.data {
            Some(d) => format!("images from {}", d.display()),
            None => "Fashion-MNIST".to_string(),
        };
        let results = spectral::write_report(&self.out, jobs, &data)?;
        let mut files = vec!["results.md", "conditions.csv", "runs.csv"];
        files.extend(spectral::save_plots(&self.out, &results)?);
        Ok(Written {
            markdown: spectral::report_markdown(&results, &data),
            results: json(&results),
            files: self.files(&files),
        })
    }
}

fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("results serialise")
}
