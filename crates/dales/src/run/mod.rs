//! Training runs: the loop, the run directory, resume after an interruption.
//!
//! A run directory holds:
//! - `config.toml` — the resolved configuration; `rules.txt` — the role → rule table;
//! - `checkpoint.safetensors` — the model in the `dales-ff/1` format (PyTorch loads it);
//! - `resume.safetensors` — model, optimiser state and progress in one file, so that a crash
//!   between two writes can never pair a model with another step's optimiser state;
//! - `metrics.csv` and `summary.json`.
//!
//! Every file is written atomically. The batch order of an epoch depends only on (seed, epoch),
//! so a resumed run on the CPU reproduces an uninterrupted one bit for bit.

mod data;
mod dir;
mod evaluate;
mod lock;
pub mod memory;
mod metrics;
mod trained;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use dales_data::EpochOrder;
use dales_data::task::Target;
use serde::{Deserialize, Serialize};

pub use data::Dataset;
pub use dir::{AnyConfig, Overrides, RunDir, files, set_key};
pub use evaluate::{evaluate, first_logits, score};
pub use lock::{LOCK_FILE, RunLock};
pub use metrics::{
    EpochRecord, METRICS_HEADER, StepEvaluation, Summary, evaluations_csv, metrics_csv,
    read_evaluations, read_metrics,
};
pub use trained::{InputShape, Logits, TrainedModel};

use crate::checkpoint::{self, NamedTensors, decode, encode};
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::fused::Settings;
use crate::io::write_atomic;
use crate::learner::{Learner, ModelSpec};
use crate::nn::MlpConfig;
use crate::optim::{Method, Optimizer, PlateauState};
use crate::train::step;

/// Where a run stands; saved in `resume.safetensors`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Progress {
    /// Completed epochs.
    epoch: usize,
    /// Batches done in the current epoch.
    batch: usize,
    /// Updates done.
    global_step: u64,
    /// Sum of batch losses × batch sizes in the current epoch.
    loss_sum: f64,
    /// Correct predictions in the current epoch.
    correct: u64,
    /// Rows scored in the current epoch (examples, or steps for the copy task).
    seen: u64,
    /// Seconds spent before this process.
    elapsed: f64,
    /// Completed epochs' records.
    records: Vec<EpochRecord>,
    /// Learning rate after the schedule (absent: the configured one).
    #[serde(default)]
    lr: Option<f64>,
    /// Where the plateau schedule stands.
    #[serde(default)]
    plateau: PlateauState,
    /// The initial model's evaluation and probes (epoch 0), for models with probes.
    #[serde(default)]
    initial: Option<EpochRecord>,
    /// Evaluations every `data.eval_every` updates.
    #[serde(default)]
    evaluations: Vec<StepEvaluation>,
}

impl Progress {
    /// The epoch's running training error: % of scored rows predicted wrong, or for a
    /// regression task the mean squared error (the mean loss).
    fn train_error(&self, regression: bool) -> f64 {
        if regression {
            self.loss_sum / self.seen as f64
        } else {
            100.0 * (1.0 - self.correct as f64 / self.seen as f64)
        }
    }
}

/// Mixed into an update's seed for the augmentation of its batch.
const AUGMENT_STREAM: u64 = 0x8CB9_2BA7_2F3D_8DD7;

/// Mixed into an update's seed for d-NGD's sampled targets.
const DNGD_STREAM: u64 = 0xD6E8_FEB8_6659_FD93;

/// The noise seed of update `step` (0-based) of a run seeded `seed`.
fn step_seed(seed: u64, step: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ step
}

/// What the training loop reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// An epoch starts (or resumes at `start_batch`).
    EpochStart {
        /// Epoch (1-based).
        epoch: usize,
        /// Batches in the epoch.
        batches: usize,
        /// First batch done now (> 0 after a resume).
        start_batch: usize,
    },
    /// One update done.
    Step {
        /// Epoch (1-based).
        epoch: usize,
        /// Batches done in this epoch.
        batch: usize,
        /// The batch's loss before the update.
        loss: f32,
        /// Running training error (%) of the epoch.
        train_error: f64,
    },
    /// An epoch ended and was evaluated.
    EpochEnd(&'a EpochRecord),
}

/// How a call to [`Trainer::run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All epochs done.
    Finished,
    /// Stopped on request; the state was saved and the run can be resumed.
    Interrupted,
}

/// How [`Trainer::start`] treats the run directory and the machine's memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StartOptions {
    /// Replace a run already in the directory (its files are removed first) instead of
    /// refusing it.
    pub overwrite: bool,
    /// Refuse a run whose memory estimate exceeds this many bytes (default: the memory
    /// available on this machine).
    pub max_memory: Option<u64>,
}

/// A training run of a model described by `M`.
pub struct Trainer<M: ModelSpec = MlpConfig> {
    config: TrainConfig<M>,
    device: Device,
    model: M::Model,
    optim: Optimizer,
    data: Dataset,
    order: EpochOrder,
    progress: Progress,
    run_dir: PathBuf,
    settings: Settings,
    /// The last state written to the run directory: (completed epochs, updates).
    saved: Option<(usize, u64)>,
    /// The run directory's lock, held as long as the trainer lives.
    _lock: RunLock,
}

impl<M: ModelSpec> Trainer<M> {
    /// Start a new run in `run_dir` (created; it must not hold a run already), with the
    /// default [`StartOptions`].
    pub fn new(config: TrainConfig<M>, data: Dataset, run_dir: &Path) -> Result<Self> {
        Trainer::start(config, data, run_dir, StartOptions::default())
    }

    /// Start a new run in `run_dir`: the memory estimate is checked first, then the
    /// directory is locked (created if missing) and must not hold a run unless
    /// `options.overwrite`, which removes that run's files.
    pub fn start(
        mut config: TrainConfig<M>,
        data: Dataset,
        run_dir: &Path,
        options: StartOptions,
    ) -> Result<Self> {
        config.validate()?;
        config.model.prepare(data.pixel_mean);
        memory::check(&config, &data, options.max_memory)?;
        let lock = RunLock::create(run_dir)?;
        let existing = files::ALL
            .iter()
            .filter(|f| run_dir.join(f).exists())
            .copied()
            .collect::<Vec<_>>();
        if !existing.is_empty() {
            if !options.overwrite {
                return Err(Error::run(
                    run_dir,
                    format!(
                        "already holds a run ({}); continue it with `dales train --resume {}`, \
                         choose another --out, or add --overwrite to replace it",
                        existing.join(", "),
                        run_dir.display()
                    ),
                ));
            }
            for f in existing {
                let path = run_dir.join(f);
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
        let device = config.device.device()?.autodiff();
        let model = config.model.init_seeded(config.seed, &device)?;
        let optim = Optimizer::new(config.optim.method, config.optim.clip, config.rules());
        optim.check(&model)?;
        write_atomic(&run_dir.join(files::CONFIG), config.to_toml().as_bytes())?;
        write_atomic(&run_dir.join(files::RULES), optim.describe().as_bytes())?;
        Trainer::assemble(
            config,
            data,
            (device, model, optim),
            (Progress::default(), lock),
            run_dir,
        )
    }

    /// Continue the run saved in `run_dir`; `data` overrides the configured data directory.
    /// `epochs` may raise the number of epochs.
    pub fn resume(
        run_dir: &Path,
        data_dir: Option<PathBuf>,
        epochs: Option<usize>,
    ) -> Result<Self> {
        let lock = RunLock::acquire(run_dir)?;
        let mut config = TrainConfig::<M>::from_file(&run_dir.join(files::CONFIG))?;
        if let Some(dir) = data_dir {
            config.data.dir = Some(dir);
        }
        if let Some(e) = epochs {
            config.epochs = e;
            config.validate()?;
        }
        let data = Dataset::load(&config)?;
        let device = config.device.device()?.autodiff();
        let path = run_dir.join(files::RESUME);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let (tensors, meta) = decode(&path, &bytes)?;
        let progress: Progress = meta
            .get("progress")
            .and_then(|p| serde_json::from_str(p).ok())
            .ok_or_else(|| Error::checkpoint(&path, "no readable `progress` metadata"))?;
        let (model_t, optim_t): (NamedTensors, NamedTensors) = tensors
            .into_iter()
            .partition(|(k, _)| k.starts_with("model."));
        let model = config.model.init_seeded(config.seed, &device)?;
        let model = checkpoint::fill(model, strip(model_t, "model."), &path, &device)?;
        let mut optim = Optimizer::new(config.optim.method, config.optim.clip, config.rules());
        optim.check(&model)?;
        let state = strip(optim_t, "optim.")
            .into_iter()
            .map(|(k, (v, _))| {
                let n = v.len();
                (
                    k,
                    Tensor::<1>::from_data(
                        TensorData::new(v, [n]),
                        &device.clone().without_autodiff(),
                    ),
                )
            })
            .collect();
        optim.import_state(progress.global_step, state)?;
        if config.epochs < progress.epoch {
            return Err(Error::config(
                "--epochs",
                config.epochs,
                format!("at least {}, the epochs this run has done", progress.epoch),
            ));
        }
        Trainer::assemble(
            config,
            data,
            (device, model, optim),
            (progress, lock),
            run_dir,
        )
    }

    fn assemble(
        config: TrainConfig<M>,
        data: Dataset,
        (device, model, optim): (Device, M::Model, Optimizer),
        (progress, lock): (Progress, RunLock),
        run_dir: &Path,
    ) -> Result<Self> {
        // A resumed run starts from a saved state; a new one has none yet.
        let saved = (progress.global_step > 0).then_some((progress.epoch, progress.global_step));
        model.readout().check(data.train.as_ref())?;
        let order = EpochOrder::new(data.train.len(), config.batch_size, config.seed)?
            .with_shuffle(config.data.shuffle);
        Ok(Trainer {
            device,
            model,
            optim,
            data,
            order,
            progress,
            run_dir: run_dir.to_path_buf(),
            settings: Settings {
                serial: config.model.serial_steps(config.batch_size),
                ..Settings::default()
            },
            config,
            saved,
            _lock: lock,
        })
    }

    /// The same run with the fused ops under `settings` (default: [`Settings::default`], serial
    /// where [`ModelSpec::serial_steps`] says so).
    pub fn with_settings(self, settings: Settings) -> Self {
        Trainer { settings, ..self }
    }

    /// The learning rate of the next step.
    pub fn lr(&self) -> f64 {
        let decay = self.config.optim.decay;
        let step = self.progress.global_step;
        self.base_lr() * decay.map_or(1.0, |d| d.factor_at(step))
    }

    /// The learning rate before the step decay: the configured one, or the plateau schedule's.
    fn base_lr(&self) -> f64 {
        self.progress.lr.unwrap_or(self.config.optim.lr)
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig<M> {
        &self.config
    }

    /// The model.
    pub fn model(&self) -> &M::Model {
        &self.model
    }

    /// The optimiser.
    pub fn optimizer(&self) -> &Optimizer {
        &self.optim
    }

    /// Completed epochs' records.
    pub fn records(&self) -> &[EpochRecord] {
        &self.progress.records
    }

    /// Whether the task is a regression (errors are mean squared errors, not %).
    pub fn is_regression(&self) -> bool {
        matches!(self.data.train.target(), Target::Values(_))
    }

    /// The evaluation set's name (`test` or `validation`).
    pub fn eval_name(&self) -> &str {
        &self.data.eval_name
    }

    /// Train until the configured number of epochs, or until `stop(global_step)` is true after a
    /// step (then the state is saved and [`Outcome::Interrupted`] returned).
    pub fn run(
        &mut self,
        observer: &mut dyn FnMut(Event),
        stop: &dyn Fn(u64) -> bool,
    ) -> Result<Outcome> {
        let start = Instant::now();
        let elapsed0 = self.progress.elapsed;
        let seconds = |start: &Instant| elapsed0 + start.elapsed().as_secs_f64();
        self.record_initial();
        let regression = self.is_regression();
        while self.progress.epoch < self.config.epochs {
            let epoch = self.progress.epoch + 1;
            let batches = self.order.batches(self.progress.epoch as u64);
            observer(Event::EpochStart {
                epoch,
                batches: batches.len(),
                start_batch: self.progress.batch,
            });
            for b in self.progress.batch..batches.len() {
                let idx = batches.get(b).expect("batch index within the epoch");
                // A seed per update for everything random in it (regularisers, augmentation,
                // d-NGD's targets, each on its own stream): a resumed run draws the same.
                let update_seed = step_seed(self.config.seed, self.progress.global_step);
                let mut batch = self.data.train.batch(idx);
                if let Some(augment) = &self.config.data.augment {
                    let shape = self
                        .data
                        .train
                        .image_shape()
                        .expect("checked by Dataset::load");
                    augment.apply(&mut batch, shape, update_seed ^ AUGMENT_STREAM);
                }
                let (inputs, targets) = self.model.readout().apply(batch, &self.device);
                let n = targets.count();
                let lr = self.lr();
                let settings = Settings {
                    noise_seed: Some(update_seed),
                    ..self.settings
                };
                if let Method::Dngd { .. } = self.config.optim.method {
                    let squares = self
                        .model
                        .dngd_squares(inputs.clone(), update_seed ^ DNGD_STREAM)?;
                    self.optim.precondition(squares);
                }
                let report = step(
                    &mut self.model,
                    &mut self.optim,
                    lr,
                    settings,
                    |model| model.logits(inputs),
                    &targets,
                );
                let (loss_value, correct) = (report.loss, report.correct);
                if !loss_value.is_finite() {
                    return Err(Error::Diverged {
                        epoch,
                        step: self.progress.global_step + 1,
                        loss: loss_value,
                        kept: self.saved,
                    });
                }
                let p = &mut self.progress;
                p.batch = b + 1;
                p.global_step += 1;
                p.loss_sum += loss_value as f64 * n as f64;
                p.correct += correct as u64;
                p.seen += n as u64;
                let train_error = p.train_error(regression);
                observer(Event::Step {
                    epoch,
                    batch: p.batch,
                    loss: loss_value,
                    train_error,
                });
                if self
                    .config
                    .data
                    .eval_every
                    .is_some_and(|n| self.progress.global_step.is_multiple_of(n))
                {
                    self.evaluate_now(epoch);
                }
                let p = &self.progress;
                if stop(p.global_step) && p.batch < batches.len() {
                    self.progress.elapsed = seconds(&start);
                    self.save()?;
                    return Ok(Outcome::Interrupted);
                }
            }
            let (test_loss, test_error) = self.settings.scope(|| {
                evaluate(
                    &self.model,
                    self.data.eval.as_ref(),
                    self.config.model.eval_batch(),
                )
            });
            let (lr, base) = (self.lr(), self.base_lr());
            let p = &mut self.progress;
            if let Some(plateau) = &self.config.optim.plateau {
                p.lr = Some(plateau.update(&mut p.plateau, base, test_loss));
            }
            let record = EpochRecord {
                epoch,
                step: p.global_step,
                train_loss: p.loss_sum / p.seen as f64,
                train_error: p.train_error(regression),
                test_loss,
                test_error,
                lr,
                seconds: seconds(&start),
                probes: self.model.probes(),
            };
            p.records.push(record.clone());
            p.epoch = epoch;
            p.batch = 0;
            p.loss_sum = 0.0;
            p.correct = 0;
            p.seen = 0;
            p.elapsed = record.seconds;
            self.save()?;
            observer(Event::EpochEnd(&record));
            if stop(self.progress.global_step) && self.progress.epoch < self.config.epochs {
                return Ok(Outcome::Interrupted);
            }
        }
        Ok(Outcome::Finished)
    }

    /// Evaluate the initial model once, before the first update, when it has probes (epoch 0
    /// of `metrics.csv`: the spectral entropy at initialisation, the test error of chance).
    fn record_initial(&mut self) {
        let p = &self.progress;
        if p.initial.is_some() || p.epoch > 0 || p.batch > 0 {
            return;
        }
        let probes = self.model.probes();
        if probes.is_empty() {
            return;
        }
        let (test_loss, test_error) = self.settings.scope(|| {
            evaluate(
                &self.model,
                self.data.eval.as_ref(),
                self.config.model.eval_batch(),
            )
        });
        self.progress.initial = Some(EpochRecord {
            epoch: 0,
            step: 0,
            train_loss: f64::NAN,
            train_error: f64::NAN,
            test_loss,
            test_error,
            lr: self.lr(),
            seconds: 0.0,
            probes,
        });
    }

    /// Evaluate now, between updates (`data.eval_every`), into `evaluations.csv`.
    fn evaluate_now(&mut self, epoch: usize) {
        let (test_loss, test_error) = self.settings.scope(|| {
            evaluate(
                &self.model,
                self.data.eval.as_ref(),
                self.config.model.eval_batch(),
            )
        });
        self.progress.evaluations.push(StepEvaluation {
            step: self.progress.global_step,
            epoch,
            test_loss,
            test_error,
        });
    }

    /// The evaluations between updates so far (`data.eval_every`).
    pub fn evaluations(&self) -> &[StepEvaluation] {
        &self.progress.evaluations
    }

    /// The initial model's record (epoch 0), for models with probes.
    pub fn initial(&self) -> Option<&EpochRecord> {
        self.progress.initial.as_ref()
    }

    /// Write the resume file, the checkpoint, the metrics and the summary (each atomically, the
    /// resume file first: it alone is read back).
    pub fn save(&mut self) -> Result<()> {
        let dir = &self.run_dir;
        let mut tensors = checkpoint::named_tensors(&self.model, "model.");
        for (name, t) in self.optim.export_state() {
            let v = t
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32 state");
            let n = v.len();
            tensors.insert(format!("optim.{name}"), (v, vec![n]));
        }
        let meta = HashMap::from([
            ("format".to_string(), "dales-resume/1".to_string()),
            (
                "progress".to_string(),
                serde_json::to_string(&self.progress).expect("progress serialises"),
            ),
        ]);
        write_atomic(&dir.join(files::RESUME), &encode(&tensors, meta)?)?;
        self.config
            .model
            .save_checkpoint(&self.model, &dir.join(files::CHECKPOINT))?;
        write_atomic(
            &dir.join(files::METRICS),
            metrics_csv(&self.all_records()).as_bytes(),
        )?;
        if self.config.data.eval_every.is_some() {
            write_atomic(
                &dir.join(files::EVALUATIONS),
                evaluations_csv(&self.progress.evaluations).as_bytes(),
            )?;
        }
        let summary = self.summary();
        let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
        write_atomic(&dir.join(files::SUMMARY), json.as_bytes())?;
        self.saved = Some((self.progress.epoch, self.progress.global_step));
        Ok(())
    }

    /// The initial record, if any, then every epoch's.
    fn all_records(&self) -> Vec<EpochRecord> {
        let p = &self.progress;
        p.initial.iter().chain(&p.records).cloned().collect()
    }

    /// The run's summary.
    pub fn summary(&self) -> Summary {
        let last = self.progress.records.last();
        Summary {
            kind: self.config.name(),
            seed: self.config.seed,
            epochs_done: self.progress.epoch,
            epochs: self.config.epochs,
            finished: self.progress.epoch == self.config.epochs && self.progress.batch == 0,
            eval_set: self.data.eval_name.clone(),
            final_test_error: last.map(|r| r.test_error),
            final_test_loss: last.map(|r| r.test_loss),
            final_train_loss: last.map(|r| r.train_loss),
            best_test_error: self
                .progress
                .records
                .iter()
                .map(|r| r.test_error)
                .min_by(f64::total_cmp),
            wall_seconds: self.progress.elapsed,
            steps: self.progress.global_step,
            dales_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

fn strip(t: NamedTensors, prefix: &str) -> NamedTensors {
    t.into_iter()
        .map(|(k, v)| (k.strip_prefix(prefix).unwrap_or(&k).to_string(), v))
        .collect()
}
