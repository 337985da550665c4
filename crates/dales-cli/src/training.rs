//! Running trainers from the command line: progress bars, Ctrl-C, and the curves plot.

use std::path::Path;

use anyhow::{Context, Result};
use dales::learner::ModelSpec;
use dales::queue::{self, QueuedRun, Watch};
use dales::run::{AnyConfig, Event, Outcome, Trainer};
use indicatif::MultiProgress;

use crate::progress::Reporter;
use dales::plot;

/// Run `trainer` to its last epoch (or until Ctrl-C) with progress reporting under `name`,
/// then draw its curves into `dir/curves.png/.svg`.
pub fn run_to_end<M: ModelSpec>(
    trainer: &mut Trainer<M>,
    dir: &Path,
    name: &str,
    multi: Option<MultiProgress>,
) -> Result<Outcome> {
    let regression = trainer.is_regression();
    let mut reporter = Reporter::new(name, trainer.config().epochs, regression, multi);
    let result = trainer.run(&mut |e| reporter.on(e), &|_| crate::interrupt::requested());
    reporter.finish();
    if let Err(e) = plot::save_trainer_curves(trainer, dir) {
        eprintln!("warning: no plot for {}: {e:#}", dir.display());
    }
    result.with_context(|| format!("training the run in {}", dir.display()))
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
        runs,
        multi: Some(multi.clone()),
        done,
    };
    queue::train_queue(jobs, &queued, &watch);
}

/// Train (or resume, or skip when finished) one run of `config` in `dir`, shown as `name`.
pub fn train_one(config: &AnyConfig, dir: &Path, name: String) -> dales::Result<Outcome> {
    let runs = [(config, dir, name)];
    let watch = Bars {
        runs: &runs,
        multi: None,
        done: &|_, _| {},
    };
    queue::train_or_resume(0, QueuedRun { config, dir }, &watch)
}

/// The command line's watch over a queue: a progress bar (or periodic lines) per training
/// run, Ctrl-C as the stop, warnings on stderr.
struct Bars<'a> {
    runs: &'a [Named<'a>],
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
        let name = &self.runs[i].2;
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
        let dir = self.runs[i].1;
        eprintln!(
            "warning: no plot for {}: {}",
            dir.display(),
            warning.message()
        );
    }
}
