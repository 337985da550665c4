//! A sweep through a real SLURM on this machine (scripts/slurm/start.sh: slurmctld, slurmd and
//! munged from Debian's slurm-wlm and munge, everything in a temporary directory): the
//! generated array script is submitted, runs to completion under the scheduler and is
//! collected; a task stopped by SLURM's TERM saves its run, and submitting again resumes it to
//! the checkpoint an uninterrupted run makes. Without SLURM the test fails, saying why.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use dales_data::synthetic::{SyntheticSpec, write_dataset};

use super::{temp, text};

/// A one-node cluster, stopped when dropped.
struct Cluster {
    dir: PathBuf,
    conf: String,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/slurm")
        .join(name)
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let o = Command::new(script("start.sh"))
            .arg(dir)
            .env("DALES_SLURM_PORT", free_ports().to_string())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "SLURM did not start on this machine (.ci/run installs slurm-wlm and munge):\n{}",
            text(&o)
        );
        let out = String::from_utf8_lossy(&o.stdout);
        let conf = out
            .trim()
            .strip_prefix("SLURM_CONF=")
            .expect("start.sh prints SLURM_CONF");
        Cluster {
            dir: dir.to_path_buf(),
            conf: conf.to_string(),
        }
    }

    /// `program args` with this cluster's SLURM_CONF.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap()
    }

    /// Wait until job `job` has left the queue.
    fn wait(&self, job: &str, limit: Duration) {
        let start = Instant::now();
        loop {
            let o = self.run("squeue", &["-h", "-j", job]);
            if o.status.success() && o.stdout.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "job {job} still queued after {limit:?}: {}",
                text(&self.run("squeue", &[]))
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `dales sweep slurm FILE --out OUT --submit`: the job id.
    fn submit(&self, file: &Path, out: &Path) -> String {
        let o = Command::new(env!("CARGO_BIN_EXE_dales"))
            .args([
                "sweep",
                "slurm",
                file.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .arg("--submit")
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
}

/// A port `p` such that `p` and `p + 1` are free here (slurmctld's and slurmd's), so that the
/// test's cluster does not meet another one.
fn free_ports() -> u16 {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let start = 20000 + (std::process::id() % 20000) as u16;
    (start..start + 2000)
        .step_by(2)
        .find(|&p| free(p) && free(p + 1))
        .expect("two free ports")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script("stop.sh")).arg(&self.dir).output();
    }
}

fn finished(run: &Path) -> bool {
    std::fs::read_to_string(run.join("summary.json"))
        .is_ok_and(|s| s.contains("\"finished\": true"))
}

#[test]
fn a_sweep_runs_as_a_slurm_job_array_and_resumes_after_term() {
    let dir = temp("slurm");
    let cluster = Cluster::start(&dir.join("cluster"));
    let data = dir.join("data");
    let spec = SyntheticSpec {
        n_train: 2000,
        n_test: 100,
        side: 28,
        classes: 10,
        seed: 5,
    };
    write_dataset(&data, spec).unwrap();

    // 2 models × 2 seeds × 1 epoch on a subset, through the scheduler.
    let file = dir.join("small.toml");
    std::fs::write(
        &file,
        format!(
            "seeds = 2\n[set]\nepochs = 1\ndata.dir = \"{}\"\ndata.limit_train = 500\n\
             model.hidden = [32]\n[grid]\npreset = [\"mlp\", \"dann\"]\n",
            data.display()
        ),
    )
    .unwrap();
    let out = dir.join("small");
    let job = cluster.submit(&file, &out);
    cluster.wait(&job, Duration::from_secs(300));
    for run in ["mlp_seed1", "dann_seed1", "mlp_seed2", "dann_seed2"] {
        let log =
            std::fs::read_to_string(out.join(format!("slurm/{job}_0.out"))).unwrap_or_default();
        assert!(
            finished(&out.join(run)),
            "{run} did not finish; task 0's log:\n{log}"
        );
    }
    let o = super::dales(&["sweep", "collect", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = std::fs::read_to_string(out.join("collect.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        csv.lines().skip(1).all(|l| l.contains(",2,2,0,1 2,")),
        "{csv}"
    );

    // One longer run, stopped by TERM to the batch shell (as SLURM does before a time limit).
    let file = dir.join("long.toml");
    std::fs::write(
        &file,
        format!(
            "base = \"dann\"\n[set]\nepochs = 30\nbatch_size = 16\ndata.dir = \"{}\"\n\
             model.hidden = [128, 128]\n",
            data.display()
        ),
    )
    .unwrap();
    let out = dir.join("long");
    let run = out.join("dann_seed1");
    let job = cluster.submit(&file, &out);
    let start = Instant::now();
    while !run.join("metrics.csv").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run never started an epoch"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = cluster.run("scancel", &["--batch", "--signal=TERM", &job]);
    assert!(o.status.success(), "{}", text(&o));
    cluster.wait(&job, Duration::from_secs(60));
    let log = std::fs::read_to_string(out.join(format!("slurm/{job}_0.out"))).unwrap();
    assert!(log.contains("SIGTERM: saving"), "{log}");
    assert!(
        !finished(&run) && run.join("resume.safetensors").exists(),
        "{log}"
    );

    // Submitted again, the task resumes the run to the end.
    let job = cluster.submit(&file, &out);
    cluster.wait(&job, Duration::from_secs(300));
    let log = std::fs::read_to_string(out.join(format!("slurm/{job}_0.out"))).unwrap();
    assert!(finished(&run), "{log}");

    // The same sweep here without a stop, one thread as each task had: the same checkpoint.
    let here = dir.join("here");
    let o = Command::new(env!("CARGO_BIN_EXE_dales"))
        .args([
            "sweep",
            "run",
            file.to_str().unwrap(),
            "--out",
            here.to_str().unwrap(),
        ])
        .args(["--jobs", "1", "--threads", "1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(run.join("checkpoint.safetensors")).unwrap(),
        std::fs::read(here.join("dann_seed1/checkpoint.safetensors")).unwrap(),
        "the resumed run differs from the uninterrupted one"
    );
    drop(cluster);
}
