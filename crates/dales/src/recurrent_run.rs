//! The recurrent networks of the spectral paper as runs: what a [`crate::run::Trainer`] needs
//! from them ([`ModelSpec`], [`Learner`]) and their `dales-rnn/1` checkpoints, which the
//! PyTorch reference reads (`shared/reference/CHECKPOINT_FORMAT.md`): tensors
//! `cells.<k>.<param>`, `dense.<k>.<param>` (dales' hidden dense layers, absent from the
//! reference's models) and `output.<param>`, metadata `format`, `kind` (`rnn | dann | colei`),
//! `task` and dales' own `config`.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::{Device, Tensor};
use dales_data::rows::RowSequences;
use dales_data::task::Task;
use dales_data::{MnistLike, Split};

use crate::checkpoint::{self, NamedTensors, encode};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::learner::{
    GeneratedTasks, Learner, ModelSize, ModelSpec, Readout, check_classes, check_grey,
};
use crate::nn::ParamRole;
use crate::nn::recurrent_net::{
    CellKind, ReadoutKind, RecurrentConfig, RecurrentNet, dann_inhibitory,
};
use crate::optim::{GradScale, GroupRule, Projection, RuleTable};

/// The `format` metadata of a recurrent checkpoint.
pub const RNN_FORMAT: &str = "dales-rnn/1";

impl Learner for RecurrentNet {
    fn logits(&self, inputs: Tensor<3>) -> Tensor<2> {
        self.forward(inputs)
    }

    fn readout(&self) -> Readout {
        if self.config().every_step {
            Readout::Every
        } else {
            Readout::Last
        }
    }

    fn inference(&self) -> Self {
        RecurrentNet::inference(self)
    }

    fn device(&self) -> Device {
        RecurrentNet::device(self)
    }

    /// The normalised SVD entropy of every recurrent matrix (spec B5).
    fn probes(&self) -> Vec<(String, f64)> {
        self.nse()
    }
}

impl ModelSpec for RecurrentConfig {
    type Model = RecurrentNet;

    fn name(&self) -> String {
        RecurrentConfig::name(self)
    }

    fn validate(&self) -> Result<()> {
        RecurrentConfig::validate(self)
    }

    /// Serial when the largest per-step product, `B × H × H`, is below 2²¹ multiply-adds
    /// (the 1 × 100 and 3 × 100 row-sequential models at batch 32, the adding problem): there
    /// a second thread slowed the step down (docs/benchmarks.md).
    fn serial_steps(&self, batch: usize) -> bool {
        let h = self.hidden.iter().copied().max().unwrap_or(0);
        batch * h * h < 1 << 21
    }

    /// Each layer an input and a recurrent dense map (DANN: with its inhibitory units), the
    /// dense layers and the output.
    fn size(&self, width: usize) -> ModelSize {
        let mut fan_in = width;
        let mut total = ModelSize::default();
        for &h in &self.hidden {
            let ni = if self.cell == CellKind::Dann {
                dann_inhibitory(h, self.ratio)
            } else {
                0
            };
            total = total + ModelSize::dense(fan_in, h, ni) + ModelSize::dense(h, h, ni);
            fan_in = h;
        }
        for &n in self.dense.iter().chain([&self.n_out]) {
            total = total + ModelSize::dense(fan_in, n, 1);
            fan_in = n;
        }
        total
    }

    /// Spec B3: the DANN corrections and clamps on the E/I matrices of DANN cells and
    /// readouts, clamped magnitudes for ColEI (with the I→I ablation when configured), plain
    /// gradient descent for the standard cells and dense readouts.
    fn default_rules(&self) -> RuleTable {
        use ParamRole::*;
        let mut rows: Vec<(ParamRole, GroupRule)> = vec![(Bias, GroupRule::PLAIN)];
        match self.cell {
            CellKind::Rnn => {
                rows.extend([(Input, GroupRule::PLAIN), (Recurrent, GroupRule::PLAIN)])
            }
            CellKind::Dann => rows.extend(RuleTable::dann_subtractive()),
            CellKind::Colei => {
                let recurrent = if self.ablates_ii() {
                    Projection::NonNegativeNoIi
                } else {
                    Projection::NonNegative
                };
                rows.extend([
                    (WPos, GroupRule::NON_NEGATIVE),
                    (RecurrentWPos, GroupRule::PLAIN.projected(recurrent)),
                ]);
            }
        }
        match self.readout_kind() {
            ReadoutKind::Dense => rows.push((Weight, GroupRule::PLAIN)),
            ReadoutKind::DannSubtractive => rows.extend(RuleTable::dann_subtractive()),
            ReadoutKind::Dann => {
                rows.extend(RuleTable::dann_subtractive());
                rows.extend([
                    (Alpha, GroupRule::PLAIN.scaled(GradScale::InvSqrtNeFanIn)),
                    (Gain, GroupRule::NON_NEGATIVE),
                ]);
            }
            ReadoutKind::Columnei => rows.push((WPos, GroupRule::NON_NEGATIVE)),
        }
        RuleTable(rows.into_iter().collect())
    }

    fn check_data(&self, data: &MnistLike) -> Result<()> {
        let train = &data.train;
        check_grey(train)?;
        if train.cols() != self.n_in {
            return Err(Error::config(
                "model.n_in",
                self.n_in,
                format!(
                    "{}, the width of the dataset's images (one row per step)",
                    train.cols()
                ),
            ));
        }
        check_classes(self.n_out, data)
    }

    fn task(&self, split: Split) -> Result<Box<dyn Task>> {
        Ok(Box::new(RowSequences::new(split)))
    }

    fn generated(&self) -> Result<Option<GeneratedTasks>> {
        let Some(adding) = &self.adding else {
            return Ok(None);
        };
        let (train, test) = adding.generate()?;
        Ok(Some((Box::new(train), Box::new(test))))
    }

    fn generated_description(&self) -> Option<String> {
        self.adding.as_ref().map(|a| {
            format!(
                "generated adding problem (length {}; {} training and {} test sequences from \
                 seed {})",
                a.length, a.train, a.test, a.seed
            )
        })
    }

    fn init_seeded(&self, seed: u64, device: &Device) -> Result<RecurrentNet> {
        RecurrentConfig::init_seeded(self, seed, device)
    }

    fn save_checkpoint(&self, model: &RecurrentNet, path: &Path) -> Result<()> {
        save_recurrent(model, path)
    }
}

/// Write `model` as a `dales-rnn/1` checkpoint (atomically).
pub fn save_recurrent(model: &RecurrentNet, path: &Path) -> Result<()> {
    let tensors = checkpoint::named_tensors(model, "");
    let config = model.config();
    let meta = HashMap::from([
        ("format".to_string(), RNN_FORMAT.to_string()),
        ("kind".to_string(), config.cell.name().to_string()),
        (
            "task".to_string(),
            if config.adding.is_some() {
                "adding"
            } else {
                "rowseq"
            }
            .to_string(),
        ),
        (
            "config".to_string(),
            serde_json::to_string(config).expect("config serialises"),
        ),
    ]);
    write_atomic(path, &encode(&tensors, meta)?)
}

/// Read a `dales-rnn/1` checkpoint, written by dales (its `config` metadata) or by the
/// reference (sizes and kinds from the tensors). With `expected`, the checkpoint's model must
/// have the same cell, sizes and readout, or the error names the first that differs.
pub fn load_recurrent(
    path: &Path,
    expected: Option<&RecurrentConfig>,
    device: &Device,
) -> Result<RecurrentNet> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (tensors, meta) = checkpoint::decode(path, &bytes)?;
    if let Some(format) = meta.get("format")
        && format != RNN_FORMAT
    {
        return Err(Error::checkpoint(
            path,
            format!("format `{format}`, expected `{RNN_FORMAT}` (a recurrent-model checkpoint)"),
        ));
    }
    let config = match meta.get("config") {
        Some(c) => serde_json::from_str(c)
            .map_err(|e| Error::checkpoint(path, format!("unreadable `config` metadata: {e}")))?,
        None => infer_config(path, &tensors)?,
    };
    if let Some(want) = expected {
        let fields: [(&str, String, String); 5] = [
            ("cell", config.cell.to_string(), want.cell.to_string()),
            (
                "hidden",
                format!("{:?}", config.hidden),
                format!("{:?}", want.hidden),
            ),
            (
                "dense",
                format!("{:?}", config.dense),
                format!("{:?}", want.dense),
            ),
            ("n_in", config.n_in.to_string(), want.n_in.to_string()),
            ("n_out", config.n_out.to_string(), want.n_out.to_string()),
        ];
        for (key, have, want) in fields {
            if have != want {
                return Err(Error::checkpoint(
                    path,
                    format!("the checkpoint has {key} {have}, the configuration {want}"),
                ));
            }
        }
    }
    let model = config
        .init_seeded(0, device)
        .map_err(|e| Error::checkpoint(path, format!("its model cannot be built: {e}")))?;
    checkpoint::fill(model, tensors, path, device)
}

/// The model of a checkpoint without `config` metadata (one the reference wrote): the cell
/// kind from `cells.0`'s tensor names, the sizes from their shapes, the readout from
/// `output`'s names, and the inhibitory counts (DANN) or E:I ratio (ColEI) from the shapes and
/// signs.
fn infer_config(path: &Path, tensors: &NamedTensors) -> Result<RecurrentConfig> {
    let shape = |name: &str| {
        tensors
            .get(name)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| Error::checkpoint(path, format!("missing tensor `{name}`")))
    };
    let cell = if tensors.contains_key("cells.0.uex") {
        CellKind::Dann
    } else if tensors.contains_key("cells.0.u_pos") {
        CellKind::Colei
    } else if tensors.contains_key("cells.0.u") {
        CellKind::Rnn
    } else {
        return Err(Error::checkpoint(
            path,
            "no `cells.0.u`, `cells.0.uex` or `cells.0.u_pos`: not a dales-rnn/1 model",
        ));
    };
    let first = match cell {
        CellKind::Rnn => "u",
        CellKind::Dann => "uex",
        CellKind::Colei => "u_pos",
    };
    let layers = (0..)
        .take_while(|k| tensors.contains_key(&format!("cells.{k}.{first}")))
        .count();
    let mut hidden = Vec::with_capacity(layers);
    for k in 0..layers {
        hidden.push(shape(&format!("cells.{k}.{first}"))?[0]);
    }
    let n_in = shape(&format!("cells.0.{first}"))?[1];
    let readout = if tensors.contains_key("output.weight") {
        ReadoutKind::Dense
    } else if tensors.contains_key("output.alpha") {
        ReadoutKind::Dann
    } else if tensors.contains_key("output.wex") {
        ReadoutKind::DannSubtractive
    } else {
        ReadoutKind::Columnei
    };
    let out_first = match readout {
        ReadoutKind::Dense => "weight",
        ReadoutKind::Dann | ReadoutKind::DannSubtractive => "wex",
        ReadoutKind::Columnei => "w_pos",
    };
    let n_out = shape(&format!("output.{out_first}"))?[0];
    let mut config = RecurrentConfig {
        hidden,
        n_in,
        n_out,
        readout: Some(readout),
        ..RecurrentConfig::paper(cell)
    };
    match cell {
        CellKind::Dann => {
            config.ni_i2h = Some(shape("cells.0.uix")?[0]);
            config.ni_h2h = Some(shape("cells.0.wix")?[0]);
        }
        CellKind::Colei => {
            let (signs, _) = tensors
                .get("cells.0.w_sign")
                .ok_or_else(|| Error::checkpoint(path, "missing tensor `cells.0.w_sign`"))?;
            let ni = signs.iter().filter(|&&s| s < 0.0).count();
            let ne = signs.len() - ni;
            if ni == 0 || ne == 0 {
                return Err(Error::checkpoint(
                    path,
                    "`cells.0.w_sign` needs both +1 (E) and −1 (I) units",
                ));
            }
            config.ratio = ne as f64 / ni as f64;
        }
        CellKind::Rnn => {}
    }
    Ok(config)
}
