//! # rescind-fuzz
//!
//! One function per decoder of bytes from outside the process, each taking
//! arbitrary bytes and required never to panic (errors are fine). The
//! cargo-fuzz binaries in `fuzz/` call them, and `tests/corpus.rs` replays
//! the checked-in corpus (`fuzz/corpus/<target>/`) under `cargo test`.
//!
//! ## Layout
//! - [`TARGETS`]: every target by name (the cargo-fuzz binary of the same name calls it).
//! - One function per target below; multi-decoder targets pick one by the
//!   first byte.

use std::io::Cursor;
use std::sync::OnceLock;

use prost::Message;
use rescind_proto::v1 as pb;

/// A fuzz target: takes any bytes, must not panic.
pub type Target = fn(&[u8]);

/// Every target: its name (the `fuzz/fuzz_targets/<name>.rs` binary and the
/// `fuzz/corpus/<name>/` directory) and its function.
pub const TARGETS: &[(&str, Target)] = &[
    ("peer_messages", peer_messages),
    ("snapshot_page", snapshot_page),
    ("checkpoint", checkpoint),
    ("consistency_token", consistency_token),
    ("jwt", jwt),
    ("http_bodies", http_bodies),
    ("scenario", scenario),
];

/// What peers send: one op as stored and gossiped, then the `Peers`
/// protobuf messages through their validation (first byte picks which).
pub fn peer_messages(data: &[u8]) {
    let _ = rescind_core::codec::wire::decode_op(data);
    let _ = rescind_core::codec::wire::decode_ops(&[data.to_vec()]);
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    use rescind_node::gossip::wire;
    match which % 4 {
        0 => {
            if let Ok(m) = pb::PushRequest::decode(rest) {
                let _ = wire::push_from_pb(m);
            }
        }
        1 => {
            if let Ok(m) = pb::ExchangeRequest::decode(rest) {
                let _ = wire::exchange_from_pb(m);
            }
        }
        2 => {
            if let Ok(m) = pb::ExchangeResponse::decode(rest) {
                let _ = wire::answer_from_pb(m);
            }
        }
        _ => {
            if let Ok(m) = pb::SnapshotRequest::decode(rest) {
                let _ = wire::node_from_pb("from", m.from);
            }
        }
    }
}

/// A snapshot page from a peer, first page or not, and its entries.
pub fn snapshot_page(data: &[u8]) {
    let _ = rescind_core::codec::wire::decode_deny(&[data.to_vec()]);
    let _ = rescind_core::codec::wire::decode_cutoffs(&[data.to_vec()]);
    if let Ok(page) = pb::SnapshotPage::decode(data) {
        let _ = rescind_node::gossip::wire::page_from_pb(page.clone(), true);
        let _ = rescind_node::gossip::wire::page_from_pb(page, false);
    }
}

/// A checkpoint file (`checkpoints/checkpoint-N.rsc`, or an edge's).
pub fn checkpoint(data: &[u8]) {
    let _ = rescind_core::codec::checkpoint::read_bounded(Cursor::new(data), 0, data.len() as u64);
    let _ = rescind_core::codec::checkpoint::read_header(&mut Cursor::new(data), None);
}

/// A consistency token as clients send it back.
pub fn consistency_token(data: &[u8]) {
    let _ = rescind_core::ConsistencyToken::decode(data);
}

/// A bearer JWT, verified against the test fixture keys (header, claims and
/// signature parsing all run before any key is found to match).
pub fn jwt(data: &[u8]) {
    static VERIFIER: OnceLock<Option<rescind_jwt::Verifier>> = OnceLock::new();
    let verifier =
        VERIFIER.get_or_init(|| rescind_jwt::Verifier::new(&rescind_jwt::testing::jwks_config()).ok());
    if let (Some(v), Ok(token)) = (verifier, std::str::from_utf8(data)) {
        let _ = v.verify_ignoring_time(token);
        let _ = rescind_jwt::bearer(token);
    }
}

/// HTTP API bodies after they are read: JSON revoke, batch revoke and
/// check, and the OAuth form (first byte picks which).
pub fn http_bodies(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    use rescind_node::http::{api, oauth};
    match which % 4 {
        0 => drop(api::decode_revoke(body)),
        1 => drop(api::decode_revoke_batch(body)),
        2 => drop(api::decode_check(body)),
        _ => drop(oauth::decode_token_form(body)),
    }
}

/// A simulation scenario file (TOML).
pub fn scenario(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rescind_sim::scenario::Scenario::parse(text);
    }
}
