//! TOML configs: every setting round-trips; unknown keys, wrong types and out-of-range values are
//! rejected with the key path named.

use std::path::Path;

use dales::config::TrainConfig;
use dales::nn::seq::SeqConfig;
use dales::nn::{MlpConfig, ModelKind, ParamRole};
use dales::optim::UpdateRule;

fn parse(text: &str) -> Result<TrainConfig, String> {
    TrainConfig::from_toml(text, Path::new("exp.toml")).map_err(|e| e.to_string())
}

const GOOD: &str = r#"
seed = 3
epochs = 7
batch_size = 64

[data]
validation = 5000
augment = { crop_padding = 2, flip = true }

[model]
kind = "dann"
hidden = [100, 100]
ei_ratio = 5

[optim]
method = "sgd"
lr = 0.05
momentum = 0.9
clip = { scope = "layer", max_norm = 1.5 }

[optim.groups.wix]
update = "eg"
"#;

#[test]
fn full_config_parses_and_round_trips() {
    let c = parse(GOOD).unwrap();
    assert_eq!(
        (c.seed, c.epochs, c.batch_size, c.data.validation),
        (3, 7, 64, 5000)
    );
    assert_eq!(c.model.kind, ModelKind::Dann);
    assert_eq!(c.model.hidden, vec![100, 100]);
    let augment = c.data.augment.unwrap();
    assert_eq!((augment.crop_padding, augment.flip), (2, true));
    let rules = c.rules();
    let wix = rules.get(ParamRole::Wix).unwrap();
    assert_eq!(wix.update, UpdateRule::Eg);
    // the override keeps the kind's correction
    assert_eq!(wix.grad_scale, dales::optim::GradScale::InvSqrtNe);
    assert_eq!(parse(&c.to_toml()).unwrap(), c);
    // every preset round-trips
    for name in dales::presets::PRESETS {
        let p = TrainConfig::preset(name).unwrap();
        assert_eq!(parse(&p.to_toml()).unwrap(), p, "{name}");
    }
}

#[test]
fn unknown_keys_are_named() {
    let e = parse(&GOOD.replace("ei_ratio = 5", "ei_ratio = 5\nwidth = 3")).unwrap_err();
    assert!(
        e.contains("exp.toml") && e.contains("model") && e.contains("width"),
        "{e}"
    );
    let e = parse(&GOOD.replace("seed = 3", "sed = 3")).unwrap_err();
    assert!(e.contains("sed"), "{e}");
    let e = parse(&GOOD.replace("update = \"eg\"", "updat = \"eg\"")).unwrap_err();
    assert!(e.contains("optim.groups") && e.contains("updat"), "{e}");
}

#[test]
fn wrong_types_are_named() {
    let e = parse(&GOOD.replace("hidden = [100, 100]", "hidden = [100, \"x\"]")).unwrap_err();
    assert!(e.contains("model.hidden[1]"), "{e}");
    let e = parse(&GOOD.replace("lr = 0.05", "lr = \"fast\"")).unwrap_err();
    assert!(e.contains("optim.lr"), "{e}");
    let e = parse(&GOOD.replace("kind = \"dann\"", "kind = \"resnet\"")).unwrap_err();
    assert!(e.contains("model.kind") && e.contains("resnet"), "{e}");
}

#[test]
fn out_of_range_values_are_named() {
    for (from, to, key) in [
        ("lr = 0.05", "lr = -0.1", "optim.lr"),
        ("epochs = 7", "epochs = 0", "epochs"),
        ("batch_size = 64", "batch_size = 0", "batch_size"),
        (
            "hidden = [100, 100]",
            "hidden = [100, 0]",
            "model.hidden[1]",
        ),
        ("momentum = 0.9", "momentum = 1.5", "optim.momentum"),
        ("ei_ratio = 5", "ei_ratio = 0", "model.ei_ratio"),
        ("max_norm = 1.5", "max_norm = nan", "optim.clip.max_norm"),
        ("momentum = 0.9", "beta1 = 0.9", "optim.beta1"),
        ("momentum = 0.9", "momentum = \"x\"", "optim.momentum"),
        ("momentum = 0.9", "momentun = 0.9", "optim.momentun"),
        ("method = \"sgd\"", "method = \"rmsprop\"", "optim.method"),
        (
            "[optim.groups.wix]",
            "[optim.groups.weight]",
            "optim.groups.weight",
        ),
    ] {
        let e = parse(&GOOD.replace(from, to)).unwrap_err();
        assert!(e.contains(key), "{to}: {e}");
    }
}

/// The optimiser's method defaults to SGD, and its settings to PyTorch's defaults.
#[test]
fn method_settings_default_per_method() {
    use dales::optim::Method;
    let c = parse(
        &GOOD
            .replace("method = \"sgd\"\n", "")
            .replace("momentum = 0.9\n", ""),
    )
    .unwrap();
    assert_eq!(c.optim.method, Method::SGD);
    let c = parse(
        &GOOD
            .replace("method = \"sgd\"", "method = \"adam\"")
            .replace("momentum = 0.9", "beta2 = 0.99"),
    )
    .unwrap();
    assert_eq!(
        c.optim.method,
        Method::Adam {
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            decoupled: false,
        }
    );
    assert_eq!(parse(&c.to_toml()).unwrap(), c);
}

/// The adaptation paper's loader visits the training set in the same order every epoch; its
/// presets do too, the feed-forward presets reshuffle every epoch.
#[test]
fn presets_choose_the_papers_batch_order() {
    for name in ["arun", "rnn-relu-small", "copy-gru", "copy-arun-small"] {
        assert!(
            !TrainConfig::sequence_preset(name).unwrap().data.shuffle,
            "{name}"
        );
    }
    for name in dales::presets::PRESETS {
        assert!(TrainConfig::preset(name).unwrap().data.shuffle, "{name}");
    }
    // A config without the key reshuffles, as every run made before the key existed did.
    assert!(parse(GOOD).unwrap().data.shuffle);
}

/// The reproductions' definition files (`configs/reproduce/`) parse and name real presets.
#[test]
fn reproductions_parse() {
    for name in dales::reproduce::names() {
        let e = dales::reproduce::Experiment::named(name).unwrap_or_else(|e| panic!("{e}"));
        assert!(!e.presets.is_empty(), "{name}");
    }
    let e = dales::reproduce::Experiment::named("dann2021").unwrap();
    assert_eq!(
        e.presets,
        [
            "mlp",
            "layernorm",
            "columnei",
            "dann",
            "dann-nocorr",
            "dann-dngd"
        ]
    );
    assert_eq!((e.seeds, e.epochs), (3, Some(50)));
    let e = dales::reproduce::Experiment::named("dann2021-conv").unwrap();
    assert_eq!(
        e.presets,
        [
            "conv-dann",
            "conv-standard",
            "conv-columnei",
            "conv-dann-nocorr"
        ]
    );
    assert_eq!(
        e.preset_names(true).unwrap(),
        ["vgg16-dann", "vgg16-standard"]
    );
}

#[test]
fn unknown_preset_lists_the_presets() {
    let e = TrainConfig::preset("resnet").unwrap_err().to_string();
    assert!(e.contains("resnet") && e.contains("dann-nocorr"), "{e}");
}

/// Every example config shipped in `configs/` is valid.
#[test]
fn shipped_configs_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".toml") {
            continue;
        }
        if name.starts_with("seq_") {
            TrainConfig::<SeqConfig>::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        } else if name.starts_with("conv_") {
            TrainConfig::<dales::nn::convnet::ConvConfig>::from_file(&path)
                .unwrap_or_else(|e| panic!("{e}"));
        } else {
            TrainConfig::<MlpConfig>::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        }
        n += 1;
    }
    assert!(n >= 2, "no configs found in {}", dir.display());
    let preset = TrainConfig::preset("dann").unwrap();
    let file = TrainConfig::from_file(&dir.join("dann_fashion.toml")).unwrap();
    assert_eq!(
        file, preset,
        "configs/dann_fashion.toml must equal the dann preset"
    );
    let preset = TrainConfig::conv_preset("conv-dann").unwrap();
    let file = TrainConfig::from_file(&dir.join("conv_dann_fashion.toml")).unwrap();
    assert_eq!(
        file, preset,
        "configs/conv_dann_fashion.toml must equal the conv-dann preset"
    );
    let preset = TrainConfig::sequence_preset("arun-small").unwrap();
    let file = TrainConfig::from_file(&dir.join("seq_arun_small.toml")).unwrap();
    assert_eq!(
        file, preset,
        "configs/seq_arun_small.toml must equal the arun-small preset"
    );
    let preset = TrainConfig::sequence_preset("copy-rnn-relu-small").unwrap();
    let file = TrainConfig::from_file(&dir.join("seq_copy_small.toml")).unwrap();
    assert_eq!(
        file, preset,
        "configs/seq_copy_small.toml must equal the copy-rnn-relu-small preset"
    );
}

/// A relative `--data` is stored absolute, so the run's config finds it from any directory.
#[test]
fn relative_data_directory_is_made_absolute() {
    use dales::run::{AnyConfig, Overrides};
    let mut config = AnyConfig::preset("rowseq-dann").unwrap();
    config
        .apply(&Overrides {
            data: Some("some/data".into()),
            ..Overrides::default()
        })
        .unwrap();
    let AnyConfig::Recurrent(c) = &config else {
        panic!("a recurrent preset")
    };
    let dir = c.data.dir.clone().unwrap();
    assert!(dir.is_absolute(), "{}", dir.display());
    assert_eq!(dir, std::env::current_dir().unwrap().join("some/data"));
}

/// Weight decay: a global λ for every group, a group's own overriding it, AdamW by name;
/// negative or non-finite values named by key.
#[test]
fn weight_decay_is_global_or_per_group() {
    use dales::nn::ParamRole;
    use dales::optim::{Method, UpdateRule};
    let text = GOOD
        .replace("method = \"sgd\"", "method = \"adamw\"")
        .replace("momentum = 0.9", "weight_decay = 0.01")
        .replace("update = \"eg\"", "update = \"eg\"\nweight_decay = 0.5");
    let c = parse(&text).unwrap();
    assert_eq!(c.optim.method, Method::ADAMW);
    let rules = c.rules();
    let wix = rules.get(ParamRole::Wix).unwrap();
    assert_eq!((wix.update, wix.weight_decay), (UpdateRule::Eg, 0.5));
    assert_eq!(rules.get(ParamRole::Wex).unwrap().weight_decay, 0.01);
    assert_eq!(parse(&c.to_toml()).unwrap(), c);
    // rules.txt shows the column only when some group decays.
    let shown = dales::optim::Optimizer::new(c.optim.method, c.optim.clip, rules).describe();
    assert!(
        shown.contains("weight_decay") && shown.contains("0.5"),
        "{shown}"
    );
    assert!(
        !parse(GOOD)
            .unwrap()
            .rules()
            .describe()
            .contains("weight_decay")
    );
    for (from, to, key) in [
        (
            "weight_decay = 0.01",
            "weight_decay = -1",
            "optim.weight_decay",
        ),
        (
            "weight_decay = 0.5",
            "weight_decay = inf",
            "optim.groups.wix.weight_decay",
        ),
    ] {
        let e = parse(&text.replace(from, to)).unwrap_err();
        assert!(e.contains(key), "{key}: {e}");
    }
}

/// d-NGD's settings parse under `method = "dngd"` only, and bad values name their key.
#[test]
fn dngd_settings_are_checked() {
    use dales::optim::Method;
    let text = GOOD
        .replace("kind = \"dann\"", "kind = \"dann-nocorr\"\nni = 1")
        .replace("momentum = 0.9", "f_ma_scale = 0.1")
        .replace("method = \"sgd\"", "method = \"dngd\"")
        .replace("[optim.groups.wix]\nupdate = \"eg\"\n", "");
    let c = parse(&text).unwrap();
    assert_eq!(
        c.optim.method,
        Method::Dngd {
            f_lambda: 2.5e-5,
            f_ma_scale: 0.1,
            scale_finv_by_norm_wex_finv: true,
        }
    );
    assert_eq!(parse(&c.to_toml()).unwrap(), c);
    for (from, to, key) in [
        ("f_ma_scale = 0.1", "f_ma_scale = 0", "optim.f_ma_scale"),
        ("f_ma_scale = 0.1", "f_lambda = -1", "optim.f_lambda"),
        (
            "f_ma_scale = 0.1",
            "scale_finv_by_norm_wex_finv = 1",
            "scale_finv_by_norm_wex_finv",
        ),
        (
            "method = \"dngd\"",
            "method = \"sgd\"",
            "not a setting of method = \"sgd\"",
        ),
    ] {
        let e = parse(&text.replace(from, to)).unwrap_err();
        assert!(e.contains(key), "{to}: {e}");
    }
}
