//! `MnistLike::load_dir` on small synthetic datasets.

use crate::common::{TempDir, gz, idx, images, labels, write_dataset};
use dales_data::{DataError, MnistLike};

fn err(dir: &TempDir) -> String {
    MnistLike::load_dir(dir.path()).unwrap_err().to_string()
}

#[test]
fn loads_gzip_dataset() {
    let dir = TempDir::new("load");
    write_dataset(&dir, 20, 7);
    let d = MnistLike::load_dir(dir.path()).unwrap();
    assert_eq!((d.train.len(), d.test.len()), (20, 7));
    assert_eq!((d.train.rows(), d.train.cols()), (4, 3));
    assert_eq!(d.train.pixels_per_image(), 12);
    assert_eq!(d.n_classes(), 5);
    assert_eq!(d.test.n_classes(), 5);
    assert_eq!(d.train.label(6), 1);
    // Image i pixel j is (i * 7 + global_j) % 256.
    assert_eq!(d.train.image(2)[0], (2 * 7 + 24) as u8);
    let expected: f64 = (0..240u32)
        .map(|j| f64::from(((j / 12) * 7 + j) % 256))
        .sum::<f64>()
        / (240.0 * 255.0);
    assert!((d.pixel_mean() - expected).abs() < 1e-12);
}

#[test]
fn accepts_raw_and_dotted_names_and_prefers_gzip() {
    let dir = TempDir::new("names");
    dir.write("train-images.idx3-ubyte", &images(10, 2, 2));
    dir.write("train-labels.idx1-ubyte.gz", &gz(&labels(10, 3)));
    dir.write("t10k-images-idx3-ubyte", &images(4, 2, 2));
    // Both present: the .gz one (4 labels) wins over the raw one (unreadable).
    dir.write("t10k-labels-idx1-ubyte", b"garbage");
    dir.write("t10k-labels-idx1-ubyte.gz", &gz(&labels(4, 3)));
    let d = MnistLike::load_dir(dir.path()).unwrap();
    assert_eq!((d.train.len(), d.test.len(), d.n_classes()), (10, 4, 3));
}

#[test]
fn n_classes_is_max_label_over_both_splits_plus_one() {
    let dir = TempDir::new("classes");
    write_dataset(&dir, 6, 3);
    dir.write(
        "t10k-labels-idx1-ubyte.gz",
        &gz(&idx(0x08, &[3], &[0, 9, 1])),
    );
    let d = MnistLike::load_dir(dir.path()).unwrap();
    assert_eq!(d.n_classes(), 10);
    assert_eq!(d.train.n_classes(), 10);
    // The label that sets the count is found with its file and record.
    let site = &d.largest_label;
    assert_eq!((site.label, site.index), (9, 1));
    assert!(site.file.ends_with("t10k-labels-idx1-ubyte.gz"));
    assert_eq!(
        site.to_string(),
        format!("label 9 at index 1 of {}", site.file.display())
    );
    // A tie goes to the training file's first record.
    dir.write(
        "train-labels-idx1-ubyte.gz",
        &gz(&idx(0x08, &[6], &[0, 1, 9, 2, 9, 3])),
    );
    let site = MnistLike::load_dir(dir.path()).unwrap().largest_label;
    assert_eq!((site.label, site.index), (9, 2));
    assert!(site.file.ends_with("train-labels-idx1-ubyte.gz"));
}

#[test]
fn a_directory_in_place_of_a_file_is_named() {
    let dir = TempDir::new("dir-as-file");
    write_dataset(&dir, 6, 3);
    std::fs::remove_file(dir.path().join("t10k-images-idx3-ubyte.gz")).unwrap();
    std::fs::create_dir(dir.path().join("t10k-images-idx3-ubyte.gz")).unwrap();
    let e = err(&dir);
    assert!(
        e.ends_with(
            "t10k-images-idx3-ubyte.gz: is not a file; expected the IDX file \
             t10k-images-idx3-ubyte here"
        ),
        "{e}"
    );
}

#[test]
fn missing_directory() {
    let dir = TempDir::new("nodir");
    let missing = dir.path().join("absent");
    let e = MnistLike::load_dir(&missing).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("data directory {} does not exist", missing.display())
    );
    let file = dir.write("plain-file", b"x");
    let m = MnistLike::load_dir(&file).unwrap_err().to_string();
    assert!(m.contains("is not a directory"), "{m}");
}

#[test]
fn missing_file_names_directory_and_candidates() {
    let dir = TempDir::new("nofile");
    write_dataset(&dir, 5, 5);
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let e = MnistLike::load_dir(dir.path()).unwrap_err();
    assert!(matches!(e, DataError::MissingFile { .. }));
    assert_eq!(
        e.to_string(),
        format!(
            "{}: missing t10k-labels-idx1-ubyte: none of t10k-labels-idx1-ubyte.gz, \
             t10k-labels-idx1-ubyte, t10k-labels.idx1-ubyte.gz, t10k-labels.idx1-ubyte exists",
            dir.path().display()
        )
    );
}

#[test]
fn label_count_mismatch() {
    let dir = TempDir::new("count");
    write_dataset(&dir, 6, 3);
    dir.write("train-labels-idx1-ubyte.gz", &gz(&labels(5, 5)));
    let p = |n: &str| dir.path().join(n).display().to_string();
    assert_eq!(
        err(&dir),
        format!(
            "{}: label count 5 does not match image count 6 in {}",
            p("train-labels-idx1-ubyte.gz"),
            p("train-images-idx3-ubyte.gz")
        )
    );
}

#[test]
fn wrong_ranks() {
    let dir = TempDir::new("rank");
    write_dataset(&dir, 6, 3);
    dir.write(
        "train-images-idx3-ubyte.gz",
        &gz(&idx(0x08, &[6, 12], &[0; 72])),
    );
    let m = err(&dir);
    assert!(
        m.contains("train-images-idx3-ubyte.gz: expected 3-D images (N, rows, cols)"),
        "{m}"
    );
    assert!(m.contains("found 2 dimension(s) [6, 12]"), "{m}");

    write_dataset(&dir, 6, 3);
    dir.write(
        "t10k-labels-idx1-ubyte.gz",
        &gz(&idx(0x08, &[3, 1], &[0; 3])),
    );
    let m = err(&dir);
    assert!(
        m.contains("t10k-labels-idx1-ubyte.gz: expected 1-D labels (N)"),
        "{m}"
    );
}

#[test]
fn inconsistent_or_degenerate_content() {
    let dir = TempDir::new("content");
    write_dataset(&dir, 6, 3);
    dir.write("t10k-images-idx3-ubyte.gz", &gz(&images(3, 3, 4)));
    let m = err(&dir);
    assert!(
        m.contains("t10k-images-idx3-ubyte.gz: images are 3x4 but the training images"),
        "{m}"
    );
    assert!(m.contains("are 4x3"), "{m}");

    write_dataset(&dir, 6, 3);
    dir.write("train-images-idx3-ubyte.gz", &gz(&images(0, 4, 3)));
    dir.write("train-labels-idx1-ubyte.gz", &gz(&labels(0, 5)));
    assert!(err(&dir).contains("train-images-idx3-ubyte.gz: contains no images"));

    write_dataset(&dir, 6, 3);
    dir.write("train-images-idx3-ubyte.gz", &gz(&images(6, 0, 3)));
    assert!(err(&dir).contains("image size 0x3 is empty"));

    write_dataset(&dir, 6, 3);
    dir.write("train-labels-idx1-ubyte.gz", &gz(&labels(6, 1)));
    dir.write("t10k-labels-idx1-ubyte.gz", &gz(&labels(3, 1)));
    let m = err(&dir);
    assert!(
        m.contains("train-labels-idx1-ubyte.gz: all labels here and in"),
        "{m}"
    );
    assert!(m.contains("needs at least 2 classes"), "{m}");
}

#[test]
fn corrupt_member_file_is_reported_with_its_path() {
    let dir = TempDir::new("corrupt");
    write_dataset(&dir, 6, 3);
    let p = dir.write(
        "t10k-images-idx3-ubyte.gz",
        &gz(&idx(0x0C, &[3, 4, 3], &[0; 144])),
    );
    let m = err(&dir);
    assert!(
        m.starts_with(&format!(
            "{}: unsupported IDX element type 0x0C",
            p.display()
        )),
        "{m}"
    );
}

#[test]
fn validation_split_of_loaded_dataset() {
    let dir = TempDir::new("val");
    write_dataset(&dir, 50, 5);
    let d = MnistLike::load_dir(dir.path()).unwrap();
    let all = d.train.clone();
    let (train, val) = d.split_validation(10, 3).unwrap();
    assert_eq!((train.len(), val.len()), (40, 10));
    assert_eq!(train.n_classes(), 5);
    // Every example lands in exactly one part, unchanged.
    let mut found = vec![0u32; 50];
    for part in [&train, &val] {
        for i in 0..part.len() {
            let j = (0..50).find(|&j| all.image(j) == part.image(i)).unwrap();
            assert_eq!(all.label(j), part.label(i));
            found[j] += 1;
        }
    }
    assert!(found.iter().all(|&c| c == 1), "{found:?}");
}
