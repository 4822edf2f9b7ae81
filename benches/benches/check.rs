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
        // Rotate over 2^20 ids spread over the whole set, so lookups miss the
        // CPU caches like real traffic does (a few thousand ids would stay in L2).
        // The queries sit back to back in one string, read in order, so the
        // harness adds no cache misses of its own.
        const QUERIES: u64 = 1 << 20;
        let hits: String = (0..QUERIES).map(|i| uuid_like(0, (i * 7919) % n)).collect();
        let misses: String = (0..QUERIES).map(|i| uuid_like(1, i)).collect();
        for (name, ids) in [("hit", &hits), ("miss", &misses)] {
            let mut i = 0usize;
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter(|| {
                    i = (i + 1) & (QUERIES as usize - 1);
                    let id = &ids[i * 36..i * 36 + 36];
                    std::hint::black_box(state.check(&CheckQuery::token(id)))
                })
            });
        }
    }
    group.finish();
}

/// 256 checks back to back, as one `CheckBatch` runs them: independent
/// lookups whose cache misses the CPU overlaps. Reported per lookup.
fn check_batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("check_in_memory_batch256");
    group.throughput(Throughput::Elements(256));
    let n = 10_000_000u64;
    let state = state_with(n);
    const QUERIES: u64 = 1 << 20;
    let mixed: String = (0..QUERIES)
        .map(|i| {
            if i % 100 == 0 {
                uuid_like(0, (i * 7919) % n)
            } else {
                uuid_like(1, i)
            }
        })
        .collect();
    let mut i = 0usize;
    group.bench_function(BenchmarkId::new("1%_hits", "10M"), |b| {
        b.iter(|| {
            for _ in 0..256 {
                i = (i + 1) & (QUERIES as usize - 1);
                let id = &mixed[i * 36..i * 36 + 36];
                std::hint::black_box(state.check(&CheckQuery::token(id)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, check, check_batch);
criterion_main!(benches);
