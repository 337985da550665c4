//! Timing of full training steps, for `dales bench` and for comparisons with the PyTorch
//! reference (`shared/reference/bench.py`, whose cases and names these follow).
//!
//! One step is what a training run does per batch: forward, cross-entropy, backward, and the
//! model kind's update (corrected, projected SGD for DANN; plain SGD for the MLP), with the
//! loss read back to the host (which also waits for an asynchronous device).
//!
//! ```
//! use dales::bench::{StepCase, time_steps};
//! use dales::nn::ModelKind;
//!
//! let case = StepCase { kind: ModelKind::Dann, batch: 4, hidden: vec![20, 20] };
//! let timing = time_steps(&case, 1, 3, &dales::device::cpu()).unwrap();
//! assert_eq!(timing.ms.len(), 3);
//! assert!(timing.median_ms() > 0.0);
//! ```

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Result;
use crate::config::{TrainConfig, paper_lr};
use crate::nn::{MlpConfig, ModelKind};
use crate::optim::Optimizer;
use crate::train::cross_entropy;

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

/// The machine's fp32 peak in GFLOP/s, measured: every rayon thread runs 12 independent chains
/// of fused multiply-adds (enough to hide the FMA latency), 16 lanes wide with AVX-512 and 8
/// with AVX2, for about `seconds`, and the FLOPs of all threads are divided by the wall time.
/// `None` without AVX2 and FMA. On this project's 2-vCPU AMD EPYC VM it gives 72–77 GFLOP/s
/// (`dales bench` prints it), half of the 157 that two 256-bit FMA pipes per core would allow:
/// the cores execute a 256-bit FMA as two 128-bit halves. On its 2-vCPU AVX-512 Intel Xeon VM
/// it gives about 420, twice what 8-wide chains reach there.
///
/// ```
/// if let Some(peak) = dales::bench::measured_peak_gflops(0.05) {
///     assert!(peak > 1.0);
/// }
/// ```
pub fn measured_peak_gflops(seconds: f64) -> Option<f64> {
    if !crate::fused::math::has_avx2() {
        return None;
    }
    // Calibrate the iterations of one chain run on this thread, then run them on every thread.
    let mut iters = 1 << 16;
    loop {
        let start = Instant::now();
        fma_chains(iters);
        let t = start.elapsed().as_secs_f64();
        if t > seconds / 4.0 || iters > 1 << 34 {
            iters = ((iters as f64) * seconds / t.max(1e-9)) as u64;
            break;
        }
        iters *= 4;
    }
    let threads = rayon::current_num_threads();
    let start = Instant::now();
    rayon::broadcast(|_| fma_chains(iters));
    let t = start.elapsed().as_secs_f64();
    let lanes = if crate::fused::math::has_avx512() {
        16.0
    } else {
        8.0
    };
    Some(threads as f64 * iters as f64 * 12.0 * lanes * 2.0 / t / 1e9)
}

/// `iters` rounds of 12 independent FMAs, 16 lanes wide on AVX-512 CPUs and 8 on AVX2 ones;
/// returns a value that depends on all of them (so that none is optimised away).
fn fma_chains(iters: u64) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx2,fma")]
        fn run_wide(iters: u64) -> f32 {
            use std::arch::x86_64::*;
            let mul = _mm512_set1_ps(0.999_999);
            let add = _mm512_set1_ps(1e-7);
            let mut acc: [__m512; 12] = std::array::from_fn(|i| _mm512_set1_ps(i as f32));
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = _mm512_fmadd_ps(*a, mul, add);
                }
            }
            let sum = acc
                .iter()
                .fold(_mm512_setzero_ps(), |s, &a| _mm512_add_ps(s, a));
            _mm512_reduce_add_ps(sum)
        }
        if crate::fused::math::has_avx512() {
            // SAFETY: the CPU has AVX-512F, AVX2 and FMA (checked at run time).
            return std::hint::black_box(unsafe { run_wide(std::hint::black_box(iters)) });
        }
        #[target_feature(enable = "avx2,fma")]
        fn run(iters: u64) -> f32 {
            use std::arch::x86_64::*;
            let mul = _mm256_set1_ps(0.999_999);
            let add = _mm256_set1_ps(1e-7);
            let mut acc: [__m256; 12] = std::array::from_fn(|i| _mm256_set1_ps(i as f32));
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = _mm256_fmadd_ps(*a, mul, add);
                }
            }
            let mut lanes = [0.0f32; 8];
            let sum = acc
                .iter()
                .fold(_mm256_setzero_ps(), |s, &a| _mm256_add_ps(s, a));
            // SAFETY: `lanes` holds 8 f32.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
            lanes.iter().sum()
        }
        if crate::fused::math::has_avx2() {
            // SAFETY: the CPU has AVX2 and FMA (checked at run time).
            return std::hint::black_box(unsafe { run(std::hint::black_box(iters)) });
        }
    }
    let _ = iters;
    0.0
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
/// untimed ones. Inputs are uniform [0, 1) pixels and random labels from a pool of 8 batches,
/// as in the reference; the learning rate is the paper's.
pub fn time_steps(
    case: &StepCase,
    warmup: usize,
    steps: usize,
    device: &Device,
) -> Result<StepTiming> {
    let device = device.clone().autodiff();
    let config = case.config();
    let mut model = config.init_seeded(0, &device)?;
    let mut train = TrainConfig::paper(case.kind);
    train.model = config.clone();
    let mut optim = Optimizer::new(train.method()?, train.optim.clip, train.rules());
    optim.check(&model)?;
    let lr = paper_lr(case.kind);

    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let pool: Vec<(Tensor<2>, Vec<usize>)> = (0..8)
        .map(|_| {
            let x: Vec<f32> = (0..case.batch * config.n_in)
                .map(|_| rng.random::<f32>())
                .collect();
            let y = (0..case.batch)
                .map(|_| rng.random_range(0..config.n_out))
                .collect();
            (
                Tensor::from_data(TensorData::new(x, [case.batch, config.n_in]), &device),
                y,
            )
        })
        .collect();

    let mut ms = Vec::with_capacity(steps);
    let mut phases = Vec::with_capacity(steps);
    let since = |t: &Instant| t.elapsed().as_secs_f64() * 1e3;
    for i in 0..warmup + steps {
        let (x, y) = &pool[i % pool.len()];
        let start = Instant::now();
        let (forward, backward) = crate::fused::on_workers(|| {
            let loss = cross_entropy(model.forward(x.clone()), y);
            let forward = since(&start);
            let mut grads = loss.backward();
            let backward = since(&start) - forward;
            model = optim.step(lr, model.clone(), &mut grads);
            // Reading the loss waits for the device; the update is already queued before it.
            let _ = loss.into_scalar::<f32>();
            (forward, backward)
        });
        let total = since(&start);
        if i >= warmup {
            ms.push(total);
            phases.push([forward, backward, total - forward - backward]);
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
/// controller: 50, .. }` at batch 100 with `pool` chosen so that the sequence has `T` steps,
/// or any other sequence model. Returns the milliseconds of each timed step.
pub fn time_sequence_steps(
    config: &crate::nn::seq::SeqConfig,
    steps: usize,
    batch: usize,
    warmup: usize,
    timed: usize,
    device: &Device,
) -> Result<Vec<f64>> {
    use crate::learner::ModelSpec;
    use crate::nn::Parameterised;
    use crate::optim::{Clip, Method};
    let device = device.clone().autodiff();
    let mut model = config.init_seeded(0, &device)?;
    let mut optim = Optimizer::new(Method::ADAM, Clip::NONE, config.default_rules());
    optim.check(&model)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let xs: Vec<f32> = (0..batch * steps).map(|_| rng.random::<f32>()).collect();
    let labels: Vec<usize> = (0..batch).map(|_| rng.random_range(0..10)).collect();
    let mut ms = Vec::new();
    for i in 0..warmup + timed {
        let start = Instant::now();
        let input = Tensor::<3>::from_data(TensorData::new(xs.clone(), [batch, steps, 1]), &device);
        let h = model.last_hidden_of(input, &|_| None);
        let logits = crate::nn::Layer::forward(&model.readout, h);
        let loss = cross_entropy(logits, &labels);
        let _ = loss.clone().into_scalar::<f32>();
        let mut grads = loss.backward();
        model = optim.step(1e-4, model, &mut grads);
        let _ = model.param_layers();
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
