//! Run directories that cannot be mixed, overwritten or misread: locks, refusals, signals,
//! kills, memory estimates and the messages that name what is wrong.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use dales::run::{RunDir, files};
use dales_data::synthetic::encode_idx_u8;

use super::{dales, small_config, synthetic, temp, text, train_config};

/// `dales train` on `config` into `out` with `extra` flags, in the background.
fn spawn_train(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dales"))
        .arg("train")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `dales train --config cfg --out out extra…`, to its end.
fn train_into(cfg: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--config", s(cfg), "--out", s(out)];
    args.extend(extra);
    dales(&args)
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The metrics of a run without their wall-clock column, and its checkpoint's bytes: what a
/// resumed run must reproduce bit for bit.
fn outcome(run: &Path) -> (Vec<String>, Vec<u8>) {
    let records = RunDir::open(run).unwrap().records().unwrap();
    let rows = records
        .iter()
        .map(|r| {
            format!(
                "{} {} {:?} {:?} {:?} {:?} {:?}",
                r.epoch, r.step, r.train_loss, r.train_error, r.test_loss, r.test_error, r.lr
            )
        })
        .collect();
    (rows, std::fs::read(run.join(files::CHECKPOINT)).unwrap())
}

/// Every run file in `run` that exists is whole: the configuration, metrics and summary
/// parse, both safetensors files decode, the plots end as their formats end.
fn assert_readable(run: &Path) {
    let opened = RunDir::open(run);
    if run.join(files::CONFIG).exists() {
        opened.as_ref().unwrap();
    }
    let Ok(opened) = opened else { return };
    if run.join(files::METRICS).exists() {
        opened.records().unwrap();
    }
    if run.join(files::SUMMARY).exists() {
        opened.summary().unwrap();
    }
    for f in [files::CHECKPOINT, files::RESUME] {
        let path = run.join(f);
        if let Ok(bytes) = std::fs::read(&path) {
            dales::checkpoint::decode(&path, &bytes).unwrap();
        }
    }
    if let Ok(png) = std::fs::read(run.join(files::CURVES_PNG)) {
        assert!(png.ends_with(b"IEND\xaeB`\x82"), "curves.png cut short");
    }
    if let Ok(svg) = std::fs::read_to_string(run.join(files::CURVES_SVG)) {
        assert!(svg.trim_end().ends_with("</svg>"), "curves.svg cut short");
    }
}

/// The small config of `kind` (2 epochs) with `from` replaced by `to`, in its own file.
fn variant(dir: &Path, data: &Path, kind: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(small_config(dir, data, kind, 2)).unwrap();
    assert!(text.contains(from), "{from}");
    let path = dir.join(format!("{kind}-variant.toml"));
    std::fs::write(&path, text.replace(from, to)).unwrap();
    path
}

fn temporaries(run: &Path) -> Vec<String> {
    std::fs::read_dir(run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect()
}

/// A second writer is refused while the first runs, and the first's files stay its own; a
/// finished run is not overwritten without --overwrite.
#[test]
fn one_writer_per_run_directory_and_no_silent_overwrite() {
    let dir = temp("lock");
    let data = synthetic(&dir, 2000);
    let out = dir.join("run");
    let cfg = small_config(&dir, &data, "dann", 15);
    let first = spawn_train(&["--config", s(&cfg), "--out", s(&out)]);
    wait_for(&out.join(files::CONFIG));
    let o = train_into(&cfg, &out, &["--seed", "9"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let want = format!("is in use by process {}", first.id());
    assert!(text(&o).contains(&want), "{}", text(&o));
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = RunDir::open(&out).unwrap();
    assert_eq!(run.config.seed(), 2);
    let summary = run.summary().unwrap();
    assert!(summary.finished && summary.seed == 2 && summary.epochs_done == 15);

    // Finished: a new training into it is refused, and nothing is touched.
    let before = outcome(&out);
    let o = train_into(&cfg, &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    for want in [
        "already holds a run",
        "--resume",
        "--overwrite",
        "summary.json",
    ] {
        assert!(text(&o).contains(want), "{want}: {}", text(&o));
    }
    assert_eq!(outcome(&out), before);
    // --overwrite replaces it.
    let o = train_into(&cfg, &out, &["--seed", "9", "--epochs", "1", "--overwrite"]);
    assert!(o.status.success(), "{}", text(&o));
    let summary = RunDir::open(&out).unwrap().summary().unwrap();
    assert_eq!((summary.seed, summary.epochs_done), (9, 1));
    assert_eq!(RunDir::open(&out).unwrap().records().unwrap().len(), 1);
}

/// SIGTERM (a scheduler's time limit) saves the current step like Ctrl-C, exits 143, and the
/// resumed run ends bit-identical to an uninterrupted one.
#[test]
fn sigterm_saves_and_the_resumed_run_is_bit_identical() {
    let dir = temp("sigterm");
    let data = synthetic(&dir, 2000);
    let cfg = small_config(&dir, &data, "dann", 30);
    let whole = dir.join("whole");
    train_config(&cfg, &whole);
    let out = dir.join("run");
    let child = spawn_train(&["--config", s(&cfg), "--out", s(&out)]);
    wait_for(&out.join(files::METRICS));
    signal(&child, "TERM");
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.code() != Some(0) {
        assert_eq!(o.status.code(), Some(143), "{err}");
        assert!(err.contains("SIGTERM") && err.contains("--resume"), "{err}");
        assert!(!RunDir::open(&out).unwrap().summary().unwrap().finished);
        let o = dales(&["train", "--resume", s(&out)]);
        assert!(o.status.success(), "{}", text(&o));
    }
    assert_eq!(outcome(&out), outcome(&whole));
}

/// Twenty SIGKILLs at random moments, each followed by `--resume` (or a fresh start when
/// nothing was saved yet): every file left is whole, stale temporaries are removed, and the
/// run ends bit-identical to an uninterrupted one.
#[test]
fn twenty_kills_then_resume_end_bit_identical() {
    let dir = temp("kills");
    let data = synthetic(&dir, 600);
    let cfg = small_config(&dir, &data, "dann", 200);
    let whole = dir.join("whole");
    let start = Instant::now();
    train_config(&cfg, &whole);
    // Kills come on average every 1/60 of an uninterrupted run, so that twenty of them
    // land before its end on any machine. A fixed generator draws the moments.
    let mean = start.elapsed() / 60;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next_delay = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        mean.mul_f64(0.2 + 1.6 * (state % 1000) as f64 / 1000.0)
    };
    let out = dir.join("run");
    let mut kills = 0;
    while kills < 20 {
        let child = if out.join(files::RESUME).exists() {
            spawn_train(&["--resume", s(&out)])
        } else {
            spawn_train(&["--config", s(&cfg), "--out", s(&out), "--overwrite"])
        };
        std::thread::sleep(next_delay());
        signal(&child, "KILL");
        let o = child.wait_with_output().unwrap();
        assert!(
            !o.status.success(),
            "the run finished after {kills} kills: make it longer"
        );
        assert_eq!(
            o.status.code(),
            None,
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_readable(&out);
        kills += 1;
    }
    let epochs_done = RunDir::open(&out).unwrap().summary().map(|s| s.epochs_done);
    eprintln!("20 kills, then {epochs_done:?} of 200 epochs saved, mean delay {mean:?}");
    // Plant a dead writer's temporary: the next owner removes it.
    std::fs::write(out.join(".tmp-4194304999-0.metrics.csv"), b"half").unwrap();
    let o = dales(&["train", "--resume", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_readable(&out);
    assert_eq!(temporaries(&out), Vec::<String>::new());
    assert_eq!(outcome(&out), outcome(&whole), "after {kills} kills");
}

/// Readers check the run's identity; the sizes and data that cannot work are refused before
/// anything is allocated or written, naming what is wrong.
#[test]
fn swapped_checkpoints_huge_models_divergence_and_bad_labels_are_named() {
    let dir = temp("named");
    let data = synthetic(&dir, 96);
    let (mlp, dann) = (dir.join("mlp"), dir.join("dann"));
    train_config(&small_config(&dir, &data, "mlp", 1), &mlp);
    train_config(&small_config(&dir, &data, "dann", 1), &dann);

    // A 250-character --logits-out name is a valid file name.
    let logits = dir.join(format!("{}.json", "l".repeat(245)));
    let o = dales(&["eval", s(&dann), "--logits-out", s(&logits)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(logits.exists());

    // A DANN checkpoint in an MLP run: refused, both kinds named.
    std::fs::copy(dann.join(files::CHECKPOINT), mlp.join(files::CHECKPOINT)).unwrap();
    let o = dales(&["eval", s(&mlp)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("a `dann` model") && text(&o).contains("model.kind = `mlp`"),
        "{}",
        text(&o)
    );

    // 10⁸ × 10⁸ hidden units: refused with the estimate, nothing created.
    let huge = variant(
        &dir,
        &data,
        "mlp",
        "hidden = [16]",
        "hidden = [100000000, 100000000]",
    );
    let out = dir.join("huge");
    let o = dales(&["train", "--config", s(&huge), "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("needs about"), "{}", text(&o));
    assert!(!out.exists());
    let cfg = small_config(&dir, &data, "mlp", 1);
    let o = train_into(&cfg, &out, &["--max-memory", "1K"]);
    assert!(text(&o).contains("of --max-memory"), "{}", text(&o));
    let o = dales(&["train", "--config", s(&cfg), "--max-memory", "lots"]);
    assert!(text(&o).contains("--max-memory lots"), "{}", text(&o));

    // Divergence in the first epoch: nothing is saved, and the message says so.
    let diverging = variant(&dir, &data, "dann", "lr = 0.05", "lr = 1e30");
    let out = dir.join("diverged");
    let o = dales(&["train", "--config", s(&diverging), "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("nothing was saved"), "{}", text(&o));
    // After a saved epoch, the message names the state that is kept.
    let config = dann.join(files::CONFIG);
    let edited = std::fs::read_to_string(&config)
        .unwrap()
        .replace("lr = 0.05", "lr = 1e30");
    std::fs::write(&config, edited).unwrap();
    let o = dales(&["train", "--resume", s(&dann), "--epochs", "2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("saved after 1 epoch(s)"), "{}", text(&o));

    // A label of 200 among 4 classes: the file and the record are named.
    let labels: Vec<u8> = (0..96).map(|i| if i == 17 { 200 } else { i % 4 }).collect();
    let bad = data.join("train-labels-idx1-ubyte");
    std::fs::write(&bad, encode_idx_u8(&[96], &labels)).unwrap();
    let o = dales(&["train", "--config", s(&cfg), "--out", s(&dir.join("x"))]);
    let want = format!("label 200 at index 17 of {}", bad.display());
    assert!(text(&o).contains(&want), "{}", text(&o));
    // A directory where a data file should be.
    let images = data.join("t10k-images-idx3-ubyte");
    std::fs::remove_file(&images).unwrap();
    std::fs::create_dir(&images).unwrap();
    let o = dales(&["train", "--config", s(&cfg), "--out", s(&dir.join("x"))]);
    let want = format!("{}: is not a file", images.display());
    assert!(text(&o).contains(&want), "{}", text(&o));
}
