//! Limits against abuse, with a real node: a thousand silent connections do
//! not stop Check and are closed after the idle timeout; ten thousand wrong
//! tokens from one address are throttled while the valid admin token still
//! revokes.

use std::time::Duration;

use futures_util::StreamExt;
use rescind_proto::v1 as pb;
use rescind_tests::cluster::eventually;
use rescind_tests::{NodeProc, revoke_token, with_bearer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

/// Raise this process's open-file limit: a thousand sockets exceed the
/// common soft default.
fn raise_open_files() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let Some(max) = limit.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(max),
                maximum: Some(max),
            },
        );
    }
}

/// The HTTP/2 client preface and an empty SETTINGS frame: a connection
/// that starts like a gRPC client and then says nothing more.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_do_not_stop_checks_and_are_closed() {
    raise_open_files();
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(
        dir.path(),
        &[
            "--idle-timeout",
            "3s",
            "--request-timeout",
            "3s",
            "--first-byte-timeout",
            "3s",
            "--max-connections",
            "1100",
        ],
    );
    let mut client = node.client().await;
    client
        .revoke(node.admin(revoke_token("revoked-before-the-flood")))
        .await
        .unwrap();

    // 500 connections that never send a byte, 500 that send the HTTP/2
    // preface and then nothing.
    let mut idle = Vec::new();
    for i in 0..1000 {
        let mut s = tokio::net::TcpStream::connect(node.addr).await.expect("connect");
        if i % 2 == 1 {
            s.write_all(H2_PREFACE).await.unwrap();
        }
        idle.push(s);
    }
    // Checks are served meanwhile (on a connection of their own).
    for _ in 0..200 {
        let answer = client
            .check(pb::CheckRequest {
                token_id: Some("revoked-before-the-flood".into()),
                ..Default::default()
            })
            .await
            .expect("check while 1000 connections idle")
            .into_inner();
        assert!(answer.revoked);
    }
    // Every idle connection is closed by the node: reading reaches its end.
    let closed = futures_util::stream::iter(idle)
        .map(|mut s| async move {
            let mut sink = [0u8; 1024];
            tokio::time::timeout(Duration::from_secs(60), async {
                loop {
                    match s.read(&mut sink).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            })
            .await
            .is_ok()
        })
        .buffer_unordered(1000)
        .filter(|closed| std::future::ready(*closed))
        .count()
        .await;
    assert_eq!(closed, 1000, "idle connections still open after 60 s");
    // The client in use is unaffected (its connection was busy, then it reconnects).
    let status = node.status().await;
    assert_eq!(status.deny_entries, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_are_throttled_and_the_admin_still_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(
        dir.path(),
        &["--auth-failure-burst", "20", "--auth-failures-per-second", "1"],
    );
    let client = node.client().await;
    let outcomes = futures_util::stream::iter(0..10_000)
        .map(|i| {
            let mut c = client.clone();
            async move {
                let req = with_bearer(
                    revoke_token(&format!("guess-{i}")),
                    &format!("wrong-token-{i:08}"),
                );
                match c.revoke(req).await {
                    Ok(_) => Code::Ok,
                    Err(s) => s.code(),
                }
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<Code>>()
        .await;
    let count = |code| outcomes.iter().filter(|c| **c == code).count();
    let (refused, throttled) = (count(Code::Unauthenticated), count(Code::ResourceExhausted));
    assert_eq!(count(Code::Ok), 0, "a wrong token revoked");
    assert_eq!(refused + throttled, 10_000, "{outcomes:?}");
    // The burst (20) plus one per second of the run.
    assert!(
        throttled >= 9_000,
        "only {throttled} of 10000 throttled ({refused} answered unauthenticated)"
    );

    // From the same address, the admin token still revokes.
    let mut c = client.clone();
    let ok = c
        .revoke(node.admin(revoke_token("revoked-by-the-admin")))
        .await
        .expect("the admin revokes while the address is throttled");
    assert!(!ok.into_inner().already_revoked);
    // HTTP shares the address's budget: a wrong token there gets 429.
    let http = node.http.unwrap();
    let r = rescind_tests::gateway::http()
        .post(format!("http://{http}/v1/revocations"))
        .bearer_auth("wrong-token-over-http")
        .json(&serde_json::json!({"token_id": "guess-http"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    // So does an admin-token guess at the OAuth revocation endpoint.
    let r = rescind_tests::gateway::http()
        .post(format!("http://{http}/oauth2/revoke"))
        .bearer_auth("wrong-token-over-oauth")
        .form(&[("token", "some-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    // The throttle did not stop anyone reading what the admin revoked.
    let answer = eventually("the admin's revocation", Duration::from_secs(10), || {
        let mut c = client.clone();
        async move {
            c.check(pb::CheckRequest {
                token_id: Some("revoked-by-the-admin".into()),
                ..Default::default()
            })
            .await
            .ok()
            .map(|r| r.into_inner())
        }
    })
    .await;
    assert!(answer.revoked);
}
