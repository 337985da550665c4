//! `dales sweep collect`: one table of the finished runs of a sweep directory, per setting
//! the mean ± sd over seeds of each metric, the best setting per model, the metric against
//! each swept value, and the learning curves.
//!
//! A directory with a manifest (`sweep.json`) is read through it; any other directory is read
//! as runs made by hand: every sub-directory holding a `config.toml`. Runs whose
//! configurations differ only in the seed are one setting, and the keys whose values differ
//! between settings are its columns.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use toml::Table;

use super::file::{Metric, flatten};
use super::manifest::{MANIFEST, Manifest, Status, status};
use super::plan::value_text;
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::plot::{self, Mark, Panel, Series};
use crate::report::{markdown_table, mean_sd};
use crate::run::{EpochRecord, RunDir, files, read_metrics};

/// The results of one setting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointResult {
    /// Its name.
    pub point: String,
    /// Its model.
    pub model: String,
    /// The swept keys' values.
    pub settings: Vec<(String, String)>,
    /// Its run directories.
    pub dirs: Vec<PathBuf>,
    /// Seeds of its finished runs.
    pub seeds: Vec<u64>,
    /// Its runs whose training diverged (not in the means; the setting ranks last).
    pub diverged: usize,
    /// The ranking metric per finished run.
    pub values: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation.
    pub sd: f64,
    /// Final evaluation error: mean, sd.
    pub final_error: (f64, f64),
    /// Mean lowest error of any epoch.
    pub best_error: f64,
    /// Mean of the last five epochs' errors.
    pub last5_error: f64,
    /// Mean final evaluation loss.
    pub final_loss: f64,
    /// Mean training seconds per run.
    pub seconds: f64,
    /// The error after each epoch: (epoch, mean, sd) over the finished runs.
    pub curve: Vec<(f64, f64, f64)>,
}

/// What `collect` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Collection {
    /// The directory.
    pub dir: PathBuf,
    /// What ranks the settings.
    pub metric: Metric,
    /// The swept keys (the table's columns).
    pub keys: Vec<String>,
    /// Every setting, in sweep (or directory) order.
    pub points: Vec<PointResult>,
    /// Runs not finished, with where they stand (`pending`, `started`, `failed: …`).
    pub unfinished: Vec<(String, String)>,
}

/// The metric against one swept value: per model, the best mean over the other axes at each
/// value.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The swept key.
    pub key: String,
    /// Whether its values span a decade or more (plot them on a log scale).
    pub log: bool,
    /// (model, points (value, metric)).
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// One run as `collect` reads it.
struct RunEntry {
    point: String,
    model: String,
    settings: Vec<(String, String)>,
    dir: PathBuf,
    seed: u64,
}

/// Collect the runs in `dir` (`metric`: default the manifest's, else the final error).
pub fn collect(dir: &Path, metric: Option<Metric>) -> Result<Collection> {
    let (entries, keys, manifest_metric) = if dir.join(MANIFEST).exists() {
        let manifest = Manifest::read(dir)?;
        let entries = manifest
            .runs
            .iter()
            .map(|r| RunEntry {
                point: r.point.clone(),
                model: r.model.clone(),
                settings: r.settings.clone(),
                dir: dir.join(&r.dir),
                seed: r.seed,
            })
            .collect();
        (entries, manifest.keys, Some(manifest.metric))
    } else {
        let (entries, keys) = hand_made(dir)?;
        (entries, keys, None)
    };
    if entries.is_empty() {
        return Err(Error::run(
            dir,
            "holds no runs (no sweep.json and no run directories with a config.toml)",
        ));
    }
    let metric = metric.or(manifest_metric).unwrap_or(Metric::FinalTestError);
    let mut points: Vec<PointResult> = Vec::new();
    let mut finished: Vec<Vec<Vec<EpochRecord>>> = Vec::new();
    let mut unfinished = Vec::new();
    for e in entries {
        let i = match points.iter().position(|p| p.point == e.point) {
            Some(i) => i,
            None => {
                points.push(PointResult {
                    point: e.point.clone(),
                    model: e.model.clone(),
                    settings: e.settings.clone(),
                    dirs: Vec::new(),
                    seeds: Vec::new(),
                    diverged: 0,
                    values: Vec::new(),
                    mean: f64::NAN,
                    sd: f64::NAN,
                    final_error: (f64::NAN, f64::NAN),
                    best_error: f64::NAN,
                    last5_error: f64::NAN,
                    final_loss: f64::NAN,
                    seconds: f64::NAN,
                    curve: Vec::new(),
                });
                finished.push(Vec::new());
                points.len() - 1
            }
        };
        points[i].dirs.push(e.dir.clone());
        match status(&e.dir) {
            Status::Finished => {
                let records: Vec<EpochRecord> = read_metrics(&e.dir.join(files::METRICS))?
                    .into_iter()
                    .filter(|r| r.epoch > 0)
                    .collect();
                if records.is_empty() {
                    return Err(Error::run(&e.dir, "finished, but its metrics.csv is empty"));
                }
                points[i].seeds.push(e.seed);
                finished[i].push(records);
            }
            Status::Diverged(error) => {
                points[i].diverged += 1;
                unfinished.push((e.dir.display().to_string(), format!("diverged: {error}")));
            }
            other => {
                let state = match other {
                    Status::Pending => "pending".to_string(),
                    Status::Started => "started".to_string(),
                    Status::Failed(error) => format!("failed: {error}"),
                    Status::Finished | Status::Diverged(_) => unreachable!(),
                };
                unfinished.push((e.dir.display().to_string(), state));
            }
        }
    }
    for (point, runs) in points.iter_mut().zip(&finished) {
        summarise(point, runs, metric);
    }
    Ok(Collection {
        dir: dir.to_path_buf(),
        metric,
        keys,
        points,
        unfinished,
    })
}

/// A run's value of `metric`.
fn metric_of(records: &[EpochRecord], metric: Metric) -> f64 {
    let last = records.last().expect("finished runs have records");
    match metric {
        Metric::FinalTestError => last.test_error,
        Metric::FinalTestLoss => last.test_loss,
        Metric::BestTestError => records
            .iter()
            .map(|r| r.test_error)
            .fold(f64::NAN, f64::min),
        Metric::Last5TestError => {
            let tail = &records[records.len().saturating_sub(5)..];
            tail.iter().map(|r| r.test_error).sum::<f64>() / tail.len() as f64
        }
    }
}

/// Fill a setting's statistics from its finished runs' records.
fn summarise(point: &mut PointResult, runs: &[Vec<EpochRecord>], metric: Metric) {
    if runs.is_empty() {
        return;
    }
    let over = |m: Metric| mean_sd(&runs.iter().map(|r| metric_of(r, m)).collect::<Vec<_>>());
    point.values = runs.iter().map(|r| metric_of(r, metric)).collect();
    (point.mean, point.sd) = mean_sd(&point.values);
    point.final_error = over(Metric::FinalTestError);
    point.best_error = over(Metric::BestTestError).0;
    point.last5_error = over(Metric::Last5TestError).0;
    point.final_loss = over(Metric::FinalTestLoss).0;
    let seconds: Vec<f64> = runs.iter().map(|r| r.last().unwrap().seconds).collect();
    point.seconds = mean_sd(&seconds).0;
    let epochs = runs.iter().map(Vec::len).min().unwrap_or(0);
    point.curve = (0..epochs)
        .map(|e| {
            let v: Vec<f64> = runs.iter().map(|r| r[e].test_error).collect();
            let (m, sd) = mean_sd(&v);
            (runs[0][e].epoch as f64, m, sd)
        })
        .collect();
}

/// The runs under `dir` made by hand: every sub-directory with a `config.toml`, grouped into
/// settings by their configurations without the seed; returns them and the keys that vary.
fn hand_made(dir: &Path) -> Result<(Vec<RunEntry>, Vec<String>)> {
    let listing = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut dirs: Vec<PathBuf> = listing
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(files::CONFIG).is_file())
        .collect();
    dirs.sort();
    let mut runs = Vec::new();
    for d in dirs {
        let run = RunDir::open(&d)?;
        let table: Table = run
            .config
            .to_toml()
            .parse()
            .expect("a config's TOML parses");
        let mut flat: Vec<(String, String)> = flatten(&table, "")
            .into_iter()
            .map(|(k, v)| (k, value_text(&v)))
            .collect();
        flat.retain(|(k, _)| k != "seed");
        runs.push((run.config.name(), run.config.seed(), d, flat));
    }
    // The keys whose values are not the same in every run.
    let mut keys: Vec<String> = Vec::new();
    for (_, _, _, flat) in &runs {
        for (k, v) in flat {
            let same = runs
                .iter()
                .all(|(_, _, _, f)| f.iter().any(|(k2, v2)| k2 == k && v2 == v));
            if !same && !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    let entries = runs
        .into_iter()
        .map(|(model, seed, d, flat)| {
            let settings: Vec<(String, String)> = keys
                .iter()
                .map(|k| {
                    let v = flat.iter().find(|(k2, _)| k2 == k).map(|(_, v)| v.clone());
                    (k.clone(), v.unwrap_or_else(|| "—".to_string()))
                })
                .collect();
            let point = if settings.is_empty() {
                model.clone()
            } else {
                let parts: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
                parts.join(" ")
            };
            RunEntry {
                point,
                model,
                settings,
                dir: d,
                seed,
            }
        })
        .collect();
    Ok((entries, keys))
}

/// A setting's place in a ranking: its mean metric, after every number if a run diverged
/// or the mean is NaN.
fn rank(p: &PointResult) -> f64 {
    if p.diverged > 0 || p.mean.is_nan() {
        f64::INFINITY
    } else {
        p.mean
    }
}

impl Collection {
    /// The finished settings' best per model (lowest mean metric), in order of first
    /// appearance.
    pub fn best_per_model(&self) -> Vec<&PointResult> {
        let mut best: Vec<&PointResult> = Vec::new();
        for p in self
            .points
            .iter()
            .filter(|p| !p.values.is_empty() || p.diverged > 0)
        {
            match best.iter_mut().find(|b| b.model == p.model) {
                Some(b) if rank(p) < rank(b) => *b = p,
                Some(_) => {}
                None => best.push(p),
            }
        }
        best
    }

    /// The metric against each swept key whose values are all numbers.
    pub fn profiles(&self) -> Vec<Profile> {
        let mut out = Vec::new();
        for (k, key) in self.keys.iter().enumerate() {
            let xs: Option<Vec<f64>> = self
                .points
                .iter()
                .map(|p| p.settings[k].1.parse::<f64>().ok())
                .collect();
            let Some(xs) = xs else { continue };
            let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
            for (p, &x) in self.points.iter().zip(&xs) {
                if p.values.is_empty() || p.diverged > 0 {
                    continue;
                }
                let at = match series.iter_mut().position(|(m, _)| *m == p.model) {
                    Some(i) => i,
                    None => {
                        series.push((p.model.clone(), Vec::new()));
                        series.len() - 1
                    }
                };
                let points = &mut series[at].1;
                match points.iter_mut().find(|(x2, _)| *x2 == x) {
                    Some(pt) if p.mean < pt.1 || pt.1.is_nan() => pt.1 = p.mean,
                    Some(_) => {}
                    None => points.push((x, p.mean)),
                }
            }
            for (_, points) in &mut series {
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            let (lo, hi) = xs
                .iter()
                .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
            if !series.is_empty() && xs.iter().any(|&x| x != xs[0]) {
                out.push(Profile {
                    key: key.clone(),
                    log: lo > 0.0 && hi / lo >= 10.0,
                    series,
                });
            }
        }
        out
    }

    /// One row per setting: the settings, the runs, each metric's mean (± sd).
    pub fn csv(&self) -> String {
        let m = self.metric.name();
        let mut s = String::from("point,model");
        for k in &self.keys {
            let _ = write!(s, ",{}", csv_field(k));
        }
        let _ = writeln!(
            s,
            ",runs,finished,diverged,seeds,{m}_mean,{m}_sd,final_test_error_mean,final_test_error_sd,\
             best_test_error_mean,last5_test_error_mean,final_test_loss_mean,seconds_mean"
        );
        for p in &self.points {
            let _ = write!(s, "{},{}", csv_field(&p.point), csv_field(&p.model));
            for (_, v) in &p.settings {
                let _ = write!(s, ",{}", csv_field(v));
            }
            let seeds: Vec<String> = p.seeds.iter().map(u64::to_string).collect();
            let _ = writeln!(
                s,
                ",{},{},{},{},{},{},{},{},{},{},{},{}",
                p.dirs.len(),
                p.seeds.len(),
                p.diverged,
                seeds.join(" "),
                p.mean,
                p.sd,
                p.final_error.0,
                p.final_error.1,
                p.best_error,
                p.last5_error,
                p.final_loss,
                p.seconds
            );
        }
        s
    }

    /// The settings' table and the best setting per model, in markdown.
    pub fn markdown(&self) -> String {
        let m = self.metric.name();
        let mean_sd = |p: &PointResult| {
            let diverged = match p.diverged {
                0 => String::new(),
                d => format!("{d} diverged"),
            };
            match (p.values.is_empty(), diverged.is_empty()) {
                (true, true) => "—".to_string(),
                (true, false) => diverged,
                (false, true) => format!("{:.2} ± {:.2}", p.mean, p.sd),
                (false, false) => format!("{:.2} ± {:.2}, {diverged}", p.mean, p.sd),
            }
        };
        let mut header: Vec<String> = vec!["setting".into(), "model".into()];
        header.extend(self.keys.iter().cloned());
        let keys_then = |extra: &[&str]| {
            let mut h = header.clone();
            h.extend(extra.iter().map(|s| s.to_string()));
            h
        };
        let row = |p: &PointResult, extra: Vec<String>| {
            let mut r = vec![p.point.clone(), p.model.clone()];
            r.extend(p.settings.iter().map(|(_, v)| v.clone()));
            r.extend(extra);
            r
        };
        let all_header = keys_then(&["runs done", &format!("{m} (mean ± sd)"), "s/run"]);
        let rows: Vec<Vec<String>> = self
            .points
            .iter()
            .map(|p| {
                let done = format!("{}/{}", p.seeds.len() + p.diverged, p.dirs.len());
                let secs = if p.values.is_empty() {
                    "—".to_string()
                } else {
                    format!("{:.0}", p.seconds)
                };
                row(p, vec![done, mean_sd(p), secs])
            })
            .collect();
        let best_header = keys_then(&["seeds", &format!("{m} (mean ± sd)")]);
        let best: Vec<Vec<String>> = self
            .best_per_model()
            .into_iter()
            .map(|p| row(p, vec![p.seeds.len().to_string(), mean_sd(p)]))
            .collect();
        let mut s = format!(
            "## Every setting\n\n{}\n## Best setting per model (lowest mean {m})\n\n{}",
            markdown_table(&strs(&all_header), &rows),
            markdown_table(&strs(&best_header), &best)
        );
        if !self.unfinished.is_empty() {
            let _ = write!(s, "\n{} runs not finished:\n\n", self.unfinished.len());
            for (dir, state) in &self.unfinished {
                let _ = writeln!(s, "- {dir}: {state}");
            }
        }
        s
    }

    /// Write `collect.csv`, `collect.md`, `collect.json` and the plots (`collect-values`: the
    /// metric against each swept value; `collect-curves`: the best setting's curves per
    /// model, each where it has finite values) into the directory; returns the files written.
    pub fn write(&self) -> Result<Vec<&'static str>> {
        write_atomic(&self.dir.join("collect.csv"), self.csv().as_bytes())?;
        let md = format!("# Sweep {}\n\n{}", self.dir.display(), self.markdown());
        write_atomic(&self.dir.join("collect.md"), md.as_bytes())?;
        let json = serde_json::to_string_pretty(self).expect("a collection serialises");
        write_atomic(&self.dir.join("collect.json"), json.as_bytes())?;
        let mut written = vec!["collect.csv", "collect.md", "collect.json"];
        let profiles: Vec<Panel> = self
            .profiles_panels()
            .into_iter()
            .filter(|p| p.series.iter().any(finite))
            .collect();
        if !profiles.is_empty() {
            plot::save(&profiles, &self.dir.join("collect-values"))?;
            written.push("collect-values.png/.svg");
        }
        let curves = self.curves_panel();
        if curves.series.iter().any(finite) {
            plot::save(&[curves], &self.dir.join("collect-curves"))?;
            written.push("collect-curves.png/.svg");
        }
        Ok(written)
    }

    /// One panel per swept key: the metric (mean over seeds) against its values, a line per
    /// model (log10 of the values where the axis is logarithmic).
    fn profiles_panels(&self) -> Vec<Panel> {
        let metric = self.metric.name();
        self.profiles()
            .into_iter()
            .map(|p| {
                let (x_label, tx): (String, fn(f64) -> f64) = if p.log {
                    (format!("log10 {}", p.key), f64::log10)
                } else {
                    (p.key.clone(), |x| x)
                };
                Panel {
                    title: format!("{metric} against {}", p.key),
                    x_label,
                    y_label: format!("{metric} (mean over seeds)"),
                    series: p
                        .series
                        .into_iter()
                        .map(|(model, points)| Series {
                            mark: Mark::Line,
                            label: model,
                            points: points.into_iter().map(|(x, y)| (tx(x), y)).collect(),
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// The best setting's evaluation error per model: mean over seeds, with a ± sd band.
    fn curves_panel(&self) -> Panel {
        let mut series = Vec::new();
        for p in self.best_per_model() {
            let line = p.curve.iter().map(|&(e, m, _)| (e, m));
            let upper = p.curve.iter().map(|&(e, m, sd)| (e, m + sd));
            let lower = p.curve.iter().rev().map(|&(e, m, sd)| (e, m - sd));
            series.push(Series {
                mark: Mark::Line,
                label: p.point.clone(),
                points: line.collect(),
            });
            series.push(Series {
                mark: Mark::Band,
                label: String::new(),
                points: upper.chain(lower).collect(),
            });
        }
        Panel {
            title: "best setting per model: error, mean ± sd over seeds".into(),
            x_label: "epoch".into(),
            y_label: "evaluation error".into(),
            series,
        }
    }
}

/// Whether `s` has a finite point.
fn finite(s: &Series) -> bool {
    s.points.iter().any(|q| q.1.is_finite())
}

/// `&str`s of `h`, for a table header.
fn strs(h: &[String]) -> Vec<&str> {
    h.iter().map(String::as_str).collect()
}

/// A CSV field, quoted where it holds a comma or a quote.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
