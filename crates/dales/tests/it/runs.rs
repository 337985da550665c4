//! Training runs: bit-identical resume, divergence handling, run directory contents.

use std::path::Path;

use dales::config::TrainConfig;
use dales::nn::{MlpConfig, ModelKind};
use dales::optim::Method;
use dales::run::{Dataset, Outcome, Trainer, files, read_metrics};

use crate::common::{temp_dir, write_idx_dataset};

/// SGD with momentum 0.9.
const MOMENTUM: Method = Method::Sgd {
    momentum: 0.9,
    dampening: 0.0,
    nesterov: false,
};

fn config(kind: ModelKind, data: &Path, method: Method) -> TrainConfig {
    let mut c = TrainConfig::paper(kind);
    c.model.n_in = 36;
    c.model.hidden = vec![20, 12];
    c.model.ni = Some(3);
    c.model.n_out = 4;
    c.epochs = 3;
    c.batch_size = 8;
    c.data.dir = Some(data.to_path_buf());
    c.optim.method = method;
    if method == Method::ADAM {
        c.optim.lr = 2e-2;
    }
    if method == Method::DNGD {
        c.model.ni = Some(1);
        c.optim.lr = 20.0;
    }
    c.optim.lr *= 0.5;
    c
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

/// On the CPU, a run interrupted mid-epoch and resumed ends bit-identical to an uninterrupted
/// one: same checkpoint bytes, same metrics (wall-clock seconds aside).
#[test]
fn resumed_run_is_bit_identical() {
    let data = temp_dir("resume-data");
    write_idx_dataset(&data, 80, 24, 6, 4, 1);
    for (kind, method) in [
        (ModelKind::Dann, MOMENTUM),
        (ModelKind::ColumnEi, Method::ADAM),
        // d-NGD: its Fisher is part of the saved state, its sampled targets of the seed.
        (ModelKind::DannNocorr, Method::DNGD),
    ] {
        let mut c = config(kind, &data, method);
        if kind == ModelKind::Dann {
            // Augmented batches draw from the update's seed: a resumed run draws the same.
            // (Flips only: a class here is a bright row, which a crop would move.)
            c.data.augment = Some(dales_data::augment::Augment {
                crop_padding: 0,
                flip: true,
            });
        }
        let a = temp_dir(&format!("resume-a-{kind}"));
        let mut t = Trainer::new(c.clone(), Dataset::load(&c).unwrap(), &a).unwrap();
        assert_eq!(t.run(&mut |_| {}, &|_| false).unwrap(), Outcome::Finished);

        let b = temp_dir(&format!("resume-b-{kind}"));
        let mut t = Trainer::new(c.clone(), Dataset::load(&c).unwrap(), &b).unwrap();
        // 10 batches per epoch: stop in the middle of epoch 2, then again at an epoch boundary.
        assert_eq!(
            t.run(&mut |_| {}, &|step| step == 13).unwrap(),
            Outcome::Interrupted
        );
        drop(t);
        let mut t = Trainer::<MlpConfig>::resume(&b, None, None).unwrap();
        assert_eq!(
            t.run(&mut |_| {}, &|step| step == 20).unwrap(),
            Outcome::Interrupted
        );
        drop(t);
        let mut t = Trainer::<MlpConfig>::resume(&b, None, None).unwrap();
        assert_eq!(t.run(&mut |_| {}, &|_| false).unwrap(), Outcome::Finished);

        assert!(
            read(&a, files::CHECKPOINT) == read(&b, files::CHECKPOINT),
            "{kind}: checkpoints differ"
        );
        let (ma, mb) = (
            read_metrics(&a.join(files::METRICS)).unwrap(),
            read_metrics(&b.join(files::METRICS)).unwrap(),
        );
        assert_eq!(ma.len(), 3);
        for (x, y) in ma.iter().zip(&mb) {
            assert_eq!(
                (
                    x.epoch,
                    x.step,
                    x.train_loss,
                    x.train_error,
                    x.test_loss,
                    x.test_error
                ),
                (
                    y.epoch,
                    y.step,
                    y.train_loss,
                    y.train_error,
                    y.test_loss,
                    y.test_error
                ),
                "{kind}"
            );
        }
        // and the run learned something on this easy task
        assert!(
            ma[2].test_error < 50.0,
            "{kind}: test error {}",
            ma[2].test_error
        );
    }
}

/// A non-finite loss stops the run with a clear error and leaves the last good state in place.
#[test]
fn divergence_keeps_the_last_good_checkpoint() {
    let data = temp_dir("nan-data");
    write_idx_dataset(&data, 80, 24, 6, 4, 2);
    let mut c = config(ModelKind::Mlp, &data, MOMENTUM);
    c.epochs = 1;
    let dir = temp_dir("nan-run");
    let mut t = Trainer::new(c.clone(), Dataset::load(&c).unwrap(), &dir).unwrap();
    t.run(&mut |_| {}, &|_| false).unwrap();
    let good = read(&dir, files::CHECKPOINT);
    let good_resume = read(&dir, files::RESUME);
    // Continue for another epoch with an absurd learning rate.
    let mut cfg = TrainConfig::<MlpConfig>::from_file(&dir.join(files::CONFIG)).unwrap();
    cfg.optim.lr = 1e30;
    std::fs::write(dir.join(files::CONFIG), cfg.to_toml()).unwrap();
    drop(t);
    let mut t = Trainer::<MlpConfig>::resume(&dir, None, Some(2)).unwrap();
    let err = t.run(&mut |_| {}, &|_| false).unwrap_err().to_string();
    let steps = 80 / c.batch_size;
    assert!(
        err.contains("diverged")
            && err.contains("epoch 2")
            && err.contains(&format!(
                "saved after 1 epoch(s), {steps} update(s) is kept"
            )),
        "{err}"
    );
    assert!(read(&dir, files::CHECKPOINT) == good);
    assert!(read(&dir, files::RESUME) == good_resume);
}

#[test]
fn run_directory_holds_everything() {
    let data = temp_dir("dir-data");
    write_idx_dataset(&data, 40, 16, 6, 4, 3);
    let mut c = config(ModelKind::Dann, &data, MOMENTUM);
    c.epochs = 2;
    let dir = temp_dir("dir-run");
    let mut t = Trainer::new(c.clone(), Dataset::load(&c).unwrap(), &dir).unwrap();
    t.run(&mut |_| {}, &|_| false).unwrap();
    for f in [
        files::CONFIG,
        files::RULES,
        files::CHECKPOINT,
        files::RESUME,
        files::METRICS,
        files::SUMMARY,
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    // The resolved config reads back to the same settings, with the pixel mean measured on the
    // training images filled in.
    let resolved = TrainConfig::<MlpConfig>::from_file(&dir.join(files::CONFIG)).unwrap();
    let mean = Dataset::load(&c).unwrap().pixel_mean.unwrap();
    assert!((mean - 0.2).abs() < 0.2, "synthetic pixel mean {mean}");
    assert_eq!(resolved.model.pixel_mean, Some(mean));
    assert_eq!(
        TrainConfig {
            model: dales::nn::MlpConfig {
                pixel_mean: None,
                ..resolved.model
            },
            ..resolved
        },
        c
    );
    let summary: serde_json::Value = serde_json::from_slice(&read(&dir, files::SUMMARY)).unwrap();
    assert_eq!(summary["finished"], true);
    assert_eq!(summary["epochs_done"], 2);
    assert_eq!(summary["seed"], 1);
    assert!(summary["dales_version"].is_string());
    // The checkpoint is a plain dales-ff/1 model.
    let (_, kind) =
        dales::checkpoint::load_mlp(&dir.join(files::CHECKPOINT), &dales::device::cpu()).unwrap();
    assert_eq!(kind, ModelKind::Dann);
    // A second trainer of the directory is refused while the first holds it, and after.
    let err = Trainer::new(c.clone(), Dataset::load(&c).unwrap(), &dir)
        .err()
        .unwrap()
        .to_string();
    let owner = format!("in use by process {}", std::process::id());
    assert!(err.contains(&owner), "{err}");
    drop(t);
    let err = Trainer::new(c.clone(), Dataset::load(&c).unwrap(), &dir)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("--resume") && err.contains("--overwrite"),
        "{err}"
    );
    // Resuming a directory that does not exist creates nothing.
    let missing = dir.with_file_name("dales-no-such-run");
    let err = Trainer::<MlpConfig>::resume(&missing, None, None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no such directory"), "{err}");
    assert!(!missing.exists());
}

#[test]
fn dataset_and_model_must_agree() {
    let data = temp_dir("agree-data");
    write_idx_dataset(&data, 20, 8, 6, 4, 4);
    let mut c = config(ModelKind::Mlp, &data, MOMENTUM);
    c.model.n_in = 784;
    let err = Dataset::load(&c).unwrap_err().to_string();
    assert!(err.contains("model.n_in") && err.contains("36"), "{err}");
    let mut c = config(ModelKind::Mlp, &data, MOMENTUM);
    c.model.n_out = 3;
    let err = Dataset::load(&c).unwrap_err().to_string();
    assert!(err.contains("model.n_out") && err.contains('4'), "{err}");
}

/// `data.limit_train` keeps the first N training images (after the validation split), and a
/// limit beyond the training set is an error naming the key.
#[test]
fn limit_train_keeps_the_first_images() {
    let data = temp_dir("limit-data");
    write_idx_dataset(&data, 20, 8, 6, 4, 4);
    let mut c = config(ModelKind::Mlp, &data, MOMENTUM);
    c.data.limit_train = Some(7);
    let d = Dataset::load(&c).unwrap();
    assert_eq!((d.train.len(), d.eval.len()), (7, 8));
    let all = {
        let mut c = c.clone();
        c.data.limit_train = None;
        Dataset::load(&c).unwrap()
    };
    let (first, kept) = (all.train.batch(&[0, 6]), d.train.batch(&[0, 6]));
    assert_eq!((first.inputs, first.targets), (kept.inputs, kept.targets));
    c.data.validation = 5;
    assert_eq!(Dataset::load(&c).unwrap().train.len(), 7);
    c.data.limit_train = Some(16);
    let err = Dataset::load(&c).unwrap_err().to_string();
    assert!(
        err.contains("data.limit_train") && err.contains("15"),
        "{err}"
    );
}

/// The memory estimate's parameter count, arithmetic on the configuration, against the
/// parameters of the model each preset builds.
#[test]
fn memory_estimate_counts_the_parameters_of_every_preset() {
    use dales::learner::ModelSpec;
    use dales::nn::Parameterised;
    use dales::presets::{CONV_PRESETS, PRESETS, RECURRENT_PRESETS, SEQ_PRESETS};
    use dales::run::AnyConfig;

    fn ratio<M: ModelSpec>(model: &M, width: usize) -> f64 {
        let built = model.init_seeded(1, &dales::device::cpu()).unwrap();
        let actual: usize = built
            .param_layers()
            .iter()
            .flat_map(|l| l.entries.iter())
            .filter(|e| e.role.is_some())
            .map(|e| e.value.numel())
            .sum();
        model.size(width).parameters / actual as f64
    }
    let names = PRESETS
        .iter()
        .chain(&SEQ_PRESETS)
        .chain(&RECURRENT_PRESETS)
        .chain(&CONV_PRESETS);
    for name in names {
        let r = match AnyConfig::preset(name).unwrap() {
            AnyConfig::FeedForward(mut c) => {
                c.model.prepare(Some(0.286));
                ratio(&c.model, c.model.n_in)
            }
            AnyConfig::Sequence(c) => {
                let width = c.model.generated().unwrap().map_or(1, |(t, _)| t.width());
                ratio(&c.model, width)
            }
            AnyConfig::Conv(mut c) => {
                c.model.prepare(Some(0.286));
                ratio(&c.model, c.model.in_shape.iter().product())
            }
            AnyConfig::Recurrent(c) => {
                let width = c
                    .model
                    .generated()
                    .unwrap()
                    .map_or(c.model.n_in, |(t, _)| t.width());
                ratio(&c.model, width)
            }
        };
        eprintln!("{name}: estimate / actual parameters = {r:.3}");
        assert!((0.95..=1.5).contains(&r), "{name}: {r}");
    }
}

/// A CIFAR-10 directory (binary format, written here) trains a feed-forward network on its
/// 3 × 32 × 32 images and is refused by a sequence model, which reads grey pixels.
#[test]
fn cifar_directory_trains_an_mlp_and_is_refused_by_sequence_models() {
    let data = temp_dir("cifar-data");
    // Four classes; an image's planes are brighter the higher its label, plus a ramp.
    let file = |n: usize| -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                let label = (i % 4) as u8;
                std::iter::once(label)
                    .chain((0..3072).map(move |p| label * 50 + ((i * 7 + p) % 40) as u8))
            })
            .collect()
    };
    std::fs::write(data.join("data_batch_1.bin"), file(96)).unwrap();
    std::fs::write(data.join("test_batch.bin"), file(40)).unwrap();
    let mut c = config(ModelKind::Mlp, &data, MOMENTUM);
    c.model.n_in = 3072;
    c.model.n_out = 10;
    c.optim.lr = 0.01;
    c.epochs = 5;
    let dir = temp_dir("cifar-run");
    let mut t = Trainer::new(c.clone(), Dataset::load(&c).unwrap(), &dir).unwrap();
    assert_eq!(t.run(&mut |_| {}, &|_| false).unwrap(), Outcome::Finished);
    let last = t.records().last().unwrap().test_error;
    assert!(last < 50.0, "test error {last} (chance: 75)");
    let mut seq = TrainConfig::sequence_small(dales::nn::seq::SeqKind::RnnRelu);
    seq.model.rows = 32;
    seq.model.cols = 32;
    seq.data = c.data.clone();
    let c = seq;
    let e = Dataset::load(&c).unwrap_err().to_string();
    assert!(e.contains("grey images"), "{e}");
    // Augmentation is for image batches; a sequence task refuses it by name.
    let mut c = TrainConfig::sequence_small(dales::nn::seq::SeqKind::RnnRelu);
    c.data.augment = Some(dales_data::augment::Augment {
        crop_padding: 1,
        flip: false,
    });
    c.data.dir = Some(temp_dir("cifar-seq-data"));
    c.data.validation = 0;
    write_idx_dataset(c.data.dir.as_ref().unwrap(), 20, 8, 28, 10, 1);
    let e = Dataset::load(&c).unwrap_err().to_string();
    assert!(e.contains("data.augment"), "{e}");
}
