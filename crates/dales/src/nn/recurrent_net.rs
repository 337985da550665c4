//! The recurrent networks of the spectral paper (Li et al. 2023; spec B1–B4): a stack of
//! recurrent layers of one cell type — the standard RNN, the recurrent DANN or ColEI — then
//! dense layers, read out at the last step (row-sequential images, the adding problem) or at
//! every step.
//!
//! Cell `k + 1` reads the states `h_1..h_T` of cell `k`; the dense layers (ReLU between them,
//! the output linear) read the last cell's `h_T`. The readout family follows the cell (spec B4):
//! a dense layer `N(0, 2/d)` after standard cells, a subtractive DANN layer (`WexMean`, num 2,
//! one I unit in the output) after DANN cells, a ColEI layer after ColEI cells.
//!
//! ```
//! use burn::tensor::Tensor;
//! use dales::nn::recurrent_net::{CellKind, RecurrentConfig};
//!
//! let device = dales::device::cpu();
//! let config = RecurrentConfig { hidden: vec![16], ..RecurrentConfig::paper(CellKind::Dann) };
//! let model = config.init_seeded(1, &device).unwrap();
//! let xs = Tensor::<3>::full([2, 28, 28], 0.5, &device); // 2 images, 28 rows of 28 pixels
//! assert_eq!(model.forward(xs).dims(), [2, 10]);
//! ```

use std::fmt;

use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::colei_rnn::{self, ColEiCell, ColEiRecurrent};
use super::dann::{DannConfig, EiDense};
use super::dann_rnn::{DannRnnCell, DannRnnConfig, Distribution, DropConnect};
use super::dense::{Dense, DenseConfig};
use super::effective::Effective;
use super::init::{InitRng, column_means, filled, matrix};
use super::layer::Layer;
use super::mlp::AnyLayer;
use super::param::{Fan, ParamEntry, ParamLayer, ParamValue, Parameterised, param};
use super::spectrum::{nse, singular_values};
use super::standard_rnn::{InputInit, RecurrentInit, StandardRnnCell, draw as standard_draw};
use super::transplant::{self, Transplant};
use crate::error::{Error, Result};
use crate::fused::Settings;
use crate::host::host_f64;
use dales_data::adding::{AddingSpec, AddingTask};

/// The family tag of a `[model]` section of this kind (`kind = "recurrent"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// The recurrent networks of spec Part B.
    Recurrent,
}

/// The recurrent cell of every layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    /// The standard RNN (no sign constraint).
    Rnn,
    /// The recurrent DANN (subtractive inhibition on both paths).
    Dann,
    /// Column-sign-constrained (Song et al.).
    Colei,
}

impl CellKind {
    /// Every kind.
    pub const ALL: [CellKind; 3] = [CellKind::Rnn, CellKind::Dann, CellKind::Colei];

    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Rnn => "rnn",
            CellKind::Dann => "dann",
            CellKind::Colei => "colei",
        }
    }

    /// The readout family the paper pairs with the cell.
    pub fn default_readout(self) -> ReadoutKind {
        match self {
            CellKind::Rnn => ReadoutKind::Dense,
            CellKind::Dann => ReadoutKind::DannSubtractive,
            CellKind::Colei => ReadoutKind::Columnei,
        }
    }
}

impl std::str::FromStr for CellKind {
    type Err = Error;

    /// `rnn`, `dann` or `colei`.
    fn from_str(s: &str) -> Result<Self> {
        CellKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| Error::config("cell", format!("{s:?}"), "one of rnn, dann, colei"))
    }
}

impl fmt::Display for CellKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The family of the dense layers after the recurrent stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadoutKind {
    /// `z = W x + b`, `W ~ N(0, 2/d)`, `b = 0`.
    Dense,
    /// DANN without shunt, `z = (Wex − Wei·Wix) x + b`, the `WexMean` init (num 2).
    DannSubtractive,
    /// The DANN layer with shunt (spec A1.2, A2.1 hidden-layer init).
    Dann,
    /// ColumnEI, inputs split as the layer below.
    Columnei,
}

/// The standard cell's recurrent initialisation, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecurrentInitKind {
    /// `U(±1/√n)`.
    Torch,
    /// `U(±√(3·num/n))`, with `num`.
    Uniform,
}

/// The `[model]` section of a recurrent run (spec B4's settings in [`RecurrentConfig::paper`]).
///
/// Keys that belong to another cell kind are errors, not silently ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurrentConfig {
    /// `"recurrent"`.
    pub kind: Family,
    /// `rnn`, `dann` or `colei`.
    pub cell: CellKind,
    /// Units of each recurrent layer.
    pub hidden: Vec<usize>,
    /// Units of the hidden dense layers between the recurrent stack and the output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dense: Vec<usize>,
    /// The dense layers' family (absent: the cell's, see [`CellKind::default_readout`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readout: Option<ReadoutKind>,
    /// Read out every step instead of the last.
    #[serde(default, skip_serializing_if = "is_false")]
    pub every_step: bool,
    /// Inputs per step (28 for row-sequential 28 × 28 images).
    #[serde(default = "default_n_in")]
    pub n_in: usize,
    /// Outputs (classes).
    #[serde(default = "default_n_out")]
    pub n_out: usize,
    /// E:I ratio (9: 10 % I units) of DANN's inhibitory populations and ColEI's split.
    #[serde(default = "default_ratio")]
    pub ratio: f64,
    /// Variance numerator of the DANN init (default 1/3) or of the standard cell's
    /// `recurrent_init = "uniform"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num: Option<f64>,
    /// DANN: I units of the input path (default `max(⌊n/(ratio + 1)⌋, 1)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ni_i2h: Option<usize>,
    /// DANN: I units of the recurrent path (default as `ni_i2h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ni_h2h: Option<usize>,
    /// DANN: `Wix ~ Exp(σ)` instead of the column means of `Wex` (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_wix: Option<bool>,
    /// DANN: the law of the initial draws (default exponential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
    /// DANN: DropConnect probability of the input path's `Uex`, `Uix` during training (default
    /// 0, see [`DropConnect`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u_dropconnect: Option<f64>,
    /// DANN: DropConnect probability of the recurrent path's `Wex`, `Wix` (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w_dropconnect: Option<f64>,
    /// ColEI: spectral radius of the initial recurrent matrix (default 1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius: Option<f64>,
    /// ColEI: zero diagonal at init (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zero_diag: Option<bool>,
    /// ColEI: no I→I connections, at init and after every step (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ablate_ii: Option<bool>,
    /// Standard cell: `U` init, `torch` (default) or `normal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_init: Option<InputInit>,
    /// Standard cell: `W` init, `torch` (default) or `uniform` (with `num`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrent_init: Option<RecurrentInitKind>,
    /// Standard cell: a spectrum-transplant init (spec B2, Fig. 4), one layer only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transplant: Option<Transplant>,
    /// The adding problem instead of row-sequential images (`n_in = 2`, `n_out = 1`, mean
    /// squared error), with its generated data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adding: Option<AddingConfig>,
}

/// The `[model.adding]` section: the adding problem's sizes and its generated data (spec B4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddingConfig {
    /// Steps per sequence (the paper: 20).
    #[serde(default = "default_adding_length")]
    pub length: usize,
    /// Training sequences generated (one epoch).
    #[serde(default = "default_adding_train")]
    pub train: usize,
    /// Test sequences generated.
    #[serde(default = "default_adding_test")]
    pub test: usize,
    /// Seed of the generated sequences (the test set uses `seed + 1`).
    #[serde(default)]
    pub seed: u64,
}

fn default_adding_length() -> usize {
    20
}
fn default_adding_train() -> usize {
    10_000
}
fn default_adding_test() -> usize {
    1_000
}

impl AddingConfig {
    /// Length 20, 10,000 training and 1,000 test sequences (the paper's data file is not
    /// public; its size is inferred from 8 evaluations per epoch, spec B4).
    pub fn paper() -> Self {
        AddingConfig {
            length: default_adding_length(),
            train: default_adding_train(),
            test: default_adding_test(),
            seed: 0,
        }
    }

    /// The generated training and test tasks (seeds `seed` and `seed + 1`).
    pub fn generate(&self) -> Result<(AddingTask, AddingTask)> {
        let spec = AddingSpec {
            length: self.length,
        };
        let bad =
            |key: &str, v: usize, e: dales_data::DataError| Error::config(key, v, e.to_string());
        let train = spec
            .generate(self.train, self.seed)
            .map_err(|e| bad("model.adding.train", self.train, e))?;
        let test = spec
            .generate(self.test, self.seed + 1)
            .map_err(|e| bad("model.adding.test", self.test, e))?;
        Ok((train, test))
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn default_n_in() -> usize {
    28
}
fn default_n_out() -> usize {
    10
}
fn default_ratio() -> f64 {
    9.0
}

/// DANN's inhibitory units for `n` E units: `max(⌊n/(ratio + 1)⌋, 1)`.
pub fn dann_inhibitory(n: usize, ratio: f64) -> usize {
    ((n as f64 / (ratio + 1.0)) + 1e-9).floor().max(1.0) as usize
}

impl RecurrentConfig {
    /// Spec B4's row-sequential setting for `cell`: one layer of 100, E:I 9, ten classes.
    pub fn paper(cell: CellKind) -> Self {
        RecurrentConfig {
            kind: Family::Recurrent,
            cell,
            hidden: vec![100],
            dense: Vec::new(),
            readout: None,
            every_step: false,
            n_in: default_n_in(),
            n_out: default_n_out(),
            ratio: default_ratio(),
            num: None,
            ni_i2h: None,
            ni_h2h: None,
            random_wix: None,
            u_dropconnect: None,
            w_dropconnect: None,
            distribution: None,
            radius: None,
            zero_diag: None,
            ablate_ii: None,
            input_init: None,
            recurrent_init: None,
            transplant: None,
            adding: None,
        }
    }

    /// Spec B4's adding-problem network for `cell`: one layer of 10 units, inputs (value,
    /// marker), one output.
    pub fn adding_paper(cell: CellKind) -> Self {
        RecurrentConfig {
            hidden: vec![10],
            n_in: 2,
            n_out: 1,
            adding: Some(AddingConfig::paper()),
            ..RecurrentConfig::paper(cell)
        }
    }

    /// The dense layers' family.
    pub fn readout_kind(&self) -> ReadoutKind {
        self.readout.unwrap_or(self.cell.default_readout())
    }

    /// The variance numerator of the DANN init.
    pub fn dann_num(&self) -> f64 {
        self.num.unwrap_or(1.0 / 3.0)
    }

    /// Whether ColEI cells ablate their I→I connections.
    pub fn ablates_ii(&self) -> bool {
        self.ablate_ii.unwrap_or(false)
    }

    /// The name of runs of this model: `rnn`, `dann_rnn`, `colei_rnn`.
    pub fn name(&self) -> String {
        match self.cell {
            CellKind::Rnn => "rnn".into(),
            other => format!("{other}_rnn"),
        }
    }

    /// Check every value; errors name the key.
    pub fn validate(&self) -> Result<()> {
        if self.hidden.is_empty() {
            return Err(Error::config(
                "model.hidden",
                "[]",
                "at least one recurrent layer",
            ));
        }
        let sizes = self.hidden.iter().map(|&n| ("model.hidden", n));
        let dense = self.dense.iter().map(|&n| ("model.dense", n));
        let ends = [("model.n_in", self.n_in), ("model.n_out", self.n_out)];
        for (key, n) in sizes.chain(dense).chain(ends) {
            if n == 0 {
                return Err(Error::config(key, 0, "at least 1"));
            }
        }
        if !(self.ratio.is_finite() && self.ratio > 0.0) {
            return Err(Error::config("model.ratio", self.ratio, "an E:I ratio > 0"));
        }
        if let Some(num) = self.num
            && !(num.is_finite() && num > 0.0)
        {
            return Err(Error::config("model.num", num, "a variance numerator > 0"));
        }
        self.check_cell_keys()?;
        for (key, p) in [
            ("model.u_dropconnect", self.u_dropconnect),
            ("model.w_dropconnect", self.w_dropconnect),
        ] {
            if let Some(p) = p
                && !(0.0..1.0).contains(&p)
            {
                return Err(Error::config(key, p, "a drop probability in [0, 1)"));
            }
        }
        match self.cell {
            CellKind::Dann => {
                for (key, ni) in [("model.ni_i2h", self.ni_i2h), ("model.ni_h2h", self.ni_h2h)] {
                    if ni == Some(0) {
                        return Err(Error::config(key, 0, "at least 1 inhibitory unit"));
                    }
                }
            }
            CellKind::Colei => {
                if let Some(r) = self.radius
                    && !(r.is_finite() && r > 0.0)
                {
                    return Err(Error::config("model.radius", r, "a spectral radius > 0"));
                }
                for &n in &self.hidden {
                    colei_rnn::split(n, self.ratio, "model.ratio")?;
                }
            }
            CellKind::Rnn => {
                if self.recurrent_init == Some(RecurrentInitKind::Uniform) && self.num.is_none() {
                    return Err(Error::config(
                        "model.num",
                        "(missing)",
                        "the variance numerator of recurrent_init = \"uniform\"",
                    ));
                }
                if self.transplant.is_some() {
                    if self.hidden.len() != 1 || !self.dense.is_empty() {
                        return Err(Error::config(
                            "model.transplant",
                            format!("{:?}", self.transplant),
                            "one recurrent layer and no hidden dense layer (the spectral \
                             paper's Fig. 4 networks)",
                        ));
                    }
                    if self.readout.is_some_and(|r| r != ReadoutKind::Dense) {
                        return Err(Error::config(
                            "model.readout",
                            format!("{:?}", self.readout_kind()),
                            "dense: a transplanted network's readout is transplanted too",
                        ));
                    }
                    colei_rnn::split(self.hidden[0], transplant::SOURCE_RATIO, "model.hidden")?;
                }
            }
        }
        if let Some(adding) = &self.adding {
            if (self.n_in, self.n_out) != (2, 1) {
                return Err(Error::config(
                    "model.n_in, model.n_out",
                    format!("{}, {}", self.n_in, self.n_out),
                    "2, 1: the adding problem's inputs (value, marker) and its one output",
                ));
            }
            if self.every_step {
                return Err(Error::config(
                    "model.every_step",
                    true,
                    "false: the adding problem is scored at the last step",
                ));
            }
            if adding.length < 2 {
                return Err(Error::config(
                    "model.adding.length",
                    adding.length,
                    "at least 2",
                ));
            }
            for (key, n) in [
                ("model.adding.train", adding.train),
                ("model.adding.test", adding.test),
            ] {
                if n == 0 {
                    return Err(Error::config(key, 0, "at least 1 sequence"));
                }
            }
        }
        if self.readout_kind() == ReadoutKind::Columnei && self.cell != CellKind::Colei {
            return Err(Error::config(
                "model.readout",
                "columnei",
                "a readout whose inputs have E and I units: columnei reads ColEI cells only",
            ));
        }
        Ok(())
    }

    /// Keys set for another cell kind.
    fn check_cell_keys(&self) -> Result<()> {
        let owned: [(&str, bool, &[CellKind]); 14] = [
            (
                "model.u_dropconnect",
                self.u_dropconnect.is_some(),
                &[CellKind::Dann],
            ),
            (
                "model.w_dropconnect",
                self.w_dropconnect.is_some(),
                &[CellKind::Dann],
            ),
            (
                "model.num",
                self.num.is_some(),
                &[CellKind::Dann, CellKind::Rnn],
            ),
            ("model.ni_i2h", self.ni_i2h.is_some(), &[CellKind::Dann]),
            ("model.ni_h2h", self.ni_h2h.is_some(), &[CellKind::Dann]),
            (
                "model.random_wix",
                self.random_wix.is_some(),
                &[CellKind::Dann],
            ),
            (
                "model.distribution",
                self.distribution.is_some(),
                &[CellKind::Dann],
            ),
            ("model.radius", self.radius.is_some(), &[CellKind::Colei]),
            (
                "model.zero_diag",
                self.zero_diag.is_some(),
                &[CellKind::Colei],
            ),
            (
                "model.ablate_ii",
                self.ablate_ii.is_some(),
                &[CellKind::Colei],
            ),
            (
                "model.input_init",
                self.input_init.is_some(),
                &[CellKind::Rnn],
            ),
            (
                "model.recurrent_init",
                self.recurrent_init.is_some(),
                &[CellKind::Rnn],
            ),
            (
                "model.transplant",
                self.transplant.is_some(),
                &[CellKind::Rnn],
            ),
            (
                "model.num",
                self.cell == CellKind::Rnn
                    && self.num.is_some()
                    && self.recurrent_init != Some(RecurrentInitKind::Uniform),
                &[],
            ),
        ];
        for (key, set, cells) in owned {
            if set && !cells.contains(&self.cell) {
                let which: Vec<&str> = cells.iter().map(|c| c.name()).collect();
                let expected = if which.is_empty() {
                    "unset unless recurrent_init = \"uniform\"".to_string()
                } else {
                    format!(
                        "unset for cell = \"{}\" (a key of cell = {})",
                        self.cell,
                        which.join(" or ")
                    )
                };
                return Err(Error::config(key, "(set)", expected));
            }
        }
        Ok(())
    }

    /// The model, initialised from `seed`: the cells in order, then the dense layers.
    pub fn init_seeded(&self, seed: u64, device: &Device) -> Result<RecurrentNet> {
        self.validate()?;
        let mut rng = InitRng::new(seed);
        if let Some(t) = self.transplant {
            let h = self.hidden[0];
            let (cell, out) = transplant::draw(t, self.n_in, h, self.n_out, &mut rng)?;
            let readout = Dense {
                weight: param(matrix(&out, self.n_out, h, device)),
                bias: param(filled(self.n_out, 0.0, device)),
            };
            return Ok(RecurrentNet {
                cells: vec![RecurrentCell::Standard(StandardRnnCell::new(&cell, device))],
                dense: vec![AnyLayer::Dense(readout)],
                config: self.clone(),
            });
        }
        let mut cells = Vec::with_capacity(self.hidden.len());
        let mut n_in = self.n_in;
        let mut input_split = None;
        for &h in &self.hidden {
            cells.push(self.cell_init(n_in, h, input_split, &mut rng, device)?);
            input_split = match self.cell {
                CellKind::Colei => Some(colei_rnn::split(h, self.ratio, "model.ratio")?),
                _ => None,
            };
            n_in = h;
        }
        let mut dense = Vec::with_capacity(self.dense.len() + 1);
        let widths = self.dense.iter().copied().chain([self.n_out]);
        for (k, n_out) in widths.enumerate() {
            let output = k == self.dense.len();
            dense.push(self.dense_init(n_in, n_out, output, &mut rng, device)?);
            n_in = n_out;
        }
        Ok(RecurrentNet {
            cells,
            dense,
            config: self.clone(),
        })
    }

    fn cell_init(
        &self,
        n_in: usize,
        h: usize,
        input_split: Option<(usize, usize)>,
        rng: &mut InitRng,
        device: &Device,
    ) -> Result<RecurrentCell> {
        Ok(match self.cell {
            CellKind::Rnn => {
                let recurrent = match self.recurrent_init.unwrap_or(RecurrentInitKind::Torch) {
                    RecurrentInitKind::Torch => RecurrentInit::Torch,
                    RecurrentInitKind::Uniform => RecurrentInit::Uniform {
                        num: self.num.expect("validated"),
                    },
                };
                let input = self.input_init.unwrap_or(InputInit::Torch);
                let values = standard_draw(n_in, h, input, recurrent, rng);
                RecurrentCell::Standard(StandardRnnCell::new(&values, device))
            }
            CellKind::Dann => {
                let ni = dann_inhibitory(h, self.ratio);
                let config = DannRnnConfig {
                    n_in,
                    ne: h,
                    ni_i2h: self.ni_i2h.unwrap_or(ni),
                    ni_h2h: self.ni_h2h.unwrap_or(ni),
                    num: self.dann_num(),
                    random_wix: self.random_wix.unwrap_or(false),
                    distribution: self.distribution.unwrap_or(Distribution::Exponential),
                };
                RecurrentCell::Dann(config.init(rng, device))
            }
            CellKind::Colei => {
                let recurrent = ColEiRecurrent {
                    hidden: h,
                    ratio: self.ratio,
                    radius: self.radius.unwrap_or(1.5),
                    zero_diag: self.zero_diag.unwrap_or(true),
                    ablate_ii: self.ablates_ii(),
                };
                let values = colei_rnn::draw(n_in, input_split, &recurrent, rng)?;
                RecurrentCell::ColEi(ColEiCell::new(&values, device))
            }
        })
    }

    fn dense_init(
        &self,
        n_in: usize,
        n_out: usize,
        output: bool,
        rng: &mut InitRng,
        device: &Device,
    ) -> Result<AnyLayer> {
        let ni = if output {
            1
        } else {
            dann_inhibitory(n_out, self.ratio)
        };
        Ok(match self.readout_kind() {
            ReadoutKind::Dense => AnyLayer::Dense(
                DenseConfig {
                    n_in,
                    n_out,
                    first_layer: false,
                }
                .init(rng, device)?,
            ),
            ReadoutKind::DannSubtractive => {
                AnyLayer::EiDense(wex_mean(n_in, n_out, ni, rng, device))
            }
            ReadoutKind::Dann => AnyLayer::Dann(
                DannConfig {
                    n_in,
                    ne: n_out,
                    ni,
                    first_layer: false,
                }
                .init(rng, device)?,
            ),
            ReadoutKind::Columnei => {
                let split = colei_rnn::split(n_in, self.ratio, "model.ratio")?;
                AnyLayer::ColumnEi(colei_rnn::dense(n_out, split, rng, device))
            }
        })
    }
}

/// The dense DANN layer of the recurrent experiments, `EiDenseWeightInit_WexMean(num = 2)`
/// (spec B2): `σ = √(num·ne/(d(ne − 1)))` (`√(num/d)` for one E unit), `Wex ~ Exp(σ)`,
/// `Wei ~ Exp(σ)` with rows normalised to sum to 1, `Wix` = `ni` copies of the column mean of
/// `Wex`, `b = 0`.
pub fn wex_mean(d: usize, ne: usize, ni: usize, rng: &mut InitRng, device: &Device) -> EiDense {
    let num = 2.0;
    let sigma = if ne == 1 {
        (num / d as f64).sqrt()
    } else {
        (num * ne as f64 / (d as f64 * (ne - 1) as f64)).sqrt()
    };
    let wex: Vec<f64> = rng
        .exponential(ne * d, sigma)
        .into_iter()
        .map(|v| v as f32 as f64)
        .collect();
    let mut wei = rng.exponential(ne * ni, sigma);
    for row in wei.chunks_exact_mut(ni) {
        let sum: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= sum);
    }
    let wix = column_means(&wex, ne, d).repeat(ni);
    EiDense {
        wex: param(matrix(&wex, ne, d, device)),
        wix: param(matrix(&wix, ni, d, device)),
        wei: param(matrix(&wei, ne, ni, device)),
        bias: param(filled(ne, 0.0, device)),
    }
}

/// One recurrent layer of a [`RecurrentNet`].
#[derive(Debug, Clone)]
pub enum RecurrentCell {
    /// The standard RNN.
    Standard(StandardRnnCell),
    /// The recurrent DANN.
    Dann(DannRnnCell),
    /// ColEI.
    ColEi(ColEiCell),
}

impl RecurrentCell {
    /// The effective `U`, `W`, `b`.
    pub fn effective(&self) -> Effective {
        match self {
            RecurrentCell::Standard(c) => c.effective(),
            RecurrentCell::Dann(c) => c.effective(),
            RecurrentCell::ColEi(c) => c.effective(),
        }
    }

    /// Inputs per step.
    pub fn n_in(&self) -> usize {
        match self {
            RecurrentCell::Standard(c) => c.n_in(),
            RecurrentCell::Dann(c) => c.n_in(),
            RecurrentCell::ColEi(c) => c.n_in(),
        }
    }

    /// Hidden units.
    pub fn hidden(&self) -> usize {
        match self {
            RecurrentCell::Standard(c) => c.hidden(),
            RecurrentCell::Dann(c) => c.hidden(),
            RecurrentCell::ColEi(c) => c.hidden(),
        }
    }

    /// Parameters and buffers in checkpoint order.
    pub fn entries(&self) -> Vec<ParamEntry> {
        match self {
            RecurrentCell::Standard(c) => c.entries(),
            RecurrentCell::Dann(c) => c.entries(),
            RecurrentCell::ColEi(c) => c.entries(),
        }
    }

    fn with_values(self, values: Vec<ParamValue>) -> Self {
        match self {
            RecurrentCell::Standard(c) => RecurrentCell::Standard(c.with_values(values)),
            RecurrentCell::Dann(c) => RecurrentCell::Dann(c.with_values(values)),
            RecurrentCell::ColEi(c) => RecurrentCell::ColEi(c.with_values(values)),
        }
    }

    fn inference(&self) -> Self {
        match self {
            RecurrentCell::Standard(c) => RecurrentCell::Standard(c.inference()),
            RecurrentCell::Dann(c) => RecurrentCell::Dann(c.inference()),
            RecurrentCell::ColEi(c) => RecurrentCell::ColEi(c.inference()),
        }
    }
}

/// Recurrent layers, then dense layers.
#[derive(Debug, Clone)]
pub struct RecurrentNet {
    /// `cells.0 … cells.{L−1}`.
    pub cells: Vec<RecurrentCell>,
    /// `dense.0 … dense.{K−1}`, then `output`.
    pub dense: Vec<AnyLayer>,
    config: RecurrentConfig,
}

impl RecurrentNet {
    /// The configuration the model was built from.
    pub fn config(&self) -> &RecurrentConfig {
        &self.config
    }

    /// The effective matrices of cell `k` for this forward pass: with DropConnect masks when
    /// the cell is a DANN with a drop probability and the pass is a training step (a noise
    /// seed in [`Settings::current`]); the plain ones otherwise.
    fn cell_effective(&self, k: usize) -> Effective {
        let drop = DropConnect {
            input: self.config.u_dropconnect.unwrap_or(0.0),
            recurrent: self.config.w_dropconnect.unwrap_or(0.0),
        };
        match (&self.cells[k], Settings::current().noise_seed) {
            (RecurrentCell::Dann(c), Some(seed)) if !drop.is_off() => {
                // One stream per layer.
                c.effective_dropped(&drop, seed ^ (k as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
            }
            (cell, _) => cell.effective(),
        }
    }

    /// The last recurrent layer's output: `h_T (B, H)`, or every state `(B·T, H)` (row
    /// `b·T + t`) with `every_step`; `fused` picks the fused sequence op or the step-by-step
    /// tensor version.
    fn recurrent(&self, xs: Tensor<3>, fused: bool) -> Tensor<2> {
        let last = self.cells.len() - 1;
        let mut h = xs;
        for k in 0..last {
            let e = self.cell_effective(k);
            h = if fused {
                e.states(h)
            } else {
                e.states_plain(h)
            };
        }
        let e = self.cell_effective(last);
        if self.config.every_step {
            let [b, t, _] = h.dims();
            let states = if fused {
                e.states(h)
            } else {
                e.states_plain(h)
            };
            states.reshape([b * t, e.hidden()])
        } else if fused {
            e.last(h)
        } else {
            e.last_plain(h)
        }
    }

    fn readout(&self, h: Tensor<2>) -> Tensor<2> {
        let last = self.dense.len() - 1;
        self.dense.iter().enumerate().fold(h, |h, (i, layer)| {
            let z = layer.forward(h);
            if i == last { z } else { relu(z) }
        })
    }

    /// Logits for sequences `xs (B, T, n_in)`: `(B, n_out)`, or `(B·T, n_out)` with
    /// `every_step`.
    pub fn forward(&self, xs: Tensor<3>) -> Tensor<2> {
        self.readout(self.recurrent(xs, true))
    }

    /// [`RecurrentNet::forward`] with every recurrent layer step by step (the reference of
    /// the fused sequence op).
    pub fn forward_plain(&self, xs: Tensor<3>) -> Tensor<2> {
        self.readout(self.recurrent(xs, false))
    }

    /// A copy without autodiff.
    pub fn inference(&self) -> Self {
        RecurrentNet {
            cells: self.cells.iter().map(RecurrentCell::inference).collect(),
            dense: self.dense.iter().map(|l| l.valid()).collect(),
            config: self.config.clone(),
        }
    }

    /// The effective recurrent matrix `W` of every layer, row-major f64 `(H, H)`.
    pub fn recurrent_matrices(&self) -> Vec<(String, usize, Vec<f64>)> {
        self.cells
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let e = c.inference().effective();
                (format!("cells.{k}"), c.hidden(), host_f64(e.w))
            })
            .collect()
    }

    /// The normalised SVD entropy of every recurrent matrix (spec B5), named `nse.cells.k`.
    pub fn nse(&self) -> Vec<(String, f64)> {
        self.recurrent_matrices()
            .into_iter()
            .map(|(name, h, w)| (format!("nse.{name}"), nse(&singular_values(&w, h, h))))
            .collect()
    }

    /// The device the parameters live on.
    pub fn device(&self) -> Device {
        self.cells[0].entries()[0].value.flatten().device()
    }
}

impl Parameterised for RecurrentNet {
    fn param_layers(&self) -> Vec<ParamLayer> {
        let cells = self.cells.iter().enumerate().map(|(k, c)| ParamLayer {
            name: format!("cells.{k}"),
            fan: Fan {
                d: c.n_in(),
                ne: c.hidden(),
            },
            entries: c.entries(),
        });
        let last = self.dense.len() - 1;
        let dense = self.dense.iter().enumerate().map(move |(k, l)| ParamLayer {
            name: if k == last {
                "output".to_string()
            } else {
                format!("dense.{k}")
            },
            fan: l.fan(),
            entries: l.entries(),
        });
        cells.chain(dense).collect()
    }

    fn with_layer_values(self, values: Vec<Vec<ParamValue>>) -> Self {
        let n_cells = self.cells.len();
        assert_eq!(
            values.len(),
            n_cells + self.dense.len(),
            "one value list per layer"
        );
        let mut values = values.into_iter();
        let cells = self
            .cells
            .into_iter()
            .map(|c| c.with_values(values.next().expect("checked")))
            .collect();
        let dense = self
            .dense
            .into_iter()
            .map(|l| l.with_values(values.next().expect("checked")))
            .collect();
        RecurrentNet {
            cells,
            dense,
            config: self.config,
        }
    }
}
