//! The training queue that reproductions and sweeps share: several runs at a time, each
//! started, resumed or skipped as its directory says; a stop saves the running ones; a
//! sweep records how each ended.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use dales::config::TrainConfig;
use dales::nn::ModelKind;
use dales::queue::{QueuedRun, Watch, train_queue};
use dales::run::{AnyConfig, Event, Outcome, RunDir, files};
use dales::sweep::{Ended, settle};

use crate::common::{temp_dir, write_idx_dataset};

fn config(data: &Path, seed: u64) -> AnyConfig {
    let mut c = TrainConfig::paper(ModelKind::Dann);
    c.model.n_in = 36;
    c.model.hidden = vec![16];
    c.model.ni = Some(2);
    c.model.n_out = 4;
    c.epochs = 2;
    c.batch_size = 8;
    c.seed = seed;
    c.data.dir = Some(data.to_path_buf());
    AnyConfig::FeedForward(c)
}

/// Records what the queue tells; asks to stop after `stop_after` steps (of any run).
struct Recorder {
    events: Mutex<Vec<(usize, String)>>,
    ends: Mutex<Vec<(usize, Result<Outcome, String>)>>,
    steps: Mutex<usize>,
    stop_after: Option<usize>,
    stopped: AtomicBool,
}

impl Recorder {
    fn new(stop_after: Option<usize>) -> Self {
        Recorder {
            events: Mutex::new(Vec::new()),
            ends: Mutex::new(Vec::new()),
            steps: Mutex::new(0),
            stop_after,
            stopped: AtomicBool::new(false),
        }
    }

    fn ends(&self) -> Vec<(usize, Result<Outcome, String>)> {
        let mut ends = self.ends.lock().unwrap().clone();
        ends.sort_by_key(|e| e.0);
        ends
    }
}

impl Watch for Recorder {
    fn started(&self, i: usize, epochs: usize, regression: bool) -> Box<dyn FnMut(Event) + '_> {
        assert!(epochs == 2 && !regression);
        Box::new(move |event| {
            let kind = match event {
                Event::EpochStart { .. } => "start",
                Event::Step { .. } => {
                    let mut steps = self.steps.lock().unwrap();
                    *steps += 1;
                    if self.stop_after.is_some_and(|n| *steps >= n) {
                        self.stopped.store(true, Ordering::Relaxed);
                    }
                    "step"
                }
                Event::EpochEnd(_) => "end",
            };
            self.events.lock().unwrap().push((i, kind.to_string()));
        })
    }

    fn ended(&self, i: usize, result: dales::Result<Outcome>) {
        let result = result.map_err(|e| e.message());
        self.ends.lock().unwrap().push((i, result));
    }

    fn stop(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }
}

#[test]
fn a_queue_trains_skips_fails_and_resumes_its_runs() {
    let root = temp_dir("queue");
    let data = root.join("data");
    write_idx_dataset(&data, 64, 16, 6, 4, 1);
    let configs = [
        config(&data, 1),
        config(&data, 2),
        config(&root.join("no-such-data"), 3),
    ];
    let dirs: Vec<_> = (0..3).map(|i| root.join(format!("run{i}"))).collect();
    let runs: Vec<QueuedRun> = configs
        .iter()
        .zip(&dirs)
        .map(|(config, dir)| QueuedRun { config, dir })
        .collect();

    // One at a time, stopped after 5 steps: the training run saves its state, the others
    // never start.
    let stopped = Recorder::new(Some(5));
    train_queue(1, &runs, &stopped);
    assert_eq!(stopped.ends(), vec![(0, Ok(Outcome::Interrupted))]);
    assert!(RunDir::resumable(&dirs[0]) && !RunDir::finished(&dirs[0], 2));
    assert!(!dirs[1].exists() && !dirs[2].exists());

    // Two at a time: the first resumes, the second starts, both finish; the third fails on
    // its data, naming the directory.
    let again = Recorder::new(None);
    train_queue(2, &runs, &again);
    let ends = again.ends();
    assert_eq!(ends.len(), 3);
    assert_eq!(ends[0].1, Ok(Outcome::Finished));
    assert_eq!(ends[1].1, Ok(Outcome::Finished));
    let error = ends[2].1.clone().unwrap_err();
    assert!(error.contains("no-such-data"), "{error}");
    for dir in &dirs[..2] {
        assert!(RunDir::finished(dir, 2) && dir.join("curves.png").exists());
    }
    // Each run's events: epoch starts and ends around its steps, both epochs ended once.
    let events = again.events.lock().unwrap();
    for i in 0..2 {
        let ends = events.iter().filter(|(j, k)| *j == i && k == "end").count();
        let starts = events
            .iter()
            .filter(|(j, k)| *j == i && k == "start")
            .count();
        assert!(
            ends >= 1 && ends == starts,
            "run {i}: {starts} starts, {ends} ends"
        );
    }
    drop(events);

    // They equal runs trained without a stop.
    let fresh: Vec<_> = (0..2).map(|i| root.join(format!("fresh{i}"))).collect();
    let whole: Vec<QueuedRun> = configs[..2]
        .iter()
        .zip(&fresh)
        .map(|(config, dir)| QueuedRun { config, dir })
        .collect();
    train_queue(1, &whole, &Recorder::new(None));
    for (a, b) in dirs.iter().zip(&fresh) {
        let ckpt = |d: &Path| std::fs::read(d.join(files::CHECKPOINT)).unwrap();
        assert!(
            ckpt(a) == ckpt(b),
            "{} differs from {}",
            a.display(),
            b.display()
        );
    }

    // A finished run is skipped: it ends at once, without events.
    let skipped = Recorder::new(None);
    train_queue(2, &runs[..1], &skipped);
    assert_eq!(skipped.ends(), vec![(0, Ok(Outcome::Finished))]);
    assert!(skipped.events.lock().unwrap().is_empty());

    // How a sweep records the ends: a failure goes to error.txt, a finished run records nothing.
    let (ended, unrecorded) = settle(&dirs[0], Ok(Outcome::Finished));
    assert!(ended == Ended::Finished && unrecorded.is_none());
    let failed = dales::Error::run(&dirs[2], "no data");
    let (ended, unrecorded) = settle(&dirs[2], Err(failed));
    assert!(unrecorded.is_none());
    let Ended::Failed(text) = ended else {
        panic!("{ended:?}")
    };
    let recorded = std::fs::read_to_string(dirs[2].join("error.txt")).unwrap();
    assert_eq!(recorded.trim_end(), text);
    let in_use = dales::Error::InUse {
        dir: dirs[1].clone(),
        pid: Some(1),
    };
    assert!(matches!(settle(&dirs[1], Err(in_use)).0, Ended::InUse(_)));
    assert!(!dirs[1].join("error.txt").exists());
}
