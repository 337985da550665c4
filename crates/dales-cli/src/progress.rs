//! Progress reporting: bars on a terminal, plain periodic lines otherwise.

use std::io::IsTerminal;
use std::time::Instant;

use dales::run::Event;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Reports the events of one run.
pub struct Reporter {
    name: String,
    bar: Option<ProgressBar>,
    multi: Option<MultiProgress>,
    epochs: usize,
    batches: usize,
    last_line: Instant,
    /// Errors are mean squared errors (the adding problem), not % misclassified.
    regression: bool,
}

impl Reporter {
    /// A reporter for run `name` of `epochs` epochs; bars go into `multi` when given;
    /// `regression` reports mean squared errors instead of accuracies.
    pub fn new(name: &str, epochs: usize, regression: bool, multi: Option<MultiProgress>) -> Self {
        Reporter {
            name: name.to_string(),
            bar: None,
            multi,
            epochs,
            batches: 0,
            last_line: Instant::now(),
            regression,
        }
    }

    /// The running training metric: accuracy (%) of a classification, MSE of a regression.
    fn train_metric(&self, train_error: f64) -> String {
        if self.regression {
            format!("train MSE {train_error:.4}")
        } else {
            format!("train acc {:.2}%", 100.0 - train_error)
        }
    }

    /// The end-of-epoch line of `r`: losses and errors (%), or the MSEs of a regression.
    fn epoch_line(&self, r: &dales::run::EpochRecord) -> String {
        let (name, epoch, epochs) = (&self.name, r.epoch, self.epochs);
        if self.regression {
            format!(
                "{name}: epoch {epoch}/{epochs} train MSE {:.4} | test MSE {:.4} | {:.0}s",
                r.train_loss, r.test_loss, r.seconds
            )
        } else {
            format!(
                "{name}: epoch {epoch}/{epochs} train loss {:.4} train err {:.2}% | test loss {:.4} \
                 test err {:.2}% | {:.0}s",
                r.train_loss, r.train_error, r.test_loss, r.test_error, r.seconds
            )
        }
    }

    fn tty() -> bool {
        std::io::stderr().is_terminal()
    }

    /// Handle one event.
    pub fn on(&mut self, event: Event) {
        match event {
            Event::EpochStart {
                epoch,
                batches,
                start_batch,
            } => {
                self.batches = batches;
                if Self::tty() {
                    let bar = ProgressBar::new(batches as u64);
                    let bar = match &self.multi {
                        Some(m) => m.add(bar),
                        None => bar,
                    };
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
                        )
                        .expect("valid template")
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(format!("{} epoch {epoch}/{}", self.name, self.epochs));
                    bar.set_position(start_batch as u64);
                    self.bar = Some(bar);
                } else if start_batch > 0 {
                    eprintln!(
                        "{}: epoch {epoch}: resuming at batch {start_batch}/{batches}",
                        self.name
                    );
                }
            }
            Event::Step {
                epoch,
                batch,
                loss,
                train_error,
            } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(batch as u64);
                    if batch % 20 == 0 {
                        bar.set_message(format!(
                            "loss {loss:.4} {}",
                            self.train_metric(train_error)
                        ));
                    }
                } else if self.last_line.elapsed().as_secs() >= 30 {
                    self.last_line = Instant::now();
                    eprintln!(
                        "{}: epoch {epoch}/{} batch {batch}/{} loss {loss:.4} {}",
                        self.name,
                        self.epochs,
                        self.batches,
                        self.train_metric(train_error)
                    );
                }
            }
            Event::EpochEnd(r) => {
                let line = self.epoch_line(r);
                match self.bar.take() {
                    Some(bar) => {
                        bar.finish_and_clear();
                        match &self.multi {
                            Some(m) => {
                                let _ = m.println(line);
                            }
                            None => eprintln!("{line}"),
                        }
                    }
                    None => eprintln!("{line}"),
                }
            }
        }
    }

    /// Remove a bar left by an interruption.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}

/// The overall progress of many runs: a bar above the runs' own on a terminal, a line per
/// finished run otherwise.
pub struct Overall {
    bar: Option<ProgressBar>,
    multi: MultiProgress,
    done: u64,
    total: u64,
}

impl Overall {
    /// `done` of `total` runs are done; the bar goes into `multi`.
    pub fn new(label: &str, done: usize, total: usize, multi: &MultiProgress) -> Self {
        let bar = Reporter::tty().then(|| {
            let bar = multi.add(ProgressBar::new(total as u64));
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} runs, eta {eta}")
                    .expect("valid template")
                    .progress_chars("#> "),
            );
            bar.set_prefix(label.to_string());
            bar.set_position(done as u64);
            bar
        });
        Overall {
            bar,
            multi: multi.clone(),
            done: done as u64,
            total: total as u64,
        }
    }

    /// One more run ended; `line` says how.
    pub fn ended(&mut self, line: &str) {
        self.done += 1;
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                let _ = self.multi.println(line);
            }
            None => eprintln!("[{}/{}] {line}", self.done, self.total),
        }
    }

    /// Leave the bar as it is.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }
}
