//! Training many runs: each one trained, resumed or skipped as its directory says, a few at a
//! time, until all are done or a stop is asked for. Reproductions and sweeps train their runs
//! through this queue, from the command line and from Python alike.

use std::path::Path;
use std::sync::Mutex;

use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::learner::ModelSpec;
use crate::plot;
use crate::run::{AnyConfig, Dataset, Event, Outcome, RunDir, StartOptions, Trainer};

/// One run of a queue.
#[derive(Debug, Clone, Copy)]
pub struct QueuedRun<'a> {
    /// Its configuration.
    pub config: &'a AnyConfig,
    /// Its run directory.
    pub dir: &'a Path,
}

/// What a queue reports, and asks, as it trains. Its methods are called from the queue's
/// worker threads.
pub trait Watch: Sync {
    /// Run `i` starts (or resumes) training towards `epochs` epochs; `regression`: its errors
    /// are mean squared errors, not %. Returns the observer of its events, dropped when the
    /// run stops training.
    fn started(&self, i: usize, epochs: usize, regression: bool) -> Box<dyn FnMut(Event) + '_>;

    /// Run `i` ended: finished (also when it was finished before), interrupted (its state
    /// saved), or failed.
    fn ended(&self, i: usize, result: Result<Outcome>);

    /// Whether to stop: a training run saves its state at its next step and ends
    /// [`Outcome::Interrupted`]; no further run starts.
    fn stop(&self) -> bool;

    /// Something that did not stop run `i` went wrong (its curves could not be drawn).
    fn warn(&self, i: usize, warning: Error) {
        let _ = (i, warning);
    }
}

/// Train every run of `runs`, `jobs` at a time, reporting to `watch`; returns when all have
/// ended or, after [`Watch::stop`], when the running ones have saved their state.
pub fn train_queue(jobs: usize, runs: &[QueuedRun], watch: &dyn Watch) {
    let queue: Mutex<Vec<usize>> = Mutex::new((0..runs.len()).rev().collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    if watch.stop() {
                        return;
                    }
                    let Some(i) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                        return;
                    };
                    watch.ended(i, train_or_resume(i, runs[i], watch));
                }
            });
        }
    });
}

/// Train run `i` (`run`) to its end: resume it if its directory holds a resumable run, skip
/// it if that run is finished, else start it afresh; then draw its curves
/// (`dir/curves.png/.svg`).
pub fn train_or_resume(i: usize, run: QueuedRun, watch: &dyn Watch) -> Result<Outcome> {
    match run.config {
        AnyConfig::FeedForward(c) => train_typed(i, c, run.dir, watch),
        AnyConfig::Sequence(c) => train_typed(i, c, run.dir, watch),
        AnyConfig::Recurrent(c) => train_typed(i, c, run.dir, watch),
        AnyConfig::Conv(c) => train_typed(i, c, run.dir, watch),
    }
}

fn train_typed<M: ModelSpec>(
    i: usize,
    config: &TrainConfig<M>,
    dir: &Path,
    watch: &dyn Watch,
) -> Result<Outcome> {
    let mut trainer = if RunDir::resumable(dir) {
        if RunDir::finished(dir, config.epochs) {
            return Ok(Outcome::Finished);
        }
        Trainer::<M>::resume(dir, config.data.dir.clone(), Some(config.epochs))?
    } else {
        // A run killed before its first save left files but nothing to resume: start over.
        let data = Dataset::load(config)?;
        let options = StartOptions {
            overwrite: true,
            ..StartOptions::default()
        };
        Trainer::start(config.clone(), data, dir, options)?
    };
    run_watched(i, &mut trainer, dir, watch)
}

/// Run `trainer`, run `i` of `watch`, to its last epoch or until `watch` asks to stop; then
/// draw its curves into `dir/curves.png/.svg` (a failure there is a warning).
pub fn run_watched<M: ModelSpec>(
    i: usize,
    trainer: &mut Trainer<M>,
    dir: &Path,
    watch: &dyn Watch,
) -> Result<Outcome> {
    let result = {
        let epochs = trainer.config().epochs;
        let mut observer = watch.started(i, epochs, trainer.is_regression());
        trainer.run(&mut *observer, &|_| watch.stop())
    };
    if let Err(e) = plot::save_trainer_curves(trainer, dir) {
        watch.warn(i, e);
    }
    result
}
