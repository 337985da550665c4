//! The CIFAR binary reader on files written here: layout, both formats, the archive's
//! subdirectory, and the errors for truncated files, bad labels and missing files.

use crate::common::TempDir;
use dales_data::MnistLike;

/// `n` records: label `(i + shift) % classes` (CIFAR-100: coarse label 7 first), pixel `p` of
/// record `i` = `(i + p) % 251`.
fn records(n: usize, label_bytes: usize, classes: usize, shift: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..n {
        if label_bytes == 2 {
            v.push(7);
        }
        v.push(((i + shift) % classes) as u8);
        v.extend((0..3072).map(|p| ((i + p) % 251) as u8));
    }
    v
}

#[test]
fn cifar10_batches_are_read_channel_major() {
    let dir = TempDir::new("cifar10");
    dir.write("data_batch_1.bin", &records(4, 1, 10, 0));
    dir.write("data_batch_2.bin", &records(3, 1, 10, 4));
    dir.write("test_batch.bin", &records(2, 1, 10, 9));
    let d = MnistLike::load_dir(dir.path()).unwrap();
    assert_eq!((d.train.len(), d.test.len(), d.n_classes()), (7, 2, 10));
    assert_eq!(
        (d.train.channels(), d.train.rows(), d.train.cols()),
        (3, 32, 32)
    );
    assert_eq!(d.train.pixels_per_image(), 3072);
    // The second file's first record follows the first file's four.
    assert_eq!(d.train.label(4), 4);
    assert_eq!(d.train.image(4)[0], 0);
    assert_eq!(d.train.image(2)[1024], ((2 + 1024) % 251) as u8); // green plane, pixel 0
    assert_eq!(d.test.label(1), 0); // (1 + 9) % 10
    let site = &d.largest_label;
    assert_eq!((site.label, site.index), (9, 0));
    assert!(site.file.ends_with("test_batch.bin"));
}

#[test]
fn cifar100_uses_the_fine_label_and_the_archive_subdirectory() {
    let dir = TempDir::new("cifar100");
    std::fs::create_dir(dir.path().join("cifar-100-binary")).unwrap();
    dir.write("cifar-100-binary/train.bin", &records(5, 2, 100, 95));
    dir.write("cifar-100-binary/test.bin", &records(1, 2, 100, 0));
    let d = MnistLike::load_dir(dir.path()).unwrap();
    assert_eq!((d.train.len(), d.n_classes()), (5, 100));
    assert_eq!(d.train.labels(), &[95, 96, 97, 98, 99]);
}

#[test]
fn truncated_files_bad_labels_and_missing_tests_are_named() {
    let dir = TempDir::new("cifar-bad");
    let mut cut = records(2, 1, 10, 0);
    cut.pop();
    let path = dir.write("data_batch_1.bin", &cut);
    dir.write("test_batch.bin", &records(1, 1, 10, 0));
    let e = MnistLike::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains(&path.display().to_string())
            && e.contains("6145 bytes")
            && e.contains("3073-byte"),
        "{e}"
    );
    let mut bad = records(3, 1, 10, 0);
    bad[2 * 3073] = 12;
    dir.write("data_batch_1.bin", &bad);
    let e = MnistLike::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("label 12 at record 2") && e.contains("data_batch_1.bin"),
        "{e}"
    );
    dir.write("data_batch_1.bin", &records(1, 1, 10, 0));
    std::fs::remove_file(dir.path().join("test_batch.bin")).unwrap();
    let e = MnistLike::load_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("test_batch.bin"), "{e}");
    // A CIFAR-100 file read as CIFAR-100 must have whole 3074-byte records.
    let dir = TempDir::new("cifar100-bad");
    dir.write("train.bin", &records(2, 1, 10, 0));
    dir.write("test.bin", &records(1, 2, 100, 0));
    let e = MnistLike::load_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("3074-byte CIFAR-100 records"), "{e}");
}
