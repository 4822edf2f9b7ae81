//! In-memory check with 1M and 10M revoked UUID-sized ids, hit and miss:
//! one check at a time (`State::check`, as the `Check` RPC runs it) and 256
//! at a time (`State::check_many`, as `CheckBatch` runs them), per lookup.
//!
//! `memory_floor` is what the hardware allows: one read from a random
//! place in 256 MiB, each depending on the last (a single lookup's floor:
//! a miss needs one such read, a hit two), and reads issued 16 at a time
//! (the floor for a batch).
//!
//! `cargo bench -p rescind-benches --bench check`
#![allow(missing_docs)] // criterion_main! defines an undocumented `main`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rescind_benches::{state_with, uuid_like};
use rescind_core::CheckQuery;

/// Distinct queries per kind. Rotating over 2^20 ids spread over the whole
/// set makes lookups miss the CPU caches as real traffic does (a few
/// thousand ids would stay in L2). They sit back to back in one string,
/// read in order, so the harness adds no cache misses of its own.
const QUERIES: usize = 1 << 20;
/// Checks per batch.
const BATCH: usize = 256;

fn check(c: &mut Criterion) {
    for (label, n) in [("1M", 1_000_000u64), ("10M", 10_000_000)] {
        let state = state_with(n);
        let hits: String = (0..QUERIES as u64)
            .map(|i| uuid_like(0, (i * 7919) % n))
            .collect();
        let misses: String = (0..QUERIES as u64).map(|i| uuid_like(1, i)).collect();
        let kinds = [("hit", &hits), ("miss", &misses)];

        let mut group = c.benchmark_group("check_in_memory");
        group.throughput(Throughput::Elements(1));
        for (name, ids) in kinds {
            let mut i = 0usize;
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter(|| {
                    i = (i + 1) & (QUERIES - 1);
                    std::hint::black_box(state.check(&query(ids, i)))
                })
            });
        }
        group.finish();

        let mut group = c.benchmark_group("check_in_memory_batch256");
        group.throughput(Throughput::Elements(BATCH as u64));
        for (name, ids) in kinds {
            let batches: Vec<Vec<CheckQuery<'_>>> = (0..QUERIES / BATCH)
                .map(|b| (b * BATCH..(b + 1) * BATCH).map(|i| query(ids, i)).collect())
                .collect();
            let mut b_i = 0usize;
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter(|| {
                    b_i = (b_i + 1) % batches.len();
                    std::hint::black_box(state.check_many(&batches[b_i]))
                })
            });
        }
        group.finish();
    }
}

/// Reads from a random cyclic permutation of 2^26 u32s (256 MiB).
fn memory_floor(c: &mut Criterion) {
    const N: usize = 1 << 26;
    // Sattolo's shuffle: one cycle through every slot, so a chase never
    // settles into a cached loop.
    let mut next: Vec<u32> = (0..N as u32).collect();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for i in (1..N).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        next.swap(i, (x % i as u64) as usize);
    }
    let mut group = c.benchmark_group("memory_floor");
    group.throughput(Throughput::Elements(1));
    let mut at = 0u32;
    group.bench_function("dependent_read", |b| {
        b.iter(|| {
            at = next[at as usize];
            at
        })
    });
    group.throughput(Throughput::Elements(16));
    let mut base = 0usize;
    group.bench_function("independent_reads_x16", |b| {
        b.iter(|| {
            base = (base + 16) & (N - 1);
            let mut got = [0u32; 16];
            for (k, g) in got.iter_mut().enumerate() {
                // Spread by a large odd stride: 16 lines far apart.
                *g = next[(base + k).wrapping_mul(0x9E37_79B1) & (N - 1)];
            }
            std::hint::black_box(got)
        })
    });
    group.finish();
}

/// The `i`th query of `ids` (UUID texts back to back).
fn query(ids: &str, i: usize) -> CheckQuery<'_> {
    CheckQuery::token(&ids[i * 36..i * 36 + 36])
}

criterion_group!(benches, memory_floor, check);
criterion_main!(benches);
