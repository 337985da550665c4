//! Sequence runs end to end (training, bit-identical resume with the plateau schedule,
//! checkpoints that must match the run's sequence settings), the robustness transforms and
//! drives of spec C4, and the plateau schedule against PyTorch's rule.

use std::path::Path;

use dales::config::TrainConfig;
use dales::learner::load_seq;
use dales::nn::seq::{SeqConfig, SeqKind};
use dales::optim::{Plateau, PlateauState};
use dales::robustness::{Drive, InputTransform, LocalShape, evaluate_under};
use dales::run::{Dataset, Outcome, Trainer, evaluate, files, read_metrics};

use crate::common::{temp_dir, write_idx_dataset};

/// Sequence indices `0..n`.
fn first(n: usize) -> Vec<usize> {
    (0..n).collect()
}

/// A tiny sequence run on a synthetic 8 × 8, 4-class dataset: 16 steps (pool 2).
fn config(kind: SeqKind, data: &Path) -> TrainConfig<SeqConfig> {
    let mut c = TrainConfig::sequence_small(kind);
    c.model.rows = 8;
    c.model.cols = 8;
    c.model.pool = 2;
    c.model.hidden = 12;
    c.model.controller = 4;
    c.model.n_out = 4;
    c.epochs = 3;
    c.batch_size = 10;
    c.data.dir = Some(data.to_path_buf());
    c.data.validation = 20;
    // 3 epochs of 100 synthetic images: a new order every epoch (the presets keep one).
    c.data.shuffle = true;
    c.optim.lr = 1e-2;
    c.optim.plateau = Some(Plateau {
        patience: 0,
        ..Plateau::default()
    });
    c
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

/// Interrupted mid-epoch and resumed, a sequence run ends bit-identical to an uninterrupted one
/// (checkpoint, metrics and the learning rate of the plateau schedule), and it learns.
#[test]
fn sequence_runs_resume_bit_identically_and_learn() {
    let data = temp_dir("seq-data");
    write_idx_dataset(&data, 120, 40, 8, 4, 3);
    for kind in [SeqKind::Arun, SeqKind::RnnGammaHet] {
        let c = config(kind, &data);
        let a = temp_dir(&format!("seq-a-{kind}"));
        let mut t = Trainer::new(c.clone(), Dataset::load(&c).unwrap(), &a).unwrap();
        assert_eq!(t.run(&mut |_| {}, &|_| false).unwrap(), Outcome::Finished);

        let b = temp_dir(&format!("seq-b-{kind}"));
        let mut t = Trainer::new(c.clone(), Dataset::load(&c).unwrap(), &b).unwrap();
        // 10 batches per epoch: stop in the middle of epoch 2.
        assert_eq!(
            t.run(&mut |_| {}, &|step| step == 14).unwrap(),
            Outcome::Interrupted
        );
        drop(t);
        let mut t = Trainer::<SeqConfig>::resume(&b, None, None).unwrap();
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
                (x.train_loss, x.test_loss, x.lr),
                (y.train_loss, y.test_loss, y.lr)
            );
        }
        // The synthetic classes are separable: the training loss falls below chance (ln 4).
        let last = ma.last().unwrap();
        assert!(
            last.train_loss < 0.9 * 4f64.ln(),
            "{kind}: train loss {} after 3 epochs",
            last.train_loss
        );
        // The checkpoint reloads to the same model.
        let model = load_seq(
            &a.join(files::CHECKPOINT),
            Some(&c.model),
            &dales::device::cpu(),
        )
        .unwrap();
        let ds = Dataset::load(&c).unwrap();
        let (loss, _) = evaluate(&model, ds.eval.as_ref(), 7);
        assert!(
            (loss - last.test_loss).abs() < 1e-5,
            "{loss} vs {}",
            last.test_loss
        );
        // Under no drive, the robustness evaluation is the plain evaluation.
        let (l2, e2) = evaluate_under(&model, ds.eval.as_ref(), None, None, 7, None).unwrap();
        assert_eq!((l2, e2), evaluate(&model, ds.eval.as_ref(), 7));
    }
}

/// A checkpoint read with another sequence length or permutation seed is a named error.
#[test]
fn checkpoint_must_match_the_sequence_settings() {
    let dir = temp_dir("seq-ckpt");
    let c = SeqConfig {
        hidden: 5,
        pool: 4,
        ..SeqConfig::paper(SeqKind::RnnTanh)
    };
    let model = c.init_seeded(1, &dales::device::cpu()).unwrap();
    use dales::learner::ModelSpec;
    let path = dir.join("c.safetensors");
    c.save_checkpoint(&model, &path).unwrap();
    assert!(load_seq(&path, Some(&c), &dales::device::cpu()).is_ok());
    for (other, key) in [
        (
            SeqConfig {
                permutation_seed: Some(1),
                ..c.clone()
            },
            "permutation_seed",
        ),
        (
            SeqConfig {
                pool: 2,
                ..c.clone()
            },
            "pool",
        ),
        (
            SeqConfig {
                permutation_seed: None,
                ..c.clone()
            },
            "permutation_seed",
        ),
    ] {
        let err = load_seq(&path, Some(&other), &dales::device::cpu())
            .unwrap_err()
            .to_string();
        assert!(err.contains(key) && err.contains("c.safetensors"), "{err}");
    }
}

#[test]
fn bad_sequence_configs_are_named_errors() {
    for (c, key) in [
        (
            SeqConfig {
                n0: Some(-1.0),
                ..SeqConfig::paper(SeqKind::RnnGamma)
            },
            "model.n0",
        ),
        (
            SeqConfig {
                pool: 5,
                ..SeqConfig::paper(SeqKind::Arun)
            },
            "model.pool",
        ),
        (
            SeqConfig {
                hidden: 0,
                ..SeqConfig::paper(SeqKind::Arun)
            },
            "model.hidden",
        ),
    ] {
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
    }
    let err = TrainConfig::sequence_preset("transformer-small")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("transformer-small") && err.contains("arun-small"),
        "{err}"
    );
}

#[test]
fn transforms_follow_spec_c4() {
    let steps = 8;
    let mut xs = vec![1.0f32, 0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 1.0];
    InputTransform::Sin {
        freq: 1.0,
        phase: 0.5,
        amplitude: 0.3,
    }
    .apply(&mut xs, steps);
    let orig = [1.0, 0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 1.0];
    for t in 0..steps {
        let f = 1.0 + 0.3 * (2.0 * std::f64::consts::PI * t as f64 / 8.0 + 0.5).sin();
        let want = if orig[t] > 0.0 { orig[t] * f } else { 0.0 };
        assert!((xs[t] as f64 - want).abs() < 1e-6, "t = {t}");
    }
    // Step: strict window 2 < t < 5.
    let mut xs = vec![1.0f32; steps];
    InputTransform::Step {
        delta: 0.5,
        length: 3,
        position: 2,
    }
    .apply(&mut xs, steps);
    assert_eq!(xs, [1.0, 1.0, 1.0, 1.5, 1.5, 1.0, 1.0, 1.0]);
    // Local: all pixels, including negative ones.
    let mut xs = vec![-1.0f32; steps];
    InputTransform::Local {
        period: 4,
        shape: LocalShape::Lin,
    }
    .apply(&mut xs, steps);
    assert_eq!(xs, [-0.0, -0.25, -0.5, -0.75, -0.0, -0.25, -0.5, -0.75]);
    let mut xs = vec![1.0f32; 4];
    InputTransform::Local {
        period: 4,
        shape: LocalShape::Sin,
    }
    .apply(&mut xs, 4);
    assert!((xs[2] - 1.0).abs() < 1e-6 && (xs[1] - 0.5f32.sqrt()).abs() < 1e-6);
}

/// The noise and multivariate-normal drives draw each sequence's samples from its own
/// generator: a sequence gets the same drive whichever batch it is in, different sequences get
/// different drives, and an evaluation under noise does not depend on the chunk size.
#[test]
fn noise_drives_do_not_depend_on_the_batch() {
    let dev = dales::device::cpu();
    let host = |t: &burn::tensor::Tensor<2>| {
        t.clone()
            .into_data()
            .convert::<f64>()
            .try_into_vec::<f64>()
            .unwrap()
    };
    for d in [
        Drive::paper_noise(3.0, 49, 7),
        Drive::paper_normal(2.0, 2.0, 49, 7),
    ] {
        let all = d.tensors(&[0, 1, 2, 3], 5, 49, &dev);
        let part = d.tensors(&[2, 3], 5, 49, &dev);
        let mut driven = 0;
        for t in 0..49 {
            match (&all[t], &part[t]) {
                (Some(a), Some(p)) => {
                    let (a, p) = (host(a), host(p));
                    assert_eq!(&a[10..20], &p[..], "step {t}: sequences 2 and 3");
                    assert_ne!(&a[0..5], &a[5..10], "step {t}: sequences 0 and 1");
                    driven += 1;
                }
                (None, None) => {}
                _ => panic!("the windows differ at step {t}"),
            }
        }
        assert_eq!(driven, 13, "{d:?}");
    }
    let data = temp_dir("seq-noise-chunks");
    write_idx_dataset(&data, 60, 40, 8, 4, 5);
    let c = config(SeqKind::RnnRelu, &data);
    let model = c.model.init_seeded(3, &dev).unwrap();
    let ds = Dataset::load(&c).unwrap();
    let noise = Drive::paper_noise(1.0, 16, 11);
    let (small, _) = evaluate_under(&model, ds.eval.as_ref(), None, Some(&noise), 3, None).unwrap();
    let (large, _) =
        evaluate_under(&model, ds.eval.as_ref(), None, Some(&noise), 40, None).unwrap();
    assert!(
        (small - large).abs() <= 1e-6 * large.abs(),
        "loss {small} in chunks of 3, {large} in one"
    );
}

#[test]
fn drives_follow_spec_c4() {
    // The paper's window for 784 steps: 200 < t < 400; scaled to 49 steps: 13 < t < 26.
    let d = Drive::paper_step(2.5, 784);
    assert_eq!(d.value_at(200), None);
    assert_eq!(d.value_at(201), Some(2.5));
    assert_eq!(d.value_at(399), Some(2.5));
    assert_eq!(d.value_at(400), None);
    let d = Drive::paper_step(1.0, 49);
    let on: Vec<usize> = (0..49).filter(|&t| d.value_at(t).is_some()).collect();
    assert_eq!(on, (14..26).collect::<Vec<_>>());
    let tensors = d.tensors(&first(2), 3, 49, &dales::device::cpu());
    assert!(
        tensors
            .iter()
            .enumerate()
            .all(|(t, x)| x.is_some() == on.contains(&t))
    );
    // Noise: N(0, ξ²) in the window, reproducible from the seed.
    let n = Drive::paper_noise(2.0, 784, 7);
    let a = n.tensors(&first(50), 40, 784, &dales::device::cpu());
    let b = n.tensors(&first(50), 40, 784, &dales::device::cpu());
    let v: Vec<f64> = a[300]
        .clone()
        .unwrap()
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap();
    let w: Vec<f64> = b[300]
        .clone()
        .unwrap()
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap();
    assert_eq!(v, w);
    let sd = (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt();
    assert!((sd - 2.0).abs() < 0.1, "noise std {sd}");
    assert!(a[100].is_none() && a[450].is_none());
    // Multivariate normal N(μ, c·I) on 200 ≤ t < 400: 2000 samples per step, so the sample
    // mean is within 4 s.e. (4·√(2/2000) ≈ 0.13) of 5 and the variance within 4 s.e.
    // (4·2·√(2/2000) ≈ 0.25) of 2.
    let m =
        Drive::paper_normal(5.0, 2.0, 784, 3).tensors(&first(50), 40, 784, &dales::device::cpu());
    let on: Vec<usize> = (0..784).filter(|&t| m[t].is_some()).collect();
    assert_eq!(on, (200..400).collect::<Vec<_>>());
    for t in [200, 399] {
        let v: Vec<f64> = m[t]
            .clone()
            .unwrap()
            .into_data()
            .convert::<f64>()
            .try_into_vec::<f64>()
            .unwrap();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
        assert!((mean - 5.0).abs() < 0.13, "mvnormal mean {mean}");
        assert!((var - 2.0).abs() < 0.25, "mvnormal variance {var}");
    }
    // Windows outside the sequence and non-finite amplitudes are errors naming the drive.
    for bad in [
        Drive::Step {
            amplitude: 1.0,
            position: 40,
            length: 20,
        },
        Drive::Step {
            amplitude: f64::NAN,
            position: 1,
            length: 2,
        },
        Drive::Step {
            amplitude: 1.0,
            position: 1,
            length: 0,
        },
        Drive::paper_normal(5.0, -1.0, 49, 0),
        Drive::paper_normal(f64::INFINITY, 2.0, 49, 0),
    ] {
        let err = bad.validate(49).unwrap_err().to_string();
        assert!(err.contains("drive"), "{err}");
    }
}

/// PyTorch's ReduceLROnPlateau('min', factor, patience, threshold 1e-4 relative): the rate
/// drops after more than `patience` epochs without a relative improvement.
#[test]
fn plateau_schedule_matches_pytorch_rule() {
    let p = Plateau {
        factor: 0.5,
        patience: 2,
        threshold: 1e-4,
    };
    let mut state = PlateauState::default();
    let mut lr = 1.0;
    let losses = [1.0, 0.9, 0.89995, 0.95, 0.91, 0.92, 0.5, 0.6, 0.6, 0.6, 0.6];
    // Improvements at 1.0, 0.9 and 0.5; 0.89995 is within the threshold of 0.9.
    let want = [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25];
    for (loss, want) in losses.iter().zip(want) {
        lr = p.update(&mut state, lr, *loss);
        assert_eq!(lr, want, "after loss {loss}");
    }
}

/// The copy task end to end through the trainer: an RNN learns to replay 3 symbols of 4 after
/// a delay of 8 (14 steps), beating the memoryless baseline `L ln S / N` on held-out
/// sequences, and the checkpoint reloads to the same test loss.
#[test]
fn copy_task_beats_the_memoryless_baseline() {
    use dales::nn::seq::CopyConfig;
    let mut c = TrainConfig::copy_small(SeqKind::RnnRelu);
    let copy = CopyConfig {
        delay: 8,
        length: 3,
        symbols: 4,
        train: 2_000,
        test: 200,
        seed: 5,
    };
    let baseline = copy.spec().baseline_loss();
    c.model.copy = Some(copy);
    c.model.n_out = 5;
    c.model.hidden = 32;
    c.epochs = 4;
    let dir = temp_dir("copy-run");
    let data = Dataset::load(&c).unwrap();
    assert_eq!(data.eval_name, "test");
    assert_eq!((data.train.len(), data.eval.len()), (2_000, 200));
    let mut t = Trainer::new(c.clone(), data, &dir).unwrap();
    let data = Dataset::load(&c).unwrap();
    assert_eq!(t.run(&mut |_| {}, &|_| false).unwrap(), Outcome::Finished);
    let last = read_metrics(&dir.join(files::METRICS))
        .unwrap()
        .pop()
        .unwrap();
    assert!(
        last.test_loss < 0.7 * baseline,
        "copy test loss {} vs baseline {baseline}",
        last.test_loss
    );
    let model = load_seq(
        &dir.join(files::CHECKPOINT),
        Some(&c.model),
        &dales::device::cpu(),
    )
    .unwrap();
    let (loss, _) = evaluate(&model, data.eval.as_ref(), 50);
    assert!((loss - last.test_loss).abs() < 1e-5);
    // Robustness tests classify images: a copy model is refused with a named error.
    let err = evaluate_under(&model, data.eval.as_ref(), None, None, 50, None).unwrap_err();
    assert!(err.to_string().contains("model.copy"), "{err}");
    // Bad sizes name their key.
    for (bad, key) in [
        (
            CopyConfig {
                length: 0,
                ..CopyConfig::paper()
            },
            "model.copy",
        ),
        (
            CopyConfig {
                train: 0,
                ..CopyConfig::paper()
            },
            "model.copy.train",
        ),
    ] {
        let mut m = SeqConfig::copy_paper(SeqKind::Arun);
        m.copy = Some(bad);
        let err = m.validate().unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
    }
    let mut m = SeqConfig::copy_paper(SeqKind::Gru);
    m.n_out = 10;
    assert!(
        m.validate()
            .unwrap_err()
            .to_string()
            .contains("model.n_out")
    );
}
