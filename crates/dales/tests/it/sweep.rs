//! Sweep files (validation, expansion, names), manifests, SLURM array specs, and `collect` on
//! run directories with known metrics.

use std::path::{Path, PathBuf};

use dales::run::{AnyConfig, EpochRecord, Summary, metrics_csv};
use dales::sweep::manifest::{ERROR_FILE, record_failure};
use dales::sweep::slurm::{SlurmOptions, array_spec, script};
use dales::sweep::{Manifest, Metric, SweepFile, collect};

use crate::common::temp_dir;

fn parse(text: &str) -> dales::Result<SweepFile> {
    SweepFile::parse(text, Path::new("/sweeps/s.toml"))
}

/// The error of a sweep whose parse or plan fails.
fn error(text: &str) -> String {
    match parse(text).and_then(|f| f.plan(None).map(|_| f)) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_sweep_error_names_its_key() {
    let cases: [(&str, &[&str]); 14] = [
        ("base = \"dann\"\nfoo = 1", &["foo", "not a sweep key"]),
        ("base = \"dann\"\n[grid]\noptim.lrr = [0.1]", &["optim.lrr"]),
        (
            "base = \"dann\"\n[set]\nmodel.hiden = [3]",
            &["model.hiden", "hiden"],
        ),
        (
            "base = \"dann\"\n[grid]\nepochs = [\"x\"]",
            &["epochs", "invalid type"],
        ),
        (
            "base = \"dann\"\n[grid]\noptim.lr = []",
            &["grid.optim.lr", "empty axis"],
        ),
        (
            "base = \"dann\"\n[grid]\noptim.lr = 0.1",
            &["grid.optim.lr", "list of values"],
        ),
        (
            "base = \"dann\"\n[grid]\noptim.lr = [-1.0]",
            &["optim.lr", "positive"],
        ),
        (
            "base = \"dann\"\n[[zip]]\noptim.lr = [0.1, 0.2]\nepochs = [1]",
            &["zip[0].epochs", "as long"],
        ),
        ("base = \"dann\"\n[grid]\nseed = [1, 2]", &["seed", "seeds"]),
        ("base = \"dann\"\nseeds = 0", &["seeds"]),
        (
            "base = \"dann\"\nmetric = \"accuracy\"",
            &["metric", "final_test_error"],
        ),
        ("base = \"dan\"", &["base", "dann"]),
        (
            "base = \"dann\"\n[grid]\npreset = [\"mlp\"]",
            &["base", "preset"],
        ),
        (
            "base = \"dann\"\n[grid]\noptim.lr = { geomspace = [0.0, 1.0, 3] }",
            &["grid.optim.lr", "positive"],
        ),
    ];
    for (text, needles) in cases {
        let e = error(text);
        for needle in needles {
            assert!(
                e.contains(needle),
                "`{needle}` not in the error of\n{text}\n→ {e}"
            );
        }
        assert!(e.contains("/sweeps/s.toml"), "no file named: {e}");
    }
}

#[test]
fn every_preset_survives_the_trip_through_a_sweep_unchanged() {
    use dales::presets::{CONV_PRESETS, PRESETS, RECURRENT_PRESETS, SEQ_PRESETS};
    let names = PRESETS
        .iter()
        .chain(&SEQ_PRESETS)
        .chain(&RECURRENT_PRESETS)
        .chain(&CONV_PRESETS);
    for name in names.chain(&["copy-arun-small"]) {
        let plan = parse(&format!("base = \"{name}\"\nseeds = [1]\n"))
            .unwrap()
            .plan(None);
        let plan = plan.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            plan.runs[0].config,
            AnyConfig::preset(name).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn a_grid_expands_seed_by_seed_with_the_first_axis_slowest() {
    let file = parse(
        "seeds = [3, 7]\n[set]\nepochs = 2\n[grid]\npreset = [\"mlp\", \"dann\"]\n\
         optim.lr = [0.01, 0.1]\n",
    )
    .unwrap();
    let plan = file.plan(None).unwrap();
    let dirs: Vec<&str> = plan.runs.iter().map(|r| r.dir.as_str()).collect();
    assert_eq!(
        dirs,
        [
            "mlp_lr0.01_seed3",
            "mlp_lr0.1_seed3",
            "dann_lr0.01_seed3",
            "dann_lr0.1_seed3",
            "mlp_lr0.01_seed7",
            "mlp_lr0.1_seed7",
            "dann_lr0.01_seed7",
            "dann_lr0.1_seed7",
        ]
    );
    assert_eq!(plan.keys, ["preset", "optim.lr"]);
    for (i, run) in plan.runs.iter().enumerate() {
        assert_eq!(run.id, i);
        // The configuration carries the setting, the seed and the [set] values; the rest is
        // the preset's.
        let want_lr = [0.01, 0.1][i % 2];
        assert_eq!(run.config.lr(), want_lr);
        assert_eq!(run.config.seed(), [3, 7][i / 4]);
        assert_eq!(run.config.epochs(), 2);
        let model = run.config.name();
        assert_eq!(model, ["mlp", "dann"][(i / 2) % 2]);
        let mut preset = AnyConfig::preset(&model).unwrap();
        let AnyConfig::FeedForward(ref mut c) = preset else {
            panic!()
        };
        c.optim.lr = want_lr;
        c.seed = run.config.seed();
        c.epochs = 2;
        assert_eq!(preset, run.config, "{}", run.dir);
    }
}

#[test]
fn zipped_keys_vary_together_and_shared_names_use_the_whole_key() {
    let file = parse(
        "base = \"dann\"\n[[zip]]\nmodel.hidden = [[20, 20], [40]]\noptim.lr = [0.1, 0.2]\n\
         [grid]\noptim.clip.max_norm = [1.0, 5.0]\nlr_like.max_norm = [1]\n",
    );
    // `lr_like` is not a key of the configuration: refused, naming it.
    let e = file
        .and_then(|f| f.plan(None).map(|_| ()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("lr_like"), "{e}");

    let file = parse(
        "base = \"dann\"\n[[zip]]\nmodel.hidden = [[20, 20], [40]]\noptim.lr = [0.1, 0.2]\n\
         [grid]\noptim.clip.max_norm = [1.0, 5.0]\noptim.clip.scope = [\"layer\"]\n",
    )
    .unwrap();
    let plan = file.plan(None).unwrap();
    let dirs: Vec<&str> = plan.runs.iter().map(|r| r.dir.as_str()).collect();
    assert_eq!(
        dirs,
        [
            "hidden20x20_lr0.1_max_norm1.0_scopelayer_seed1",
            "hidden20x20_lr0.1_max_norm5.0_scopelayer_seed1",
            "hidden40_lr0.2_max_norm1.0_scopelayer_seed1",
            "hidden40_lr0.2_max_norm5.0_scopelayer_seed1",
        ]
    );
    let AnyConfig::FeedForward(c) = &plan.runs[2].config else {
        panic!()
    };
    assert_eq!((c.model.hidden.clone(), c.optim.lr), (vec![40], 0.2));
    assert_eq!(c.optim.clip.max_norm, 1.0);

    // Two axes ending in the same component are told apart by their whole key.
    let file = parse(
        "base = \"dann\"\n[grid]\noptim.lr = [0.1]\noptim.groups.wix.lr_scale = [2.0]\n\
         optim.groups.wei.lr_scale = [0.5]\n",
    )
    .unwrap();
    let plan = file.plan(None).unwrap();
    assert_eq!(
        plan.runs[0].dir,
        "lr0.1_optim-groups-wix-lr_scale2.0_optim-groups-wei-lr_scale0.5_seed1"
    );
}

#[test]
fn spaced_axes_are_rounded_to_six_digits() {
    let file = parse("base = \"mlp\"\n[grid]\noptim.lr = { geomspace = [0.05, 0.0005, 7] }\n");
    let plan = file.unwrap().plan(None).unwrap();
    let lrs: Vec<f64> = plan.runs.iter().map(|r| r.config.lr()).collect();
    // The spectral paper's grid (spec B4): geomspace(5e-2, 5e-4, 7).
    assert_eq!(
        lrs,
        [
            0.05, 0.0232079, 0.0107722, 0.005, 0.00232079, 0.00107722, 0.0005
        ]
    );
    let file =
        parse("base = \"mlp\"\n[grid]\nepochs = [1]\noptim.lr = { linspace = [0.1, 0.3, 3] }\n");
    let plan = file.unwrap().plan(None).unwrap();
    let lrs: Vec<f64> = plan.runs.iter().map(|r| r.config.lr()).collect();
    assert_eq!(lrs, [0.1, 0.2, 0.3]);
}

#[test]
fn a_relative_config_base_is_read_beside_the_sweep_file_and_data_dirs_become_absolute() {
    let dir = temp_dir("sweep-config-base");
    let base = AnyConfig::preset("layernorm").unwrap();
    std::fs::write(dir.join("base.toml"), base.to_toml()).unwrap();
    let path = dir.join("s.toml");
    std::fs::write(&path, "config = \"base.toml\"\nseeds = 2\n").unwrap();
    let plan = SweepFile::read(&path)
        .unwrap()
        .plan(Some(Path::new("data")))
        .unwrap();
    assert_eq!(plan.runs.len(), 2);
    assert_eq!(plan.runs[1].dir, "layernorm_seed2");
    let data = plan.runs[0].config.data_dir().unwrap();
    assert!(
        data.is_absolute() && data.ends_with("data"),
        "{}",
        data.display()
    );
}

#[test]
fn a_manifest_grows_but_never_changes_a_planned_run() {
    let dir = temp_dir("sweep-manifest");
    let text = |seeds: u64, epochs: u64| {
        format!(
            "base = \"mlp\"\nseeds = {seeds}\n[set]\nepochs = {epochs}\n[grid]\noptim.lr = [0.1, 0.2]\n"
        )
    };
    let manifest = |t: &str| {
        let f = parse(t).unwrap();
        Manifest::new(&f, &f.plan(None).unwrap())
    };
    let first = manifest(&text(1, 3));
    first.write(&dir).unwrap();
    assert_eq!(Manifest::read(&dir).unwrap(), first);
    // More seeds: the old runs keep their ids and configurations.
    let more = manifest(&text(2, 3));
    more.write(&dir).unwrap();
    assert_eq!(more.runs[..2], first.runs[..]);
    // Another configuration under an existing run, or a run dropped: refused, naming the run.
    let e = manifest(&text(2, 4)).write(&dir).unwrap_err().to_string();
    assert!(
        e.contains("sweep.json") && e.contains("lr0.1_seed1 has another configuration"),
        "{e}"
    );
    let e = manifest(&text(1, 3)).write(&dir).unwrap_err().to_string();
    assert!(
        e.contains("run lr0.1_seed2 this sweep does not plan"),
        "{e}"
    );
    assert_eq!(Manifest::read(&dir).unwrap(), more);
    let e = more.run(&dir, 4).unwrap_err().to_string();
    assert!(e.contains("no run 4") && e.contains("0 … 3"), "{e}");
}

#[test]
fn a_missing_or_foreign_manifest_is_refused_naming_it() {
    let dir = temp_dir("sweep-manifest-bad");
    let e = Manifest::read(&dir).unwrap_err().to_string();
    assert!(e.contains("sweep.json"), "{e}");
    std::fs::write(dir.join("sweep.json"), "{\"runs\": 3}").unwrap();
    let e = Manifest::read(&dir).unwrap_err().to_string();
    assert!(
        e.contains("sweep.json") && e.contains("not a dales sweep manifest"),
        "{e}"
    );
    let f = parse("base = \"mlp\"\n").unwrap();
    let mut m = Manifest::new(&f, &f.plan(None).unwrap());
    m.format = "dales-sweep/9".into();
    std::fs::write(dir.join("sweep.json"), serde_json::to_string(&m).unwrap()).unwrap();
    let e = Manifest::read(&dir).unwrap_err().to_string();
    assert!(
        e.contains("a `dales-sweep/9` manifest") && e.contains("dales-sweep/1"),
        "{e}"
    );
}

#[test]
fn array_specs_compress_runs_of_ids() {
    assert_eq!(array_spec(&[0, 1, 2, 3, 5, 7, 8, 9]), "0-3,5,7-9");
    assert_eq!(array_spec(&[4]), "4");
    assert_eq!(array_spec(&(0..1000).collect::<Vec<_>>()), "0-999");
    let options = SlurmOptions {
        time: Some("1:00:00".into()),
        cpus_per_task: 2,
        max_concurrent: Some(4),
        term_before: 90,
        extra: vec!["--account=lab".into()],
        ..SlurmOptions::default()
    };
    let s = script(
        "lr",
        Path::new("/scratch/it's"),
        Path::new("/opt/dales"),
        &[1, 2, 6],
        &options,
    );
    for line in [
        "#SBATCH --array=1-2,6%4",
        "#SBATCH --output=/scratch/it's/slurm/%A_%a.out",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --signal=B:TERM@90",
        "#SBATCH --time=1:00:00",
        "#SBATCH --account=lab",
        "'/opt/dales' sweep task '/scratch/it'\\''s' \"$SLURM_ARRAY_TASK_ID\" &",
    ] {
        assert!(s.lines().any(|l| l == line), "no line `{line}` in\n{s}");
    }
    assert!(!s.contains("--partition") && !s.contains("--mem"), "{s}");
}

/// A finished run by hand: `config` with `lr`/`seed`, and these per-epoch errors.
fn hand_run(dir: &Path, name: &str, preset: &str, lr: f64, seed: u64, errors: &[f64]) -> PathBuf {
    let run = dir.join(name);
    std::fs::create_dir_all(&run).unwrap();
    let mut config = AnyConfig::preset(preset).unwrap();
    let AnyConfig::FeedForward(ref mut c) = config else {
        panic!()
    };
    c.optim.lr = lr;
    c.seed = seed;
    c.epochs = errors.len();
    std::fs::write(run.join("config.toml"), config.to_toml()).unwrap();
    let records: Vec<EpochRecord> = errors
        .iter()
        .enumerate()
        .map(|(i, &e)| EpochRecord {
            epoch: i + 1,
            step: 10 * (i as u64 + 1),
            train_loss: 1.0,
            train_error: e + 1.0,
            test_loss: e / 10.0,
            test_error: e,
            lr,
            seconds: 2.0 * (i + 1) as f64,
            probes: Vec::new(),
        })
        .collect();
    std::fs::write(run.join("metrics.csv"), metrics_csv(&records)).unwrap();
    let summary = Summary {
        kind: preset.into(),
        seed,
        epochs_done: errors.len(),
        epochs: errors.len(),
        finished: true,
        eval_set: "test".into(),
        final_test_error: errors.last().copied(),
        final_test_loss: errors.last().map(|e| e / 10.0),
        final_train_loss: Some(1.0),
        best_test_error: errors.iter().copied().reduce(f64::min),
        wall_seconds: 2.0 * errors.len() as f64,
        steps: 10 * errors.len() as u64,
        dales_version: "test".into(),
    };
    std::fs::write(
        run.join("summary.json"),
        serde_json::to_string(&summary).unwrap(),
    )
    .unwrap();
    run
}

#[test]
fn collect_reads_hand_made_runs_with_known_metrics() {
    let dir = temp_dir("sweep-collect");
    hand_run(&dir, "a", "dann", 0.1, 1, &[30.0, 20.0, 12.0]);
    hand_run(&dir, "b", "dann", 0.1, 2, &[28.0, 18.0, 14.0]);
    hand_run(&dir, "c", "dann", 0.01, 1, &[40.0, 35.0, 30.0]);
    hand_run(&dir, "d", "mlp", 0.1, 1, &[25.0, 15.0, 10.0]);
    hand_run(&dir, "e", "mlp", 0.1, 2, &[25.0, 9.0, 16.0]);
    hand_run(&dir, "f", "mlp", 0.1, 3, &[25.0, 13.0, 13.0]);
    // An unfinished run counts as planned, not in the means.
    let g = hand_run(&dir, "g", "mlp", 0.1, 4, &[50.0]);
    std::fs::remove_file(g.join("summary.json")).unwrap();
    let config = std::fs::read_to_string(g.join("config.toml")).unwrap();
    std::fs::write(
        g.join("config.toml"),
        config.replace("epochs = 1\n", "epochs = 3\n"),
    )
    .unwrap();
    record_failure(&g, "out of memory", false).unwrap();
    std::fs::create_dir_all(dir.join("not-a-run")).unwrap();
    // A diverged setting: a result, ranked after every trained one.
    let h = hand_run(&dir, "h", "dann", 1.0, 1, &[90.0, 90.0, 90.0]);
    std::fs::remove_file(h.join("summary.json")).unwrap();
    record_failure(&h, "training diverged at epoch 1", true).unwrap();

    let c = collect(&dir, None).unwrap();
    assert_eq!(c.metric, Metric::FinalTestError);
    assert!(c.keys.contains(&"optim.lr".to_string()), "{:?}", c.keys);
    assert!(!c.keys.contains(&"seed".to_string()));
    assert_eq!(c.points.len(), 4);
    let wild = c.points.iter().find(|p| p.diverged == 1).unwrap();
    assert!(wild.values.is_empty() && wild.model == "dann", "{wild:?}");
    let point = |model: &str, lr: &str| {
        c.points
            .iter()
            .find(|p| {
                p.model == model && p.settings.iter().any(|(k, v)| k == "optim.lr" && v == lr)
            })
            .unwrap()
    };
    let dann = point("dann", "0.1");
    assert_eq!(dann.seeds, [1, 2]);
    // Final errors 12 and 14: mean 13, sample sd √2.
    assert!((dann.mean - 13.0).abs() < 1e-12 && (dann.sd - 2f64.sqrt()).abs() < 1e-12);
    assert!((dann.best_error - 13.0).abs() < 1e-12);
    assert!((dann.final_loss - 1.3).abs() < 1e-12);
    assert_eq!(dann.curve[0], (1.0, 29.0, 2f64.sqrt()));
    let mlp = point("mlp", "0.1");
    assert_eq!((mlp.seeds.len(), mlp.dirs.len()), (3, 4));
    // 10, 16, 13: mean 13, sd 3; best epochs 10, 9, 13: mean 32/3; last five (all three
    // epochs) 50/3, 50/3, 51/3.
    assert!((mlp.mean - 13.0).abs() < 1e-12 && (mlp.sd - 3.0).abs() < 1e-12);
    assert!((mlp.best_error - 32.0 / 3.0).abs() < 1e-12);
    assert!((mlp.last5_error - 151.0 / 9.0).abs() < 1e-12);
    assert_eq!(c.unfinished.len(), 2);
    assert!(
        c.unfinished.iter().any(|u| u.1 == "failed: out of memory"),
        "{:?}",
        c.unfinished
    );

    // The best per model; ties broken by order, the metric can be chosen.
    let best: Vec<(&str, f64)> = c
        .best_per_model()
        .iter()
        .map(|p| (p.model.as_str(), p.mean))
        .collect();
    assert_eq!(best, [("dann", 13.0), ("mlp", 13.0)]);
    let by_best = collect(&dir, Some(Metric::BestTestError)).unwrap();
    let best: Vec<f64> = by_best.best_per_model().iter().map(|p| p.mean).collect();
    assert!((best[1] - 32.0 / 3.0).abs() < 1e-12, "{best:?}");

    // The metric against the learning rate, on a log axis (a decade apart).
    let profiles = c.profiles();
    let lr = profiles.iter().find(|p| p.key == "optim.lr").unwrap();
    assert!(lr.log);
    let dann_series = &lr.series.iter().find(|(m, _)| m == "dann").unwrap().1;
    assert_eq!(dann_series, &[(0.01, 30.0), (0.1, 13.0)]);

    c.write().unwrap();
    let csv = std::fs::read_to_string(dir.join("collect.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    let md = std::fs::read_to_string(dir.join("collect.md")).unwrap();
    assert!(
        md.contains("13.00 ± 1.41") && md.contains("13.00 ± 3.00"),
        "{md}"
    );
    assert!(md.contains("| 1 diverged"), "{md}");
    assert!(dir.join("g").join(ERROR_FILE).exists());
}

#[test]
fn collect_refuses_a_directory_without_runs() {
    let dir = temp_dir("sweep-collect-empty");
    let e = collect(&dir, None).unwrap_err().to_string();
    assert!(
        e.contains(&dir.display().to_string()) && e.contains("no runs"),
        "{e}"
    );
}
