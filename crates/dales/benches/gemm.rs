//! The matrix products of one DANN training step (784-500-500-500-10, 50 I units), through the
//! packed GEMM (`gemm` crate) and the packing-free kernels, at the batch sizes of
//! `dales bench`. `dales::fused::gemm`'s choice between them (`unpacked_wins`) follows these.
//!
//! `cargo bench -p dales --bench gemm [-- FILTER]`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dales::fused::gemm::{Path, View, matmul_with};

/// (name, m, k, n, layout): `nt` is `A · Wᵀ` (forward), `nn` is `A · W` (input gradient),
/// `tn` is `Aᵀ · B` (weight gradient).
fn shapes(batch: usize) -> Vec<(&'static str, usize, usize, usize)> {
    vec![
        ("fwd_784x550", batch, 784, 550),
        ("fwd_500x550", batch, 500, 550),
        ("fwd_shunt_50x1000", batch, 50, 1000),
        ("dx_550x500", batch, 550, 500),
        ("dzi_1000x50", batch, 1000, 50),
        ("dw_550x784", 550, batch, 784),
        ("dw_1000x50", 1000, batch, 50),
    ]
}

fn products(c: &mut Criterion) {
    for batch in [32, 64, 128, 256, 1024] {
        let mut group = c.benchmark_group(format!("batch{batch}"));
        group.sample_size(20);
        group.warm_up_time(std::time::Duration::from_millis(300));
        group.measurement_time(std::time::Duration::from_millis(1500));
        for (name, m, k, n) in shapes(batch) {
            let a: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 * 0.01).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 * 0.01).collect();
            let mut dst = vec![0.0f32; m * n];
            group.throughput(Throughput::Elements((2 * m * k * n) as u64));
            for (label, path) in [("packed", Path::Packed), ("unpacked", Path::Unpacked)] {
                group.bench_function(BenchmarkId::new(name, label), |bench| {
                    bench.iter(|| {
                        let (av, bv) = if name.starts_with("fwd") {
                            // A (m, k) · Wᵀ with W (n, k) row-major
                            (View::new(&a, m, k), View::new(&b, n, k).t())
                        } else if name.starts_with("dw") {
                            // Aᵀ with A stored (k, m), times B (k, n)
                            (View::new(&a, k, m).t(), View::new(&b, k, n))
                        } else {
                            (View::new(&a, m, k), View::new(&b, k, n))
                        };
                        matmul_with(&mut dst, av, bv, false, path);
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, products);
criterion_main!(benches);
