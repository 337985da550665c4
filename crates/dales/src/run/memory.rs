//! The memory a run will need, estimated before anything is allocated, so that a model too
//! large for the machine is refused with the estimate instead of aborting in the allocator.
//!
//! The estimate counts `f32`s: every parameter six times (the value, its gradient, up to two
//! optimiser moments, two temporaries of the update), the activations a training batch keeps
//! for the backward pass (four per unit, step and example), an evaluation batch
//! (`ModelSpec::eval_batch` examples, two floats per unit, plus its inputs) and the training
//! batch's inputs. The dataset is
//! already in memory when the estimate is made and is not counted.

use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::learner::{ModelSize, ModelSpec};

use super::Dataset;

/// Floats per parameter: value, gradient, two optimiser moments, two update temporaries.
const PER_PARAMETER: f64 = 6.0;
/// Floats per unit, step and training example kept for the backward pass.
const PER_TRAINING_UNIT: f64 = 4.0;
/// Floats per unit of an evaluation example.
const PER_EVALUATION_UNIT: f64 = 2.0;

/// The estimated bytes of a run of `config` on `data`.
pub fn estimate<M: ModelSpec>(config: &TrainConfig<M>, data: &Dataset) -> f64 {
    let (steps, width) = (data.train.steps() as f64, data.train.width() as f64);
    let ModelSize { parameters, units } = config.model.size(data.train.width());
    let batch = config.batch_size as f64;
    let eval_batch = config.model.eval_batch() as f64;
    let floats = parameters * PER_PARAMETER
        + units * steps * batch * PER_TRAINING_UNIT
        + eval_batch * (units * PER_EVALUATION_UNIT + steps * width)
        + batch * steps * width;
    floats * 4.0
}

/// Refuse a run whose estimate exceeds `max_memory` bytes, or without one the memory
/// available on this machine (when the OS tells it).
pub fn check<M: ModelSpec>(
    config: &TrainConfig<M>,
    data: &Dataset,
    max_memory: Option<u64>,
) -> Result<()> {
    let (limit, source) = match max_memory {
        Some(m) => (m, "of --max-memory"),
        None => match available() {
            Some(m) => (m, "available on this machine"),
            None => return Ok(()),
        },
    };
    let needed = estimate(config, data);
    if needed > limit as f64 {
        return Err(Error::Memory {
            what: format!(
                "the `{}` model at batch {}",
                config.model.name(),
                config.batch_size
            ),
            needed,
            limit: limit as f64,
            limit_source: source.into(),
        });
    }
    Ok(())
}

/// The memory available to a new process, in bytes (Linux: `MemAvailable` of /proc/meminfo).
pub fn available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A size such as `512M`, `8G`, `1.5GiB` or `1000000` (bytes), for `--max-memory`.
pub fn parse_size(text: &str) -> Result<u64> {
    let bad = || {
        Error::option(
            "--max-memory",
            text,
            "a positive size such as 512M, 8G or 1.5GiB (K, M, G, T: powers of 1024)",
        )
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit.trim().to_ascii_uppercase().trim_end_matches("IB") {
        "" | "B" => 1u64,
        "K" | "KB" => 1 << 10,
        "M" | "MB" => 1 << 20,
        "G" | "GB" => 1 << 30,
        "T" | "TB" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = value * scale as f64;
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("8G").unwrap(), 8 << 30);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("2 kb").unwrap(), 2048);
        for bad in ["", "G", "-1G", "0", "1X", "1.2.3M"] {
            let e = parse_size(bad).unwrap_err().to_string();
            assert!(e.contains("--max-memory"), "{bad}: {e}");
        }
    }

    #[test]
    fn this_machine_reports_its_memory() {
        if std::path::Path::new("/proc/meminfo").exists() {
            assert!(available().is_some_and(|m| m > 1 << 20));
        }
    }
}
