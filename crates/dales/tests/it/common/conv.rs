//! The convolutional networks against the PyTorch reference's golden fixtures
//! (`fixtures/conv/`, `make_conv_fixtures.py`). Shared by `conv.rs` (CPU) and `gpu.rs`.

use std::collections::BTreeMap;

use burn::tensor::{Device, Gradients, Tensor};
use dales::conv_run::load_conv;
use dales::learner::Learner;
use dales::nn::convnet::ConvFamily;
use dales::nn::{ParamValue, Parameterised};
use dales::optim::{Clip, Method, Optimizer, RuleTable};
use dales::train::cross_entropy;

use super::reference::{assert_tensors_close, batch, fixtures, read, values_by_name};
use super::{host, worst};

fn grad_of<const D: usize>(t: &Tensor<D>, grads: &mut Gradients) -> Vec<f64> {
    host(t.grad_remove(grads).expect("a gradient"))
}

/// The reference's model of `kind`, its logits, loss, gradients and one step.
pub fn check_reference(kind: &str, family: ConvFamily, dev: &Device) {
    let dev = dev.clone();
    let b = batch(&dev);
    let dir = fixtures().join("conv");
    let model = load_conv(&dir.join(format!("{kind}.before.safetensors")), None, &dev).unwrap();
    assert_eq!(model.config().family, family);
    assert_eq!(model.config().name(), kind);
    let expected = read(&format!("conv/{kind}.expected.safetensors"));
    let x: Tensor<3> = b.x.clone().reshape([16, 1, 784]);
    let logits = model.logits(x.clone());
    let want: Vec<f64> = expected["logits"].0.iter().map(|&v| v as f64).collect();
    assert!(
        worst(&host(logits.clone()), &want, 1e-5, 0.0) <= 1.0,
        "{kind}: logits differ by more than 1e-5"
    );
    let loss = cross_entropy(logits, &b.y);
    assert!((host(loss.clone())[0] - expected["loss"].0[0] as f64).abs() < 1e-5);
    let mut grads = loss.backward();
    let mut got = BTreeMap::new();
    for layer in model.param_layers() {
        for e in layer.entries.into_iter().filter(|e| e.role.is_some()) {
            let g = match &e.value {
                ParamValue::Vector(t) => grad_of(t, &mut grads),
                ParamValue::Matrix(t) => grad_of(t, &mut grads),
            };
            got.insert(format!("{}.{}", layer.name, e.name), g);
        }
    }
    assert_tensors_close(kind, &got, &expected, "grad.", 2e-3);

    let arch: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("arch.json")).unwrap()).unwrap();
    let lr = arch["lr"][kind].as_f64().unwrap();
    let mut optim = Optimizer::new(
        Method::SGD,
        Clip::NONE,
        RuleTable::for_kind(family.dense_kind()),
    );
    optim.check(&model).unwrap();
    let loss = cross_entropy(model.logits(x), &b.y);
    let stepped = optim.step(lr, model.clone(), &mut loss.backward());
    let after = load_conv(&dir.join(format!("{kind}.after.safetensors")), None, &dev).unwrap();
    let want: dales::checkpoint::NamedTensors = values_by_name(&after)
        .into_iter()
        .map(|(k, v)| (k, (v.iter().map(|&x| x as f32).collect(), vec![v.len()])))
        .collect();
    assert_tensors_close(
        &format!("{kind} after"),
        &values_by_name(&stepped),
        &want,
        "",
        1e-5,
    );
}
