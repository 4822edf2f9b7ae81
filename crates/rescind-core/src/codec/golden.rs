//! Golden bytes: each encoding, pinned. A failure here means bytes that old
//! data dirs, peers or clients hold would no longer read the same: add a new
//! version instead of changing an old one.

use super::{checkpoint, meta, wire};
use crate::{ConsistencyToken, Cutoff, DenyEntry, Op, OriginId, Payload, PrincipalKind, State};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn origin() -> OriginId {
    OriginId::new("node-a", 0x0102_0304_0506_0708)
}

fn token_op() -> Op {
    Op {
        origin: origin(),
        seq: 7,
        payload: Payload::Token {
            token_id: "tok-1".into(),
            expires_at_ms: 1_800_000_000_000,
            revoked_at_ms: 1_790_000_000_000,
            reason: "leak".into(),
            actor: "alice".into(),
        },
    }
}

fn cutoff_op() -> Op {
    Op {
        origin: origin(),
        seq: 8,
        payload: Payload::Cutoff {
            kind: PrincipalKind::Subject,
            principal: "user-42".into(),
            cutoff: Cutoff {
                issued_before_ms: 1_790_000_000_000,
                min_version: 3,
            },
            revoked_at_ms: 1_790_000_000_001,
            reason: String::new(),
            actor: "bob".into(),
        },
    }
}

/// The pinned encodings, each checked both ways.
fn assert_golden(what: &str, actual: &[u8], expected: &str) {
    assert_eq!(hex(actual), expected, "{what}: the encoding changed");
}

#[test]
fn ops() {
    let op = token_op();
    let bytes = wire::encode_op(&op);
    assert_golden("token op", &bytes, GOLDEN_TOKEN_OP);
    assert_eq!(wire::decode_op(&bytes).unwrap(), op);
    let op = cutoff_op();
    let bytes = wire::encode_op(&op);
    assert_golden("cutoff op", &bytes, GOLDEN_CUTOFF_OP);
    assert_eq!(wire::decode_op(&bytes).unwrap(), op);
}

#[test]
fn snapshot_entries() {
    let entry = DenyEntry {
        expires_at_ms: 0,
        revoked_at_ms: 1_790_000_000_000,
        origin: origin(),
    };
    let bytes = wire::encode_deny("tok-1", &entry);
    assert_golden("deny entry", &bytes, GOLDEN_DENY_ENTRY);
    assert_eq!(
        wire::decode_deny(&[bytes]).unwrap(),
        vec![("tok-1".to_string(), entry)]
    );
    let c = Cutoff {
        issued_before_ms: 5,
        min_version: 0,
    };
    let bytes = wire::encode_cutoff(PrincipalKind::KeyId, "kid-1", c);
    assert_golden("cutoff entry", &bytes, GOLDEN_CUTOFF_ENTRY);
    assert_eq!(
        wire::decode_cutoffs(&[bytes]).unwrap(),
        vec![(PrincipalKind::KeyId, "kid-1".to_string(), c)]
    );
}

#[test]
fn consistency_tokens() {
    let token = ConsistencyToken::for_op(origin(), 9);
    let bytes = token.encode();
    assert_golden("consistency token", &bytes, GOLDEN_TOKEN);
    assert_eq!(ConsistencyToken::decode(&bytes).unwrap(), token);
}

#[test]
fn meta_values() {
    let value = vec![(origin(), 5u64)];
    let bytes = meta::encode(&value);
    assert_golden("meta vector", &bytes, GOLDEN_META_VECTOR);
    let back: Vec<(OriginId, u64)> = meta::decode_value("vector", &bytes).unwrap();
    assert_eq!(back, value);
    assert_eq!(hex(&meta::encode_format(2)), "00000002");
}

fn sample_state() -> State {
    let mut s = State::new(0);
    // Contiguous up to the ops below: a checkpoint keeps contiguous seqs only.
    s.raise_clock(&origin(), 6);
    s.apply_op(&token_op(), 0);
    s.apply_op(&cutoff_op(), 0);
    let uuid = DenyEntry {
        expires_at_ms: 0,
        revoked_at_ms: 1_790_000_000_002,
        origin: OriginId::new("node-b", 2),
    };
    s.merge_deny("3f2504e0-4f89-41d3-9a0c-0305e82c3301", &uuid, 0);
    s
}

#[test]
fn checkpoint_file() {
    // One UUID id and one raw id: records go out in the set's order, which
    // depends on the hasher's seed, so each record is pinned on its own and
    // the file is checked to round-trip.
    let s = sample_state();
    let mut records: Vec<String> = s
        .deny()
        .records()
        .map(|(id, f)| {
            let mut out = Vec::new();
            checkpoint::encode_deny_record(&mut out, id, f, &mut 1_789_999_999_999);
            hex(&out)
        })
        .collect();
    records.sort();
    assert_eq!(
        records, GOLDEN_DENY_RECORDS,
        "checkpoint deny records: the encoding changed"
    );
    let mut file = Vec::new();
    let n = checkpoint::write(&s, 3, 11, 12, &mut file).unwrap();
    assert_eq!(n as usize, file.len());
    assert_golden("checkpoint preamble", &file[..9], "5253434e44434b5001");
    let (back, header) = checkpoint::read(&file[..], 0).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.digest(), s.digest());
    assert_eq!(
        (header.generation, header.pruned_before_ms, header.written_at_ms),
        (3, 11, 12)
    );
}

const GOLDEN_TOKEN_OP: &str =
    "81066e6f64652d61888e98a8c0e0808101070005746f6b2d3180a0f1c2b13480d8c1a28c34046c65616b05616c696365";
const GOLDEN_CUTOFF_OP: &str =
    "81066e6f64652d61888e98a8c0e080810108010007757365722d343280d8c1a28c340381d8c1a28c340003626f62";
const GOLDEN_DENY_ENTRY: &str = "0105746f6b2d310080d8c1a28c34066e6f64652d61888e98a8c0e0808101";
const GOLDEN_CUTOFF_ENTRY: &str = "0103056b69642d310500";
const GOLDEN_TOKEN: &str = "0101066e6f64652d61888e98a8c0e080810109";
const GOLDEN_META_VECTOR: &str = "0101066e6f64652d61888e98a8c0e080810105";
const GOLDEN_DENY_RECORDS: [&str; 2] = [
    "003f2504e04f8941d39a0c0305e82c33010602",
    "06746f6b2d3102018090dfc04a",
];
