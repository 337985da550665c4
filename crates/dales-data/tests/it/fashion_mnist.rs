//! Checks against the real Fashion-MNIST files; skipped when they are not installed.

use std::path::Path;

use dales_data::{DEFAULT_DATA_DIR, EpochOrder, MnistLike};

#[test]
fn real_fashion_mnist() {
    if !Path::new(DEFAULT_DATA_DIR).is_dir() {
        eprintln!(
            "note: skipping real_fashion_mnist: {DEFAULT_DATA_DIR} is absent \
             (apt-get install dataset-fashion-mnist)"
        );
        return;
    }
    let d = MnistLike::load_default().unwrap();
    assert_eq!((d.train.len(), d.test.len()), (60_000, 10_000));
    assert_eq!((d.train.rows(), d.train.cols()), (28, 28));
    assert_eq!((d.test.rows(), d.test.cols()), (28, 28));
    assert_eq!(d.n_classes(), 10);
    let mean = d.pixel_mean();
    assert!((mean - 0.2860).abs() < 0.0005, "train pixel mean {mean}");
    // Balanced classes: 6000 training images each.
    let mut counts = [0usize; 10];
    for &l in d.train.labels() {
        counts[usize::from(l)] += 1;
    }
    assert_eq!(counts, [6000; 10]);

    let order = EpochOrder::new(d.train.len(), 32, 0).unwrap();
    assert_eq!(order.batches_per_epoch(), 1875);
    let batches = order.batches(0);
    let first = batches.get(0).unwrap();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    d.train.gather_f32(first, &mut x);
    d.train.gather_labels(first, &mut y);
    assert_eq!((x.len(), y.len()), (32 * 784, 32));
    assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(y.iter().all(|l| (0..10).contains(l)));

    let (train, val) = d.split_validation(5_000, 1).unwrap();
    assert_eq!((train.len(), val.len()), (55_000, 5_000));
}
