//! The papers' settings by name: `dales train --preset NAME` and the reproductions start from
//! these. Each is a whole [`TrainConfig`], written out here once; `configs/*.toml` hold some
//! of them as files.

use crate::config::{
    DataConfig, OptimConfig, TrainConfig, default_batch, default_epochs, default_seed,
};
use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::nn::convnet::{ConvConfig, ConvFamily};
use crate::nn::recurrent_net::{CellKind, RecurrentConfig};
use crate::nn::seq::{SeqConfig, SeqKind};
use crate::nn::{MlpConfig, ModelKind};
use crate::optim::{Clip, ClipScope, Method, Plateau, StepDecay};
use crate::run::AnyConfig;

/// The paper's learning rates (spec A5; the LayerNorm value comes from the reference's sweep,
/// `shared/reference/README.md`; the subtractive DANN uses the DANN value).
pub fn paper_lr(kind: ModelKind) -> f64 {
    match kind {
        ModelKind::Mlp => 0.2976,
        ModelKind::LayerNorm => 0.1107,
        ModelKind::ColumnEi => 0.05273,
        ModelKind::Dann => 0.1107,
        ModelKind::DannNocorr => 0.003981,
        ModelKind::DannSubtractive => 0.1107,
    }
}

/// Names accepted by [`TrainConfig::preset`].
pub const PRESETS: [&str; 7] = [
    "mlp",
    "layernorm",
    "columnei",
    "dann",
    "dann-nocorr",
    "dann-subtractive",
    "dann-dngd",
];

impl TrainConfig {
    /// The DANN paper's setting for `kind` (spec A5): 3 hidden layers of 500 (+50 I; ColumnEI
    /// 550), batch 32, plain SGD at the model's learning rate, no clipping, 50 epochs, seed 1.
    pub fn paper(kind: ModelKind) -> Self {
        TrainConfig {
            seed: default_seed(),
            epochs: default_epochs(),
            batch_size: default_batch(),
            device: DeviceChoice::Cpu,
            data: DataConfig::default(),
            model: MlpConfig::paper(kind),
            optim: OptimConfig::new(Method::SGD, paper_lr(kind)),
        }
    }

    /// The published d-NGD setting (spec A5, `test_mnist_dngd_config.yaml`): DANN layers of
    /// 500 E and one I unit (output 10 E, one I) without corrections, batch 250, the diagonal
    /// natural gradient at lr 300 (f_λ 2.5e-5, c 0.02, F⁻¹ scaled by its `wex` norm), 50 epochs.
    pub fn dngd_paper() -> Self {
        let mut c = TrainConfig::paper(ModelKind::DannNocorr);
        c.model.ni = Some(1);
        c.batch_size = 250;
        c.optim = OptimConfig::new(Method::DNGD, 300.0);
        c
    }

    /// A preset by name (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self> {
        if name == "dann-dngd" {
            return Ok(TrainConfig::dngd_paper());
        }
        let kind: ModelKind = name.parse().map_err(|_| {
            Error::config(
                "preset",
                format!("{name:?}"),
                format!("one of {}", PRESETS.join(", ")),
            )
        })?;
        Ok(TrainConfig::paper(kind))
    }
}

/// Names accepted by [`TrainConfig::sequence_preset`]: each model at the paper's size
/// (`arun`, `rnn-relu`, …) and scaled down to train on a CPU (`arun-small`, …).
pub const SEQ_PRESETS: [&str; 16] = [
    "rnn-relu",
    "rnn-tanh",
    "rnn-softplus",
    "rnn-gamma",
    "rnn-gamma-het",
    "arun",
    "lstm",
    "gru",
    "rnn-relu-small",
    "rnn-tanh-small",
    "rnn-softplus-small",
    "rnn-gamma-small",
    "rnn-gamma-het-small",
    "arun-small",
    "lstm-small",
    "gru-small",
];

impl TrainConfig<SeqConfig> {
    /// The adaptation paper's psMNIST setting (spec C3) on the default dataset: 784 steps in a
    /// fixed permutation (seed 400), `H = 400` (ARUN: `K = 50`), Adam at 1e-4, batch 100,
    /// `ReduceLROnPlateau` on the validation loss, a 50k/10k train/validation split visited in
    /// the same order every epoch (the paper's loader has `shuffle=False`), 100 epochs.
    pub fn sequence_paper(kind: SeqKind) -> Self {
        TrainConfig {
            seed: default_seed(),
            epochs: 100,
            batch_size: 100,
            device: DeviceChoice::Cpu,
            data: DataConfig {
                validation: 10_000,
                shuffle: false,
                ..DataConfig::default()
            },
            model: SeqConfig::paper(kind),
            optim: OptimConfig {
                plateau: Some(Plateau::default()),
                ..OptimConfig::new(Method::ADAM, 1e-4)
            },
        }
    }

    /// The paper's setting scaled down to train on a 2-core CPU: 7 × 7 images (4 × 4
    /// pooling, 49 steps) in a fixed permutation, `H = 64` (ARUN: `K = 16`), Adam at 1e-3,
    /// batch 100, a 50k/10k split, `ReduceLROnPlateau` with patience 2, 6 epochs.
    pub fn sequence_small(kind: SeqKind) -> Self {
        let mut c = TrainConfig::sequence_paper(kind);
        c.epochs = 6;
        c.model.pool = 4;
        c.model.hidden = 64;
        c.model.controller = 16;
        c.optim.lr = 1e-3;
        c.optim.plateau = Some(Plateau {
            patience: 2,
            ..Plateau::default()
        });
        c
    }

    /// The adaptation paper's copy task (spec C3): `H = 128`, delay 200, 10 symbols of 8,
    /// batch 10, Adam at 1e-3, 100 epochs of 10,000 generated sequences (the paper's 100,000
    /// steps), evaluated on 1,000 others.
    pub fn copy_paper(kind: SeqKind) -> Self {
        TrainConfig {
            epochs: 100,
            batch_size: 10,
            data: DataConfig {
                shuffle: false,
                ..DataConfig::default()
            },
            model: SeqConfig::copy_paper(kind),
            optim: OptimConfig::new(Method::ADAM, 1e-3),
            ..TrainConfig::sequence_paper(kind)
        }
    }

    /// The copy task scaled down for a 2-core CPU: delay 50 (70 steps), `H = 64` (ARUN:
    /// `K = 16`), batch 10, Adam at 1e-3, 10 epochs of 10,000 sequences.
    pub fn copy_small(kind: SeqKind) -> Self {
        let mut c = TrainConfig::copy_paper(kind);
        c.epochs = 10;
        c.model.hidden = 64;
        c.model.controller = 16;
        if let Some(copy) = &mut c.model.copy {
            copy.delay = 50;
        }
        c
    }

    /// A preset by name: one of [`SEQ_PRESETS`], or `copy-MODEL` and `copy-MODEL-small`
    /// for the copy task with any sequence model (`copy-arun`, `copy-rnn-relu-small`, …).
    pub fn sequence_preset(name: &str) -> Result<Self> {
        let unknown = || {
            Error::config(
                "preset",
                format!("{name:?}"),
                format!(
                    "one of {}, or copy-MODEL[-small] with MODEL one of the first eight",
                    SEQ_PRESETS.join(", ")
                ),
            )
        };
        let (copy, rest) = match name.strip_prefix("copy-") {
            Some(rest) => (true, rest),
            None => (false, name),
        };
        let (base, small) = match rest.strip_suffix("-small") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let kind: SeqKind = base.parse().map_err(|_| unknown())?;
        Ok(match (copy, small) {
            (false, false) => TrainConfig::sequence_paper(kind),
            (false, true) => TrainConfig::sequence_small(kind),
            (true, false) => TrainConfig::copy_paper(kind),
            (true, true) => TrainConfig::copy_small(kind),
        })
    }
}

/// Names accepted by [`TrainConfig::recurrent_preset`]: the spectral paper's row-sequential
/// networks, one layer (`rowseq-*`) and three (`rowseq3-*`), and its adding problem.
pub const RECURRENT_PRESETS: [&str; 9] = [
    "rowseq-rnn",
    "rowseq-dann",
    "rowseq-colei",
    "rowseq3-rnn",
    "rowseq3-dann",
    "rowseq3-colei",
    "adding-rnn",
    "adding-dann",
    "adding-colei",
];

/// The clipping of the spectral paper's ColEI runs at `max_norm` (spec B3): per tensor, with
/// its ε of 1e-12.
pub fn colei_clip(max_norm: f64) -> Clip {
    Clip {
        scope: ClipScope::Tensor,
        max_norm,
        eps: 1e-12,
    }
}

impl TrainConfig<RecurrentConfig> {
    /// The spectral paper's row-sequential setting (spec B4) for `cell` with `layers`
    /// recurrent layers of 100: 28 steps of 28 pixels, batch 32, plain SGD at 0.01, no
    /// clipping except ColEI's (10 per tensor), 30 epochs, the training order reshuffled every
    /// epoch, evaluated on the test set.
    pub fn rowseq(cell: CellKind, layers: usize) -> Self {
        let clip = match cell {
            CellKind::Colei => colei_clip(10.0),
            CellKind::Rnn | CellKind::Dann => Clip::NONE,
        };
        TrainConfig {
            seed: default_seed(),
            epochs: 30,
            batch_size: default_batch(),
            device: DeviceChoice::Cpu,
            data: DataConfig::default(),
            model: RecurrentConfig {
                hidden: vec![100; layers],
                ..RecurrentConfig::paper(cell)
            },
            optim: OptimConfig {
                clip,
                ..OptimConfig::new(Method::SGD, 0.01)
            },
        }
    }

    /// The spectral paper's adding problem (spec B4) for `cell`: one layer of 10 units,
    /// length 20, batch 64, SGD at 0.1 decayed × 0.99 every 20 updates, clipping ColEI 7 per
    /// tensor, DANN 3 per layer, the standard RNN none; 100 epochs of 10,000 generated
    /// sequences, evaluated every 20 updates on 1,000 others.
    pub fn adding(cell: CellKind) -> Self {
        let clip = match cell {
            CellKind::Colei => colei_clip(7.0),
            CellKind::Dann => Clip {
                scope: ClipScope::Layer,
                max_norm: 3.0,
                eps: 1e-12,
            },
            CellKind::Rnn => Clip::NONE,
        };
        TrainConfig {
            seed: default_seed(),
            epochs: 100,
            batch_size: 64,
            device: DeviceChoice::Cpu,
            data: DataConfig {
                eval_every: Some(20),
                ..DataConfig::default()
            },
            model: RecurrentConfig::adding_paper(cell),
            optim: OptimConfig {
                clip,
                decay: Some(StepDecay {
                    factor: 0.99,
                    every: 20,
                }),
                ..OptimConfig::new(Method::SGD, 0.1)
            },
        }
    }

    /// A preset by name (see [`RECURRENT_PRESETS`]).
    pub fn recurrent_preset(name: &str) -> Result<Self> {
        let unknown = || {
            Error::config(
                "preset",
                format!("{name:?}"),
                format!("one of {}", RECURRENT_PRESETS.join(", ")),
            )
        };
        let cell = |c: &str| {
            CellKind::ALL
                .into_iter()
                .find(|k| k.name() == c)
                .ok_or_else(unknown)
        };
        if let Some(c) = name.strip_prefix("rowseq3-") {
            Ok(TrainConfig::rowseq(cell(c)?, 3))
        } else if let Some(c) = name.strip_prefix("rowseq-") {
            Ok(TrainConfig::rowseq(cell(c)?, 1))
        } else if let Some(c) = name.strip_prefix("adding-") {
            Ok(TrainConfig::adding(cell(c)?))
        } else {
            Err(unknown())
        }
    }
}

/// Names accepted by [`TrainConfig::conv_preset`]: the small convnet of each family on
/// 28×28 grey images, and the VGG16s for CIFAR-10.
pub const CONV_PRESETS: [&str; 6] = [
    "conv-dann",
    "conv-dann-nocorr",
    "conv-standard",
    "conv-columnei",
    "vgg16-dann",
    "vgg16-standard",
];

/// The small convnets' learning rates (none is published, spec A4): the reference's held-out
/// check (`shared/reference/README.md`).
pub fn conv_lr(family: ConvFamily) -> f64 {
    match family {
        ConvFamily::Dann | ConvFamily::Standard => 0.05,
        ConvFamily::ColumnEi => 0.01,
        ConvFamily::DannNocorr => 0.002,
    }
}

impl TrainConfig<ConvConfig> {
    /// The small convnet of `family` on Fashion-MNIST: batch 32, plain SGD at
    /// [`conv_lr`], 50 epochs, seed 1.
    pub fn conv(family: ConvFamily) -> Self {
        TrainConfig {
            seed: default_seed(),
            epochs: default_epochs(),
            batch_size: default_batch(),
            device: DeviceChoice::Cpu,
            data: DataConfig::default(),
            model: ConvConfig::small(family),
            optim: OptimConfig::new(Method::SGD, conv_lr(family)),
        }
    }

    /// The VGG16 of `family` on CIFAR-10 (spec A4; `--data` names the directory): batch 128,
    /// plain SGD at 0.01, 50 epochs. The paper publishes none of these settings.
    pub fn vgg16(family: ConvFamily) -> Self {
        TrainConfig {
            batch_size: 128,
            model: ConvConfig::vgg(16, family, 10),
            optim: OptimConfig::new(Method::SGD, 0.01),
            ..TrainConfig::conv(family)
        }
    }

    /// A preset by name (see [`CONV_PRESETS`]).
    pub fn conv_preset(name: &str) -> Result<Self> {
        let family = |f: &str| ConvFamily::ALL.into_iter().find(|k| k.name() == f);
        let found = if let Some(f) = name.strip_prefix("conv-") {
            family(f).map(TrainConfig::conv)
        } else if let Some(f) = name.strip_prefix("vgg16-") {
            family(f)
                .filter(|f| matches!(f, ConvFamily::Dann | ConvFamily::Standard))
                .map(TrainConfig::vgg16)
        } else {
            None
        };
        found.ok_or_else(|| {
            Error::config(
                "preset",
                format!("{name:?}"),
                format!("one of {}", CONV_PRESETS.join(", ")),
            )
        })
    }
}

impl AnyConfig {
    /// A preset of any family by name: one of [`PRESETS`], [`SEQ_PRESETS`],
    /// [`RECURRENT_PRESETS`] or [`CONV_PRESETS`], or `copy-MODEL[-small]`.
    pub fn preset(name: &str) -> Result<AnyConfig> {
        if let Ok(c) = TrainConfig::preset(name) {
            return Ok(AnyConfig::FeedForward(c));
        }
        if let Ok(c) = TrainConfig::conv_preset(name) {
            return Ok(AnyConfig::Conv(c));
        }
        if let Ok(c) = TrainConfig::recurrent_preset(name) {
            return Ok(AnyConfig::Recurrent(c));
        }
        TrainConfig::sequence_preset(name)
            .map(AnyConfig::Sequence)
            .map_err(|_| {
                Error::config(
                    "preset",
                    format!("{name:?}"),
                    format!(
                        "one of {}, {}, {}, {}, or copy-MODEL[-small] with MODEL a sequence \
                         model (the copy task)",
                        PRESETS.join(", "),
                        CONV_PRESETS.join(", "),
                        SEQ_PRESETS.join(", "),
                        RECURRENT_PRESETS.join(", ")
                    ),
                )
            })
    }
}
