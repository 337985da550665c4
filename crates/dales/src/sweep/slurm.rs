//! The SLURM job array of a sweep: one sbatch script whose array task `i` runs
//! `dales sweep task SWEEP_DIR i`.
//!
//! The array lists only the runs not finished when the script is written, so submitting it
//! again after a time limit or a failure runs what is left, and each task resumes its run
//! from its saved state. SLURM is asked for an early `TERM` (`--signal=B:TERM@…`): the batch
//! shell forwards it to dales, which saves the run and exits, and waits until it has.

use std::fmt::Write as _;
use std::path::Path;

/// The resources and limits of each array task (`None`: the cluster's default).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SlurmOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time`, e.g. `2:00:00`.
    pub time: Option<String>,
    /// `--cpus-per-task` (also the threads each run uses).
    pub cpus_per_task: usize,
    /// `--mem`, e.g. `4G`.
    pub mem: Option<String>,
    /// `--gpus-per-task`.
    pub gpus_per_task: Option<u32>,
    /// At most this many tasks at once (`--array=…%K`).
    pub max_concurrent: Option<usize>,
    /// Seconds before the time limit at which dales is asked to save and stop.
    pub term_before: u32,
    /// Further `#SBATCH` arguments, as given.
    pub extra: Vec<String>,
}

/// `ids` (sorted, distinct) in SLURM's array syntax: `0-3,5,7-9`.
pub fn array_spec(ids: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        parts.push(if j > i {
            format!("{}-{}", ids[i], ids[j])
        } else {
            ids[i].to_string()
        });
        i = j + 1;
    }
    parts.join(",")
}

/// `s` quoted for a POSIX shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The sbatch script of sweep `name` in `sweep_dir` (absolute) running the runs `ids` with
/// the `dales` at `dales` (absolute); task logs go to `sweep_dir/slurm/`.
pub fn script(
    name: &str,
    sweep_dir: &Path,
    dales: &Path,
    ids: &[usize],
    options: &SlurmOptions,
) -> String {
    let dir = sweep_dir.display().to_string();
    let mut array = array_spec(ids);
    if let Some(k) = options.max_concurrent {
        let _ = write!(array, "%{k}");
    }
    let mut s = format!(
        "#!/bin/bash\n\
         # dales sweep `{name}`: array task i trains run i of {dir}/sweep.json.\n\
         # Finished runs are skipped and interrupted ones resume: to finish the sweep after a\n\
         # time limit or a failure, write and submit this script again (`dales sweep slurm … \
         --submit`).\n\
         #SBATCH --job-name=dales-{name}\n\
         #SBATCH --array={array}\n\
         #SBATCH --output={dir}/slurm/%A_%a.out\n\
         #SBATCH --cpus-per-task={}\n\
         #SBATCH --signal=B:TERM@{}\n",
        options.cpus_per_task.max(1),
        options.term_before
    );
    let mut directive = |flag: &str, value: Option<String>| {
        if let Some(v) = value {
            let _ = writeln!(s, "#SBATCH --{flag}={v}");
        }
    };
    directive("partition", options.partition.clone());
    directive("time", options.time.clone());
    directive("mem", options.mem.clone());
    directive(
        "gpus-per-task",
        options.gpus_per_task.map(|g| g.to_string()),
    );
    for arg in &options.extra {
        let _ = writeln!(s, "#SBATCH {arg}");
    }
    let _ = write!(
        s,
        "\nset -u\n\
         # Each run uses the CPUs it was given.\n\
         export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-1}}\"\n\
         # dales saves its run and exits on TERM. A trap runs only while the shell waits, so\n\
         # dales runs in the background and the trap forwards SLURM's early TERM to it.\n\
         {} sweep task {} \"$SLURM_ARRAY_TASK_ID\" &\n\
         pid=$!\n\
         trap 'kill -TERM \"$pid\" 2>/dev/null' TERM\n\
         wait \"$pid\"\n\
         status=$?\n\
         # After a trap, `wait` returns at once: wait for dales to finish saving.\n\
         while kill -0 \"$pid\" 2>/dev/null; do\n  wait \"$pid\"\n  status=$?\n\
         done\n\
         exit \"$status\"\n",
        quote(&dales.display().to_string()),
        quote(&dir)
    );
    s
}
