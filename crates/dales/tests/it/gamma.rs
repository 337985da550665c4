//! The gamma activation (spec C1): finite-difference gradients of its analytic backward in f64
//! (ε = 1e-6, tolerance 1e-4, as the paper's code checks itself), the fused op against the
//! plain tensor version and the f64 truth in f32, the closed-form limits, and no overflow in
//! f32.

use crate::common::{assert_as_accurate, device, host};
use burn::tensor::{DType, Tensor, TensorData};
use dales::fused;
use dales::nn::gamma::{N_MIN, gamma, gamma_plain};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const EPS: f64 = 1e-6;

fn tensor(v: Vec<f64>, shape: [usize; 2], dtype: DType) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(v, shape), (&device(), DType::F64)).cast(dtype)
}

fn random(shape: [usize; 2], lo: f64, hi: f64, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..shape[0] * shape[1])
        .map(|_| rng.random_range(lo..hi))
        .collect()
}

/// Inputs for `x (B, H)` with `n`, `s` of the given shapes: x in [−3, 3], n in [0.5, 8],
/// s in [0, 1].
struct Case {
    x: Vec<f64>,
    n: Vec<f64>,
    s: Vec<f64>,
    shapes: [[usize; 2]; 3],
}

impl Case {
    fn new(b: usize, h: usize, n_shape: [usize; 2], s_shape: [usize; 2], seed: u64) -> Case {
        Case {
            x: random([b, h], -3.0, 3.0, seed),
            n: random(n_shape, 0.5, 8.0, seed + 1),
            s: random(s_shape, 0.0, 1.0, seed + 2),
            shapes: [[b, h], n_shape, s_shape],
        }
    }

    fn inputs(&self, dtype: DType) -> [Tensor<2>; 3] {
        [
            tensor(self.x.clone(), self.shapes[0], dtype),
            tensor(self.n.clone(), self.shapes[1], dtype),
            tensor(self.s.clone(), self.shapes[2], dtype),
        ]
    }
}

/// Loss Σ γ ⊙ R with fixed random R, and the gradients of x, n, s.
fn loss_and_grads(
    case: &Case,
    dtype: DType,
    op: fn(Tensor<2>, Tensor<2>, Tensor<2>) -> Tensor<2>,
) -> (f64, [Vec<f64>; 3], Vec<f64>) {
    let [x, n, s] = case.inputs(dtype).map(|t| t.require_grad());
    let y = op(x.clone(), n.clone(), s.clone());
    let r = tensor(random(case.shapes[0], -1.0, 1.0, 99), case.shapes[0], dtype);
    let loss = (y.clone() * r).sum();
    let grads = loss.backward();
    let g = [&x, &n, &s].map(|t| host(t.grad(&grads).expect("gradient")));
    (host(loss)[0], g, host(y))
}

fn gradcheck(case: &Case, op: fn(Tensor<2>, Tensor<2>, Tensor<2>) -> Tensor<2>, what: &str) {
    let (_, analytic, _) = loss_and_grads(case, DType::F64, op);
    for (k, name) in ["x", "n", "s"].iter().enumerate() {
        let base = [&case.x, &case.n, &case.s][k];
        for pos in 0..base.len() {
            let eval = |delta: f64| {
                let mut probe = Case {
                    x: case.x.clone(),
                    n: case.n.clone(),
                    s: case.s.clone(),
                    shapes: case.shapes,
                };
                [&mut probe.x, &mut probe.n, &mut probe.s][k][pos] += delta;
                loss_and_grads(&probe, DType::F64, op).0
            };
            let numeric = (eval(EPS) - eval(-EPS)) / (2.0 * EPS);
            let a = analytic[k][pos];
            assert!(
                (a - numeric).abs() <= 1e-4 * (1.0 + numeric.abs()),
                "{what}: d{name}[{pos}] analytic {a:e} vs finite difference {numeric:e}"
            );
        }
    }
}

const SHAPES: [([usize; 2], &str); 3] = [
    ([1, 1], "homogeneous"),
    ([1, 5], "per neuron"),
    ([4, 5], "per sample and neuron"),
];

/// The fused op, failing if it hands its inputs to the plain version.
fn fused_only(x: Tensor<2>, n: Tensor<2>, s: Tensor<2>) -> Tensor<2> {
    fused::gamma(x, n, s, |_, _, _| panic!("the fused op did not run"))
}

#[test]
fn analytic_backward_matches_finite_differences() {
    for (i, (n_shape, label)) in SHAPES.iter().enumerate() {
        for (s_shape, _) in &SHAPES {
            let case = Case::new(4, 5, *n_shape, *s_shape, 10 + i as u64);
            // f64 on the CPU takes the fused op (`fused_only` fails otherwise).
            gradcheck(
                &case,
                fused_only,
                &format!("fused, n {label}, s {s_shape:?}"),
            );
        }
    }
}

#[test]
fn plain_version_matches_finite_differences() {
    for (n_shape, label) in SHAPES {
        let case = Case::new(4, 5, n_shape, [1, 5], 20);
        gradcheck(&case, gamma_plain, &format!("plain, n {label}"));
    }
    // Exactly at x = 0, where a max(z, 0)-based softplus has the wrong subgradient.
    let mut case = Case::new(2, 3, [1, 3], [1, 3], 21);
    case.x = vec![0.0; 6];
    gradcheck(&case, gamma_plain, "plain at x = 0");
    gradcheck(&case, gamma, "fused at x = 0");
}

#[test]
fn fused_matches_plain_in_f32() {
    for (n_shape, label) in SHAPES {
        let shape = if n_shape[0] > 1 { [64, 5] } else { n_shape };
        let case = Case::new(64, 5, shape, shape, 30);
        let (_, fused_g, fused_y) = loss_and_grads(&case, DType::F32, gamma);
        let (_, plain_g, plain_y) = loss_and_grads(&case, DType::F32, gamma_plain);
        let (_, truth_g, truth_y) = loss_and_grads(&case, DType::F64, gamma_plain);
        assert_as_accurate(&format!("{label}: y"), &fused_y, &plain_y, &truth_y, 1e-5);
        for (k, name) in ["dx", "dn", "ds"].iter().enumerate() {
            let what = format!("{label}: {name}");
            assert_as_accurate(&what, &fused_g[k], &plain_g[k], &truth_g[k], 1e-5);
        }
    }
}

#[test]
fn limits() {
    let x: Vec<f64> = (-20..=20).map(|i| i as f64 * 0.25).collect();
    let h = x.len();
    let eval = |n: f64, s: f64| {
        host(gamma(
            tensor(x.clone(), [1, h], DType::F64),
            tensor(vec![n], [1, 1], DType::F64),
            tensor(vec![s], [1, 1], DType::F64),
        ))
    };
    // s = 0: softplus with gain n, against its closed form.
    for n in [0.5, 1.0, 5.0] {
        for (y, x) in eval(n, 0.0).iter().zip(&x) {
            let want = (1.0 + (n * x).exp()).ln() / n;
            assert!(
                (y - want).abs() < 1e-12,
                "softplus_{n}({x}) = {y}, want {want}"
            );
        }
    }
    // s = 1: the logistic sigmoid of n x.
    for (y, x) in eval(3.0, 1.0).iter().zip(&x) {
        let want = 1.0 / (1.0 + (-3.0 * x).exp());
        assert!((y - want).abs() < 1e-12);
    }
    // Large n: ReLU (s = 0) within ln 2 / n, and a step (s = 1) away from 0.
    let n = 1e4;
    for (y, x) in eval(n, 0.0).iter().zip(&x) {
        assert!((y - x.max(0.0)).abs() <= 2f64.ln() / n + 1e-15);
    }
    for (y, x) in eval(n, 1.0).iter().zip(&x) {
        if *x != 0.0 {
            assert_eq!(*y, if *x > 0.0 { 1.0 } else { 0.0 });
        }
    }
}

#[test]
fn no_overflow_in_f32() {
    let x = vec![-1e4, -30.0, -1.0, 0.0, 1.0, 30.0, 1e4];
    for n in [N_MIN, 1.0, 20.0, 1e3] {
        for s in [0.0, 0.5, 1.0] {
            let case = Case {
                x: x.clone(),
                n: vec![n],
                s: vec![s],
                shapes: [[1, x.len()], [1, 1], [1, 1]],
            };
            for op in [gamma, gamma_plain] {
                let (_, g, y) = loss_and_grads(&case, DType::F32, op);
                assert!(
                    y.iter().chain(g.iter().flatten()).all(|v| v.is_finite()),
                    "n = {n}, s = {s}: {y:?} {g:?}"
                );
                // Far out, γ is linear in x (slope 1 − s) or flat.
                assert!((y[6] - ((1.0 - s) * 1e4 + s)).abs() <= 1e-3 * 1e4 || n < 1.0);
                assert!(y[0].abs() < 1e-3 || n < 1.0);
            }
        }
    }
}

#[test]
fn gain_is_floored() {
    // n ≤ 0 acts as N_MIN, and its gradient is zero there.
    let case = Case {
        x: vec![-1.0, 0.5, 2.0],
        n: vec![-2.0, 0.0, 3.0],
        s: vec![0.3],
        shapes: [[1, 3], [1, 3], [1, 1]],
    };
    let (_, g, y) = loss_and_grads(&case, DType::F64, gamma);
    let floored = Case {
        n: vec![N_MIN, N_MIN, 3.0],
        ..case
    };
    let (_, _, y_floor) = loss_and_grads(&floored, DType::F64, gamma);
    assert_eq!(y, y_floor);
    assert_eq!(&g[1][..2], &[0.0, 0.0]);
    assert!(g[1][2] != 0.0);
}
