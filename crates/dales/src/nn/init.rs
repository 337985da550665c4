//! Initialisation rules, one function per rule of spec A2, named after it.
//!
//! Random draws come from one seeded [`InitRng`] (ChaCha8), are made in `f64` and stored as `f32`,
//! so a seed fixes the whole model on every platform. `Exp(scale)` is the exponential law with
//! mean = std = `scale`.

use std::f64::consts::PI;

use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Normal, Uniform};

const TWO_PI: f64 = 2.0 * PI;

/// Seeded random source for initialisations.
#[derive(Debug, Clone)]
pub struct InitRng(ChaCha8Rng);

impl InitRng {
    /// A generator fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        InitRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// `n` iid draws of Exp(scale) (mean = std = scale). `scale` must be > 0.
    pub fn exponential(&mut self, n: usize, scale: f64) -> Vec<f64> {
        let law = Exp::new(1.0 / scale).expect("exponential scale must be positive and finite");
        (0..n).map(|_| law.sample(&mut self.0)).collect()
    }

    /// `n` iid draws of N(0, std²).
    pub fn normal(&mut self, n: usize, std: f64) -> Vec<f64> {
        let law = Normal::new(0.0, std).expect("normal std must be finite and non-negative");
        (0..n).map(|_| law.sample(&mut self.0)).collect()
    }

    /// `n` iid draws of U(lo, hi).
    pub fn uniform(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        let law = Uniform::new(lo, hi).expect("uniform bounds must satisfy lo < hi");
        (0..n).map(|_| law.sample(&mut self.0)).collect()
    }

    /// One draw of U(0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0.random::<f64>()
    }
}

/// DANN `Wex`/`Wix` exponential scale (spec A2.1).
///
/// First layer (raw pixels in [0, 1]): √(1/(2d)). Later layers (ReLU inputs): √(2π/(d(2π−1))),
/// the value that preserves the variance of ReLU-Gaussian inputs (spec A2.2, step 2).
pub fn dann_target_std(d: usize, first_layer: bool) -> f64 {
    let d = d as f64;
    if first_layer {
        (1.0 / (2.0 * d)).sqrt()
    } else {
        (TWO_PI / (d * (TWO_PI - 1.0))).sqrt()
    }
}

/// DANN shunt `alpha` init: log √((2π−1)/d), in every layer including the first (spec A2.1).
pub fn dann_alpha_init(d: usize) -> f64 {
    ((TWO_PI - 1.0) / d as f64).sqrt().ln()
}

/// ColumnEI (ne, ni) split of a layer's `n_in` inputs for an E:I `ratio` (spec A1.4).
///
/// ni = ⌈n_in/(ratio+1)⌉ and ne = n_in − ni, in integers (equal to ⌊n_in·ratio/(ratio+1)⌋ without
/// the float-rounding hazard of spec B7.6). The last ni inputs are inhibitory.
pub fn columnei_split(n_in: usize, ratio: usize) -> (usize, usize) {
    let ni = n_in.div_ceil(ratio + 1);
    (n_in - ni, ni)
}

/// ColumnEI hidden-layer scales (σ_e, σ_i) for a presynaptic split (ne, ni) (spec A2.3).
///
/// denom = ((2π−1)/2π)(ne + ne²/ni), σ_e = √(1/denom), σ_i = (ne/ni)σ_e, so that E and I drive
/// balance in expectation: ne·σ_e = ni·σ_i.
pub fn columnei_sigmas(ne: usize, ni: usize) -> (f64, f64) {
    let (ne, ni) = (ne as f64, ni as f64);
    let denom = ((TWO_PI - 1.0) / TWO_PI) * (ne + ne * ne / ni);
    let sigma_e = (1.0 / denom).sqrt();
    (sigma_e, (ne / ni) * sigma_e)
}

/// ColumnEI first-layer exponential scale √(1/d) (spec A2.3).
pub fn columnei_first_sigma(d: usize) -> f64 {
    (1.0 / d as f64).sqrt()
}

/// ColumnEI first-layer bias centring b = −d·σ·pixel_mean (spec A2.3).
pub fn columnei_first_bias(d: usize, pixel_mean: f64) -> f64 {
    -(d as f64) * columnei_first_sigma(d) * pixel_mean
}

/// He-style std of the dense baselines: √(gain/d), gain 1 in the first layer, 2 after (spec A2.4).
pub fn dense_std(d: usize, first_layer: bool) -> f64 {
    let gain = if first_layer { 1.0 } else { 2.0 };
    (gain / d as f64).sqrt()
}

/// A float32 matrix `(rows, cols)` from row-major f64 values.
pub(crate) fn matrix(values: &[f64], rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    debug_assert_eq!(values.len(), rows * cols);
    let data: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

/// A float32 vector filled with `value`.
pub(crate) fn filled(n: usize, value: f64, device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(vec![value as f32; n], [n]), device)
}

/// Column means of a row-major `(rows, cols)` matrix, in f64.
pub(crate) fn column_means(values: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut means = vec![0.0; cols];
    for row in values.chunks_exact(cols) {
        for (m, v) in means.iter_mut().zip(row) {
            *m += v;
        }
    }
    means.iter_mut().for_each(|m| *m /= rows as f64);
    means
}

/// The "henaff" orthogonal recurrent initialisation (spec C2): `V = expm(A)` for a
/// skew-symmetric `A` of 2 × 2 blocks `[[0, s_k], [−s_k, 0]]` with `s_k ~ U(−π, 0)`, which is
/// the block-diagonal rotation `[[cos s_k, sin s_k], [−sin s_k, cos s_k]]` (eigenvalues
/// `e^{±i s_k}`); for odd `h` the last unit keeps eigenvalue 1. Row-major `(h, h)`.
pub fn henaff(h: usize, rng: &mut InitRng) -> Vec<f64> {
    let mut v = vec![0.0; h * h];
    let angles = rng.uniform(h / 2, -PI, 0.0);
    for (k, s) in angles.into_iter().enumerate() {
        let (i, j) = (2 * k, 2 * k + 1);
        let (sin, cos) = s.sin_cos();
        v[i * h + i] = cos;
        v[i * h + j] = sin;
        v[j * h + i] = -sin;
        v[j * h + j] = cos;
    }
    if h % 2 == 1 {
        v[(h - 1) * h + (h - 1)] = 1.0;
    }
    v
}

/// Kaiming-normal std `√(2/fan_in)` (PyTorch's `kaiming_normal_`, fan-in mode, ReLU gain).
pub fn kaiming_std(fan_in: usize) -> f64 {
    (2.0 / fan_in as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference constants of spec A2.1 (table "Reference constants for tests").
    #[test]
    fn dann_constants_match_spec_table() {
        let table = [
            (784, 0.025254, 0.038948, 0.082090, -2.499940),
            (500, 0.031623, 0.048770, 0.102793, -2.275039),
            (100, 0.070711, 0.109054, 0.229852, -1.470320),
            (28, 0.133631, 0.206093, 0.434379, -0.833838),
        ];
        for (d, first, hidden, e_alpha, alpha) in table {
            assert!((dann_target_std(d, true) - first).abs() < 1e-6, "d={d}");
            assert!((dann_target_std(d, false) - hidden).abs() < 1e-6, "d={d}");
            assert!((dann_alpha_init(d).exp() - e_alpha).abs() < 1e-6, "d={d}");
            assert!((dann_alpha_init(d) - alpha).abs() < 1e-6, "d={d}");
        }
    }

    /// Spec A2.3 example constants and splits.
    #[test]
    fn columnei_constants_match_spec() {
        let (se, si) = columnei_sigmas(500, 50);
        assert!((se - 0.014705).abs() < 1e-6 && (si - 0.147049).abs() < 1e-6);
        let (se, si) = columnei_sigmas(90, 10);
        assert!((se - 0.036351).abs() < 1e-6 && (si - 0.327162).abs() < 1e-6);
        assert_eq!(columnei_split(550, 10), (500, 50));
        assert_eq!(columnei_split(100, 9), (90, 10));
        assert_eq!(columnei_split(784, 10), (712, 72));
        // MNIST first-layer bias for d = 784: −3.6596 (spec A2.3).
        assert!((columnei_first_bias(784, 0.1307) + 3.6596).abs() < 1e-4);
    }

    #[test]
    fn exponential_draws_have_mean_and_std_scale() {
        let mut rng = InitRng::new(3);
        let xs = rng.exponential(200_000, 0.05);
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        // standard errors: mean 0.05/√n ≈ 1.1e-4, std ≈ 2.5e-4 (exp. kurtosis 9): 5 s.e. bounds
        assert!((mean - 0.05).abs() < 6e-4, "mean {mean}");
        assert!((var.sqrt() - 0.05).abs() < 1.2e-3, "std {}", var.sqrt());
        assert!(xs.iter().all(|&x| x >= 0.0));
    }

    #[test]
    fn same_seed_same_draws() {
        let a = InitRng::new(7).normal(10, 1.0);
        let b = InitRng::new(7).normal(10, 1.0);
        let c = InitRng::new(8).normal(10, 1.0);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
