//! In-memory check with 1M and 10M revoked UUID-sized ids: a hit and a miss.
//!
//! `cargo bench -p rescind-benches --bench check`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rescind_benches::{state_with, uuid_like};
use rescind_core::CheckQuery;

fn check(c: &mut Criterion) {
    let mut group = c.benchmark_group("check_in_memory");
    group.throughput(Throughput::Elements(1));
    for (label, n) in [("1M", 1_000_000u64), ("10M", 10_000_000)] {
        let state = state_with(n);
        // Rotate over many ids so the benchmark sees cache misses like real traffic.
        let hits: Vec<String> = (0..4096).map(|i| uuid_like(0, (i * 7919) % n)).collect();
        let misses: Vec<String> = (0..4096).map(|i| uuid_like(1, i)).collect();
        for (name, ids) in [("hit", &hits), ("miss", &misses)] {
            let mut i = 0usize;
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter(|| {
                    i = (i + 1) & 4095;
                    std::hint::black_box(state.check(&CheckQuery::token(&ids[i])))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, check);
criterion_main!(benches);
