//! `Node::serve` on real loopback sockets with several serving threads: every
//! connection is answered whichever thread it lands on, revokes made on one
//! connection are seen on all the others, and shutdown drains and returns.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::time::Duration;

use rescind_core::check::CheckQuery;
use rescind_node::{Config, Node};
use rescind_proto::v1 as pb;
use rescind_proto::v1::revocations_client::RevocationsClient;
use tonic::transport::{Channel, Endpoint};

const ADMIN: &str = "serving-test-admin-token-0123456789";

fn config(dir: &std::path::Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_token: Some(ADMIN.into()),
        serve_threads: 3,
        ..Config::default()
    }
}

fn with_admin<T>(message: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {ADMIN}").parse().unwrap());
    req
}

fn revoke(id: &str) -> pb::RevokeRequest {
    pb::RevokeRequest {
        target: Some(pb::revoke_request::Target::Token(pb::TokenRevocation {
            token_id: id.into(),
            expires_at_ms: 0,
            ..Default::default()
        })),
        reason: "serving test".into(),
        actor: "test".into(),
    }
}

fn check(id: &str) -> pb::CheckRequest {
    pb::CheckRequest {
        token_id: Some(id.into()),
        ..Default::default()
    }
}

/// A node on `dir` serving on a free port until the sender is used; its address and task.
async fn serve(
    dir: &std::path::Path,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), rescind_node::NodeError>>,
) {
    let node = Node::open(config(dir)).await.unwrap();
    let listener = node.bind().await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(node.serve(listener, async {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_serving_thread_answers_and_shutdown_drains() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, stop, server) = serve(dir.path()).await;

    // Six separate connections: two per serving thread (round-robin).
    let mut clients: Vec<RevocationsClient<Channel>> = Vec::new();
    for _ in 0..6 {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        clients.push(RevocationsClient::new(channel));
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let ack = c
            .revoke(with_admin(revoke(&format!("tok-{i}"))))
            .await
            .unwrap()
            .into_inner();
        assert!(!ack.already_revoked);
    }
    // Every connection sees every revocation, whichever thread made it.
    for c in &mut clients {
        for i in 0..6 {
            let answer = c.check(check(&format!("tok-{i}"))).await.unwrap().into_inner();
            assert!(answer.revoked, "tok-{i}");
        }
        assert!(
            !c.check(check("never-revoked"))
                .await
                .unwrap()
                .into_inner()
                .revoked
        );
    }
    // Bad input still gets a clear error through the serving threads.
    let err = clients[0].check(check("")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    stop.send(()).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("serve returns after shutdown (connections still open are drained)")
        .unwrap();
    assert!(served.is_ok(), "{served:?}");

    // Everything acknowledged is on disk.
    let reopened = Node::open(config(dir.path())).await.unwrap();
    for i in 0..6 {
        let id = format!("tok-{i}");
        assert!(reopened.engine().check(&CheckQuery::token(&id)).revoked(), "{id}");
    }
}

#[test]
fn serve_threads_beyond_the_limit_are_refused_with_the_key_named() {
    let mut c = Config {
        serve_threads: rescind_node::config::MAX_SERVE_THREADS + 1,
        ..Config::default()
    };
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("serve_threads"), "{err}");
    c.serve_threads = 0;
    assert!(c.effective_serve_threads() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_watch_streams_and_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, stop, server) = serve(dir.path()).await;
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = RevocationsClient::new(channel);
    client.revoke(with_admin(revoke("before"))).await.unwrap();
    let mut stream = client
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    // The hello, then a snapshot (the newest checkpoint: none yet, so
    // empty), then the revocation as an op from the log.
    let hello = stream.message().await.unwrap().unwrap();
    assert!(matches!(hello.event, Some(pb::watch_event::Event::Hello(_))));
    loop {
        match stream.message().await.unwrap().unwrap().event {
            Some(pb::watch_event::Event::Snapshot(p)) => {
                assert!(p.deny.is_empty(), "no checkpoint yet");
                if p.done {
                    break;
                }
            }
            other => panic!("a snapshot page was expected, got {other:?}"),
        }
    }
    let ops = loop {
        match stream.message().await.unwrap().unwrap().event {
            Some(pb::watch_event::Event::Ops(o)) => break o.ops,
            Some(pb::watch_event::Event::Heartbeat(_)) => {}
            other => panic!("ops were expected, got {other:?}"),
        }
    };
    assert_eq!(ops.len(), 1);
    stop.send(()).unwrap();
    let ended = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    assert!(
        matches!(&ended, Err(s) if s.code() == tonic::Code::Unavailable && s.message().contains("shutting down")),
        "{ended:?}"
    );
    let served = tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("serve returns after shutdown with a Watch stream open")
        .unwrap();
    assert!(served.is_ok(), "{served:?}");
}
