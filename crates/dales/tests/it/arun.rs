//! ARUN (spec C2): the fused controller step against the plain tensor version and the f64
//! truth, finite-difference gradients of every parameter of a whole ARUN sequence classifier,
//! and the initialisation.

use crate::common::{assert_as_accurate, controller, device, host};
use burn::module::Param;
use burn::tensor::{DType, Tensor, TensorData};
use dales::nn::InitRng;
use dales::nn::arun::ArunConfig;
use dales::nn::seq::{SeqConfig, SeqKind};
use dales::nn::{ParamValue, Parameterised};
use dales::train::cross_entropy;

#[test]
fn fused_controller_matches_plain_and_f64_truth() {
    let inputs = controller::inputs(&device());
    let truth = controller::grads(&inputs.clone().map(|t| t.cast(DType::F64)), false);
    let plain = controller::grads(&inputs, false);
    let fused = controller::grads(&inputs, true);
    for i in 0..controller::NAMES.len() {
        assert_as_accurate(controller::NAMES[i], &fused[i], &plain[i], &truth[i], 1e-5);
    }
}

/// A tiny classifier of `kind` (4 units, 3 controller units, 16 steps) in f64.
fn tiny(kind: SeqKind) -> dales::nn::seq::SeqClassifier {
    let config = SeqConfig {
        hidden: 4,
        controller: 3,
        pool: 7, // 28 × 28 → 4 × 4 = 16 steps
        n0: Some(3.0),
        ..SeqConfig::paper(kind)
    };
    crate::common::as_f64(&config.init_seeded(9, &device()).unwrap())
}

fn sequences(batch: usize, steps: usize) -> Vec<f32> {
    (0..batch * steps)
        .map(|i| ((i * 5 % 11) as f32) / 10.0)
        .collect()
}

fn arun_loss(model: &dales::nn::seq::SeqClassifier, labels: &[usize]) -> Tensor<1> {
    let steps = model.steps();
    let xs = sequences(labels.len(), steps);
    let hidden = model.hidden();
    let drive = move |t: usize| {
        (t == 5).then(|| {
            Tensor::<2>::from_data(
                TensorData::new(vec![0.7f64; 3 * hidden], [3, hidden]),
                (&device(), DType::F64),
            )
        })
    };
    let xs64: Vec<f64> = xs.iter().map(|&v| v as f64).collect();
    let logits = forward_f64(model, xs64, labels.len(), &drive);
    cross_entropy(logits, labels)
}

/// The classifier's forward on f64 sequences (the public forward takes f32 host data and
/// builds an f32 input; here the input must be f64 like the parameters).
fn forward_f64(
    model: &dales::nn::seq::SeqClassifier,
    xs: Vec<f64>,
    batch: usize,
    drive: &dyn Fn(usize) -> Option<Tensor<2>>,
) -> Tensor<2> {
    use dales::nn::Layer;
    let steps = model.steps();
    let xs = Tensor::<3>::from_data(
        TensorData::new(xs, [batch, steps, 1]),
        (&device(), DType::F64),
    );
    model.readout.forward(model.last_hidden(xs, drive))
}

#[test]
fn every_parameter_of_arun_lstm_and_gru_matches_finite_differences() {
    for kind in [SeqKind::Arun, SeqKind::Lstm, SeqKind::Gru] {
        finite_differences(kind);
    }
}

fn finite_differences(kind: SeqKind) {
    let labels = [1, 7, 3];
    let model = tiny(kind);
    let grads = arun_loss(&model, &labels).backward();
    let layers = model.param_layers();
    let base: Vec<Vec<Vec<f64>>> = layers
        .iter()
        .map(|l| l.entries.iter().map(|e| e.value.to_f64_vec()).collect())
        .collect();
    let eps = 1e-6;
    let mut checked = 0;
    for (li, layer) in layers.iter().enumerate() {
        for (ei, entry) in layer.entries.iter().enumerate() {
            let analytic = match &entry.value {
                ParamValue::Matrix(t) => host(t.grad(&grads).expect("a gradient")),
                ParamValue::Vector(t) => host(t.grad(&grads).expect("a gradient")),
            };
            for pos in 0..analytic.len() {
                let eval = |delta: f64| {
                    let values = layers
                        .iter()
                        .enumerate()
                        .map(|(lj, l)| {
                            l.entries
                                .iter()
                                .enumerate()
                                .map(|(ej, e)| {
                                    let mut v = base[lj][ej].clone();
                                    if (lj, ej) == (li, ei) {
                                        v[pos] += delta;
                                    }
                                    with_f64(&e.value, v)
                                })
                                .collect()
                        })
                        .collect();
                    let probe = model.clone().with_layer_values(values);
                    host(arun_loss(&probe, &labels))[0]
                };
                let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps);
                let a = analytic[pos];
                assert!(
                    (a - numeric).abs() <= 1e-4 * (1.0 + numeric.abs()),
                    "{kind} {}.{}[{pos}]: analytic {a:e} vs finite difference {numeric:e}",
                    layer.name,
                    entry.name
                );
                checked += 1;
            }
        }
    }
    // ARUN: 12 tensors (4·1 + 4 + 16 + 4 + 3 + 3 + 9 + 3 + 3 + 1 + 3 + 1); LSTM: 4H·1 + 4H·H
    // + 4H; GRU: 3H·1 + 3H·H + 3H + 3H; the readout 10·4 + 10.
    let cell = match kind {
        SeqKind::Arun => 54,
        SeqKind::Lstm => 16 + 64 + 16,
        _ => 12 + 48 + 12 + 12,
    };
    assert_eq!(checked, cell + 50, "{kind}");
}

fn with_f64(like: &ParamValue, v: Vec<f64>) -> ParamValue {
    let shape = like.shape();
    match shape.as_slice() {
        [n] => ParamValue::Vector(Tensor::from_data(
            TensorData::new(v, [*n]),
            (&device(), DType::F64),
        )),
        [r, c] => ParamValue::Matrix(Tensor::from_data(
            TensorData::new(v, [*r, *c]),
            (&device(), DType::F64),
        )),
        _ => unreachable!(),
    }
}

#[test]
fn initialisation_follows_spec_c2() {
    let (h, k) = (40, 50);
    let cell = ArunConfig::new(1, h, k)
        .init(&mut InitRng::new(11), &device())
        .unwrap();
    let v = |p: &Param<Tensor<2>>| host(p.val());
    let b = |p: &Param<Tensor<1>>| host(p.val());
    // Biases of U_xh, W_hh, U_ag, W_gg and b_gs are zero; b_gn = 5 + 2·U(0, 1).
    for zero in [
        b(&cell.u_bias),
        b(&cell.w_bias),
        b(&cell.u_ag_bias),
        b(&cell.w_gg_bias),
    ] {
        assert!(zero.iter().all(|&x| x == 0.0));
    }
    assert_eq!(b(&cell.b_gs), vec![0.0]);
    let n0 = b(&cell.b_gn)[0];
    assert!((5.0..7.0).contains(&n0), "b_gn = {n0}");
    // W_gg is henaff: orthogonal.
    let w = v(&cell.w_gg);
    for i in 0..k {
        let norm: f64 = (0..k).map(|j| w[i * k + j] * w[i * k + j]).sum();
        assert!((norm - 1.0).abs() < 1e-6);
    }
    // Xavier gains 0.1 and 0.01 on a (1, K) matrix: std 0.1·√(2/51) = 0.0198 and 0.00198;
    // with 50 draws the sample rms is within ±35 % (5 standard errors).
    let rms = |x: Vec<f64>| (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt();
    let (gn, gs) = (rms(v(&cell.w_gn)), rms(v(&cell.w_gs)));
    assert!((gn / 0.019803 - 1.0).abs() < 0.35, "W_gn rms {gn}");
    assert!((gs / 0.0019803 - 1.0).abs() < 0.35, "W_gs rms {gs}");
    // At init the controller reads out n ≈ b_gn and s ≈ 0 for any pre-activation.
    let xs = Tensor::<3>::ones([2, 5, 1], &device());
    let state = cell.run(xs, |_| None);
    let (n, s) = (host(state.n), host(state.s));
    assert!(n.iter().all(|x| (x - n0).abs() < 0.5), "n {n:?} vs {n0}");
    assert!(s.iter().all(|x| x.abs() < 0.05));
}

#[test]
fn bad_configs_are_errors() {
    for (config, key) in [
        (ArunConfig::new(1, 0, 5), "model.hidden"),
        (ArunConfig::new(1, 4, 0), "model.controller"),
        (
            ArunConfig {
                n0: Some(0.0),
                ..ArunConfig::new(1, 4, 5)
            },
            "model.n0",
        ),
    ] {
        let err = config
            .init(&mut InitRng::new(1), &device())
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{err}");
    }
}

/// One LSTM and one GRU step of a single unit against the equations written out by hand
/// (PyTorch's gate order; the drive enters the LSTM's output gate and the GRU's candidate).
#[test]
fn gated_steps_match_hand_computation() {
    use dales::nn::gated::{GruCell, LstmCell};
    let m = |v: Vec<f64>, r, c| {
        Param::from_tensor(Tensor::<2>::from_data(
            TensorData::new(v, [r, c]),
            (&device(), DType::F64),
        ))
    };
    let b = |v: Vec<f64>| {
        let n = v.len();
        Param::from_tensor(Tensor::<1>::from_data(
            TensorData::new(v, [n]),
            (&device(), DType::F64),
        ))
    };
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let xs = [0.7, -0.4];
    let input = Tensor::<3>::from_data(
        TensorData::new(xs.to_vec(), [1, 2, 1]),
        (&device(), DType::F64),
    );
    let ext = 0.3;
    let drive = |_t: usize| {
        Some(Tensor::<2>::from_data(
            TensorData::new(vec![ext], [1, 1]),
            (&device(), DType::F64),
        ))
    };
    // LSTM: gates i, f, g, o.
    let (wx, wh, bias) = (
        [0.5, -1.0, 0.8, 0.3],
        [0.2, 0.4, -0.6, 0.9],
        [0.1, 0.2, -0.1, 0.05],
    );
    let lstm = LstmCell {
        w_x: m(wx.to_vec(), 4, 1),
        w_h: m(wh.to_vec(), 4, 1),
        bias: b(bias.to_vec()),
    };
    let (mut h, mut c) = (0.0f64, 0.0f64);
    for x in xs {
        let p: Vec<f64> = (0..4).map(|k| wx[k] * x + wh[k] * h + bias[k]).collect();
        c = sig(p[1]) * c + sig(p[0]) * p[2].tanh();
        h = sig(p[3] + ext) * c.tanh();
    }
    let got = host(lstm.run(input.clone(), drive).h)[0];
    assert!((got - h).abs() < 1e-12, "LSTM h {got} vs {h}");
    // GRU: gates r, z, n.
    let (wx, wh, bx, bh) = (
        [0.5, -1.0, 0.8],
        [0.2, 0.4, -0.6],
        [0.1, 0.2, -0.1],
        [0.3, -0.2, 0.4],
    );
    let gru = GruCell {
        w_x: m(wx.to_vec(), 3, 1),
        w_h: m(wh.to_vec(), 3, 1),
        b_x: b(bx.to_vec()),
        b_h: b(bh.to_vec()),
    };
    let mut h = 0.0f64;
    for x in xs {
        let gx: Vec<f64> = (0..3).map(|k| wx[k] * x + bx[k]).collect();
        let gh: Vec<f64> = (0..3).map(|k| wh[k] * h + bh[k]).collect();
        let (r, z) = (sig(gx[0] + gh[0]), sig(gx[1] + gh[1]));
        let n = (gx[2] + r * gh[2] + ext).tanh();
        h = (1.0 - z) * n + z * h;
    }
    let got = host(gru.run(input, drive))[0];
    assert!((got - h).abs() < 1e-12, "GRU h {got} vs {h}");
}
