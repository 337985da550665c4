//! Sweep files: a base configuration, axes over any configuration key, the seeds, and the
//! metric that ranks the settings.
//!
//! ```toml
//! name = "lr-search"              # default: the file's name
//! # base = "dann"                 # a preset, or config = "run.toml" (beside this file);
//!                                 # none here: the `preset` axis names each run's
//! seeds = 3                       # seeds 1, 2, 3; or a list, seeds = [0, 4]
//! metric = "final_test_error"     # what ranks the settings (lower is better)
//!
//! [set]                           # settings of every run
//! epochs = 5
//! data.validation = 10000
//!
//! [grid]                          # every combination, the first key varying slowest
//! preset = ["mlp", "dann"]        # `preset` replaces the base
//! optim.lr = { geomspace = [0.3, 0.003, 5] }
//!
//! [[zip]]                         # keys that vary together: one axis
//! model.hidden = [[500, 500, 500], [1000]]
//! batch_size = [32, 64]
//! ```
//!
//! Every axis value is set by its dotted key on the base's resolved configuration, and each
//! run's configuration is validated as a config file would be, so an unknown key, a wrong type
//! or a bad value is an error naming the sweep file, the run and the key before anything runs.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::error::{Error, Result};
use crate::run::AnyConfig;

/// The key of an axis (or `base`) that picks a preset instead of setting a configuration key.
pub const PRESET_KEY: &str = "preset";

/// What a sweep ranks its settings by (lower is better).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The evaluation error (%, or the MSE of a regression task) after the last epoch.
    FinalTestError,
    /// The lowest evaluation error of any epoch.
    BestTestError,
    /// The mean evaluation error of the last five epochs (the DANN paper's search objective).
    Last5TestError,
    /// The evaluation loss after the last epoch.
    FinalTestLoss,
}

impl Metric {
    /// Every metric, by name.
    pub const ALL: [(Metric, &'static str); 4] = [
        (Metric::FinalTestError, "final_test_error"),
        (Metric::BestTestError, "best_test_error"),
        (Metric::Last5TestError, "last5_test_error"),
        (Metric::FinalTestLoss, "final_test_loss"),
    ];

    /// The metric's name.
    pub fn name(self) -> &'static str {
        Metric::ALL
            .iter()
            .find(|(m, _)| *m == self)
            .expect("listed")
            .1
    }

    /// The metric called `name`; the error names `key`.
    pub fn parse(name: &str, key: &str) -> Result<Metric> {
        Metric::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(m, _)| *m)
            .ok_or_else(|| {
                let names: Vec<&str> = Metric::ALL.iter().map(|(_, n)| *n).collect();
                Error::config(key, name, format!("one of {}", names.join(", ")))
            })
    }
}

/// Where the runs' configuration starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Base {
    /// A preset by name.
    Preset(String),
    /// A configuration file.
    Config(PathBuf),
    /// None: a `preset` axis names one for every run.
    FromAxis,
}

/// One axis of a sweep: keys that vary together (one key for a `[grid]` entry) and their
/// settings, one value per key each.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Dotted configuration keys (or [`PRESET_KEY`]).
    pub keys: Vec<String>,
    /// The axis' settings: `values[i][k]` is key `k`'s value in setting `i`.
    pub values: Vec<Vec<Value>>,
}

/// A parsed and checked sweep file.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepFile {
    /// The file.
    pub path: PathBuf,
    /// The sweep's name.
    pub name: String,
    /// The base configuration.
    pub base: Base,
    /// Settings of every run, by dotted key.
    pub set: Vec<(String, Value)>,
    /// The axes, the first varying slowest.
    pub axes: Vec<Axis>,
    /// The seeds of every setting.
    pub seeds: Vec<u64>,
    /// What ranks the settings.
    pub metric: Metric,
}

const TOP_KEYS: [&str; 8] = [
    "name", "base", "config", "seeds", "metric", "set", "grid", "zip",
];

impl SweepFile {
    /// Read and check the sweep file at `path`.
    pub fn read(path: &Path) -> Result<SweepFile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        SweepFile::parse(&text, path)
    }

    /// Parse and check a sweep file's text; `path` names it in errors and anchors a relative
    /// `config`.
    pub fn parse(text: &str, path: &Path) -> Result<SweepFile> {
        let file_error = |message: String| Error::ConfigFile {
            path: path.to_path_buf(),
            message,
        };
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| file_error(e.to_string()))?;
        let key_error = |key: &str, value: &dyn std::fmt::Display, expected: &str| {
            file_error(format!("`{key}` = {value}: {expected}"))
        };
        for key in table.keys() {
            if !TOP_KEYS.contains(&key.as_str()) {
                return Err(key_error(
                    key,
                    &table[key],
                    &format!("not a sweep key (expected one of {})", TOP_KEYS.join(", ")),
                ));
            }
        }
        let string = |key: &str| -> Result<Option<String>> {
            match table.get(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(key_error(key, v, "a string")),
            }
        };
        let name = match string("name")? {
            Some(n) => n,
            None => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "sweep".to_string()),
        };
        let metric = match string("metric")? {
            Some(m) => Metric::parse(&m, "metric").map_err(|e| file_error(e.to_string()))?,
            None => Metric::FinalTestError,
        };
        let seeds = match table.get("seeds") {
            None => vec![1],
            Some(Value::Integer(n)) if *n >= 1 => (1..=*n as u64).collect(),
            Some(Value::Array(list)) if !list.is_empty() => {
                let mut seeds = Vec::new();
                for v in list {
                    match v {
                        Value::Integer(s) if *s >= 0 && !seeds.contains(&(*s as u64)) => {
                            seeds.push(*s as u64)
                        }
                        _ => {
                            return Err(key_error(
                                "seeds",
                                &table["seeds"],
                                "a list of distinct non-negative integers",
                            ));
                        }
                    }
                }
                seeds
            }
            Some(v) => {
                return Err(key_error(
                    "seeds",
                    v,
                    "a number of seeds (≥ 1, meaning 1 … n) or a non-empty list of seeds",
                ));
            }
        };

        let set = match table.get("set") {
            None => Vec::new(),
            Some(Value::Table(t)) => flatten(t, ""),
            Some(v) => return Err(key_error("set", v, "a table of settings")),
        };
        // The axes in file order: each `[grid]` key, each `[[zip]]` table.
        let mut axes = Vec::new();
        for (section, value) in table.iter().filter(|(k, _)| *k == "grid" || *k == "zip") {
            match (section.as_str(), value) {
                ("grid", Value::Table(t)) => {
                    for (key, value) in flatten(t, "") {
                        let values = axis_values(&value).map_err(|expected| {
                            key_error(&format!("grid.{key}"), &value, &expected)
                        })?;
                        axes.push(Axis {
                            keys: vec![key],
                            values: values.into_iter().map(|v| vec![v]).collect(),
                        });
                    }
                }
                ("grid", v) => {
                    return Err(key_error("grid", v, "a table of keys and their values"));
                }
                (_, Value::Array(zips)) => {
                    for (z, zip) in zips.iter().enumerate() {
                        let Value::Table(t) = zip else {
                            return Err(key_error(&format!("zip[{z}]"), zip, "a table"));
                        };
                        let zip_error = |key: &str, value: &Value, expected: &str| {
                            key_error(&format!("zip[{z}].{key}"), value, expected)
                        };
                        axes.push(zip_axis(t, &zip_error)?);
                    }
                }
                (_, v) => {
                    return Err(key_error(
                        "zip",
                        v,
                        "a list of tables ([[zip]] sections) of keys that vary together",
                    ));
                }
            }
        }

        // Each key is set in one place, and the seed only by `seeds`.
        let mut seen: Vec<&str> = Vec::new();
        let set_keys = set.iter().map(|(k, _)| ("set", k));
        let axis_keys = axes.iter().flat_map(|a| a.keys.iter().map(|k| ("axis", k)));
        for (place, key) in set_keys.chain(axis_keys) {
            if key == "seed" {
                return Err(key_error(
                    key,
                    &"…",
                    "the seeds are set by the top-level `seeds` (a count or a list)",
                ));
            }
            if place == "set" && key == PRESET_KEY {
                return Err(key_error(
                    "set.preset",
                    &"…",
                    "the base preset is set by the top-level `base`",
                ));
            }
            if seen.contains(&key.as_str()) {
                return Err(key_error(key, &"…", "set in two places (each key once)"));
            }
            seen.push(key);
        }

        let preset_axis = seen.contains(&PRESET_KEY);
        let base = match (string("base")?, string("config")?) {
            (Some(_), Some(_)) => {
                return Err(key_error(
                    "config",
                    &"…",
                    "either `base` or `config`, not both",
                ));
            }
            (Some(_), None) | (None, Some(_)) if preset_axis => {
                return Err(key_error(
                    "base",
                    &"…",
                    "no base with a `preset` axis (the axis names every run's preset)",
                ));
            }
            (Some(p), None) => {
                AnyConfig::preset(&p).map_err(|e| file_error(format!("`base`: {e}")))?;
                Base::Preset(p)
            }
            (None, Some(c)) => {
                let anchor = path.parent().unwrap_or(Path::new(""));
                Base::Config(anchor.join(c))
            }
            (None, None) if preset_axis => Base::FromAxis,
            (None, None) => {
                return Err(file_error(
                    "no base configuration: give `base = \"PRESET\"`, `config = \"FILE\"` or \
                     a `preset` axis"
                        .to_string(),
                ));
            }
        };
        for axis in &axes {
            if let Some(k) = axis.keys.iter().position(|k| k == PRESET_KEY) {
                for setting in &axis.values {
                    let Value::String(p) = &setting[k] else {
                        return Err(key_error(PRESET_KEY, &setting[k], "a preset's name"));
                    };
                    AnyConfig::preset(p).map_err(|e| file_error(format!("`preset`: {e}")))?;
                }
            }
        }
        Ok(SweepFile {
            path: path.to_path_buf(),
            name,
            base,
            set,
            axes,
            seeds,
            metric,
        })
    }

    /// The number of settings (the product of the axes' lengths).
    pub fn settings(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product()
    }
}

/// The leaves of `table` by dotted key, in file order; a generator table (`geomspace`,
/// `linspace`) is a leaf.
pub(crate) fn flatten(table: &Table, prefix: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Table(t) if generator(t).is_none() => out.extend(flatten(t, &key)),
            _ => out.push((key, v.clone())),
        }
    }
    out
}

/// The generator a one-key table names (`geomspace` or `linspace`), with its arguments.
fn generator(t: &Table) -> Option<(&str, &Value)> {
    let (name, args) = t.iter().next()?;
    (t.len() == 1 && (name == "geomspace" || name == "linspace")).then_some((name, args))
}

/// The values of an axis: a non-empty list, or a generator; the error says what was expected.
fn axis_values(value: &Value) -> std::result::Result<Vec<Value>, String> {
    match value {
        Value::Array(list) if !list.is_empty() => Ok(list.clone()),
        Value::Array(_) => Err("an empty axis: give at least one value".to_string()),
        Value::Table(t) => {
            let (name, args) = generator(t).expect("flatten keeps only generator tables");
            spaced(name, args).map(|v| v.into_iter().map(Value::Float).collect())
        }
        _ => Err("a list of values, or { geomspace = [start, stop, n] } or \
                  { linspace = [start, stop, n] } (a single value belongs in [set])"
            .to_string()),
    }
}

/// `n` numbers from `start` to `stop`, evenly (`linspace`) or geometrically (`geomspace`)
/// spaced, rounded to 6 significant digits so that they read (and name runs) well.
fn spaced(name: &str, args: &Value) -> std::result::Result<Vec<f64>, String> {
    let expected = format!("{name} = [start, stop, n]: two numbers and a count n ≥ 1");
    let number = |v: &Value| match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) if f.is_finite() => Some(*f),
        _ => None,
    };
    let Value::Array(a) = args else {
        return Err(expected);
    };
    let (Some(start), Some(stop), Some(Value::Integer(n))) = (
        a.first().and_then(number),
        a.get(1).and_then(number),
        a.get(2),
    ) else {
        return Err(expected);
    };
    if a.len() != 3 || *n < 1 {
        return Err(expected);
    }
    if name == "geomspace" && !(start > 0.0 && stop > 0.0) {
        return Err("geomspace: start and stop must be positive".to_string());
    }
    let n = *n as usize;
    let at = |i: usize| {
        let t = if n == 1 {
            0.0
        } else {
            i as f64 / (n - 1) as f64
        };
        let x = match name {
            "geomspace" => start * (stop / start).powf(t),
            _ => start + (stop - start) * t,
        };
        format!("{x:.5e}")
            .parse::<f64>()
            .expect("a formatted number parses")
    };
    Ok((0..n).map(at).collect())
}

/// A `[[zip]]` table as one axis; `error(key, value, expected)` makes its errors.
fn zip_axis(t: &Table, error: &dyn Fn(&str, &Value, &str) -> Error) -> Result<Axis> {
    let leaves = flatten(t, "");
    if leaves.is_empty() {
        return Err(error(
            "",
            &Value::Table(t.clone()),
            "an empty [[zip]]: give keys and their lists",
        ));
    }
    let mut keys: Vec<String> = Vec::new();
    let mut columns: Vec<Vec<Value>> = Vec::new();
    for (key, value) in leaves {
        let values = axis_values(&value).map_err(|e| error(&key, &value, &e))?;
        if let Some(first) = columns.first()
            && first.len() != values.len()
        {
            let expected = format!(
                "{} values, but `{}` has {}: the lists of a [[zip]] vary together and must be \
                 as long",
                values.len(),
                keys[0],
                first.len()
            );
            return Err(error(&key, &value, &expected));
        }
        keys.push(key);
        columns.push(values);
    }
    let n = columns[0].len();
    let values = (0..n)
        .map(|i| columns.iter().map(|c| c[i].clone()).collect())
        .collect();
    Ok(Axis { keys, values })
}
