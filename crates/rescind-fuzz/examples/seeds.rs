//! Write the seed corpora into `fuzz/corpus/<target>/` from real encodings
//! (run once, check the files in): `cargo run -p rescind-fuzz --example seeds`.
//! Checkpoint seeds are real files a node wrote; pass their paths as arguments.

use std::path::{Path, PathBuf};

use prost::Message;
use rescind_core::codec::wire;
use rescind_core::{ConsistencyToken, Cutoff, DenyEntry, Op, OriginId, Payload, PrincipalKind};
use rescind_proto::v1 as pb;

fn put(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("corpus dir");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let origin = OriginId {
        node: "eu-1".into(),
        incarnation: 0x1234_5678_9abc_def0,
    };
    let token = Op {
        origin: origin.clone(),
        seq: 7,
        payload: Payload::Token {
            token_id: "leaked-ci-token".into(),
            expires_at_ms: 1_800_000_000_000,
            revoked_at_ms: 1_790_000_000_000,
            reason: "leaked".into(),
            actor: "sre".into(),
        },
    };
    let cutoff = Op {
        origin: origin.clone(),
        seq: 8,
        payload: Payload::Cutoff {
            kind: PrincipalKind::Subject,
            principal: "user-42".into(),
            cutoff: Cutoff {
                issued_before_ms: 1_790_000_000_000,
                min_version: 0,
            },
            revoked_at_ms: 1_790_000_000_001,
            reason: "offboarded".into(),
            actor: "hr".into(),
        },
    };
    let node = pb::NodeInfo {
        name: "eu-1".into(),
        incarnation: origin.incarnation,
        region: "eu".into(),
        addr: "10.0.0.1:7400".into(),
    };
    let clock = vec![pb::ClockEntry {
        origin_node: "eu-1".into(),
        incarnation: origin.incarnation,
        seq: 8,
    }];
    let peer = root.join("peer_messages");
    put(&peer, "op-token", &wire::encode_op(&token));
    put(&peer, "op-cutoff", &wire::encode_op(&cutoff));
    let push = pb::PushRequest {
        from: Some(node.clone()),
        ops: vec![wire::encode_op(&token), wire::encode_op(&cutoff)],
    };
    put(&peer, "push", &[&[0u8][..], &push.encode_to_vec()].concat());
    let exchange = pb::ExchangeRequest {
        from: Some(node.clone()),
        clock: clock.clone(),
        members: vec![pb::MemberRecord {
            node: Some(node.clone()),
            removed: false,
        }],
    };
    put(
        &peer,
        "exchange",
        &[&[1u8][..], &exchange.encode_to_vec()].concat(),
    );
    let answer = pb::ExchangeResponse {
        from: Some(node.clone()),
        clock: clock.clone(),
        ops: vec![wire::encode_op(&token)],
        more: false,
        snapshot_needed: false,
        freshness: vec![pb::FreshnessAge {
            node: "eu-1".into(),
            age_ms: 12,
        }],
        members: Vec::new(),
    };
    put(&peer, "answer", &[&[2u8][..], &answer.encode_to_vec()].concat());
    let snap_req = pb::SnapshotRequest {
        from: Some(node),
        cursor: b"cursor".to_vec(),
    };
    put(
        &peer,
        "snapshot-request",
        &[&[3u8][..], &snap_req.encode_to_vec()].concat(),
    );

    let entry = DenyEntry {
        expires_at_ms: 1_800_000_000_000,
        revoked_at_ms: 1_790_000_000_000,
        origin: origin.clone(),
    };
    let page = pb::SnapshotPage {
        clock,
        deny: vec![wire::encode_deny("leaked-ci-token", &entry)],
        cutoffs: Vec::new(),
        next_cursor: b"next".to_vec(),
        done: false,
    };
    let snap = root.join("snapshot_page");
    put(&snap, "page", &page.encode_to_vec());
    put(&snap, "deny-entry", &wire::encode_deny("leaked-ci-token", &entry));

    let ct = ConsistencyToken {
        dots: vec![(origin, 8)],
    };
    put(&root.join("consistency_token"), "one-dot", &ct.encode());

    let claims = serde_json::json!({"sub": "user-42", "jti": "tok-1", "iat": 1_790_000_000u64, "exp": 1_800_000_000u64, "iss": "https://idp.example", "aud": "api"});
    let jwt_dir = root.join("jwt");
    for (alg, kid, pem, name) in [
        (
            rescind_jwt::Algorithm::ES256,
            "ec-1",
            rescind_jwt::testing::EC_PEM,
            "es256",
        ),
        (
            rescind_jwt::Algorithm::RS256,
            "rsa-1",
            rescind_jwt::testing::RSA_PEM,
            "rs256",
        ),
        (
            rescind_jwt::Algorithm::EdDSA,
            "ed-1",
            rescind_jwt::testing::ED_PEM,
            "eddsa",
        ),
    ] {
        let t = rescind_jwt::testing::sign_with_fixture(alg, kid, pem, &claims);
        put(&jwt_dir, name, t.as_bytes());
    }
    put(
        &jwt_dir,
        "unsigned",
        rescind_jwt::testing::unsigned(&serde_json::json!({"alg": "none"}), &claims).as_bytes(),
    );

    let http = root.join("http_bodies");
    put(
        &http,
        "revoke-token",
        b"\x00{\"token\":{\"token_id\":\"leaked-ci-token\",\"expires_at_ms\":0},\"reason\":\"leak\"}",
    );
    put(
        &http,
        "revoke-subject",
        b"\x00{\"cutoff\":{\"principal_kind\":\"SUBJECT\",\"principal_id\":\"alice\",\"min_version\":3,\"version_only\":true}}",
    );
    put(
        &http,
        "revoke-batch",
        b"\x01{\"revocations\":[{\"token\":{\"token_id\":\"a\"}},{\"cutoff\":{\"principal_kind\":\"session\",\"principal_id\":\"s-1\",\"issued_before_ms\":5}}]}",
    );
    put(
        &http,
        "check",
        b"\x02{\"token_id\":\"leaked-ci-token\",\"subject\":\"user-42\",\"issued_at_ms\":1}",
    );
    put(
        &http,
        "oauth-form",
        b"\x03token=abc.def.ghi&token_type_hint=access_token",
    );

    let scen = root.join("scenario");
    let scenarios = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sim/scenarios");
    for e in std::fs::read_dir(&scenarios).expect("sim/scenarios") {
        let path = e.expect("entry").path();
        let name = path.file_stem().expect("name").to_string_lossy().into_owned();
        put(&scen, &name, &std::fs::read(&path).expect("read scenario"));
    }

    let cp = root.join("checkpoint");
    for (i, arg) in std::env::args().skip(1).enumerate() {
        put(
            &cp,
            &format!("checkpoint-{i}"),
            &std::fs::read(&arg).expect("read checkpoint"),
        );
    }
    println!("seeds written under {}", root.display());
}
