//! `Replica::check` in process, as a service embedding `rescind-client` (or
//! `rescind edge`) runs it: 1M revoked UUID-sized ids loaded from a replica
//! checkpoint, one check at a time, hit and miss.
//!
//! `cargo bench -p rescind-benches --bench replica`
#![allow(missing_docs)] // criterion_main! defines an undocumented `main`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rescind_benches::{state_with, uuid_like};
use rescind_client::{ClientConfig, Replica, ReplicaConfig};
use rescind_core::CheckQuery;

/// Distinct queries per kind, spread over the set (see `check.rs`).
const QUERIES: usize = 1 << 20;
/// Bytes of one UUID-sized id.
const ID: usize = 36;

fn replica_check(c: &mut Criterion) {
    let n = 1_000_000u64;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.ckpt");
    rescind_client::replica::checkpoint::save(&path, &state_with(n), "bench").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The upstream is unreachable: the replica serves from its checkpoint.
    let mut config = ReplicaConfig::new(ClientConfig::new(["127.0.0.1:1"]));
    config.checkpoint = Some(path);
    let replica = runtime.block_on(Replica::start(config)).unwrap();
    assert_eq!(replica.status().deny_entries, n);
    // Back to back in one string, read in order: the harness adds no cache misses.
    let hits: String = (0..QUERIES as u64)
        .map(|i| uuid_like(0, (i * 7919) % n))
        .collect();
    let misses: String = (0..QUERIES as u64).map(|i| uuid_like(1, i)).collect();
    let mut group = c.benchmark_group("replica_check");
    group.throughput(Throughput::Elements(1));
    for (name, ids) in [("hit", &hits), ("miss", &misses)] {
        let mut i = 0usize;
        group.bench_function(BenchmarkId::new(name, "1M"), |b| {
            b.iter(|| {
                i = (i + 1) & (QUERIES - 1);
                std::hint::black_box(replica.check(&CheckQuery::token(&ids[i * ID..(i + 1) * ID])))
            })
        });
    }
    group.finish();
    drop(replica);
}

criterion_group!(benches, replica_check);
criterion_main!(benches);
