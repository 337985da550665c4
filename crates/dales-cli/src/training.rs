//! Running a trainer from the command line: progress bars, Ctrl-C, and the curves plot.

use std::path::Path;

use anyhow::{Context, Result};
use dales::learner::ModelSpec;
use dales::run::{Outcome, Trainer};
use indicatif::MultiProgress;

use crate::plot;
use crate::progress::Reporter;

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
    if !trainer.records().is_empty() {
        let title = format!("{} seed {}", trainer.config().name(), trainer.config().seed);
        let panels = plot::run_curves(trainer.records(), trainer.eval_name(), &title, regression);
        if let Err(e) = plot::save(&panels, &dir.join("curves")) {
            eprintln!("warning: no plot for {}: {e:#}", dir.display());
        }
    }
    result.with_context(|| format!("training the run in {}", dir.display()))
}
