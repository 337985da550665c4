//! Training many runs from Python: the library's queue ([`dales::queue`]) on worker threads,
//! its events and Ctrl-C handled on the calling thread ([`crate::pump`]).

use std::sync::{Mutex, PoisonError};

use dales::queue::{QueuedRun, Watch, train_queue};
use dales::run::{Event, Outcome};
use pyo3::prelude::*;

use crate::pump::{Sink, pump};

/// How each run of a queue ended: `None` for a run that never started (after a stop).
pub type Ends = Vec<Option<dales::Result<Outcome>>>;

/// Refuse a queue of `jobs` = 0 runs at a time, naming the argument.
pub fn check_jobs(jobs: usize) -> PyResult<()> {
    if jobs == 0 {
        return Err(crate::error::config(
            "jobs",
            0,
            "at least one run at a time",
        ));
    }
    Ok(())
}

/// Train `runs` (each named for the progress callback) `jobs` at a time; returns how each
/// ended, and the Python exception that stopped the queue, if one did.
pub fn train_runs(
    py: Python<'_>,
    jobs: usize,
    runs: &[(String, QueuedRun)],
    progress: Option<&Py<PyAny>>,
) -> (Ends, Option<PyErr>) {
    let queued: Vec<QueuedRun> = runs.iter().map(|(_, r)| *r).collect();
    pump(py, progress, |sink| {
        let watch = PyWatch {
            names: Some(runs.iter().map(|(n, _)| n.as_str()).collect()),
            sink,
            ends: Mutex::new((0..runs.len()).map(|_| None).collect()),
        };
        train_queue(jobs, &queued, &watch);
        watch
            .ends
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    })
}

/// The watch over the runs of a queue, or over a single run: events and warnings to the
/// calling thread, its stop request read.
pub struct PyWatch<'a> {
    /// The runs' names in a queue (the progress callback's first argument); `None` for a
    /// single run.
    names: Option<Vec<&'a str>>,
    sink: &'a Sink<'a>,
    ends: Mutex<Ends>,
}

impl<'a> PyWatch<'a> {
    /// The watch over a single run, reporting to `sink`.
    pub fn single(sink: &'a Sink<'a>) -> Self {
        PyWatch {
            names: None,
            sink,
            ends: Mutex::new(vec![None]),
        }
    }

    fn name(&self, i: usize) -> Option<&'a str> {
        self.names.as_ref().map(|names| names[i])
    }
}

impl Watch for PyWatch<'_> {
    fn started(&self, i: usize, epochs: usize, _regression: bool) -> Box<dyn FnMut(Event) + '_> {
        Box::new(self.sink.observer(self.name(i).map(str::to_string), epochs))
    }

    fn ended(&self, i: usize, result: dales::Result<Outcome>) {
        self.ends.lock().unwrap_or_else(PoisonError::into_inner)[i] = Some(result);
    }

    fn stop(&self) -> bool {
        self.sink.stopped()
    }

    fn warn(&self, i: usize, warning: dales::Error) {
        let text = format!("no plot: {}", warning.message());
        self.sink.warn(match self.name(i) {
            Some(name) => format!("{name}: {text}"),
            None => text,
        });
    }
}
