//! The recurrent DANN cell (Li et al. 2023; spec B1, B2): excitatory units with their own
//! feed-forward inhibition on the input path and on the recurrent path, **subtractive only**
//! (no shunt, gain or α):
//!
//! `U = Uex − Uei·Uix`, `W = Wex − Wei·Wix`, `h_t = ReLU(U x_t + W h_{t−1} + b)`,
//!
//! with all six matrices ≥ 0 and only the `ne` E units recurrent or read out. The input path
//! has `ni_i2h` I units, the recurrent path `ni_h2h`.
//!
//! The "exact centring" initialisation (spec B2): `σ = √(num/(ne − 1))` (num = 1/3, the
//! PyTorch-like scale, with `ne` the hidden size on both paths), `Wex ~ Exp(σ)`, `Wix` = copies
//! of the column mean of `Wex` (or `Exp(σ)` with `random_wix`), `Wei ~ Exp(σ√(ne/ni))` with
//! rows normalised to sum to 1; likewise `Uex`, `Uix` (always the column means), `Uei`. Then
//! `Wei·Wix = 1·c̄ᵀ` and `W` has zero column sums and entry variance `num/ne`.
//!
//! Optional DropConnect ([`DropConnect`]) masks `Uex`, `Uix`, `Wex`, `Wix` in training steps.

use burn::module::Param;
use burn::tensor::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::effective::Effective;
use super::init::{InitRng, column_means, matrix};
use super::layer::assert_same_shapes;
use super::param::{Fan, ParamEntry, ParamRole, ParamValue, detached, param, set};
use crate::host::tensor;

/// DropConnect of the recurrent DANN (spec B1): during training, `Uex` and `Uix` are multiplied
/// entry by entry by Bernoulli keep-masks that drop with probability `input`, `Wex` and `Wix`
/// by masks that drop with `recurrent`, without the `1/(1 − p)` rescale; `Uei` and `Wei` are
/// never dropped. The masks are drawn once per forward pass (one training step) and shared by
/// every step of the sequence, so the fused sequence op still forms `U` and `W` once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DropConnect {
    /// Drop probability of `Uex`, `Uix`.
    pub input: f64,
    /// Drop probability of `Wex`, `Wix`.
    pub recurrent: f64,
}

impl DropConnect {
    /// Whether nothing is dropped.
    pub fn is_off(&self) -> bool {
        self.input == 0.0 && self.recurrent == 0.0
    }

    /// The keep-masks (1 kept, 0 dropped) of `cell`'s `Uex`, `Uix`, `Wex`, `Wix`, row-major,
    /// drawn from `seed`.
    pub fn masks(&self, cell: &DannRnnCell, seed: u64) -> [Vec<f32>; 4] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut mask = |len: usize, p: f64| -> Vec<f32> {
            (0..len)
                .map(|_| if rng.random::<f64>() < p { 0.0 } else { 1.0 })
                .collect()
        };
        let len = |t: &Param<Tensor<2>>| t.dims().iter().product::<usize>();
        [
            mask(len(&cell.uex), self.input),
            mask(len(&cell.uix), self.input),
            mask(len(&cell.wex), self.recurrent),
            mask(len(&cell.wix), self.recurrent),
        ]
    }
}

/// The law the initial E/I weights are drawn from, with mean σ and variance σ².
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// `Exp(σ)` (the paper's).
    Exponential,
    /// Lognormal with mean σ and variance σ²: `μ = ln(m²/√(m² + v))`, `s = √ln(1 + v/m²)`.
    Lognormal,
    /// Lognormal with variance σ² and median 1: mean `√(0.5 + √(v + 0.25))` (`centered=True`).
    LognormalCentered,
}

impl Distribution {
    /// `n` draws with scale `sigma`.
    pub fn draw(self, rng: &mut InitRng, n: usize, sigma: f64) -> Vec<f64> {
        let lognormal = |rng: &mut InitRng, m: f64, v: f64| {
            let mu = (m * m / (m * m + v).sqrt()).ln();
            let s = (1.0 + v / (m * m)).ln().sqrt();
            rng.normal(n, 1.0)
                .into_iter()
                .map(|z| (mu + s * z).exp())
                .collect()
        };
        let v = sigma * sigma;
        match self {
            Distribution::Exponential => rng.exponential(n, sigma),
            Distribution::Lognormal => lognormal(rng, sigma, v),
            Distribution::LognormalCentered => lognormal(rng, (0.5 + (v + 0.25).sqrt()).sqrt(), v),
        }
    }
}

/// Sizes and initialisation of a [`DannRnnCell`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DannRnnConfig {
    /// Inputs per step.
    pub n_in: usize,
    /// E units `ne` (the hidden size).
    pub ne: usize,
    /// I units of the input path.
    pub ni_i2h: usize,
    /// I units of the recurrent path.
    pub ni_h2h: usize,
    /// Variance numerator (1/3: the variance of PyTorch's `U(±1/√n)`).
    pub num: f64,
    /// `Wix ~ Exp(σ)` instead of copies of the column mean of `Wex` (`random=True`).
    pub random_wix: bool,
    /// The law of the draws.
    pub distribution: Distribution,
}

/// Row-major f64 values of the six matrices and the bias.
#[derive(Debug, Clone, PartialEq)]
pub struct DannRnnValues {
    pub uex: Vec<f64>,
    pub uix: Vec<f64>,
    pub uei: Vec<f64>,
    pub wex: Vec<f64>,
    pub wix: Vec<f64>,
    pub wei: Vec<f64>,
    pub bias: Vec<f64>,
}

/// Values rounded to f32, as the parameters store them (so that the column means taken of them
/// centre the stored matrix exactly).
fn stored(v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(|x| x as f32 as f64).collect()
}

/// `rows` copies of the column means of `m (ne, cols)`.
fn mean_rows(m: &[f64], ne: usize, cols: usize, rows: usize) -> Vec<f64> {
    column_means(m, ne, cols).repeat(rows)
}

/// `Exp(σ√(ne/ni))` rows normalised to sum to 1 (all 1 for `ni = 1`), `(ne, ni)`.
fn stochastic_rows(
    dist: Distribution,
    rng: &mut InitRng,
    ne: usize,
    ni: usize,
    sigma: f64,
) -> Vec<f64> {
    if ni == 1 {
        return vec![1.0; ne];
    }
    let mut m = dist.draw(rng, ne * ni, sigma * (ne as f64 / ni as f64).sqrt());
    for row in m.chunks_exact_mut(ni) {
        let sum: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= sum);
    }
    m
}

impl DannRnnConfig {
    /// `σ = √(num/(ne − 1))` (`ne − 1` floored at 1).
    pub fn sigma(&self) -> f64 {
        (self.num / (self.ne.max(2) - 1) as f64).sqrt()
    }

    /// Draw the exact-centring initialisation: the input path (`Uex`, `Uei`; `Uix` the
    /// column means), then the recurrent path (`Wex`, `Wix` unless it is the column means,
    /// `Wei`); `b = 0`.
    pub fn draw(&self, rng: &mut InitRng) -> DannRnnValues {
        let (d, ne, dist, sigma) = (self.n_in, self.ne, self.distribution, self.sigma());
        let uex = stored(dist.draw(rng, ne * d, sigma));
        let uix = mean_rows(&uex, ne, d, self.ni_i2h);
        let uei = stochastic_rows(dist, rng, ne, self.ni_i2h, sigma);
        let wex = stored(dist.draw(rng, ne * ne, sigma));
        let wix = if self.random_wix {
            dist.draw(rng, self.ni_h2h * ne, sigma)
        } else {
            mean_rows(&wex, ne, ne, self.ni_h2h)
        };
        let wei = stochastic_rows(dist, rng, ne, self.ni_h2h, sigma);
        DannRnnValues {
            uex,
            uix,
            uei,
            wex,
            wix,
            wei,
            bias: vec![0.0; ne],
        }
    }

    /// The cell with a fresh draw.
    pub fn init(&self, rng: &mut InitRng, device: &Device) -> DannRnnCell {
        DannRnnCell::new(&self.draw(rng), self.n_in, device)
    }
}

/// The recurrent DANN cell: `uex`, `uix`, `uei`, `wex`, `wix`, `wei`, `bias`.
#[derive(Debug, Clone)]
pub struct DannRnnCell {
    /// `Uex (ne, n_in)` ≥ 0.
    pub uex: Param<Tensor<2>>,
    /// `Uix (ni_i2h, n_in)` ≥ 0.
    pub uix: Param<Tensor<2>>,
    /// `Uei (ne, ni_i2h)` ≥ 0.
    pub uei: Param<Tensor<2>>,
    /// `Wex (ne, ne)` ≥ 0.
    pub wex: Param<Tensor<2>>,
    /// `Wix (ni_h2h, ne)` ≥ 0.
    pub wix: Param<Tensor<2>>,
    /// `Wei (ne, ni_h2h)` ≥ 0.
    pub wei: Param<Tensor<2>>,
    /// `b (ne)`.
    pub bias: Param<Tensor<1>>,
}

impl DannRnnCell {
    /// The cell holding `values` for `n_in` inputs.
    pub fn new(v: &DannRnnValues, n_in: usize, device: &Device) -> Self {
        let ne = v.bias.len();
        let (ni_i2h, ni_h2h) = (v.uix.len() / n_in, v.wix.len() / ne);
        DannRnnCell {
            uex: param(matrix(&v.uex, ne, n_in, device)),
            uix: param(matrix(&v.uix, ni_i2h, n_in, device)),
            uei: param(matrix(&v.uei, ne, ni_i2h, device)),
            wex: param(matrix(&v.wex, ne, ne, device)),
            wix: param(matrix(&v.wix, ni_h2h, ne, device)),
            wei: param(matrix(&v.wei, ne, ni_h2h, device)),
            bias: param(matrix(&v.bias, 1, ne, device).reshape([ne])),
        }
    }

    /// `U = Uex − Uei·Uix`, `W = Wex − Wei·Wix`, formed once per forward pass.
    pub fn effective(&self) -> Effective {
        Effective {
            u: self.uex.val() - self.uei.val().matmul(self.uix.val()),
            w: self.wex.val() - self.wei.val().matmul(self.wix.val()),
            bias: self.bias.val(),
        }
    }

    /// As [`DannRnnCell::effective`] with `drop`'s masks drawn from `seed` on `Uex`, `Uix`,
    /// `Wex`, `Wix` (gradients reach only the kept entries).
    pub fn effective_dropped(&self, drop: &DropConnect, seed: u64) -> Effective {
        let [ue, ui, we, wi] = drop.masks(self, seed);
        let device = self.uex.val().device();
        let masked =
            |p: &Param<Tensor<2>>, keep: Vec<f32>| p.val() * tensor(keep, p.dims(), &device);
        Effective {
            u: masked(&self.uex, ue) - self.uei.val().matmul(masked(&self.uix, ui)),
            w: masked(&self.wex, we) - self.wei.val().matmul(masked(&self.wix, wi)),
            bias: self.bias.val(),
        }
    }

    /// E units `ne`.
    pub fn hidden(&self) -> usize {
        self.wex.dims()[0]
    }

    /// Inputs per step.
    pub fn n_in(&self) -> usize {
        self.uex.dims()[1]
    }

    /// The parameters with roles `wex`, `wix`, `wei` on both paths; the fan-in of the input
    /// path is `n_in`, of the recurrent path `ne` (so the corrections of spec B3 are
    /// `∇Uix/√ne`, `∇Uei/n_in`, `∇Wix/√ne`, `∇Wei/ne`).
    pub fn entries(&self) -> Vec<ParamEntry> {
        let ne = self.hidden();
        let recurrent = Fan { d: ne, ne };
        vec![
            ParamEntry::matrix("uex", ParamRole::Wex, &self.uex),
            ParamEntry::matrix("uix", ParamRole::Wix, &self.uix),
            ParamEntry::matrix("uei", ParamRole::Wei, &self.uei),
            ParamEntry::matrix("wex", ParamRole::Wex, &self.wex).with_fan(recurrent),
            ParamEntry::matrix("wix", ParamRole::Wix, &self.wix).with_fan(recurrent),
            ParamEntry::matrix("wei", ParamRole::Wei, &self.wei).with_fan(recurrent),
            ParamEntry::vector("bias", ParamRole::Bias, &self.bias),
        ]
    }

    /// The same cell holding `values` (in the order of [`DannRnnCell::entries`]).
    pub fn with_values(self, values: Vec<ParamValue>) -> Self {
        assert_same_shapes(&self.entries(), &values);
        let mut v = values.into_iter();
        let mut next = || v.next().expect("checked length").into_matrix();
        let (uex, uix, uei) = (next(), next(), next());
        let (wex, wix, wei) = (next(), next(), next());
        let bias = v.next().expect("checked length").into_vector();
        DannRnnCell {
            uex: set(self.uex, uex),
            uix: set(self.uix, uix),
            uei: set(self.uei, uei),
            wex: set(self.wex, wex),
            wix: set(self.wix, wix),
            wei: set(self.wei, wei),
            bias: set(self.bias, bias),
        }
    }

    /// A copy without autodiff.
    pub fn inference(&self) -> Self {
        DannRnnCell {
            uex: detached(&self.uex),
            uix: detached(&self.uix),
            uei: detached(&self.uei),
            wex: detached(&self.wex),
            wix: detached(&self.wix),
            wei: detached(&self.wei),
            bias: detached(&self.bias),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effective_w(v: &DannRnnValues, ne: usize, ni: usize) -> Vec<f64> {
        let mut w = v.wex.clone();
        for k in 0..ne {
            for j in 0..ne {
                w[k * ne + j] -= (0..ni)
                    .map(|i| v.wei[k * ni + i] * v.wix[i * ne + j])
                    .sum::<f64>();
            }
        }
        w
    }

    #[test]
    fn exact_centring_zero_column_sums_and_variance() {
        let config = DannRnnConfig {
            n_in: 28,
            ne: 100,
            ni_i2h: 10,
            ni_h2h: 10,
            num: 1.0 / 3.0,
            random_wix: false,
            distribution: Distribution::Exponential,
        };
        let v = config.draw(&mut InitRng::new(2));
        let w = effective_w(&v, 100, 10);
        for j in 0..100 {
            let col: f64 = (0..100).map(|k| w[k * 100 + j]).sum();
            assert!(col.abs() < 1e-12, "column {j}: {col}");
        }
        // Entry variance σ²(ne−1)/ne = num/ne; 10k entries of an exponential: ±5 % is > 3 s.e.
        let var = w.iter().map(|x| x * x).sum::<f64>() / w.len() as f64;
        let want = 1.0 / 3.0 / 100.0;
        assert!((var / want - 1.0).abs() < 0.1, "{var} vs {want}");
        for row in v.wei.chunks_exact(10).chain(v.uei.chunks_exact(10)) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        assert!(v.wex.iter().chain(&v.wix).chain(&v.uix).all(|&x| x >= 0.0));
    }

    #[test]
    fn lognormal_moments() {
        let mut rng = InitRng::new(9);
        let x = Distribution::Lognormal.draw(&mut rng, 200_000, 0.2);
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x.len() as f64;
        assert!((mean / 0.2 - 1.0).abs() < 0.01, "{mean}");
        assert!((var / 0.04 - 1.0).abs() < 0.05, "{var}");
        let mut c = Distribution::LognormalCentered.draw(&mut rng, 100_001, 0.2);
        c.sort_by(f64::total_cmp);
        assert!((c[50_000] - 1.0).abs() < 0.01, "median {}", c[50_000]);
    }
}
