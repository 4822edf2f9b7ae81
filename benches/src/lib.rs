//! # rescind-benches
//!
//! Benchmarks of Rescind. `cargo bench -p rescind-benches` runs the criterion
//! micro-benchmarks in `benches/`; helpers to build large states live here.
//!
//! ## Layout
//! - [`uuid_like`]: deterministic UUID-sized token ids.
//! - [`state_with`]: a [`State`] holding N revoked ids.
//! - [`load`]: closed-loop load against a node (the `rescind-bench` binary).
//! - [`conn`]: the load generator's lean HTTP/2 connection.
//! - [`gateway`]: ext_authz Check load, RevokeBatch throughput, JWT minting.
//! - `gateway.sh`: forward-auth (wrk) and ext_authz with ES256 JWTs, cached and not;
//!   RevokeBatch; nginx with `auth_request` against nginx alone.
//! - [`fill`]: write N revocations straight into a data dir (restart and memory at 10M).
//! - [`watch`]: Watch propagation, idle streams, and an in-process replica's cost.
//! - `benches/replica.rs`: `Replica::check` in process at 1M entries.
//! - `edge.sh`: edges and Watch: edge Check against node Check, propagation to 100 streams, replica memory.
//! - `benches/check.rs`: the in-memory check, hit and miss, at 1M and 10M entries, and 256 back to back.
//! - `restart-memory.sh`: restart time and memory per id at 10M.
//! - `compare-redis.sh`: Rescind against a Redis deny list on every connection pattern, side by side.
//! - `profile-check.sh` (with `tools/perf_categories.py`): CPU per Check and where it goes.

pub mod conn;
pub mod fill;
pub mod gateway;
pub mod load;
pub mod watch;

use rescind_core::{DenyEntry, OriginId, State};

/// The `i`-th deterministic 36-character UUID-shaped id (`prefix` keeps
/// revoked and never-revoked ids apart). Cheap (two splitmix64 steps and
/// hand-written hex, ~30 ns), because the load generator makes one per check
/// and must not be what limits the measured throughput.
pub fn uuid_like(prefix: u8, i: u64) -> String {
    // splitmix64 is a bijection, and `i < 2^56` keeps (prefix, i) pairs apart.
    let a = splitmix64(i ^ (u64::from(prefix) << 56));
    let b = splitmix64(a ^ 0x6a09_e667_f3bc_c908);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (n, nibble) in (0..32).map(|k| {
        let word = if k < 16 { a } else { b };
        (k, (word >> (60 - 4 * (k % 16))) & 0xf)
    }) {
        if matches!(n, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        out.push(HEX[nibble as usize] as char);
    }
    out
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `msg` as one gRPC message on the wire (uncompressed flag, 4-byte
/// big-endian length, protobuf): a request body h2load can send.
pub fn grpc_framed(msg: &impl prost::Message) -> Vec<u8> {
    let body = msg.encode_to_vec();
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(0u8);
    out.extend((body.len() as u32).to_be_bytes());
    out.extend(body);
    out
}

/// The body of a `Check` (`batch` 1) or a `CheckBatch` of `batch` ids,
/// every id one never revoked (`uuid_like(1, _)`: a miss, as a deny list
/// answers most lookups), framed by [`grpc_framed`].
pub fn check_body(batch: usize) -> Vec<u8> {
    use rescind_proto::v1 as pb;
    let check = |i: usize| pb::CheckRequest {
        token_id: Some(uuid_like(1, i as u64)),
        ..Default::default()
    };
    if batch <= 1 {
        grpc_framed(&check(0))
    } else {
        grpc_framed(&pb::CheckBatchRequest::from(
            (0..batch).map(check).collect::<Vec<_>>(),
        ))
    }
}

/// A state with `n` revoked ids `uuid_like(0, 0..n)`, all from one origin.
pub fn state_with(n: u64) -> State {
    let origin = OriginId::new("bench", 1);
    let mut state = State::new(300_000);
    state.reserve_deny(n as usize);
    for i in 0..n {
        let entry = DenyEntry {
            expires_at_ms: 0,
            revoked_at_ms: i,
            origin: origin.clone(),
        };
        state.merge_deny(&uuid_like(0, i), &entry, 0);
    }
    state
}

#[cfg(test)]
mod tests {
    use rescind_core::CheckQuery;

    #[test]
    fn ids_are_uuid_sized_and_the_state_holds_them() {
        assert_eq!(super::uuid_like(0, 7).len(), 36);
        assert_ne!(super::uuid_like(0, 7), super::uuid_like(1, 7));
        let ids: std::collections::HashSet<String> = (0..10_000)
            .flat_map(|i| [super::uuid_like(0, i), super::uuid_like(1, i)])
            .collect();
        assert_eq!(ids.len(), 20_000, "ids must not collide");
        let id = super::uuid_like(3, 42);
        let dashes: Vec<usize> = id.match_indices('-').map(|(i, _)| i).collect();
        assert_eq!(dashes, [8, 13, 18, 23], "{id}");
        assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()), "{id}");
        let s = super::state_with(1000);
        assert_eq!(s.deny().len(), 1000);
        assert!(s.check(&CheckQuery::token(&super::uuid_like(0, 999))).revoked());
        assert!(!s.check(&CheckQuery::token(&super::uuid_like(1, 0))).revoked());
    }

    #[test]
    fn a_check_body_is_one_framed_message_of_misses() {
        use prost::Message as _;
        use rescind_proto::v1 as pb;
        let one = super::check_body(1);
        assert_eq!(one[0], 0, "uncompressed");
        assert_eq!(
            u32::from_be_bytes(one[1..5].try_into().unwrap()) as usize,
            one.len() - 5
        );
        let req = pb::CheckRequest::decode(&one[5..]).unwrap();
        assert_eq!(req.token_id.as_deref(), Some(super::uuid_like(1, 0).as_str()));
        let many = super::check_body(256);
        let batch = pb::CheckBatchRequest::decode(&many[5..]).unwrap();
        assert_eq!(batch.len(), 256);
        let distinct: std::collections::HashSet<_> = batch.checks().map(|c| c.unwrap().token_id).collect();
        assert_eq!(distinct.len(), 256, "256 different ids");
        let s = super::state_with(1000);
        assert!(
            batch.checks().all(|c| !s
                .check(&CheckQuery::token(c.unwrap().token_id.unwrap()))
                .revoked()),
            "every id is a miss"
        );
    }
}
