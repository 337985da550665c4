//! The adaptation index of a response trace (spec C5, "Adaptation index").
//!
//! `AI = (r_early − r_late)/(r_early + r_late)`, where `r_early` and `r_late` are the means of the
//! trace over an early and a late window of the drive (by default `[100, 115)` and `[134, 149)`,
//! 15 steps each). `AI > 0` means the response decays under a constant drive (adaptation),
//! `AI = 0` a steady response, `AI < 0` a growing one. `AI` is 0 when `|r_early + r_late| < 1e-10`
//! (the spec writes the test without the absolute value; a negative sum, possible for
//! activations below zero, is not treated as zero here).

use std::ops::Range;

use super::{AnalysisError, Result};

/// Denominators `|r_early + r_late|` below this give `AI = 0`.
const DENOMINATOR_MIN: f64 = 1e-10;

/// The two windows of the adaptation index, as half-open step ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdaptationWindows {
    /// The early window.
    pub early: Range<usize>,
    /// The late window.
    pub late: Range<usize>,
}

impl AdaptationWindows {
    /// The spec's windows: early `[100, 115)`, late `[134, 149)`.
    pub const SPEC: AdaptationWindows = AdaptationWindows {
        early: 100..115,
        late: 134..149,
    };
}

impl Default for AdaptationWindows {
    /// [`AdaptationWindows::SPEC`].
    fn default() -> Self {
        Self::SPEC
    }
}

/// The adaptation index of the trace `h` (one value per step) over `windows`.
///
/// Errors if a window is empty or ends past the trace.
///
/// ```
/// use dales::analysis::adaptation::{adaptation_index, AdaptationWindows};
/// let h: Vec<f64> = (0..150).map(|t| if t < 120 { 2.0 } else { 1.0 }).collect();
/// let ai = adaptation_index(&h, &AdaptationWindows::SPEC).unwrap();
/// assert!((ai - 1.0 / 3.0).abs() < 1e-15);
/// ```
pub fn adaptation_index(h: &[f64], windows: &AdaptationWindows) -> Result<f64> {
    let early = window_mean("windows.early", h, &windows.early)?;
    let late = window_mean("windows.late", h, &windows.late)?;
    let denominator = early + late;
    if denominator.abs() < DENOMINATOR_MIN {
        return Ok(0.0);
    }
    Ok((early - late) / denominator)
}

fn window_mean(arg: &'static str, h: &[f64], window: &Range<usize>) -> Result<f64> {
    let problem = if window.is_empty() {
        "is empty".to_string()
    } else if window.end > h.len() {
        format!("ends past the trace of length {}", h.len())
    } else {
        return Ok(h[window.clone()].iter().sum::<f64>() / window.len() as f64);
    };
    Err(AnalysisError::Window {
        arg,
        start: window.start,
        end: window.end,
        problem,
    })
}
