//! Running trainers from the command line: progress bars, Ctrl-C, and the curves plot.

use std::path::Path;

use anyhow::{Context, Result};
use dales::learner::ModelSpec;
use dales::queue::{self, QueuedRun, Watch};
use dales::run::{AnyConfig, Event, Outcome, Trainer};
use indicatif::MultiProgress;

use crate::progress::Reporter;
/// Run `trainer` to its last epoch (or until Ctrl-C) with progress reporting under `name`,
/// then draw its curves into `dir/curves.png/.svg`.
pub fn run_to_end<M: ModelSpec>(
    trainer: &mut Trainer<M>,
    dir: &Path,
    name: &str,
    multi: Option<MultiProgress>,
) -> Result<Outcome> {
    let watch = Bars {
        labels: vec![(dir, name)],
        multi,
        done: &|_, _| {},
    };
    queue::run_watched(0, trainer, dir, &watch)
        .with_context(|| format!("training the run in {}", dir.display()))
}

/// A run of a queue: its configuration, directory, and the name its progress is shown under.
pub type Named<'a> = (&'a AnyConfig, &'a Path, String);

/// Train (or resume, or skip when finished) each of `runs`, `jobs` at a time, until all are
/// done or Ctrl-C; `done(i, result)` is called as run `i` ends (`Ok(Outcome::Finished)` also
/// for a run finished before). Progress is shown under each run's name.
pub fn train_queue(
    jobs: usize,
    runs: &[Named],
    multi: &MultiProgress,
    done: &(dyn Fn(usize, dales::Result<Outcome>) + Sync),
) {
    let queued: Vec<QueuedRun> = runs
        .iter()
        .map(|&(config, dir, _)| QueuedRun { config, dir })
        .collect();
    let watch = Bars {
        labels: runs
            .iter()
            .map(|(_, dir, name)| (*dir, name.as_str()))
            .collect(),
        multi: Some(multi.clone()),
        done,
    };
    queue::train_queue(jobs, &queued, &watch);
}

/// Train (or resume, or skip when finished) one run of `config` in `dir`, shown as `name`.
pub fn train_one(config: &AnyConfig, dir: &Path, name: &str) -> dales::Result<Outcome> {
    let watch = Bars {
        labels: vec![(dir, name)],
        multi: None,
        done: &|_, _| {},
    };
    queue::train_or_resume(0, QueuedRun { config, dir }, &watch)
}

/// The command line's watch over a queue: a progress bar (or periodic lines) per training
/// run, Ctrl-C as the stop, warnings on stderr.
struct Bars<'a> {
    /// Each run's directory and name.
    labels: Vec<(&'a Path, &'a str)>,
    multi: Option<MultiProgress>,
    done: &'a (dyn Fn(usize, dales::Result<Outcome>) + Sync),
}

/// A reporter whose bar ends when the run stops training.
struct Finishing(Reporter);

impl Drop for Finishing {
    fn drop(&mut self) {
        self.0.finish();
    }
}

impl Watch for Bars<'_> {
    fn started(&self, i: usize, epochs: usize, regression: bool) -> Box<dyn FnMut(Event) + '_> {
        let name = self.labels[i].1;
        let mut reporter = Finishing(Reporter::new(name, epochs, regression, self.multi.clone()));
        Box::new(move |e| reporter.0.on(e))
    }

    fn ended(&self, i: usize, result: dales::Result<Outcome>) {
        (self.done)(i, result);
    }

    fn stop(&self) -> bool {
        crate::interrupt::requested()
    }

    fn warn(&self, i: usize, warning: dales::Error) {
        let dir = self.labels[i].0;
        eprintln!(
            "warning: no plot for {}: {}",
            dir.display(),
            warning.message()
        );
    }
}
