//! Impossible configurations are typed errors that name the field and the value.

use dales::nn::init::InitRng;
use dales::nn::{ColumnEiConfig, DannConfig, DenseConfig, MlpConfig, ModelKind};
use dales::optim::{Clip, ClipScope, GroupRule, Method};

fn msg<T: std::fmt::Debug>(r: dales::Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn zero_sizes_and_ni() {
    let dev = dales::device::cpu();
    let mut rng = InitRng::new(0);
    let e = msg(DannConfig {
        n_in: 10,
        ne: 5,
        ni: 0,
        first_layer: false,
    }
    .init(&mut rng, &dev));
    assert!(e.contains("`ni` = 0"), "{e}");
    let e = msg(DannConfig {
        n_in: 0,
        ne: 5,
        ni: 1,
        first_layer: false,
    }
    .init(&mut rng, &dev));
    assert!(e.contains("`n_in` = 0"), "{e}");
    let e = msg(DenseConfig {
        n_in: 3,
        n_out: 0,
        first_layer: false,
    }
    .init(&mut rng, &dev));
    assert!(e.contains("`n_out` = 0"), "{e}");
    let e = msg(ColumnEiConfig {
        n_in: 1,
        n_out: 3,
        ratio: 10,
        first_layer: false,
        pixel_mean: 0.3,
    }
    .init(&mut rng, &dev));
    assert!(e.contains("`n_in` = 1"), "{e}");

    let mut c = MlpConfig::paper(ModelKind::Dann);
    c.hidden[1] = 0;
    let e = msg(c.init(&dev));
    assert!(e.contains("model.hidden[1]"), "{e}");
    let c = MlpConfig {
        ni: Some(0),
        ..MlpConfig::paper(ModelKind::Dann)
    };
    assert!(msg(c.init(&dev)).contains("model.ni"));
    let c = MlpConfig {
        pixel_mean: Some(2.0),
        ..MlpConfig::paper(ModelKind::ColumnEi)
    };
    assert!(msg(c.init(&dev)).contains("model.pixel_mean"));
    // ColumnEI needs the data's pixel mean: never a silent default.
    let e = msg(MlpConfig::paper(ModelKind::ColumnEi).init(&dev));
    assert!(
        e.contains("model.pixel_mean") && e.contains("(unset)"),
        "{e}"
    );
}

#[test]
fn unknown_kind() {
    let e = "resnet".parse::<ModelKind>().unwrap_err().to_string();
    assert!(
        e.contains("model.kind") && e.contains("resnet") && e.contains("dann_nocorr"),
        "{e}"
    );
    assert_eq!(
        "dann-nocorr".parse::<ModelKind>().unwrap(),
        ModelKind::DannNocorr
    );
}

#[test]
fn bad_optimiser_numbers() {
    let e = msg(Method::Adam {
        beta1: 1.0,
        beta2: 0.999,
        eps: 1e-8,
        decoupled: false,
    }
    .validate());
    assert!(e.contains("optim.beta1"), "{e}");
    let e = msg(Clip {
        scope: ClipScope::Layer,
        max_norm: f64::NAN,
        eps: 1e-6,
    }
    .validate());
    assert!(e.contains("optim.clip.max_norm"), "{e}");
    let e = msg(GroupRule {
        lr_scale: -1.0,
        ..GroupRule::PLAIN
    }
    .validate("optim.groups.wix"));
    assert!(e.contains("optim.groups.wix.lr_scale"), "{e}");
}
