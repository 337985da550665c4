//! Expanding a sweep file into its runs: every combination of the axes' settings for every
//! seed, each a validated configuration with a run-directory name.
//!
//! Runs are ordered seed by seed (all settings of the first seed, then the next), the first
//! axis varying slowest; run `id` is its place in that order. A setting's name joins its
//! values (`dann_lr0.03`; a preset axis gives the bare preset name, other keys their last
//! component or, where two axes share it, the whole key), and its runs are `<name>_seed<s>`.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::file::{Base, PRESET_KEY, SweepFile};
use crate::error::{Error, Result};
use crate::run::{AnyConfig, Overrides, set_key};

/// One run of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    /// Its place in the sweep (the SLURM array index).
    pub id: usize,
    /// Its setting's name.
    pub point: String,
    /// Its seed.
    pub seed: u64,
    /// Its run directory's name, inside the sweep directory.
    pub dir: String,
    /// The axes' values of its setting, by key.
    pub settings: Vec<(String, Value)>,
    /// Its configuration.
    pub config: AnyConfig,
}

/// A sweep, expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Every run, in order.
    pub runs: Vec<PlannedRun>,
    /// The swept keys, in axis order.
    pub keys: Vec<String>,
}

impl SweepFile {
    /// Every run of the sweep, each configuration validated; `data` replaces every run's data
    /// directory. Errors name the sweep file, the run and the key.
    pub fn plan(&self, data: Option<&Path>) -> Result<Plan> {
        let keys: Vec<String> = self.axes.iter().flat_map(|a| a.keys.clone()).collect();
        let labels = labels(&keys);
        let mut bases: Vec<(Option<String>, Table)> = Vec::new();
        let mut settings_list = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for p in 0..self.settings() {
            let settings = self.setting(p);
            let mut name = point_name(&settings, &labels);
            if name.is_empty() {
                // No axes: the one setting is named by its model.
                name = self.base_config(None)?.name();
            }
            if let Some(q) = names.iter().position(|n| *n == name) {
                return Err(self.error(format!(
                    "settings {q} and {p} are both named `{name}`: give the values of an axis \
                     distinct names"
                )));
            }
            names.push(name);
            settings_list.push(settings);
        }
        let mut runs = Vec::new();
        for &seed in &self.seeds {
            for (settings, point) in settings_list.iter().zip(&names) {
                let dir = format!("{point}_seed{seed}");
                let config = self.config(settings, seed, &dir, data, &mut bases)?;
                runs.push(PlannedRun {
                    id: runs.len(),
                    point: point.clone(),
                    seed,
                    dir,
                    settings: settings.clone(),
                    config,
                });
            }
        }
        Ok(Plan { runs, keys })
    }

    /// The values of setting `p`: axis by axis, the last varying fastest.
    fn setting(&self, mut p: usize) -> Vec<(String, Value)> {
        let mut picks = vec![0; self.axes.len()];
        for (a, axis) in self.axes.iter().enumerate().rev() {
            picks[a] = p % axis.values.len();
            p /= axis.values.len();
        }
        self.axes
            .iter()
            .zip(picks)
            .flat_map(|(axis, i)| axis.keys.iter().cloned().zip(axis.values[i].clone()))
            .collect()
    }

    fn base_config(&self, preset: Option<&str>) -> Result<AnyConfig> {
        match (preset, &self.base) {
            (Some(p), _) => AnyConfig::preset(p),
            (None, Base::Preset(p)) => AnyConfig::preset(p),
            (None, Base::Config(path)) => AnyConfig::from_file(path),
            (None, Base::FromAxis) => unreachable!("a preset axis names every run's preset"),
        }
    }

    /// The configuration of one run: the base (or the setting's preset) as a table, the
    /// `[set]` values, the setting's values and the seed set on it, then parsed and
    /// validated as a config file.
    fn config(
        &self,
        settings: &[(String, Value)],
        seed: u64,
        dir: &str,
        data: Option<&Path>,
        bases: &mut Vec<(Option<String>, Table)>,
    ) -> Result<AnyConfig> {
        let preset = settings.iter().find(|(k, _)| k == PRESET_KEY);
        let preset = preset.and_then(|(_, v)| v.as_str().map(str::to_string));
        let mut table = match bases.iter().find(|(p, _)| *p == preset) {
            Some((_, t)) => t.clone(),
            None => {
                let base = self.base_config(preset.as_deref())?;
                let table: Table = base.to_toml().parse().expect("a config's TOML parses");
                bases.push((preset, table.clone()));
                table
            }
        };
        let values = self.set.iter().chain(settings.iter());
        for (key, value) in values.filter(|(k, _)| k != PRESET_KEY) {
            set_key(&mut table, key, value.clone())
                .map_err(|e| self.error(format!("run {dir}: `{key}` = {value}: {e}")))?;
        }
        table.insert("seed".to_string(), Value::Integer(seed as i64));
        let origin = PathBuf::from(format!("{} (run {dir})", self.path.display()));
        let mut config = AnyConfig::from_table(table, &origin).map_err(|e| match e {
            Error::Config { .. } => e.under(&origin.display().to_string()),
            other => other,
        })?;
        // The runs may start elsewhere (a scheduler's node): their data directory is absolute.
        let data = data.or(config.data_dir()).map(Path::to_path_buf);
        if data.is_some() {
            config.apply(&Overrides {
                data,
                ..Overrides::default()
            })?;
        }
        Ok(config)
    }

    fn error(&self, message: String) -> Error {
        Error::ConfigFile {
            path: self.path.clone(),
            message,
        }
    }
}

/// How each swept key appears in a setting's name: nothing for a preset (its value is the
/// name), else its last component, or the whole key (dots as dashes) where two keys share it.
fn labels(keys: &[String]) -> Vec<String> {
    let last = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    keys.iter()
        .map(|k| {
            if k == PRESET_KEY {
                String::new()
            } else if keys.iter().filter(|o| last(o) == last(k)).count() > 1 {
                k.replace('.', "-")
            } else {
                last(k)
            }
        })
        .collect()
}

/// A setting's name: its labelled values joined by `_`.
fn point_name(settings: &[(String, Value)], labels: &[String]) -> String {
    let parts: Vec<String> = settings
        .iter()
        .zip(labels)
        .map(|((_, v), label)| format!("{label}{}", safe(&value_text(v))))
        .collect();
    parts.join("_")
}

/// A value as it reads in a name or a table: strings bare, lists joined by `x`.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join("x"),
        Value::Table(t) => t
            .iter()
            .map(|(k, v)| format!("{k}-{}", value_text(v)))
            .collect::<Vec<_>>()
            .join("-"),
        other => other.to_string(),
    }
}

/// `text` with every character that is awkward in a file name replaced by `-`.
fn safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+') {
                c
            } else {
                '-'
            }
        })
        .collect()
}
