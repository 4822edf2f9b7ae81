//! Key sources changing under a running verifier: the JWKS file and the JWKS URL.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::path::Path;
use std::time::Duration;

use rescind_jwt::testing::{self, ED_PEM, ED2_JWK, ED2_PEM, JWKS, RSA_PEM, sign_with_fixture};
use rescind_jwt::{Algorithm, JwtConfig, Rejection, Verifier};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const NOW: u64 = 1_893_456_000;
const NOW_MS: u64 = NOW * 1000;

fn claims() -> Value {
    json!({"iss": "https://idp.test", "sub": "bob", "exp": NOW + 600})
}

fn jwks_with_ed2() -> Vec<u8> {
    let mut set: Value = serde_json::from_slice(&testing::read_fixture(JWKS)).unwrap();
    let ed2: Value = serde_json::from_slice(&testing::read_fixture(ED2_JWK)).unwrap();
    set["keys"].as_array_mut().unwrap().push(ed2);
    serde_json::to_vec_pretty(&set).unwrap()
}

fn file_verifier(path: &Path) -> Verifier {
    Verifier::new(&JwtConfig {
        jwks_file: Some(path.to_owned()),
        ..JwtConfig::default()
    })
    .unwrap()
}

#[test]
fn new_kid_in_file_is_used_after_reload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::copy(testing::fixture(JWKS), &path).unwrap();
    let v = file_verifier(&path);
    let ed2 = sign_with_fixture(Algorithm::EdDSA, "ed-2", ED2_PEM, &claims());
    assert_eq!(v.verify(&ed2, NOW_MS), Err(Rejection::UnknownKey));
    assert!(!v.reload_if_changed().unwrap(), "unchanged file");

    // Rewritten immediately: the mtime may not have moved, the content hash has.
    std::fs::write(&path, jwks_with_ed2()).unwrap();
    assert!(v.reload_if_changed().unwrap());
    assert_eq!(v.key_count(), 4);
    assert_eq!(v.verify(&ed2, NOW_MS).unwrap().key_id.as_deref(), Some("ed-2"));
    assert!(!v.reload_if_changed().unwrap());

    // Same length, different content (a kid renamed): still detected.
    let renamed = String::from_utf8(jwks_with_ed2())
        .unwrap()
        .replace("\"ed-2\"", "\"ed-3\"");
    assert_eq!(renamed.len(), jwks_with_ed2().len());
    std::fs::write(&path, renamed).unwrap();
    assert!(v.reload_if_changed().unwrap());
    assert_eq!(
        v.verify(&ed2, NOW_MS),
        Err(Rejection::UnknownKey),
        "cache cleared, old kid gone"
    );
}

#[test]
fn broken_file_keeps_current_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::copy(testing::fixture(JWKS), &path).unwrap();
    let v = file_verifier(&path);
    let token = sign_with_fixture(Algorithm::EdDSA, "ed-1", ED_PEM, &claims());
    assert!(v.verify(&token, NOW_MS).is_ok());
    std::fs::write(&path, b"{\"keys\": [").unwrap();
    assert_eq!(v.reload_if_changed().unwrap_err().field(), "jwks_file");
    std::fs::write(&path, b"{\"keys\": []}").unwrap();
    assert!(v.reload_if_changed().is_err(), "a keyless file is refused");
    std::fs::remove_file(&path).unwrap();
    assert!(v.reload_if_changed().is_err());
    assert_eq!(v.key_count(), 3);
    assert!(v.verify(&token, NOW_MS).is_ok());
}

/// Serves `body` with `status` to each connection (up to `max` of them), or, when `hang`, accepts
/// and never answers.
async fn serve(status: u16, body: Vec<u8>, hang: bool, max: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..max {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 4096];
            let _ = sock.read(&mut buf).await;
            if hang {
                held.push(sock);
                continue;
            }
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(&body).await;
            let _ = sock.shutdown().await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(held);
    });
    format!("http://{addr}/jwks.json")
}

fn url_verifier(url: String, timeout: Duration) -> Verifier {
    Verifier::new(&JwtConfig {
        jwks_url: Some(url),
        fetch_timeout: timeout,
        ..JwtConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn url_keys_arrive_on_refresh() {
    let url = serve(200, jwks_with_ed2(), false, 3).await;
    let v = url_verifier(url, Duration::from_secs(5));
    let token = sign_with_fixture(Algorithm::RS256, "rsa-1", RSA_PEM, &claims());
    assert_eq!(v.verify(&token, NOW_MS), Err(Rejection::NoKeys));
    assert_eq!(v.refresh_from_url().await.unwrap(), 4);
    assert!(v.verify(&token, NOW_MS).is_ok());
    assert_eq!(v.cached_tokens(), 1);
    // The same document again: keys and cache untouched.
    assert_eq!(v.refresh_from_url().await.unwrap(), 4);
    assert_eq!(v.cached_tokens(), 1);
}

#[tokio::test]
async fn url_errors_keep_keys() {
    let v = url_verifier(
        serve(500, b"oops".to_vec(), false, 1).await,
        Duration::from_secs(5),
    );
    let e = v.refresh_from_url().await.unwrap_err();
    assert_eq!(e.field(), "jwks_url");
    assert!(e.to_string().contains("500"), "{e}");
    assert_eq!(v.key_count(), 0);

    let v = url_verifier(
        serve(200, b"not json".to_vec(), false, 1).await,
        Duration::from_secs(5),
    );
    assert_eq!(v.refresh_from_url().await.unwrap_err().field(), "jwks_url");

    let v = url_verifier(serve(200, Vec::new(), true, 1).await, Duration::from_millis(300));
    let started = std::time::Instant::now();
    assert!(v.refresh_from_url().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(3), "timeout honoured");
}

#[tokio::test]
async fn background_task_loads_url_keys() {
    let url = serve(200, testing::read_fixture(JWKS), false, 10).await;
    let cfg = JwtConfig {
        jwks_url: Some(url),
        refresh_interval: Duration::from_millis(50),
        ..JwtConfig::default()
    };
    let v = Verifier::new(&cfg).unwrap();
    let task = v.spawn_refresh();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while v.key_count() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    assert_eq!(v.key_count(), 3);
}
