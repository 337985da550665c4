//! Running a trainer from the command line: progress bars, Ctrl-C, and the curves plot.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use dales::config::TrainConfig;
use dales::learner::ModelSpec;
use dales::run::{AnyConfig, Dataset, Outcome, RunDir, StartOptions, Trainer};
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

/// Train (or resume, or skip when finished) each of `runs` (configuration, directory),
/// `jobs` at a time, until all are done or a stop signal arrives; `done(i, result)` is called
/// as run `i` ends (`Ok(Outcome::Finished)` also for a run finished before). Progress is
/// reported under each run's name.
pub fn train_queue(
    jobs: usize,
    runs: &[(&AnyConfig, &Path, String)],
    multi: &MultiProgress,
    done: &(dyn Fn(usize, Result<Outcome>) + Sync),
) {
    let queue: Mutex<Vec<usize>> = Mutex::new((0..runs.len()).rev().collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    if crate::interrupt::requested() {
                        return;
                    }
                    let Some(i) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let (config, dir, name) = &runs[i];
                    done(i, train_any(config, dir, name, Some(multi.clone())));
                }
            });
        }
    });
}

/// Train (or resume, or skip when finished) one run of `config` in `dir`, reported as `name`.
pub fn train_any(
    config: &AnyConfig,
    dir: &Path,
    name: &str,
    multi: Option<MultiProgress>,
) -> Result<Outcome> {
    match config {
        AnyConfig::FeedForward(c) => train_one(c, dir, name, multi),
        AnyConfig::Sequence(c) => train_one(c, dir, name, multi),
        AnyConfig::Recurrent(c) => train_one(c, dir, name, multi),
        AnyConfig::Conv(c) => train_one(c, dir, name, multi),
    }
}

fn train_one<M: ModelSpec>(
    config: &TrainConfig<M>,
    dir: &Path,
    name: &str,
    multi: Option<MultiProgress>,
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
    run_to_end(&mut trainer, dir, name, multi)
}
