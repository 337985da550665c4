//! Training from Python without the GIL: the work (one trainer, or the library's queue of
//! runs) goes to a worker thread, while the calling thread — Python's main thread, the only
//! one where signal handlers run — hands the work's progress events to the Python callback
//! and runs Python's signal handlers at least every [`POLL`].
//!
//! A Python exception (Ctrl-C's `KeyboardInterrupt`, a notebook's stop button, or one raised
//! by the progress callback) asks the work to stop: trainers save their state at their next
//! step and return `Interrupted`, and the exception is returned once the work has ended.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use dales::run::Event;
use pyo3::prelude::*;

/// How often the calling thread looks for a signal, and the most often a run reports a step.
pub const POLL: Duration = Duration::from_millis(100);

/// A progress event as the callback's arguments: `(kind, epoch, epochs, batch, batches,
/// loss, error)`; `kind` is `start`, `step` or `end`.
type EventArgs = (&'static str, usize, usize, usize, usize, f64, f64);

/// What the work tells the calling thread.
enum Message {
    /// A run's progress event; the run's name in a queue, `None` for a single run.
    Event(Option<String>, EventArgs),
    /// A line for the user (the progress of a report).
    Line(String),
    /// Something that went wrong without stopping the work.
    Warning(String),
}

/// The work's side: where it sends events and reads whether to stop.
pub struct Sink<'a> {
    sender: Mutex<Sender<Message>>,
    stop: &'a AtomicBool,
}

impl Sink<'_> {
    /// Whether the work is asked to stop.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The observer of one run's events (`run`: its name in a queue), which passes on
    /// epoch starts and ends and at most one step every [`POLL`] (and each epoch's last).
    pub fn observer(&self, run: Option<String>, epochs: usize) -> impl FnMut(Event) + '_ {
        let mut batches = 0;
        let mut reported = Instant::now();
        move |event: Event| {
            let args = match event {
                Event::EpochStart {
                    epoch,
                    batches: n,
                    start_batch,
                } => {
                    batches = n;
                    ("start", epoch, epochs, start_batch, n, f64::NAN, f64::NAN)
                }
                Event::Step {
                    epoch,
                    batch,
                    loss,
                    train_error,
                } => {
                    if batch < batches && reported.elapsed() < POLL {
                        return;
                    }
                    reported = Instant::now();
                    let loss = f64::from(loss);
                    ("step", epoch, epochs, batch, batches, loss, train_error)
                }
                Event::EpochEnd(r) => {
                    let (loss, error) = (r.test_loss, r.test_error);
                    ("end", r.epoch, epochs, batches, batches, loss, error)
                }
            };
            self.send(Message::Event(run.clone(), args));
        }
    }

    /// Show `text` on `sys.stderr` (when there is a progress callback).
    pub fn line(&self, text: String) {
        self.send(Message::Line(text));
    }

    /// Report a warning (a Python `UserWarning`).
    pub fn warn(&self, text: String) {
        self.send(Message::Warning(text));
    }

    fn send(&self, message: Message) {
        // The receiver lives until the work ends.
        let _ = self
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(message);
    }
}

/// Run `work` on a worker thread without the GIL, delivering its events to `progress` and
/// running Python's signal handlers on this thread; returns the work's result and the first
/// Python exception raised meanwhile (after which the work was asked to stop).
pub fn pump<R: Send>(
    py: Python<'_>,
    progress: Option<&Py<PyAny>>,
    work: impl FnOnce(&Sink) -> R + Send,
) -> (R, Option<PyErr>) {
    let (sender, receiver) = mpsc::channel();
    py.detach(move || {
        let stop = AtomicBool::new(false);
        let mut raised: Option<PyErr> = None;
        let result = std::thread::scope(|scope| {
            let worker = scope.spawn(|| {
                let sink = Sink {
                    sender: Mutex::new(sender),
                    stop: &stop,
                };
                work(&sink)
            });
            loop {
                let first = receiver.recv_timeout(POLL);
                let ended = matches!(first, Err(RecvTimeoutError::Disconnected));
                let messages: Vec<Message> = first.into_iter().chain(receiver.try_iter()).collect();
                Python::attach(|py| {
                    let mut raise = |e: PyErr| {
                        stop.store(true, Ordering::Relaxed);
                        raised.get_or_insert(e);
                    };
                    for message in messages {
                        // After an exception, the work is only finishing: no more calls.
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if let Err(e) = deliver(py, progress, message) {
                            raise(e);
                        }
                    }
                    if let Err(e) = py.check_signals() {
                        raise(e);
                    }
                });
                if ended {
                    break;
                }
            }
            worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        (result, raised)
    })
}

/// Hand one message to Python.
fn deliver(py: Python<'_>, progress: Option<&Py<PyAny>>, message: Message) -> PyResult<()> {
    match message {
        Message::Event(run, args) => {
            let Some(callback) = progress else {
                return Ok(());
            };
            let (kind, epoch, epochs, batch, batches, loss, error) = args;
            match run {
                None => callback.call1(py, args)?,
                Some(name) => {
                    callback.call1(py, (name, kind, epoch, epochs, batch, batches, loss, error))?
                }
            };
            Ok(())
        }
        Message::Line(text) => {
            if progress.is_some() {
                let stderr = py.import("sys")?.getattr("stderr")?;
                stderr.call_method1("write", (format!("{text}\n"),))?;
            }
            Ok(())
        }
        Message::Warning(text) => {
            let warning = py.get_type::<pyo3::exceptions::PyUserWarning>();
            PyErr::warn(py, &warning, &std::ffi::CString::new(text)?, 1)
        }
    }
}
