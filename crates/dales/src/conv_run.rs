//! The convolutional networks of spec A4 as runs: what a [`crate::run::Trainer`] needs from
//! them ([`ModelSpec`], [`Learner`]) and their `dales-conv/1` checkpoints, which the PyTorch
//! reference reads (`shared/reference/CHECKPOINT_FORMAT.md`): tensors `conv.<k>.<param>`
//! (filters `(C_out, C_in, kh, kw)`), `dense.<k>.<param>`, `output.<param>`; metadata
//! `format`, `kind` (`conv_dann`, `vgg16_standard`, …), `arch` (JSON) and dales' own `config`.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::{Device, Tensor};
use dales_data::task::{Images, Task};
use dales_data::{MnistLike, Split};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, NamedTensors, encode};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::learner::{Learner, ModelSize, ModelSpec, Readout, check_classes};
use crate::nn::convnet::{ConvConfig, ConvFamily, ConvNet, ConvSpec, Tag};
use crate::optim::RuleTable;

/// The `format` metadata of a convolutional checkpoint.
pub const CONV_FORMAT: &str = "dales-conv/1";

impl Learner for ConvNet {
    /// Images come as `(B, 1, C·H·W)` rows (channel-major), shaped here to `(B, C, H, W)`.
    fn logits(&self, inputs: Tensor<3>) -> Tensor<2> {
        let [c, h, w] = self.config().in_shape;
        let b = inputs.dims()[0];
        self.forward(inputs.reshape([b, c, h, w]))
    }

    fn readout(&self) -> Readout {
        Readout::Last
    }

    fn inference(&self) -> Self {
        ConvNet::inference(self)
    }
}

impl ModelSpec for ConvConfig {
    type Model = ConvNet;

    fn name(&self) -> String {
        ConvConfig::name(self)
    }

    fn validate(&self) -> Result<()> {
        ConvConfig::validate(self)
    }

    /// The dense kind's rules: for the DANN family the corrections with each conv layer's fan
    /// sizes `(C_in·kh·kw, C_e)` (spec A4) and projections; none for `dann-nocorr`.
    fn default_rules(&self) -> RuleTable {
        RuleTable::for_kind(self.family.dense_kind())
    }

    /// Per conv layer its filters and, per example, its patches (`C_in·kh·kw` per output
    /// pixel) and E, I and intermediate maps; then the dense head.
    fn size(&self, _width: usize) -> ModelSize {
        let Ok(shapes) = self.shapes() else {
            return ModelSize::default();
        };
        let [mut c_in, mut h, mut w] = self.in_shape;
        let mut total = ModelSize::default();
        for (k, spec) in self.conv.iter().enumerate() {
            let [oh, ow] = spec.conv().output_size([h, w]);
            let d = c_in * spec.kernel[0] * spec.kernel[1];
            let c_out = self.channels(k);
            let layer = ModelSize::dense(d, c_out, spec.c_i);
            let pixels = (oh * ow) as f64;
            total = total
                + ModelSize {
                    parameters: layer.parameters,
                    units: pixels * (d as f64 + 4.0 * (c_out + spec.c_i) as f64),
                };
            [c_in, h, w] = shapes[k];
        }
        let [c, h, w] = *shapes.last().expect("validated");
        let mut d = c * h * w;
        for &[ne, ni] in self.dense.iter().chain([&[self.n_out, self.out_ni]]) {
            total = total + ModelSize::dense(d, ne + ni, ni);
            d = ne + ni;
        }
        total
    }

    /// 100 images: the first layer's patches and maps are `C·H·W` times a dense layer's.
    fn eval_batch(&self) -> usize {
        100
    }

    fn check_data(&self, data: &MnistLike) -> Result<()> {
        let train = &data.train;
        let have = [train.channels(), train.rows(), train.cols()];
        if have != self.in_shape {
            return Err(Error::config(
                "model.in_shape",
                format!("{:?}", self.in_shape),
                format!("{have:?}, the channels, height and width of the dataset's images"),
            ));
        }
        check_classes(self.n_out, data)
    }

    fn task(&self, split: Split) -> Result<Box<dyn Task>> {
        Ok(Box::new(Images::new(split)))
    }

    fn prepare(&mut self, pixel_mean: Option<f64>) {
        if self.pixel_mean.is_none() {
            self.pixel_mean = pixel_mean;
        }
    }

    fn init_seeded(&self, seed: u64, device: &Device) -> Result<ConvNet> {
        ConvConfig::init_seeded(self, seed, device)
    }

    fn save_checkpoint(&self, model: &ConvNet, path: &Path) -> Result<()> {
        save_conv(model, path)
    }
}

/// The architecture as `dales-conv/1`'s `arch` metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Arch {
    in_shape: [usize; 3],
    conv: Vec<ConvSpec>,
    head_pool: Option<[usize; 2]>,
    dense: Vec<[usize; 2]>,
    n_out: usize,
    out_ni: usize,
    dropout: f64,
}

impl Arch {
    fn of(c: &ConvConfig) -> Arch {
        Arch {
            in_shape: c.in_shape,
            conv: c.conv.clone(),
            head_pool: c.head_pool,
            dense: c.dense.clone(),
            n_out: c.n_out,
            out_ni: c.out_ni,
            dropout: c.dropout,
        }
    }
}

/// The tensors of `model` with its filters in their checkpoint shape `(C_out, C_in, kh, kw)`.
fn file_tensors(model: &ConvNet) -> NamedTensors {
    let mut tensors = checkpoint::named_tensors(model, "");
    for (k, layer) in model.convs.iter().enumerate() {
        for (name, shape) in layer.filter_shapes() {
            if let Some((_, s)) = tensors.get_mut(&format!("conv.{k}.{name}")) {
                *s = shape.to_vec();
            }
        }
    }
    tensors
}

/// Write `model` as a `dales-conv/1` checkpoint (atomically).
pub fn save_conv(model: &ConvNet, path: &Path) -> Result<()> {
    let config = model.config();
    let meta = HashMap::from([
        ("format".to_string(), CONV_FORMAT.to_string()),
        ("kind".to_string(), config.name()),
        (
            "arch".to_string(),
            serde_json::to_string(&Arch::of(config)).expect("arch serialises"),
        ),
        (
            "config".to_string(),
            serde_json::to_string(config).expect("config serialises"),
        ),
    ]);
    write_atomic(path, &encode(&file_tensors(model), meta)?)
}

/// Read a `dales-conv/1` checkpoint, written by dales (its `config` metadata) or by the
/// reference (its `kind` and `arch`). With `expected`, the checkpoint's model must have the
/// same family and architecture, or the error names what differs.
pub fn load_conv(path: &Path, expected: Option<&ConvConfig>, device: &Device) -> Result<ConvNet> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (mut tensors, meta) = checkpoint::decode(path, &bytes)?;
    if meta.get("format").map(String::as_str) != Some(CONV_FORMAT) {
        return Err(Error::checkpoint(
            path,
            format!("not a convolutional checkpoint (format metadata is not `{CONV_FORMAT}`)"),
        ));
    }
    let config = match meta.get("config") {
        Some(c) => serde_json::from_str(c)
            .map_err(|e| Error::checkpoint(path, format!("unreadable `config` metadata: {e}")))?,
        None => config_of(path, &meta)?,
    };
    if let Some(want) = expected {
        let checks = [
            (
                "family",
                config.family.name().to_string(),
                want.family.name().to_string(),
            ),
            (
                "architecture",
                format!("{:?}", Arch::of(&config)),
                format!("{:?}", Arch::of(want)),
            ),
        ];
        for (what, have, want) in checks {
            if have != want {
                return Err(Error::checkpoint(
                    path,
                    format!("the checkpoint's {what} is {have}, the configuration's {want}"),
                ));
            }
        }
    }
    let model = config
        .init_seeded(0, device)
        .map_err(|e| Error::checkpoint(path, format!("its model cannot be built: {e}")))?;
    for (k, layer) in model.convs.iter().enumerate() {
        for (name, shape) in layer.filter_shapes() {
            let name = format!("conv.{k}.{name}");
            if let Some((_, s)) = tensors.get_mut(&name) {
                if *s != shape {
                    return Err(Error::checkpoint(
                        path,
                        format!("tensor `{name}` has shape {s:?}, expected {shape:?}"),
                    ));
                }
                *s = vec![shape[0], shape[1] * shape[2] * shape[3]];
            }
        }
    }
    checkpoint::fill(model, tensors, path, device)
}

/// The configuration of a checkpoint the reference wrote: the family and net from `kind`
/// (`conv_dann_nocorr` → `conv`, `dann-nocorr`), the layers from `arch`.
fn config_of(path: &Path, meta: &HashMap<String, String>) -> Result<ConvConfig> {
    let field = |name: &str| {
        meta.get(name)
            .ok_or_else(|| Error::checkpoint(path, format!("no `{name}` metadata")))
    };
    let kind = field("kind")?;
    let (net, family) = kind
        .split_once('_')
        .ok_or_else(|| Error::checkpoint(path, format!("kind `{kind}` is not NET_FAMILY")))?;
    let family = ConvFamily::ALL
        .into_iter()
        .find(|f| f.name().replace('-', "_") == family)
        .ok_or_else(|| {
            Error::checkpoint(
                path,
                format!("kind `{kind}`: family `{family}` is not dann, dann_nocorr, standard or columnei"),
            )
        })?;
    let arch: Arch = serde_json::from_str(field("arch")?)
        .map_err(|e| Error::checkpoint(path, format!("unreadable `arch` metadata: {e}")))?;
    Ok(ConvConfig {
        kind: Tag::Conv,
        family,
        net: net.to_string(),
        in_shape: arch.in_shape,
        conv: arch.conv,
        head_pool: arch.head_pool,
        dense: arch.dense,
        n_out: arch.n_out,
        out_ni: arch.out_ni,
        dropout: arch.dropout,
        // A ColumnEI checkpoint holds its biases; the mean only shapes the skeleton's init.
        pixel_mean: Some(0.0),
    })
}
