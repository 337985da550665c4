//! The recurrent cell of spec C2: its initialisation (henaff orthogonality, Kaiming and bias
//! statistics, the random initial gain), one step against a hand computation, the drive, and
//! finite-difference gradients through time in f64.

use crate::common::{device, host};
use burn::module::Param;
use burn::tensor::{DType, Tensor, TensorData};
use dales::nn::InitRng;
use dales::nn::init::henaff;
use dales::nn::rnn::{Activation, GammaShape, RnnCell, RnnConfig};

fn mat(v: Vec<f64>, shape: [usize; 2]) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v, shape), (&device(), DType::F64))
}

fn vec1(v: Vec<f64>) -> Tensor<1> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), (&device(), DType::F64))
}

#[test]
fn henaff_is_block_diagonal_orthogonal() {
    for h in [6, 7] {
        let v = henaff(h, &mut InitRng::new(3));
        // VᵀV = I.
        for i in 0..h {
            for j in 0..h {
                let dot: f64 = (0..h).map(|k| v[k * h + i] * v[k * h + j]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!(
                    (dot - want).abs() < 1e-12,
                    "h = {h}: (VᵀV)[{i},{j}] = {dot}"
                );
            }
        }
        // Rotation blocks by angles in (−π, 0): sin < 0, and nothing outside the blocks.
        for k in 0..h / 2 {
            let (i, j) = (2 * k, 2 * k + 1);
            assert!(v[i * h + j] < 0.0 && v[j * h + i] == -v[i * h + j]);
            assert_eq!(v[i * h + i], v[j * h + j]);
        }
        let outside = (0..h * h)
            .filter(|&idx| (idx / h) / 2 != (idx % h) / 2)
            .all(|idx| v[idx] == 0.0);
        assert!(outside);
        if h % 2 == 1 {
            assert_eq!(v[h * h - 1], 1.0);
        }
    }
}

#[test]
fn initial_statistics() {
    let (d, h) = (50, 400);
    let cell = RnnConfig::new(d, h, Activation::Gamma(GammaShape::Homogeneous))
        .init(&mut InitRng::new(7), &device())
        .unwrap();
    // Kaiming normal: std √(2/d). 20,000 draws: the sample std's relative standard error is
    // 1/√(2N) = 0.5 %, so 3 % is six of them.
    let u = host(cell.u.val());
    let std = (u.iter().map(|x| x * x).sum::<f64>() / u.len() as f64).sqrt();
    let want = (2.0 / d as f64).sqrt();
    assert!((std / want - 1.0).abs() < 0.03, "U std {std}, want {want}");
    // nn.Linear biases: U(±1/√fan_in), whose std is bound/√3.
    for (b, fan) in [(host(cell.u_bias.val()), d), (host(cell.v_bias.val()), h)] {
        let bound = 1.0 / (fan as f64).sqrt();
        assert!(b.iter().all(|x| x.abs() <= bound));
        let sd = (b.iter().map(|x| x * x).sum::<f64>() / b.len() as f64).sqrt();
        assert!(
            (sd / (bound / 3f64.sqrt()) - 1.0).abs() < 0.15,
            "bias std {sd}"
        );
    }
    // One drawn gain n_0 ∈ [5, 7], shared; s_0 = 0.
    let n = host(cell.n.as_ref().unwrap().val());
    assert_eq!(n.len(), 1);
    assert!((5.0..=7.0).contains(&n[0]));
    assert_eq!(host(cell.s.as_ref().unwrap().val()), vec![0.0]);
    let het = RnnConfig::new(d, h, Activation::Gamma(GammaShape::Heterogeneous))
        .init(&mut InitRng::new(7), &device())
        .unwrap();
    let n = host(het.n.as_ref().unwrap().val());
    assert_eq!(n.len(), h);
    assert!(n.iter().all(|&v| v == n[0]));
}

#[test]
fn bad_configs_are_errors() {
    let dev = device();
    let mut c = RnnConfig::new(1, 0, Activation::Relu);
    let e = c.init(&mut InitRng::new(1), &dev).unwrap_err().to_string();
    assert!(e.contains("model.hidden"), "{e}");
    c.hidden = 4;
    c.n0 = Some(0.0);
    let e = c.init(&mut InitRng::new(1), &dev).unwrap_err().to_string();
    assert!(e.contains("model.n0"), "{e}");
}

/// A 2-unit ReLU cell with hand-picked weights.
fn tiny(activation: Activation) -> RnnCell {
    RnnCell {
        u: Param::from_tensor(mat(vec![1.0, -2.0], [2, 1])),
        u_bias: Param::from_tensor(vec1(vec![0.1, 0.2])),
        v: Param::from_tensor(mat(vec![0.5, -0.25, 1.0, 0.75], [2, 2])),
        v_bias: Param::from_tensor(vec1(vec![-0.3, 0.05])),
        n: Some(Param::from_tensor(mat(vec![2.0, 4.0], [1, 2]))),
        s: Some(Param::from_tensor(mat(vec![0.25, 0.5], [1, 2]))),
        activation,
    }
}

/// An activation by hand: unit index, pre-activation → output.
type Phi = Box<dyn Fn(usize, f64) -> f64>;

#[test]
fn steps_match_a_hand_computation() {
    let xs = [0.8, -0.4, 1.5];
    let input = Tensor::<3>::from_data(
        TensorData::new(xs.to_vec(), [1, 3, 1]),
        (&device(), DType::F64),
    );
    let (u, bu, v, bv) = (
        [1.0, -2.0],
        [0.1, 0.2],
        [[0.5, -0.25], [1.0, 0.75]],
        [-0.3, 0.05],
    );
    let gamma = |a: f64, n: f64, s: f64| {
        (1.0 - s) * (1.0 + (n * a).exp()).ln() / n + s / (1.0 + (-n * a).exp())
    };
    let phis: [(Activation, Phi); 3] = [
        (Activation::Relu, Box::new(|_, a: f64| a.max(0.0))),
        (Activation::Tanh, Box::new(|_, a: f64| a.tanh())),
        (
            Activation::Gamma(GammaShape::Heterogeneous),
            Box::new(move |i, a| gamma(a, [2.0, 4.0][i], [0.25, 0.5][i])),
        ),
    ];
    for (activation, phi) in phis {
        let mut h = [0.0; 2];
        for x in xs {
            let a: Vec<f64> = (0..2)
                .map(|i| u[i] * x + bu[i] + v[i][0] * h[0] + v[i][1] * h[1] + bv[i])
                .collect();
            h = [phi(0, a[0]), phi(1, a[1])];
        }
        let got = host(tiny(activation).run(input.clone(), |_| None));
        for i in 0..2 {
            assert!(
                (got[i] - h[i]).abs() < 1e-12,
                "{activation:?}: h[{i}] = {}, want {}",
                got[i],
                h[i]
            );
        }
    }
}

#[test]
fn a_constant_drive_is_a_bias_shift() {
    let cell = tiny(Activation::Tanh);
    let input = Tensor::<3>::from_data(
        TensorData::new(vec![0.3, 0.9, -0.2, 0.4], [2, 2, 1]),
        (&device(), DType::F64),
    );
    let c = 0.7;
    let driven = cell.run(input.clone(), |_| Some(mat(vec![c; 4], [2, 2])));
    let mut shifted = cell.clone();
    shifted.v_bias = Param::from_tensor(vec1(vec![-0.3 + c, 0.05 + c]));
    let want = shifted.run(input, |_| None);
    let (a, b) = (host(driven), host(want));
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-14));
}

/// Σ h_T ⊙ R over a 6-step sequence, for a cell built from `values` (u, u_bias, v, v_bias, n, s).
fn loss(
    values: &[Vec<f64>],
    shapes: &[Vec<usize>],
    activation: Activation,
    input: &Tensor<3>,
) -> (Tensor<1>, RnnCell) {
    let m = |k: usize| {
        Param::from_tensor(mat(values[k].clone(), [shapes[k][0], shapes[k][1]]))
            .map(|t| t.require_grad())
    };
    let b = |k: usize| Param::from_tensor(vec1(values[k].clone())).map(|t| t.require_grad());
    let cell = RnnCell {
        u: m(0),
        u_bias: b(1),
        v: m(2),
        v_bias: b(3),
        n: Some(m(4)),
        s: Some(m(5)),
        activation,
    };
    let h = cell.run(input.clone(), |t| {
        (t == 2).then(|| mat(vec![0.5; 15], [3, 5]))
    });
    let r = mat(
        (0..15).map(|i| ((i * 7 % 11) as f64 - 5.0) / 5.0).collect(),
        [3, 5],
    );
    ((h * r).sum(), cell)
}

#[test]
fn gradients_through_time_match_finite_differences() {
    let (b, steps, d, hdim) = (3, 6, 2, 5);
    for activation in [
        Activation::Gamma(GammaShape::Heterogeneous),
        Activation::Gamma(GammaShape::Homogeneous),
        Activation::Tanh,
    ] {
        let shape = if activation == Activation::Gamma(GammaShape::Homogeneous) {
            1
        } else {
            hdim
        };
        let cell = RnnConfig {
            n0: Some(3.0),
            s0: 0.3,
            ..RnnConfig::new(d, hdim, activation)
        }
        .init(&mut InitRng::new(5), &device())
        .unwrap();
        let mut values = vec![
            host(cell.u.val()),
            host(cell.u_bias.val()),
            host(cell.v.val()),
            host(cell.v_bias.val()),
            host(
                cell.n
                    .as_ref()
                    .map(|p| p.val())
                    .unwrap_or_else(|| mat(vec![3.0; shape], [1, shape])),
            ),
            host(
                cell.s
                    .as_ref()
                    .map(|p| p.val())
                    .unwrap_or_else(|| mat(vec![0.3; shape], [1, shape])),
            ),
        ];
        // Spread n and s so that every neuron's shape differs.
        for (i, v) in values[4].iter_mut().enumerate() {
            *v += 0.4 * i as f64;
        }
        for (i, v) in values[5].iter_mut().enumerate() {
            *v += 0.1 * i as f64;
        }
        let shapes = vec![
            vec![hdim, d],
            vec![hdim],
            vec![hdim, hdim],
            vec![hdim],
            vec![1, shape],
            vec![1, shape],
        ];
        let input = Tensor::<3>::from_data(
            TensorData::new(
                (0..b * steps * d)
                    .map(|i| ((i * 5 % 7) as f64) / 7.0)
                    .collect::<Vec<_>>(),
                [b, steps, d],
            ),
            (&device(), DType::F64),
        );
        let (l, cell) = loss(&values, &shapes, activation, &input);
        let grads = l.backward();
        let analytic = [
            host(cell.u.val().grad(&grads).unwrap()),
            host(cell.u_bias.val().grad(&grads).unwrap()),
            host(cell.v.val().grad(&grads).unwrap()),
            host(cell.v_bias.val().grad(&grads).unwrap()),
            cell.n
                .as_ref()
                .unwrap()
                .val()
                .grad(&grads)
                .map(host)
                .unwrap_or_default(),
            cell.s
                .as_ref()
                .unwrap()
                .val()
                .grad(&grads)
                .map(host)
                .unwrap_or_default(),
        ];
        let eps = 1e-6;
        let names = ["U", "b_U", "V", "b_V", "n", "s"];
        let tracked = if matches!(activation, Activation::Gamma(_)) {
            6
        } else {
            4
        };
        for k in 0..tracked {
            for pos in 0..values[k].len() {
                let eval = |delta: f64| {
                    let mut probe = values.clone();
                    probe[k][pos] += delta;
                    host(loss(&probe, &shapes, activation, &input).0)[0]
                };
                let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps);
                let a = analytic[k][pos];
                assert!(
                    (a - numeric).abs() <= 1e-4 * (1.0 + numeric.abs()),
                    "{activation:?}: d{}[{pos}] analytic {a:e} vs finite difference {numeric:e}",
                    names[k]
                );
            }
        }
    }
}
