//! Robustness tests of the adaptation paper (spec C4): input transforms that change the
//! statistics of a pixel sequence as it is read, and external drives added to every hidden
//! neuron's pre-activation.
//!
//! `t` is the step index in the (permuted) sequence and `P` its length (784 in the paper; the
//! windows of a shorter sequence are given in its own steps).
//!
//! ```
//! use dales::robustness::{Drive, InputTransform};
//!
//! let sin = InputTransform::Sin { freq: 1.0, phase: 0.0, amplitude: 0.5 };
//! let mut xs = vec![1.0f32, 0.0, 1.0, 1.0]; // one sequence of 4 steps
//! sin.apply(&mut xs, 4);
//! // factor(t) = 1 + 0.5·sin(2π t/4) = 1, 1.5, 1, 0.5; the zero pixel stays 0
//! for (x, want) in xs.iter().zip([1.0, 0.0, 1.0, 0.5]) {
//!     assert!((x - want).abs() < 1e-6);
//! }
//!
//! let drive = Drive::paper_step(5.0, 784);
//! assert_eq!(drive.value_at(300), Some(5.0));
//! assert_eq!(drive.value_at(200), None); // the window is strict at both ends
//! ```

mod sweep;

use std::f64::consts::PI;

use burn::tensor::{Device, Tensor};
use dales_data::task::Task;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

pub use sweep::{DriveKind, RunResult, SIN_TEST, Sweep, check_xi};

use crate::error::{Error, Result};
use crate::host::{host_f64, tensor};
use crate::learner::{Learner, Readout};
use crate::nn::seq::SeqClassifier;
use crate::run::score;

/// A transform of the input sequence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputTransform {
    /// `x ← x·(1 + A·sin(2π f t/P + φ))` for positive pixels only.
    Sin {
        /// Frequency `f` (cycles per sequence).
        freq: f64,
        /// Phase `φ`.
        phase: f64,
        /// Amplitude `A`.
        amplitude: f64,
    },
    /// `x ← x·(1 + Δ)` for positive pixels inside the window `p < t < p + L`.
    Step {
        /// Gain change `Δ`.
        delta: f64,
        /// Window length `L`.
        length: usize,
        /// Window position `p`.
        position: usize,
    },
    /// `x ← x·u/period` (`Lin`) or `x·sin(π u/period)` (`Sin`), `u = t mod period`, all pixels.
    Local {
        /// Period in steps.
        period: usize,
        /// Linear ramp or half sine.
        shape: LocalShape,
    },
}

/// The profile of a [`InputTransform::Local`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalShape {
    /// `u/period`.
    Lin,
    /// `sin(π u/period)`.
    Sin,
}

/// The strict window `p < t < p + L` of spec C4, with `t`, `p` taken mod `P` and `L ≤ P`.
fn in_window(t: usize, position: usize, length: usize, steps: usize) -> bool {
    let (t, p, l) = (t % steps, position % steps, length.min(steps));
    p < t && t < p + l
}

impl InputTransform {
    /// Apply the transform to sequences `xs` (`(B, steps)` row-major) in place.
    pub fn apply(&self, xs: &mut [f32], steps: usize) {
        let factor = |t: usize| -> f64 {
            match *self {
                InputTransform::Sin {
                    freq,
                    phase,
                    amplitude,
                } => 1.0 + amplitude * (2.0 * PI * freq * t as f64 / steps as f64 + phase).sin(),
                InputTransform::Step {
                    delta,
                    length,
                    position,
                } => {
                    if in_window(t, position, length, steps) {
                        1.0 + delta
                    } else {
                        1.0
                    }
                }
                InputTransform::Local { period, shape } => {
                    let u = (t % period) as f64 / period as f64;
                    match shape {
                        LocalShape::Lin => u,
                        LocalShape::Sin => (PI * u).sin(),
                    }
                }
            }
        };
        let positive_only = !matches!(self, InputTransform::Local { .. });
        let factors: Vec<f32> = (0..steps).map(|t| factor(t) as f32).collect();
        for seq in xs.chunks_exact_mut(steps) {
            for (x, f) in seq.iter_mut().zip(&factors) {
                if !positive_only || *x > 0.0 {
                    *x *= f;
                }
            }
        }
    }

    /// Check the numbers (`key` names the transform in errors).
    pub fn validate(&self, key: &str) -> Result<()> {
        if let InputTransform::Local { period: 0, .. } = self {
            return Err(Error::config(
                format!("{key}.period"),
                0,
                "a period of at least 1 step",
            ));
        }
        Ok(())
    }
}

/// An external drive `ext_t` added to every hidden pre-activation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Drive {
    /// `ξ` inside the strict window `p < t < p + L`, 0 outside (the paper's
    /// `StepTransform` used as `external_drive`).
    Step {
        /// Amplitude `ξ`.
        amplitude: f64,
        /// Window position `p`.
        position: usize,
        /// Window length `L`.
        length: usize,
    },
    /// Fresh `N(0, ξ²)` per sequence, neuron and step for `p ≤ t < p + L` (the Fig. 3 noise
    /// drive); each sequence's from its own generator, seeded by `seed` and its index.
    Noise {
        /// Standard deviation `ξ`.
        std: f64,
        /// Window position `p`.
        position: usize,
        /// Window length `L`.
        length: usize,
        /// Seed of the noise.
        seed: u64,
    },
    /// Fresh `N(μ, c·I)` per sequence and step for `p ≤ t < p + L`: the figure code's
    /// multivariate-normal drive (`mvnormal-m5.0-cov2.0-l200-p200`: `μ = 5`, `c = 2`; spec C4
    /// reads `Σ = c·I` from that label, UNVERIFIED); each sequence's from its own generator,
    /// seeded by `seed` and its index.
    Normal {
        /// Mean `μ` of every neuron's drive.
        mean: f64,
        /// Variance `c` of every neuron's drive (the covariance is `c·I`).
        cov: f64,
        /// Window position `p`.
        position: usize,
        /// Window length `L`.
        length: usize,
        /// Seed of the samples.
        seed: u64,
    },
}

impl Drive {
    /// The paper's step drive `Step_a{ξ}_l200_p200`, with the window scaled to `steps`
    /// (200 of 784 steps: `p = L = round(steps · 200/784)`).
    pub fn paper_step(amplitude: f64, steps: usize) -> Drive {
        let w = (steps as f64 * 200.0 / 784.0).round() as usize;
        Drive::Step {
            amplitude,
            position: w,
            length: w,
        }
    }

    /// The noise drive on the same window as [`Drive::paper_step`].
    pub fn paper_noise(std: f64, steps: usize, seed: u64) -> Drive {
        let w = (steps as f64 * 200.0 / 784.0).round() as usize;
        Drive::Noise {
            std,
            position: w,
            length: w,
            seed,
        }
    }

    /// The multivariate-normal drive `N(μ, c·I)` on the same window as [`Drive::paper_step`].
    pub fn paper_normal(mean: f64, cov: f64, steps: usize, seed: u64) -> Drive {
        let w = (steps as f64 * 200.0 / 784.0).round() as usize;
        Drive::Normal {
            mean,
            cov,
            position: w,
            length: w,
            seed,
        }
    }

    /// The drive's size (`ξ`): the step's amplitude, the noise's std, the normal drive's mean.
    pub fn amplitude(&self) -> f64 {
        match *self {
            Drive::Step { amplitude, .. } => amplitude,
            Drive::Noise { std, .. } => std,
            Drive::Normal { mean, .. } => mean,
        }
    }

    /// The constant value of a step drive at step `t` (`None` outside its window or for noise).
    pub fn value_at(&self, t: usize) -> Option<f64> {
        match *self {
            Drive::Step {
                amplitude,
                position,
                length,
            } if t > position && t < position + length => Some(amplitude),
            _ => None,
        }
    }

    /// Check that the window lies inside a sequence of `steps` steps and the size is finite.
    pub fn validate(&self, steps: usize) -> Result<()> {
        let (position, length, size) = match *self {
            Drive::Step {
                amplitude,
                position,
                length,
            } => (position, length, amplitude),
            Drive::Noise {
                std,
                position,
                length,
                ..
            } => {
                if std < 0.0 {
                    return Err(Error::config("drive.std", std, "a std ≥ 0"));
                }
                (position, length, std)
            }
            Drive::Normal {
                mean,
                cov,
                position,
                length,
                ..
            } => {
                if !(cov >= 0.0 && cov.is_finite()) {
                    return Err(Error::config("drive.cov", cov, "a finite variance ≥ 0"));
                }
                (position, length, mean)
            }
        };
        if !size.is_finite() {
            return Err(Error::config("drive amplitude", size, "a finite number"));
        }
        if length == 0 || position + length > steps {
            return Err(Error::config(
                "drive window",
                format!("position {position}, length {length}"),
                format!("a non-empty window inside the sequence's {steps} steps"),
            ));
        }
        Ok(())
    }

    /// The drive of every step for the sequences `examples` (their indices in the task, which
    /// seed their noise) of `hidden` neurons: `None` where it is zero. A sequence's drive does
    /// not depend on which others share its batch.
    pub fn tensors(
        &self,
        examples: &[usize],
        hidden: usize,
        steps: usize,
        device: &Device,
    ) -> Vec<Option<Tensor<2>>> {
        let (mean, std, position, length, seed) = match *self {
            Drive::Step { .. } => {
                return (0..steps)
                    .map(|t| {
                        let v = self.value_at(t)?;
                        Some(Tensor::full([examples.len(), hidden], v as f32, device))
                    })
                    .collect();
            }
            Drive::Noise {
                std,
                position,
                length,
                seed,
            } => (0.0, std, position, length, seed),
            Drive::Normal {
                mean,
                cov,
                position,
                length,
                seed,
            } => (mean, cov.sqrt(), position, length, seed),
        };
        let law = Normal::new(mean, std).expect("validated mean and std");
        gaussian(
            law,
            position..position + length,
            seed,
            examples,
            hidden,
            steps,
            device,
        )
    }
}

/// Fresh samples of `law` for `hidden` neurons at every step in `window` (`None` elsewhere),
/// one row per sequence of `examples`: sequence `i` draws its steps in order from ChaCha8
/// seeded with `seed` on stream `i`.
fn gaussian(
    law: Normal<f64>,
    window: std::ops::Range<usize>,
    seed: u64,
    examples: &[usize],
    hidden: usize,
    steps: usize,
    device: &Device,
) -> Vec<Option<Tensor<2>>> {
    let window = window.start.min(steps)..window.end.min(steps);
    let per_sequence = window.len() * hidden;
    let draws: Vec<Vec<f32>> = examples
        .iter()
        .map(|&i| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(i as u64);
            (0..per_sequence)
                .map(|_| law.sample(&mut rng) as f32)
                .collect()
        })
        .collect();
    (0..steps)
        .map(|t| {
            window.contains(&t).then(|| {
                let k = (t - window.start) * hidden;
                let v: Vec<f32> = draws
                    .iter()
                    .flat_map(|d| &d[k..k + hidden])
                    .copied()
                    .collect();
                tensor(v, [examples.len(), hidden], device)
            })
        })
        .collect()
}

/// Mean cross-entropy and error (%) of `model` on the first `limit` examples of `task` (all
/// with `None`), with `transform` applied to the sequences and `drive` to the hidden units,
/// in chunks of `chunk` sequences, without autodiff.
pub fn evaluate_under(
    model: &SeqClassifier,
    task: &dyn Task,
    transform: Option<&InputTransform>,
    drive: Option<&Drive>,
    chunk: usize,
    limit: Option<usize>,
) -> Result<(f64, f64)> {
    let steps = task.steps();
    if model.readout() != Readout::Last {
        return Err(Error::config(
            "model.copy",
            "a copy-task model",
            "an image-classification model: the robustness tests classify images",
        ));
    }
    if let Some(d) = drive {
        d.validate(steps)?;
    }
    if let Some(t) = transform {
        t.validate("transform")?;
    }
    let model = model.inference();
    let device = model.device();
    let n = limit.unwrap_or(task.len()).min(task.len());
    Ok(score(n, chunk, |idx| {
        let mut batch = task.batch(idx);
        if let Some(t) = transform {
            t.apply(&mut batch.inputs, steps);
        }
        let drives = drive.map(|d| d.tensors(idx, model.hidden(), steps, &device));
        let at = |t: usize| drives.as_ref().and_then(|d| d[t].clone());
        let (inputs, targets) = Readout::Last.apply(batch, &device);
        (host_f64(model.forward(inputs, &at)), targets)
    }))
}
