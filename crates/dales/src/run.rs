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

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use dales_data::{DEFAULT_DATA_DIR, EpochOrder, MnistLike, Split};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, NamedTensors, decode, encode};
use crate::config::{PlateauState, TrainConfig};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::learner::{Learner, ModelSpec};
use crate::nn::MlpConfig;
use crate::optim::Optimizer;
use crate::train::cross_entropy;

/// File names inside a run directory.
pub mod files {
    /// Resolved configuration.
    pub const CONFIG: &str = "config.toml";
    /// Role → rule table.
    pub const RULES: &str = "rules.txt";
    /// Model, `dales-ff/1`.
    pub const CHECKPOINT: &str = "checkpoint.safetensors";
    /// Model + optimiser + progress.
    pub const RESUME: &str = "resume.safetensors";
    /// Per-epoch metrics.
    pub const METRICS: &str = "metrics.csv";
    /// Final (or latest) summary.
    pub const SUMMARY: &str = "summary.json";
}

/// The data of a run: what is trained on and what is evaluated each epoch.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Training examples.
    pub train: Split,
    /// Evaluated after every epoch (the test set, or the validation split).
    pub eval: Split,
    /// `test` or `validation`.
    pub eval_name: String,
}

impl Dataset {
    /// Load the configured dataset (default Fashion-MNIST) with the configured validation split.
    pub fn load<M: ModelSpec>(config: &TrainConfig<M>) -> Result<Dataset> {
        let data = match (config.model.generated_data()?, &config.data.dir) {
            (Some(generated), _) => generated,
            (None, Some(dir)) => MnistLike::load_dir(dir)?,
            (None, None) => MnistLike::load_default()?,
        };
        config.model.check_data(&data.train, data.n_classes())?;
        if config.data.validation > 0 {
            let (train, val) = data
                .train
                .split_validation(config.data.validation, config.seed)?;
            Ok(Dataset {
                train,
                eval: val,
                eval_name: "validation".into(),
            })
        } else {
            Ok(Dataset {
                train: data.train,
                eval: data.test,
                eval_name: "test".into(),
            })
        }
    }

    /// Where the data come from, for messages: the dataset directory, or the task that
    /// generates them.
    pub fn describe_dir<M: ModelSpec>(config: &TrainConfig<M>) -> String {
        if let Some(generated) = config.model.generated_description() {
            return generated;
        }
        config
            .data
            .dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| DEFAULT_DATA_DIR.to_string())
    }
}

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Global step at the end of the epoch.
    pub step: u64,
    /// Mean training loss over the epoch's batches (before each update).
    pub train_loss: f64,
    /// Training error (%) over the epoch (before each update).
    pub train_error: f64,
    /// Loss on the evaluation set after the epoch's last update.
    pub test_loss: f64,
    /// Error (%) on the evaluation set after the epoch's last update.
    pub test_error: f64,
    /// Learning rate.
    pub lr: f64,
    /// Training seconds since the start of the run (evaluation included).
    pub seconds: f64,
}

/// The CSV header of `metrics.csv`.
pub const METRICS_HEADER: &str =
    "epoch,step,train_loss,train_error,test_loss,test_error,lr,seconds";

/// Render records as `metrics.csv`.
pub fn metrics_csv(records: &[EpochRecord]) -> String {
    let mut s = format!("{METRICS_HEADER}\n");
    for r in records {
        let _ = writeln!(
            s,
            "{},{},{:.6},{:.4},{:.6},{:.4},{},{:.3}",
            r.epoch,
            r.step,
            r.train_loss,
            r.train_error,
            r.test_loss,
            r.test_error,
            r.lr,
            r.seconds
        );
    }
    s
}

/// Parse a `metrics.csv` written by [`metrics_csv`].
pub fn read_metrics(path: &Path) -> Result<Vec<EpochRecord>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut lines = text.lines();
    if lines.next() != Some(METRICS_HEADER) {
        return Err(Error::config(
            path.display().to_string(),
            "(header)",
            format!("a metrics file starting with `{METRICS_HEADER}`"),
        ));
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            let bad = || {
                Error::config(
                    format!("{}:{}", path.display(), i + 2),
                    line,
                    "8 comma-separated numbers",
                )
            };
            if f.len() != 8 {
                return Err(bad());
            }
            let n = |k: usize| f[k].parse::<f64>().map_err(|_| bad());
            Ok(EpochRecord {
                epoch: f[0].parse().map_err(|_| bad())?,
                step: f[1].parse().map_err(|_| bad())?,
                train_loss: n(2)?,
                train_error: n(3)?,
                test_loss: n(4)?,
                test_error: n(5)?,
                lr: n(6)?,
                seconds: n(7)?,
            })
        })
        .collect()
}

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
}

impl<M: ModelSpec> Trainer<M> {
    /// Start a new run in `run_dir` (created; it must not hold a run already).
    pub fn new(mut config: TrainConfig<M>, data: Dataset, run_dir: &Path) -> Result<Self> {
        config.validate()?;
        config.model.prepare(&data.train);
        if run_dir.join(files::RESUME).exists() {
            return Err(Error::config(
                "--out",
                run_dir.display(),
                "a directory without a run in it (use --resume to continue that run)",
            ));
        }
        std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, e))?;
        let device = config.device.device()?.autodiff();
        let model = config.model.init_seeded(config.seed, &device)?;
        let optim = Optimizer::new(config.method()?, config.optim.clip, config.rules());
        optim.check(&model)?;
        write_atomic(&run_dir.join(files::CONFIG), config.to_toml().as_bytes())?;
        write_atomic(
            &run_dir.join(files::RULES),
            optim.rules().describe().as_bytes(),
        )?;
        Trainer::assemble(
            config,
            data,
            (device, model, optim),
            Progress::default(),
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
        let mut optim = Optimizer::new(config.method()?, config.optim.clip, config.rules());
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
        Trainer::assemble(config, data, (device, model, optim), progress, run_dir)
    }

    fn assemble(
        config: TrainConfig<M>,
        data: Dataset,
        (device, model, optim): (Device, M::Model, Optimizer),
        progress: Progress,
        run_dir: &Path,
    ) -> Result<Self> {
        let order = EpochOrder::new(data.train.len(), config.batch_size, config.seed)?;
        Ok(Trainer {
            config,
            device,
            model,
            optim,
            data,
            order,
            progress,
            run_dir: run_dir.to_path_buf(),
        })
    }

    /// The learning rate of the next step.
    pub fn lr(&self) -> f64 {
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
                let labels = self.model.targets(&self.data.train, idx);
                let n = labels.len();
                let lr = self.lr();
                let (model, optim, data, device) =
                    (&mut self.model, &mut self.optim, &self.data, &self.device);
                let (loss_value, correct) = crate::fused::on_workers(|| {
                    let logits = model.logits(&data.train, idx, device);
                    let n_out = logits.dims()[1];
                    let correct = count_correct(&host_f64(logits.clone()), n_out, &labels);
                    let loss = cross_entropy(logits, &labels);
                    let loss_value = loss.clone().into_scalar::<f32>();
                    if loss_value.is_finite() {
                        let mut grads = loss.backward();
                        *model = optim.step(lr, model.clone(), &mut grads);
                    }
                    (loss_value, correct)
                });
                if !loss_value.is_finite() {
                    return Err(Error::Diverged {
                        epoch,
                        step: self.progress.global_step + 1,
                        loss: loss_value,
                    });
                }
                let p = &mut self.progress;
                p.batch = b + 1;
                p.global_step += 1;
                p.loss_sum += loss_value as f64 * n as f64;
                p.correct += correct as u64;
                p.seen += n as u64;
                observer(Event::Step {
                    epoch,
                    batch: p.batch,
                    loss: loss_value,
                    train_error: 100.0 * (1.0 - p.correct as f64 / p.seen as f64),
                });
                if stop(p.global_step) && p.batch < batches.len() {
                    self.progress.elapsed = seconds(&start);
                    self.save()?;
                    return Ok(Outcome::Interrupted);
                }
            }
            let (test_loss, test_error) = evaluate(&self.model, &self.data.eval, 1000);
            let lr = self.lr();
            let p = &mut self.progress;
            if let Some(plateau) = &self.config.optim.plateau {
                p.lr = Some(plateau.update(&mut p.plateau, lr, test_loss));
            }
            let record = EpochRecord {
                epoch,
                step: p.global_step,
                train_loss: p.loss_sum / p.seen as f64,
                train_error: 100.0 * (1.0 - p.correct as f64 / p.seen as f64),
                test_loss,
                test_error,
                lr,
                seconds: seconds(&start),
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

    /// Write the resume file, the checkpoint, the metrics and the summary (each atomically, the
    /// resume file first: it alone is read back).
    pub fn save(&self) -> Result<()> {
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
            metrics_csv(&self.progress.records).as_bytes(),
        )?;
        let summary = self.summary();
        let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
        write_atomic(&dir.join(files::SUMMARY), json.as_bytes())
    }

    /// The run's summary.
    pub fn summary(&self) -> Summary {
        let last = self.progress.records.last();
        Summary {
            kind: self.config.model.name(),
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

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Model kind.
    pub kind: String,
    /// Seed.
    pub seed: u64,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Epochs configured.
    pub epochs: usize,
    /// Whether every configured epoch is done.
    pub finished: bool,
    /// `test` or `validation`.
    pub eval_set: String,
    /// Error (%) after the last completed epoch.
    pub final_test_error: Option<f64>,
    /// Loss after the last completed epoch.
    pub final_test_loss: Option<f64>,
    /// Mean training loss of the last completed epoch.
    pub final_train_loss: Option<f64>,
    /// Lowest per-epoch error (%).
    pub best_test_error: Option<f64>,
    /// Training seconds (evaluation included).
    pub wall_seconds: f64,
    /// Updates done.
    pub steps: u64,
    /// dales version.
    pub dales_version: String,
}

/// Mean cross-entropy and error (%) of `model` on `split`, in chunks of `chunk` examples,
/// without autodiff.
pub fn evaluate<L: Learner>(model: &L, split: &Split, chunk: usize) -> (f64, f64) {
    let (model, device) = inference(model);
    score(split.len(), chunk, |idx| {
        (
            host_f64(model.logits(split, idx, &device)),
            model.targets(split, idx),
        )
    })
}

/// Mean cross-entropy and error (%) over the first `n` examples, in chunks of `chunk`, from
/// `batch(idx)`: the row-major host logits of examples `idx` and the class of each row (one
/// row per example, or one per step for the copy task).
pub fn score(
    n: usize,
    chunk: usize,
    mut batch: impl FnMut(&[usize]) -> (Vec<f64>, Vec<usize>),
) -> (f64, f64) {
    let (mut loss, mut correct, mut rows) = (0.0f64, 0usize, 0usize);
    let all: Vec<usize> = (0..n).collect();
    for idx in all.chunks(chunk.max(1)) {
        let (logits, labels) = batch(idx);
        let c = logits.len() / labels.len().max(1);
        for (row, &label) in logits.chunks_exact(c).zip(&labels) {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            loss += lse - row[label];
        }
        correct += count_correct(&logits, c, &labels);
        rows += labels.len();
    }
    let rows = rows.max(1) as f64;
    (loss / rows, 100.0 * (1.0 - correct as f64 / rows))
}

/// Logits of the first `n` examples of `split` (the `--logits-out` of `dales eval`).
pub fn first_logits<L: Learner>(model: &L, split: &Split, n: usize) -> Vec<Vec<f64>> {
    let (model, device) = inference(model);
    let idx: Vec<usize> = (0..n.min(split.len())).collect();
    let logits = host_f64(model.logits(split, &idx, &device));
    let c = logits.len() / idx.len().max(1);
    logits.chunks_exact(c.max(1)).map(|r| r.to_vec()).collect()
}

/// A copy of `model` without autodiff, and its device.
fn inference<L: Learner>(model: &L) -> (L, Device) {
    let model = model.inference();
    let device = model
        .param_layers()
        .first()
        .and_then(|l| l.entries.first())
        .map(|e| e.value.flatten().device())
        .expect("a model has parameters");
    (model, device)
}

/// A tensor's values on the host, row-major, as f64.
pub fn host_f64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("float data")
}

fn count_correct(logits: &[f64], classes: usize, labels: &[usize]) -> usize {
    logits
        .chunks_exact(classes)
        .zip(labels)
        .filter(|(row, y)| {
            let best = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i);
            best == Some(**y)
        })
        .count()
}

fn strip(t: NamedTensors, prefix: &str) -> NamedTensors {
    t.into_iter()
        .map(|(k, v)| (k.strip_prefix(prefix).unwrap_or(&k).to_string(), v))
        .collect()
}
