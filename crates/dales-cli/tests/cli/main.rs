//! The `dales` binary end to end, on a small synthetic dataset.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use dales_data::synthetic::{SyntheticSpec, write_dataset};

mod run_dir;
mod slurm;
mod sweep;

fn dales(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dales"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dales-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A config for the synthetic data: 6×6 images, 4 classes.
/// `dales train --config config --out out`, which must succeed.
fn train_config(config: &Path, out: &Path) {
    let o = dales(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

fn small_config(dir: &Path, data: &Path, kind: &str, epochs: usize) -> PathBuf {
    let path = dir.join(format!("{kind}.toml"));
    let toml = format!(
        "seed = 2\nepochs = {epochs}\nbatch_size = 8\n\n[data]\ndir = \"{}\"\n\n[model]\nkind = \"{kind}\"\nn_in = 36\nhidden = [16]\nn_out = 4\nni = 2\n\n[optim]\nlr = 0.05\n",
        data.display()
    );
    std::fs::write(&path, toml).unwrap();
    path
}

fn synthetic(dir: &Path, n_train: usize) -> PathBuf {
    let data = dir.join("data");
    write_dataset(
        &data,
        SyntheticSpec {
            n_train,
            n_test: 32,
            side: 6,
            classes: 4,
            seed: 3,
        },
    )
    .unwrap();
    data
}

#[test]
fn every_command_has_help() {
    for cmd in [
        vec!["--help"],
        vec!["train", "--help"],
        vec!["eval", "--help"],
        vec!["compare", "--help"],
        vec!["reproduce", "--help"],
        vec!["robustness", "--help"],
        vec!["sweep", "run", "--help"],
        vec!["sweep", "slurm", "--help"],
        vec!["analyze", "--help"],
        vec!["analyze", "response", "--help"],
    ] {
        let o = dales(&cmd);
        assert!(o.status.success(), "{cmd:?}: {}", text(&o));
        assert!(text(&o).contains("Usage"), "{cmd:?}");
    }
    let t = text(&dales(&["train", "--help"]));
    for flag in [
        "--preset", "--config", "--data", "--epochs", "--seed", "--out", "--device", "--resume",
    ] {
        assert!(t.contains(flag), "train --help lacks {flag}");
    }
}

#[test]
fn train_eval_compare_end_to_end() {
    let dir = temp("e2e");
    let data = synthetic(&dir, 96);
    let mut runs = Vec::new();
    for kind in ["dann", "mlp"] {
        let out = dir.join(kind);
        let cfg = small_config(&dir, &data, kind, 3);
        train_config(&cfg, &out);
        for f in [
            "config.toml",
            "metrics.csv",
            "checkpoint.safetensors",
            "resume.safetensors",
            "summary.json",
            "curves.png",
            "curves.svg",
        ] {
            assert!(out.join(f).exists(), "{kind}: {f} missing");
        }
        runs.push(out);
    }
    let logits = dir.join("logits.json");
    let o = dales(&[
        "eval",
        runs[0].to_str().unwrap(),
        "--logits-out",
        logits.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("test error"));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&logits).unwrap()).unwrap();
    let rows = json["logits"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    assert_eq!(rows[0].as_array().unwrap().len(), 4);

    let o = dales(&[
        "compare",
        runs[0].to_str().unwrap(),
        runs[1].to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("| dann"), "{}", text(&o));
    assert!(dir.join("compare.md").exists() && dir.join("compare.png").exists());
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = temp("bad");
    let data = synthetic(&dir, 16);
    // unknown key in a config
    let cfg = small_config(&dir, &data, "dann", 1);
    let text_cfg = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("hidden = [16]", "hidden = [16]\nwidht = 3");
    std::fs::write(&cfg, text_cfg).unwrap();
    let o = dales(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        dir.join("r").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("dann.toml") && text(&o).contains("widht"),
        "{}",
        text(&o)
    );
    // missing data directory
    let o = dales(&[
        "train",
        "--preset",
        "mlp",
        "--data",
        "/nonexistent/dir",
        "--out",
        dir.join("r2").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("/nonexistent/dir"), "{}", text(&o));
    // unknown preset
    let o = dales(&["train", "--preset", "resnet"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("resnet"), "{}", text(&o));
    // eval of a directory that is not a run
    let o = dales(&["eval", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("not a dales run directory"),
        "{}",
        text(&o)
    );
}

/// The spectrum, analyze-spectrum and row-sequential bench flags name the bad value.
#[test]
fn spectrum_and_rowseq_flags_are_checked() {
    let dir = temp("bad-spectrum");
    let out = dir.join("s");
    let out = out.to_str().unwrap();
    for (args, expected) in [
        (vec!["spectrum", "--seeds", "0", "--out", out], "--seeds 0"),
        (vec!["spectrum", "--bins", "0", "--out", out], "--bins 0"),
        (
            vec!["spectrum", "--model", "rnn", "--radius", "2"],
            "--radius",
        ),
        (vec!["spectrum", "--ratio", "0", "--out", out], "--ratio 0"),
        (vec!["spectrum", "--model", "lstm"], "lstm"),
        (vec!["analyze", "spectrum", out, "--bins", "0"], "--bins 0"),
        (
            vec!["bench", "--kinds", "rowseq_rnn", "--rowseq-batches", "0"],
            "--rowseq-batches",
        ),
        (vec!["bench", "--kinds", "rowseq_lstm"], "rowseq_lstm"),
    ] {
        let o = dales(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(expected), "{args:?}: {}", text(&o));
    }
    // A run that is not recurrent has no recurrent spectrum.
    let data = synthetic(&dir, 16);
    let cfg = small_config(&dir, &data, "dann", 1);
    let run = dir.join("ff");
    let o = dales(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = dales(&["analyze", "spectrum", run.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("recurrent"), "{}", text(&o));
}

/// Ctrl-C saves the state; `--resume` finishes the run.
#[test]
fn ctrl_c_saves_and_resume_finishes() {
    let dir = temp("sigint");
    let data = synthetic(&dir, 2000);
    let out = dir.join("run");
    let cfg = small_config(&dir, &data, "dann", 40);
    let child = Command::new(env!("CARGO_BIN_EXE_dales"))
        .args([
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !out.join("metrics.csv").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no epoch finished"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.code() == Some(0) {
        return; // the run finished before the signal arrived: nothing to resume
    }
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("dales train --resume"), "{err}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["finished"], false);
    let o = dales(&["train", "--resume", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["finished"], true);
    assert_eq!(summary["epochs_done"], 40);
}

#[test]
fn bench_rejects_bad_flags() {
    for (args, want) in [
        (
            &["bench", "--kinds", "nope", "--quick"][..],
            "--kinds: unknown model kind `nope`",
        ),
        (&["bench", "--batches", "32,0", "--quick"][..], "--batches"),
        (&["bench", "--steps", "0", "--no-epoch"][..], "--steps"),
        (
            &["bench", "--peak-gflops", "0", "--quick"][..],
            "--peak-gflops: expected a positive number",
        ),
    ] {
        let o = dales(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(text(&o).contains(want), "{args:?}: {}", text(&o));
    }
}

/// A sequence run from a TOML config: train, eval, robustness and every analysis, each writing
/// its files; bad inputs are named errors.
#[test]
fn sequence_run_robustness_and_analyses_end_to_end() {
    let dir = temp("seq");
    let data = synthetic(&dir, 60);
    let config = dir.join("arun.toml");
    std::fs::write(
        &config,
        format!(
            "seed = 3\nepochs = 1\nbatch_size = 10\n\n[data]\ndir = \"{}\"\n\n[model]\nkind = \"arun\"\nhidden = 6\ncontroller = 3\nn_out = 4\nrows = 6\ncols = 6\npool = 2\npermutation_seed = 5\n\n[optim]\nmethod = \"adam\"\nlr = 0.01\n",
            data.display()
        ),
    )
    .unwrap();
    let run = dir.join("run");
    let run_s = run.to_str().unwrap();
    train_config(&config, &run);
    // compare tabulates sequence runs too.
    let o = dales(&["compare", run_s, "--out", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("| run | arun"), "{}", text(&o));
    for f in [
        "checkpoint.safetensors",
        "metrics.csv",
        "config.toml",
        "curves.png",
    ] {
        assert!(run.join(f).exists(), "missing {f}");
    }
    let o = dales(&["eval", run_s]);
    assert!(
        o.status.success() && text(&o).contains("9 steps"),
        "{}",
        text(&o)
    );
    let out = dir.join("rob");
    let o = dales(&[
        "robustness",
        run_s,
        "--xi",
        "0,2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = std::fs::read_to_string(out.join("robustness.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 + 1, "{csv}");
    assert!(out.join("robustness.png").exists() && out.join("robustness.md").exists());
    // The multivariate-normal drive N(ξ, c·I).
    let o = dales(&[
        "robustness",
        run_s,
        "--xi",
        "0,3",
        "--drive",
        "mvnormal",
        "--cov",
        "0.5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for (what, file) in [
        ("traces", "traces.csv"),
        ("lyapunov", "lyapunov.csv"),
        ("jacobian", "jacobian.csv"),
        ("response", "fracdiff.csv"),
    ] {
        let o = dales(&["analyze", what, run_s, "--xi", "0,1", "--sequences", "4"]);
        assert!(o.status.success(), "{what}: {}", text(&o));
        assert!(
            run.join("analysis").join(file).exists(),
            "{what}: no {file}"
        );
    }
    // Negative amplitudes, and a feed-forward run given to a sequence command.
    let o = dales(&["robustness", run_s, "--xi", "-1"]);
    assert!(
        !o.status.success() && text(&o).contains("--xi -1"),
        "{}",
        text(&o)
    );
    for (args, message) in [
        (vec!["robustness", run_s, "--limit", "0"], "--limit 0"),
        (
            vec!["analyze", "traces", run_s, "--sequences", "0"],
            "--sequences 0",
        ),
        (
            vec!["analyze", "response", run_s, "--trials", "0"],
            "--trials 0",
        ),
        (
            vec!["analyze", "lyapunov", run_s, "--xi", "1,nan"],
            "--xi NaN",
        ),
        (vec!["bench", "--arun-seq", "0"], "--arun-seq 0"),
        (
            vec!["robustness", run_s, "--drive", "mvnormal", "--cov", "-1"],
            "--cov -1",
        ),
        (
            vec!["bench", "--arun-seq", "5", "--seq-model", "mlp"],
            "--seq-model mlp",
        ),
        (
            vec!["bench", "--arun-seq", "5", "--seq-timed", "0"],
            "--seq-timed 0",
        ),
        (vec!["train", "--preset", "copy-nope"], "copy-MODEL"),
    ] {
        let o = dales(&args);
        assert!(
            !o.status.success() && text(&o).contains(message),
            "{args:?}: {}",
            text(&o)
        );
    }
    let ff = dir.join("ff");
    train_config(&small_config(&dir, &data, "mlp", 1), &ff);
    let o = dales(&["analyze", "traces", ff.to_str().unwrap()]);
    assert!(
        !o.status.success() && text(&o).contains("not a sequence-model run"),
        "{}",
        text(&o)
    );
    let o = dales(&["train", "--preset", "transformer"]);
    assert!(
        !o.status.success() && text(&o).contains("arun-small"),
        "{}",
        text(&o)
    );
}

/// A copy-task run from a TOML config: it trains on generated sequences (no dataset), `eval`
/// regenerates its test sequences, and the image-only commands refuse it by name.
#[test]
fn copy_task_run_trains_evaluates_and_is_refused_by_image_commands() {
    let dir = temp("copy");
    let config = dir.join("copy.toml");
    std::fs::write(
        &config,
        "seed = 2\nepochs = 1\nbatch_size = 10\n\n[data]\nvalidation = 0\n\n[model]\nkind = \"rnn_relu\"\nhidden = 8\nn_out = 5\n\n[model.copy]\ndelay = 4\nlength = 2\nsymbols = 4\ntrain = 100\ntest = 30\n\n[optim]\nmethod = \"adam\"\nlr = 0.01\n",
    )
    .unwrap();
    let run = dir.join("run");
    let run_s = run.to_str().unwrap();
    train_config(&config, &run);
    let o = dales(&["eval", run_s]);
    assert!(
        o.status.success() && text(&o).contains("8 steps") && text(&o).contains("30 sequences"),
        "{}",
        text(&o)
    );
    for args in [vec!["robustness", run_s], vec!["analyze", "traces", run_s]] {
        let o = dales(&args);
        assert!(
            !o.status.success() && text(&o).contains("copy-task run"),
            "{args:?}: {}",
            text(&o)
        );
    }
}

/// A conv DANN and a ColumnEI convnet from a config file on 6×6 images: they train, write
/// `dales-conv/1` checkpoints, evaluate (with logits), resume, and a bad layer names its key.
#[test]
fn conv_runs_train_evaluate_and_resume() {
    let dir = temp("conv");
    let data = synthetic(&dir, 64);
    for family in ["dann", "columnei"] {
        let config = dir.join(format!("conv_{family}.toml"));
        let toml = format!(
            "seed = 3\nepochs = 2\nbatch_size = 8\n\n[data]\ndir = \"{}\"\n\n[model]\nkind = \
             \"conv\"\nfamily = \"{family}\"\nin_shape = [1, 6, 6]\ndense = [[8, 2]]\nn_out = 4\n\n\
             [[model.conv]]\nc_e = 4\nc_i = 2\nkernel = [3, 3]\npadding = [1, 1]\npool = 2\n\n\
             [optim]\nlr = 0.02\n",
            data.display()
        );
        std::fs::write(&config, toml).unwrap();
        let out = dir.join(family);
        train_config(&config, &out);
        let bytes = std::fs::read(out.join("checkpoint.safetensors")).unwrap();
        let (_, meta) = dales::checkpoint::decode(&out, &bytes).unwrap();
        assert_eq!(meta["format"], "dales-conv/1");
        assert_eq!(meta["kind"], format!("conv_{family}"));
        let logits = dir.join(format!("{family}.json"));
        let o = dales(&[
            "eval",
            out.to_str().unwrap(),
            "--logits-out",
            logits.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains(&format!("conv_{family} model")),
            "{}",
            text(&o)
        );
        let o = dales(&["train", "--resume", out.to_str().unwrap(), "--epochs", "3"]);
        assert!(o.status.success(), "{}", text(&o));
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["epochs_done"], 3, "{summary}");
    }
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[model]\nkind = \"conv\"\nfamily = \"dann\"\n\n[[model.conv]]\nc_e = 4\nc_i = 0\nkernel = \
         [3, 3]\n\n[optim]\nlr = 0.1\n",
    )
    .unwrap();
    let o = dales(&["train", "--config", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("model.conv[0].c_i"), "{}", text(&o));
}
