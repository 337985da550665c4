//! Timing of full training steps, for `dales bench` and for comparisons with the PyTorch
//! reference (`shared/reference/bench.py`, whose cases and names these follow).
//!
//! One step is a run's training step ([`crate::train::step`]): forward, cross-entropy,
//! backward, and the model kind's update (corrected, projected SGD for DANN; plain SGD for
//! the MLP), with the loss read back to the host (which also waits for an asynchronous
//! device).
//!
//! ```
//! use dales::bench::{StepCase, time_steps};
//! use dales::fused::Settings;
//! use dales::nn::ModelKind;
//!
//! let case = StepCase { kind: ModelKind::Dann, batch: 4, hidden: vec![20, 20] };
//! let timing = time_steps(&case, 1, 3, &dales::device::cpu(), Settings::default()).unwrap();
//! assert_eq!(timing.ms.len(), 3);
//! assert!(timing.median_ms() > 0.0);
//! ```

use std::time::Instant;

use burn::tensor::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Result;
use crate::config::TrainConfig;
use crate::fused::Settings;
use crate::host::tensor;
use crate::learner::{Learner, ModelSpec};
use crate::nn::convnet::ConvConfig;
use crate::nn::recurrent_net::RecurrentConfig;
use crate::nn::seq::SeqConfig;
use crate::nn::{MlpConfig, ModelKind};
use crate::optim::{Clip, Method, Optimizer};
use crate::presets::paper_lr;
use crate::train::{Targets, step};

/// One feed-forward benchmark case: a model of the paper's family at one batch size.
#[derive(Debug, Clone, PartialEq)]
pub struct StepCase {
    /// Model kind.
    pub kind: ModelKind,
    /// Examples per step.
    pub batch: usize,
    /// Hidden widths (E units for DANN kinds); the paper's is `[500; 3]`.
    pub hidden: Vec<usize>,
}

impl StepCase {
    /// The paper's 784-3×500-10 network (DANN: 50 I units per hidden layer, 1 in the output).
    pub fn paper(kind: ModelKind, batch: usize) -> Self {
        StepCase {
            kind,
            batch,
            hidden: MlpConfig::paper(kind).hidden,
        }
    }

    /// The model configuration.
    pub fn config(&self) -> MlpConfig {
        MlpConfig {
            hidden: self.hidden.clone(),
            pixel_mean: Some(0.5),
            ..MlpConfig::paper(self.kind)
        }
    }

    /// The reference's name for the case, e.g. `dann_784-500x3-10`.
    pub fn name(&self) -> String {
        let c = self.config();
        let widths: Vec<String> = c.hidden.iter().map(|h| h.to_string()).collect();
        let hidden = if widths.iter().all(|w| *w == widths[0]) && !widths.is_empty() {
            format!("{}x{}", widths[0], widths.len())
        } else {
            widths.join("-")
        };
        format!("{}_{}-{hidden}-{}", self.kind.name(), c.n_in, c.n_out)
    }

    /// Floating-point operations of one training step, counting the matrix products only
    /// (2·m·n·k each): the forward products, and in the backward pass one product for every
    /// weight gradient and one for every input gradient, except the first layer's input
    /// gradient, which nobody needs. Element-wise work (γ, normalisation, the update) is left
    /// out; it is a few per cent here.
    pub fn flops(&self) -> f64 {
        let c = self.config();
        let sizes = c.sizes();
        let n_layers = sizes.len() - 1;
        let b = self.batch as f64;
        let mut total = 0.0;
        for i in 0..n_layers {
            let (n_in, n_out) = (sizes[i] as f64, sizes[i + 1] as f64);
            // (products, of which the input-facing ones): each product is (rows, cols) of a
            // weight applied to a batch.
            let products: Vec<(f64, f64, bool)> = if c.kind.is_dann() {
                let ni = c.inhibitory_units(i, n_layers, sizes[i + 1]) as f64;
                // Wex x, Wix x (input-facing), Wei (Wix x)
                vec![(n_out, n_in, true), (ni, n_in, true), (n_out, ni, false)]
            } else {
                vec![(n_out, n_in, true)]
            };
            for (rows, cols, input_facing) in products {
                let fwd = 2.0 * b * rows * cols;
                // forward + weight gradient + input gradient (not for the data)
                let backward_input = if i == 0 && input_facing { 0.0 } else { fwd };
                total += 2.0 * fwd + backward_input;
            }
        }
        total
    }
}

/// Milliseconds per timed step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepTiming {
    /// The case timed.
    pub case: StepCase,
    /// Wall time of each timed step, in order.
    pub ms: Vec<f64>,
    /// Per timed step: milliseconds in the forward pass with the loss, in the backward pass,
    /// and in the update. On an asynchronous device (wgpu) a phase's work may finish in a later
    /// phase; on the CPU each phase is complete when its clock stops.
    pub phases: Vec<[f64; 3]>,
}

impl StepTiming {
    /// Median milliseconds per step.
    pub fn median_ms(&self) -> f64 {
        quantile(&self.ms, 0.5)
    }

    /// Median milliseconds of the forward, backward and update phases.
    pub fn median_phases_ms(&self) -> [f64; 3] {
        let phase = |k: usize| quantile(&self.phases.iter().map(|p| p[k]).collect::<Vec<_>>(), 0.5);
        [phase(0), phase(1), phase(2)]
    }

    /// 10th percentile.
    pub fn p10_ms(&self) -> f64 {
        quantile(&self.ms, 0.1)
    }

    /// 90th percentile.
    pub fn p90_ms(&self) -> f64 {
        quantile(&self.ms, 0.9)
    }

    /// Training examples per second at the median.
    pub fn samples_per_s(&self) -> f64 {
        self.case.batch as f64 / (self.median_ms() / 1e3)
    }

    /// GFLOP/s at the median (see [`StepCase::flops`]).
    pub fn gflops(&self) -> f64 {
        self.case.flops() / (self.median_ms() / 1e3) / 1e9
    }
}

/// The `q`-quantile (nearest rank below, as the reference computes its percentiles).
fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if q == 0.5 {
        let n = v.len();
        return if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        };
    }
    v[(q * (v.len() - 1) as f64) as usize]
}

/// Time `steps` training steps of `case` on `device` (autodiff is added here) after `warmup`
/// untimed ones, with the fused ops under `settings`. Inputs are uniform [0, 1) pixels and
/// random labels from a pool of 8 batches, as in the reference; the learning rate is the
/// paper's.
pub fn time_steps(
    case: &StepCase,
    warmup: usize,
    steps: usize,
    device: &Device,
    settings: Settings,
) -> Result<StepTiming> {
    let device = device.clone().autodiff();
    let config = case.config();
    let mut model = config.init_seeded(0, &device)?;
    let mut train = TrainConfig::paper(case.kind);
    train.model = config.clone();
    let mut optim = Optimizer::new(train.optim.method, train.optim.clip, train.rules());
    optim.check(&model)?;
    let lr = paper_lr(case.kind);

    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let pool: Vec<(Tensor<3>, Targets)> = (0..8)
        .map(|_| {
            let x: Vec<f32> = (0..case.batch * config.n_in)
                .map(|_| rng.random::<f32>())
                .collect();
            let y = (0..case.batch)
                .map(|_| rng.random_range(0..config.n_out))
                .collect();
            (
                tensor(x, [case.batch, 1, config.n_in], &device),
                Targets::all(y),
            )
        })
        .collect();

    let mut ms = Vec::with_capacity(steps);
    let mut phases = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        let (x, y) = &pool[i % pool.len()];
        let start = Instant::now();
        let report = step(
            &mut model,
            &mut optim,
            lr,
            settings,
            |m| m.logits(x.clone()),
            y,
        );
        let total = start.elapsed().as_secs_f64() * 1e3;
        if i >= warmup {
            ms.push(total);
            phases.push(report.phases_ms);
        }
    }
    Ok(StepTiming {
        case: case.clone(),
        ms,
        phases,
    })
}

/// Time full training steps of a sequence model (forward through every step, cross-entropy on
/// the last state's logits, backpropagation through time, Adam at 1e-4): the reference's
/// `bench.py --arun-cpu --arun-seq T` case for `SeqConfig { kind: Arun, hidden: 400,
/// controller: 50, .. }` at batch 100 with inputs of `steps` steps, or any other sequence
/// model. Returns the milliseconds of each timed step.
pub fn time_sequence_steps(
    config: &SeqConfig,
    steps: usize,
    batch: usize,
    [warmup, timed]: [usize; 2],
    device: &Device,
    settings: Settings,
) -> Result<Vec<f64>> {
    let device = device.clone().autodiff();
    let mut model = config.init_seeded(0, &device)?;
    let mut optim = Optimizer::new(Method::ADAM, Clip::NONE, config.default_rules());
    optim.check(&model)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let xs: Vec<f32> = (0..batch * steps).map(|_| rng.random::<f32>()).collect();
    let targets = Targets::all((0..batch).map(|_| rng.random_range(0..10)).collect());
    let mut ms = Vec::new();
    for i in 0..warmup + timed {
        let start = Instant::now();
        let input = tensor(xs.clone(), [batch, steps, 1], &device);
        step(
            &mut model,
            &mut optim,
            1e-4,
            settings,
            |m| m.forward(input, &|_| None),
            &targets,
        );
        if i >= warmup {
            ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(ms)
}

/// Time full training steps of a recurrent E/I model (spec Part B) under its run settings
/// `config` (model, update rules, clipping, learning rate): the reference's `bench.py --kinds
/// rowseq` case for the `rowseq-*` presets. Inputs are `config.model.n_in` uniform [0, 1)
/// values per step for `steps` steps, with random labels, from a pool of 8 batches as in the
/// reference. Returns the milliseconds of each timed step.
pub fn time_recurrent_steps(
    config: &TrainConfig<RecurrentConfig>,
    steps: usize,
    rounds: [usize; 2],
    device: &Device,
    settings: Settings,
) -> Result<Vec<f64>> {
    let shape = [steps, config.model.n_in, config.model.n_out];
    time_run_steps(config, shape, rounds, device, settings)
}

/// Time full training steps of a convolutional network (spec A4) under its run settings: the
/// reference's `bench.py --kinds conv` case for the `conv-*` presets, on images of the
/// model's `in_shape` with uniform [0, 1) pixels and random labels. Returns the milliseconds
/// of each timed step.
pub fn time_conv_steps(
    config: &TrainConfig<ConvConfig>,
    rounds: [usize; 2],
    device: &Device,
    settings: Settings,
) -> Result<Vec<f64>> {
    let pixels = config.model.in_shape.iter().product();
    time_run_steps(
        config,
        [1, pixels, config.model.n_out],
        rounds,
        device,
        settings,
    )
}

/// Time training steps of any run's model on inputs `(B, steps, width)` of uniform [0, 1)
/// values with random labels below `classes`, from a pool of 8 batches.
fn time_run_steps<M: ModelSpec>(
    config: &TrainConfig<M>,
    [steps, width, classes]: [usize; 3],
    [warmup, timed]: [usize; 2],
    device: &Device,
    settings: Settings,
) -> Result<Vec<f64>> {
    let device = device.clone().autodiff();
    let model_config = &config.model;
    let mut model = model_config.init_seeded(0, &device)?;
    let mut optim = Optimizer::new(config.optim.method, config.optim.clip, config.rules());
    optim.check(&model)?;
    let batch = config.batch_size;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let pool: Vec<(Tensor<3>, Targets)> = (0..8)
        .map(|_| {
            let x: Vec<f32> = (0..batch * steps * width)
                .map(|_| rng.random::<f32>())
                .collect();
            let y = (0..batch).map(|_| rng.random_range(0..classes)).collect();
            (tensor(x, [batch, steps, width], &device), Targets::all(y))
        })
        .collect();
    let mut ms = Vec::with_capacity(timed);
    for i in 0..warmup + timed {
        let (x, y) = &pool[i % pool.len()];
        let start = Instant::now();
        step(
            &mut model,
            &mut optim,
            config.optim.lr,
            Settings {
                serial: config.model.serial_steps(batch),
                ..settings
            },
            |m| m.logits(x.clone()),
            y,
        );
        if i >= warmup {
            ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_reference() {
        assert_eq!(
            StepCase::paper(ModelKind::Dann, 32).name(),
            "dann_784-500x3-10"
        );
        assert_eq!(
            StepCase::paper(ModelKind::Mlp, 32).name(),
            "mlp_784-500x3-10"
        );
    }

    #[test]
    fn flops_by_hand() {
        // MLP 784-500-500-500-10 at batch 1: forward 2·(784·500 + 2·500·500 + 500·10), three
        // times for forward + two backward products, minus the first layer's input gradient.
        let fwd = 2.0 * (784.0 * 500.0 + 2.0 * 500.0 * 500.0 + 500.0 * 10.0);
        let mlp = StepCase::paper(ModelKind::Mlp, 1).flops();
        assert_eq!(mlp, 3.0 * fwd - 2.0 * 784.0 * 500.0);
        // DANN adds Wix (50 or 1 rows) and Wei (ne × ni) per layer.
        let dann_fwd = fwd
            + 2.0 * (784.0 * 50.0 + 500.0 * 50.0)
            + 2.0 * 2.0 * (500.0 * 50.0 + 500.0 * 50.0)
            + 2.0 * (500.0 + 10.0);
        let dann = StepCase::paper(ModelKind::Dann, 1).flops();
        assert_eq!(dann, 3.0 * dann_fwd - 2.0 * (784.0 * 500.0 + 784.0 * 50.0));
        assert_eq!(StepCase::paper(ModelKind::Dann, 32).flops(), 32.0 * dann);
    }

    #[test]
    fn quantiles() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&[1.0, 2.0], 0.5), 1.5);
        assert_eq!(quantile(&v, 0.1), 1.0);
        assert_eq!(quantile(&v, 0.9), 4.0);
    }
}
