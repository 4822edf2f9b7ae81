//! Replication paths: merging a 10k-op delta into a 1M-entry state, encoding
//! and decoding a 1M-entry snapshot, and a durable store append with group
//! commit (64 ops per flush) on sled.
//!
//! `cargo bench -p rescind-benches --bench replication`
#![allow(missing_docs)] // criterion_main! defines an undocumented `main`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rescind_benches::{state_with, uuid_like};
use rescind_core::{Op, OriginId, Payload};
use rescind_gossip::wire::{decode_deny, encode_deny};
use rescind_store::{SledStore, Store};

fn ops(origin: &OriginId, from: u64, n: u64) -> Vec<Op> {
    (from..from + n)
        .map(|i| Op {
            origin: origin.clone(),
            seq: i + 1,
            payload: Payload::Token {
                token_id: uuid_like(2, i),
                expires_at_ms: 0,
                revoked_at_ms: i,
                reason: String::new(),
                actor: String::new(),
            },
        })
        .collect()
}

fn merge_delta(c: &mut Criterion) {
    let base = state_with(1_000_000);
    let delta = ops(&OriginId::new("peer", 9), 0, 10_000);
    let mut g = c.benchmark_group("merge");
    g.throughput(Throughput::Elements(10_000));
    g.sample_size(10);
    g.bench_function("10k_op_delta_into_1M", |b| {
        b.iter_batched(
            || base.clone(),
            |mut s| {
                for op in &delta {
                    s.apply_op(op, 0);
                }
                s
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn snapshot(c: &mut Criterion) {
    let state = state_with(1_000_000);
    let entries: Vec<(String, rescind_core::DenyEntry)> = state
        .deny()
        .iter()
        .map(|(id, m)| (id.into_owned(), m.to_entry()))
        .collect();
    let encoded: Vec<Vec<u8>> = entries.iter().map(|(id, e)| encode_deny(id, e)).collect();
    let mut g = c.benchmark_group("snapshot_1M");
    g.throughput(Throughput::Elements(1_000_000));
    g.sample_size(10);
    g.bench_function("encode", |b| {
        b.iter(|| {
            entries
                .iter()
                .map(|(id, e)| encode_deny(id, e))
                .collect::<Vec<_>>()
        })
    });
    g.bench_function("decode_and_validate", |b| {
        b.iter(|| decode_deny(&encoded).map(|v| v.len()))
    });
    g.finish();
}

fn store_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(dir.path(), Some("bench"), "bench").expect("sled");
    let origin = store.identity().origin();
    let mut next = 0u64;
    let mut g = c.benchmark_group("store_append");
    g.throughput(Throughput::Elements(64));
    g.bench_function("64_ops_one_flush", |b| {
        b.iter(|| {
            let batch = ops(&origin, next, 64);
            next += 64;
            store.append(&batch).expect("append");
            store.flush().expect("flush");
        })
    });
    g.finish();
}

criterion_group!(benches, merge_delta, snapshot, store_append);
criterion_main!(benches);
