//! # rescind-benches
//!
//! Benchmarks of Rescind. `cargo bench -p rescind-benches` runs the criterion
//! micro-benchmarks in `benches/`; helpers to build large states live here.
//!
//! ## Layout
//! - [`uuid_like`]: deterministic UUID-sized token ids.
//! - [`state_with`]: a [`State`] holding N revoked ids.
//! - [`load`]: closed-loop load against a node (the `rescind-bench` binary).
//! - `benches/check.rs`: the in-memory check, hit and miss, at 1M entries.
//! - `compare-redis.sh`: Rescind against a Redis deny list, side by side.

pub mod load;

use rescind_core::{DenyEntry, OriginId, State};

/// The `i`-th deterministic 36-character UUID-shaped id (`prefix` keeps
/// revoked and never-revoked ids apart).
pub fn uuid_like(prefix: u8, i: u64) -> String {
    let h = blake3::hash(&[&[prefix][..], &i.to_le_bytes()].concat());
    let x = h.to_hex();
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
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
        let s = super::state_with(1000);
        assert_eq!(s.deny().len(), 1000);
        assert!(s.check(&CheckQuery::token(&super::uuid_like(0, 999))).revoked());
        assert!(!s.check(&CheckQuery::token(&super::uuid_like(1, 0))).revoked());
    }
}
