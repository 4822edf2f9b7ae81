//! Limits against abuse, with a real node: a thousand silent connections do
//! not stop Check and are closed after the idle timeout; ten thousand wrong
//! tokens from one address are throttled while the valid admin token still
//! revokes; the HTTP port caps its connections and closes silent ones and
//! request heads that trickle in.

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
        .map(|mut s| async move { closed_within(&mut s, Duration::from_secs(60)).await })
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

/// Read `s` to its end within `deadline`: true when the node closed it.
async fn closed_within(s: &mut tokio::net::TcpStream, deadline: Duration) -> bool {
    let mut sink = [0u8; 1024];
    tokio::time::timeout(deadline, async {
        loop {
            match s.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_port_caps_connections_and_closes_silent_and_slow_ones() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(
        dir.path(),
        &[
            "--max-connections",
            "20",
            "--first-byte-timeout",
            "2s",
            "--request-timeout",
            "2s",
            "--idle-timeout",
            "2s",
        ],
    );
    let http = node.http.expect("the HTTP port");
    // Twenty silent connections take every slot.
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(tokio::net::TcpStream::connect(http).await.expect("connect"));
    }
    // A 21st waits in the backlog: it is answered only once the node has
    // closed a silent one (for sending nothing) and freed its slot.
    let mut late = tokio::net::TcpStream::connect(http).await.expect("connect");
    late.write_all(b"GET /healthz HTTP/1.1\r\nhost: rescind\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), late.read_to_end(&mut answer))
        .await
        .expect("the 21st connection is answered")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let mut probe = [0u8; 16];
    let already_closed = silent
        .iter()
        .filter(|s| match s.try_read(&mut probe) {
            Ok(n) => n == 0,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        })
        .count();
    assert!(
        already_closed >= 1,
        "the 21st connection was served while 20 held every slot"
    );
    for s in &mut silent {
        assert!(
            closed_within(s, Duration::from_secs(60)).await,
            "a silent connection stayed open"
        );
    }

    // A client that trickles its request head, a byte at a time into one
    // header (never silent long enough to be idle, and far from any header
    // count or size limit within the loop's bound), is closed when the head
    // takes longer than request_timeout.
    let mut slow = tokio::net::TcpStream::connect(http).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nx-slow: ")
        .await
        .unwrap();
    let mut pace = tokio::time::interval(Duration::from_millis(200));
    let mut bytes = 0;
    let closed = loop {
        pace.tick().await;
        if slow.write_all(b"a").await.is_err() {
            break true;
        }
        let mut probe = [0u8; 256];
        match slow.try_read(&mut probe) {
            Ok(_) => break true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break true,
        }
        bytes += 1;
        if bytes > 300 {
            break false;
        }
    };
    assert!(closed, "a trickled request head was still being read after 60 s");
    assert!(
        bytes >= 5,
        "closed after {bytes} bytes: sooner than the head timeout"
    );
}
