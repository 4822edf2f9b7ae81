//! Every kind of bad input gets the right status naming the field, and the
//! node keeps serving afterwards.

use rescind_proto::v1 as pb;
use rescind_tests::{NodeProc, with_bearer};
use tonic::Code;

fn token(id: &str, expires_at_ms: i64) -> pb::RevokeRequest {
    pb::RevokeRequest {
        target: Some(pb::revoke_request::Target::Token(pb::TokenRevocation {
            token_id: id.into(),
            expires_at_ms,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn cutoff(kind: i32, id: &str, before: i64) -> pb::RevokeRequest {
    pb::RevokeRequest {
        target: Some(pb::revoke_request::Target::Cutoff(pb::CutoffRevocation {
            principal_kind: kind,
            principal_id: id.into(),
            issued_before_ms: before,
            min_version: 0,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn assert_status(result: Result<impl std::fmt::Debug, tonic::Status>, code: Code, mentions: &[&str]) {
    let status = result.expect_err("the request should be refused");
    assert_eq!(status.code(), code, "{status:?}");
    for m in mentions {
        assert!(
            status.message().contains(m),
            "message {:?} lacks {m:?}",
            status.message()
        );
    }
}

#[tokio::test]
async fn bad_input_is_refused_by_field_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(dir.path(), &[]);
    let mut c = node.client().await;
    let big = "x".repeat(10 * 1024);
    let check = |f: fn(&mut pb::CheckRequest)| {
        let mut r = pb::CheckRequest::default();
        f(&mut r);
        r
    };

    // Checks.
    assert_status(
        c.check(pb::CheckRequest::default()).await,
        Code::InvalidArgument,
        &["token_id", "names nothing"],
    );
    assert_status(
        c.check(check(|r| r.issuer = Some("https://idp".into()))).await,
        Code::InvalidArgument,
        &["names nothing"],
    );
    assert_status(
        c.check(check(|r| r.token_id = Some(String::new()))).await,
        Code::InvalidArgument,
        &["token_id", "empty"],
    );
    let long = pb::CheckRequest {
        token_id: Some(big.clone()),
        ..Default::default()
    };
    assert_status(c.check(long).await, Code::InvalidArgument, &["token_id", "512"]);
    assert_status(
        c.check(check(|r| r.subject = Some("al\u{1b}[31mice".into())))
            .await,
        Code::InvalidArgument,
        &["subject", "control"],
    );
    assert_status(
        c.check(check(|r| r.issued_at_ms = -1)).await,
        Code::InvalidArgument,
        &["issued_at_ms"],
    );
    assert_status(
        c.check(check(|r| r.consistency_token = Some(vec![0xff; 4])))
            .await,
        Code::InvalidArgument,
        &["consistency_token"],
    );
    let oversized = pb::CheckBatchRequest::from(vec![pb::CheckRequest::default(); 1025]);
    assert_status(
        c.check_batch(oversized).await,
        Code::InvalidArgument,
        &["checks", "1024"],
    );
    let one_bad = pb::CheckBatchRequest::from(vec![
        check(|r| r.tenant = Some("ok".into())),
        check(|r| r.key_id = Some(String::new())),
    ]);
    assert_status(
        c.check_batch(one_bad).await,
        Code::InvalidArgument,
        &["checks[1].key_id"],
    );

    // Revokes: validation.
    assert_status(
        c.revoke(node.admin(token("", 0))).await,
        Code::InvalidArgument,
        &["token.token_id", "empty"],
    );
    assert_status(
        c.revoke(node.admin(token(&big, 0))).await,
        Code::InvalidArgument,
        &["token.token_id", "512"],
    );
    assert_status(
        c.revoke(node.admin(token("a\nb", 0))).await,
        Code::InvalidArgument,
        &["token.token_id", "control"],
    );
    assert_status(
        c.revoke(node.admin(token("t", -5))).await,
        Code::InvalidArgument,
        &["token.expires_at_ms"],
    );
    assert_status(
        c.revoke(node.admin(cutoff(99, "alice", 0))).await,
        Code::InvalidArgument,
        &["cutoff.principal_kind", "99"],
    );
    assert_status(
        c.revoke(node.admin(cutoff(0, "alice", 0))).await,
        Code::InvalidArgument,
        &["cutoff.principal_kind"],
    );
    assert_status(
        c.revoke(node.admin(cutoff(1, "alice", -1))).await,
        Code::InvalidArgument,
        &["cutoff.issued_before_ms"],
    );
    assert_status(
        c.revoke(node.admin(pb::RevokeRequest::default())).await,
        Code::InvalidArgument,
        &["target"],
    );
    let mut long_reason = token("t", 0);
    long_reason.reason = "r".repeat(257);
    assert_status(
        c.revoke(node.admin(long_reason)).await,
        Code::InvalidArgument,
        &["reason", "256"],
    );

    // Revokes: authentication.
    assert_status(
        c.revoke(token("t", 0)).await,
        Code::Unauthenticated,
        &["authorization", "missing"],
    );
    assert_status(
        c.revoke(with_bearer(token("t", 0), "wrong-token-wrong-token"))
            .await,
        Code::Unauthenticated,
        &["admin token"],
    );
    let mut no_bearer = tonic::Request::new(token("t", 0));
    no_bearer
        .metadata_mut()
        .insert("authorization", node.admin_token().parse().unwrap());
    assert_status(c.revoke(no_bearer).await, Code::Unauthenticated, &["Bearer"]);

    // A message over the size limit is refused by the transport, not decoded.
    let huge = pb::CheckBatchRequest::from(vec![
        pb::CheckRequest {
            token_id: Some("y".repeat(500)),
            ..Default::default()
        };
        10_000
    ]);
    let err = c.check_batch(huge).await.expect_err("5 MB message refused");
    assert_ne!(err.code(), Code::Ok);

    // Nothing above changed the state, and the node still answers correctly.
    let status = c.status(pb::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!((status.deny_entries, status.cutoffs), (0, 0));
    c.revoke(node.admin(token("good", 0))).await.unwrap();
    let hit = c
        .check(check(|r| r.token_id = Some("good".into())))
        .await
        .unwrap()
        .into_inner();
    assert!(hit.revoked);
}
