//! `dales sweep` on synthetic data: a local sweep with a failing point, killed and run again;
//! one task at a time and the sbatch script without a scheduler.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{dales, small_config, synthetic, temp, text};

/// A sweep file beside a base config of `kind` on `data`: learning rates × data directories
/// (the second missing, so its runs fail), `seeds` seeds, `epochs` epochs.
pub fn sweep_file(dir: &Path, data: &Path, epochs: usize, seeds: u64, dirs: &[&Path]) -> PathBuf {
    small_config(dir, data, "dann", epochs);
    let dirs: Vec<String> = dirs
        .iter()
        .map(|d| format!("\"{}\"", d.display()))
        .collect();
    let path = dir.join("sweep.toml");
    let text = format!(
        "name = \"t\"\nconfig = \"dann.toml\"\nseeds = {seeds}\n\n[set]\nmodel.hidden = [64, 64]\n\n\
         [grid]\ndata.dir = [{}]\noptim.lr = [0.05, 0.2]\n",
        dirs.join(", ")
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn finished(run: &Path) -> bool {
    std::fs::read_to_string(run.join("summary.json"))
        .is_ok_and(|s| s.contains("\"finished\": true"))
}

fn runs(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().contains("_seed"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_local_sweep_survives_a_kill_and_a_failing_point() {
    let dir = temp("sweep-local");
    let data = synthetic(&dir, 6000);
    let missing = dir.join("missing");
    let file = sweep_file(&dir, &data, 3, 2, &[&data, &missing]);
    let out = dir.join("out");
    let args = [
        "sweep",
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];

    // Killed (SIGKILL: nothing saved on the way out) once a run has finished.
    let mut child = Command::new(env!("CARGO_BIN_EXE_dales"))
        .args(args)
        .args(["--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !(out.exists() && runs(&out).iter().any(|r| finished(r))) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no run finished"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done: Vec<PathBuf> = runs(&out).into_iter().filter(|r| finished(r)).collect();
    assert!(done.len() < 4, "every run finished before the kill");
    let before: Vec<Vec<u8>> = done
        .iter()
        .map(|r| std::fs::read(r.join("metrics.csv")).unwrap())
        .collect();

    // Run again: the finished runs are kept, the rest train, the missing data fail alone.
    let o = dales(&args);
    let log = text(&o);
    assert_eq!(o.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "8 runs, {} done, {} to train",
            done.len(),
            8 - done.len()
        )),
        "{log}"
    );
    for (r, b) in done.iter().zip(&before) {
        assert_eq!(
            &std::fs::read(r.join("metrics.csv")).unwrap(),
            b,
            "{} retrained",
            r.display()
        );
    }
    let all = runs(&out);
    assert_eq!(all.len(), 8);
    for r in &all {
        let name = r.file_name().unwrap().to_string_lossy().to_string();
        if name.contains("missing") {
            let error = std::fs::read_to_string(r.join("error.txt")).unwrap();
            assert!(error.contains(&missing.display().to_string()), "{error}");
            assert!(log.contains(&format!("{name}: failed")), "{log}");
        } else {
            assert!(finished(r), "{name} did not finish:\n{log}");
        }
    }
    let md = std::fs::read_to_string(out.join("collect.md")).unwrap();
    assert!(
        md.contains("4 runs not finished") && md.contains("failed:"),
        "{md}"
    );
    assert!(out.join("collect-curves.png").exists() && out.join("collect-values.png").exists());

    // A sweep's run is the run `dales train` makes of its configuration.
    let run = &all[0];
    let single = dir.join("single");
    let config = run.join("config.toml");
    let o = dales(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        single.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(run.join("checkpoint.safetensors")).unwrap(),
        std::fs::read(single.join("checkpoint.safetensors")).unwrap()
    );

    // Collect alone, by another metric; a sweep file that changes a planned run is refused.
    let o = dales(&[
        "sweep",
        "collect",
        out.to_str().unwrap(),
        "--metric",
        "best_test_error",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("best_test_error (mean ± sd)"),
        "{}",
        text(&o)
    );
    let changed = std::fs::read_to_string(&file)
        .unwrap()
        .replace("[64, 64]", "[32]");
    std::fs::write(&file, changed).unwrap();
    let o = dales(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("has another configuration"),
        "{}",
        text(&o)
    );
}

#[test]
fn sweep_tasks_and_the_sbatch_script_work_without_a_scheduler() {
    let dir = temp("sweep-task");
    let data = synthetic(&dir, 200);
    let file = sweep_file(&dir, &data, 1, 1, &[&data]);
    let out = dir.join("out");
    let slurm = |extra: &[&str]| {
        let mut args = vec![
            "sweep",
            "slurm",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let o = dales(&args);
        assert!(o.status.success(), "{}", text(&o));
        std::fs::read_to_string(out.join("slurm/sweep.sbatch")).unwrap()
    };
    let script = slurm(&["--time", "0:10:00", "--max-concurrent", "1"]);
    assert!(script.contains("#SBATCH --array=0-1%1\n"), "{script}");
    assert!(script.contains("#SBATCH --time=0:10:00\n"), "{script}");

    let task = |id: &str| dales(&["sweep", "task", out.to_str().unwrap(), id]);
    let o = task("1");
    assert!(o.status.success(), "{}", text(&o));
    let done: Vec<PathBuf> = runs(&out).into_iter().filter(|r| finished(r)).collect();
    assert_eq!(done.len(), 1);
    assert!(
        done[0].to_string_lossy().ends_with("_lr0.2_seed1"),
        "{}",
        done[0].display()
    );
    let o = task("1");
    assert!(
        o.status.success() && text(&o).contains("already finished"),
        "{}",
        text(&o)
    );
    // Bad flags name themselves.
    let o = dales(&[
        "sweep",
        "collect",
        out.to_str().unwrap(),
        "--metric",
        "accuracy",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("--metric") && text(&o).contains("final_test_error"),
        "{}",
        text(&o)
    );
    let o = dales(&["sweep", "run", file.to_str().unwrap(), "--jobs", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--jobs"), "{}", text(&o));
    let o = task("2");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("sweep.json") && text(&o).contains("no run 2"),
        "{}",
        text(&o)
    );

    // Written again, the array holds only the run left.
    let script = slurm(&[]);
    assert!(script.contains("#SBATCH --array=0\n"), "{script}");
    assert!(task("0").status.success());
    let o = dales(&[
        "sweep",
        "slurm",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        text(&o).contains("all 2 runs of `t` are finished"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_diverging_setting_is_a_result_not_a_failure() {
    let dir = temp("sweep-diverged");
    let data = synthetic(&dir, 200);
    small_config(&dir, &data, "dann", 2);
    let file = dir.join("sweep.toml");
    std::fs::write(
        &file,
        "config = \"dann.toml\"\n[grid]\noptim.lr = [0.05, 1e9]\n",
    )
    .unwrap();
    let out = dir.join("out");
    let args = [
        "sweep",
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let o = dales(&args);
    let log = text(&o);
    assert!(o.status.success(), "{log}");
    assert!(log.contains("lr1000000000.0_seed1: diverged"), "{log}");
    let diverged = std::fs::read_to_string(out.join("lr1000000000.0_seed1/diverged.txt")).unwrap();
    assert!(diverged.contains("diverged"), "{diverged}");
    let md = std::fs::read_to_string(out.join("collect.md")).unwrap();
    assert!(md.contains("| 1 diverged"), "{md}");
    // The best setting is the one that trained; run again, nothing trains.
    let best = md.split("## Best setting per model").nth(1).unwrap();
    let best = best.split("runs not finished").next().unwrap();
    assert!(
        best.contains("lr0.05") && !best.contains("lr1000000000"),
        "{md}"
    );
    let o = dales(&args);
    assert!(
        text(&o).contains("2 runs, 2 done, 0 to train"),
        "{}",
        text(&o)
    );
    let o = dales(&["sweep", "task", out.to_str().unwrap(), "1"]);
    assert!(
        o.status.success() && text(&o).contains("diverged before"),
        "{}",
        text(&o)
    );
}
