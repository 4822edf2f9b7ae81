//! TLS and mutual TLS with real processes: peers with certificates from the
//! cluster CA converge; a peer certificate from another CA, an expired one
//! and one for another node name are refused; certificates rotate under
//! load without a restart; plaintext and untrusting clients get clear
//! errors; nodes of two clusters refuse each other by cluster id.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rescind_proto::v1 as pb;
use rescind_proto::v1::revocations_client::RevocationsClient;
use rescind_tests::certs::{Ca, Pem};
use rescind_tests::cluster::eventually;
use rescind_tests::{NodeProc, rescind_bin, revoke_token, with_bearer};
use tokio_rustls::rustls;
use tonic::transport::Channel;

const KEY: &str = "tls-test-cluster-key-0123";

/// Peer TLS flags (and, with `client`, client-API TLS with the same cert).
fn tls_flags(ca: &Path, cert: &(PathBuf, PathBuf), client: bool) -> Vec<String> {
    let mut v = vec![
        "--peer-tls-cert".into(),
        cert.0.display().to_string(),
        "--peer-tls-key".into(),
        cert.1.display().to_string(),
        "--peer-tls-ca".into(),
        ca.display().to_string(),
    ];
    if client {
        v.extend([
            "--tls-cert".into(),
            cert.0.display().to_string(),
            "--tls-key".into(),
            cert.1.display().to_string(),
        ]);
    }
    v
}

fn start(dir: &Path, name: &str, extra: &[String], log: &Path) -> NodeProc {
    let mut args: Vec<String> = vec![
        "--node-name".into(),
        name.into(),
        "--cluster-key".into(),
        KEY.into(),
        "--gossip-interval".into(),
        "100ms".into(),
    ];
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    NodeProc::start_logging(dir, &args, Some(log))
}

async fn tls_client(node: &NodeProc, ca_pem: &str) -> RevocationsClient<Channel> {
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem));
    let channel = Channel::from_shared(format!("https://{}", node.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .expect("TLS connect");
    RevocationsClient::new(channel)
}

async fn revoked(client: &mut RevocationsClient<Channel>, id: &str) -> bool {
    let req = pb::CheckRequest {
        token_id: Some(id.into()),
        ..Default::default()
    };
    client
        .check(req)
        .await
        .map(|r| r.into_inner().revoked)
        .unwrap_or(false)
}

fn log_has(log: &Path, needle: &str) -> bool {
    std::fs::read_to_string(log).unwrap_or_default().contains(needle)
}

async fn wait_log(log: &Path, needle: &str) {
    eventually(
        &format!("`{needle}` in {}", log.display()),
        Duration::from_secs(30),
        || {
            let found = log_has(log, needle).then_some(());
            async move { found }
        },
    )
    .await;
}

/// The leaf certificate `node` serves: to clients, or (`peer`, presenting
/// `identity`) to peers.
async fn served_cert(node: &NodeProc, ca_pem: &str, peer: Option<&Pem>) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match peer {
        Some(identity) => {
            let certs = rustls::pki_types::CertificateDer::pem_slice_iter(identity.cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(identity.key.as_bytes()).unwrap();
            let mut c = builder.with_client_auth_cert(certs, key).unwrap();
            c.alpn_protocols = vec![b"rescind-peer/1".to_vec()];
            c
        }
        None => {
            let mut c = builder.with_no_client_auth();
            c.alpn_protocols = vec![b"h2".to_vec()];
            c
        }
    };
    let tcp = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn pem_der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

async fn members(client: &mut RevocationsClient<Channel>, admin: &str) -> Vec<String> {
    let peers = client
        .list_peers(with_bearer(pb::ListPeersRequest {}, admin))
        .await
        .expect("list peers")
        .into_inner();
    let mut names: Vec<String> = peers.peers.into_iter().map(|p| p.name).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_peers_converge_and_rogue_certificates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("rescind cluster CA");
    let other = Ca::new("some other CA");
    let ca_path = ca.write(d, "ca.pem");
    let cert_a = ca.issue(&["node-a", "127.0.0.1"], false).write(d, "a");
    let cert_b = ca.issue(&["node-b", "127.0.0.1"], false).write(d, "b");
    let (log_a, log_b) = (d.join("a.log"), d.join("b.log"));
    let a = start(
        &d.join("a"),
        "node-a",
        &tls_flags(&ca_path, &cert_a, true),
        &log_a,
    );
    let seed = vec!["--peer".to_string(), a.addr.to_string()];
    let b = start(
        &d.join("b"),
        "node-b",
        &[tls_flags(&ca_path, &cert_b, true), seed.clone()].concat(),
        &log_b,
    );

    // Valid certificates: a revoke on A reaches B.
    let mut on_a = tls_client(&a, &ca.pem()).await;
    on_a.revoke(a.admin(revoke_token("leaked-over-mtls")))
        .await
        .expect("revoke over TLS");
    let mut on_b = tls_client(&b, &ca.pem()).await;
    eventually("B to hold the revocation", Duration::from_secs(30), || {
        let mut c = on_b.clone();
        async move { revoked(&mut c, "leaked-over-mtls").await.then_some(()) }
    })
    .await;

    // Three rogue peers, each seeded with A and trusting the cluster CA:
    // C's certificate comes from another CA, D's expired yesterday, and E's
    // is valid but names another node.
    let rogue = [
        ("node-c", other.issue(&["node-c", "127.0.0.1"], false)),
        ("node-d", ca.issue(&["node-d", "127.0.0.1"], true)),
        ("node-e", ca.issue(&["node-x", "127.0.0.1"], false)),
    ];
    let mut rogues = Vec::new();
    for (name, pem) in &rogue {
        let cert = pem.write(d, name);
        let log = d.join(format!("{name}.log"));
        let node = start(
            &d.join(name),
            name,
            &[tls_flags(&ca_path, &cert, false), seed.clone()].concat(),
            &log,
        );
        rogues.push((node, log));
    }
    for (_, log) in &rogues {
        wait_log(log, "gossip round failed").await;
    }
    // E passed the handshake; A names why it refused.
    wait_log(
        &rogues[2].1,
        "the peer certificate is not valid for node `node-e`",
    )
    .await;
    wait_log(
        &log_a,
        "refused a peer whose certificate does not name the node it claims to be",
    )
    .await;
    // C and D never got past the handshake: A's TLS refused their certificates.
    wait_log(&log_a, "UnknownIssuer").await;
    wait_log(&log_a, "expired").await;
    // None of them joined: A knows B only, and B knows A only.
    let admin_a = a.admin_token();
    assert_eq!(members(&mut on_a, &admin_a).await, ["node-b"]);
    assert_eq!(members(&mut on_b, &b.admin_token()).await, ["node-a"]);
    // The cluster still works.
    on_a.revoke(a.admin(revoke_token("after-the-rogues")))
        .await
        .unwrap();
    eventually("B to hold the second revocation", Duration::from_secs(30), || {
        let mut c = on_b.clone();
        async move { revoked(&mut c, "after-the-rogues").await.then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_under_load_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("rescind cluster CA");
    let ca_path = ca.write(d, "ca.pem");
    let first_a = ca.issue(&["node-a", "127.0.0.1"], false);
    let cert_a = first_a.write(d, "a");
    let cert_b = ca.issue(&["node-b", "127.0.0.1"], false).write(d, "b");
    let reload = vec!["--tls-reload-interval".to_string(), "200ms".to_string()];
    let a = start(
        &d.join("a"),
        "node-a",
        &[tls_flags(&ca_path, &cert_a, true), reload.clone()].concat(),
        &d.join("a.log"),
    );
    let b = start(
        &d.join("b"),
        "node-b",
        &[
            tls_flags(&ca_path, &cert_b, true),
            reload,
            vec!["--peer".into(), a.addr.to_string()],
        ]
        .concat(),
        &d.join("b.log"),
    );
    assert_eq!(served_cert(&a, &ca.pem(), None).await, pem_der(&first_a.cert));
    let probe_identity = ca.issue(&["probe", "127.0.0.1"], false);

    // Revokes through the CLI (a new connection each) before, during and
    // after the rotation; every one must succeed.
    let ca_arg = ca_path.display().to_string();
    let revoke = |i: usize| {
        let out = a.cli(&["revoke", "token", &format!("rotating-{i}"), "--tls-ca", &ca_arg]);
        assert!(
            out.status.success(),
            "revoke {i} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for i in 0..10 {
        revoke(i);
    }
    let second_a = ca.issue(&["node-a", "127.0.0.1"], false);
    second_a.write(d, "a");
    let mut i = 10;
    let new_der = pem_der(&second_a.cert);
    loop {
        revoke(i);
        i += 1;
        let client_side = served_cert(&a, &ca.pem(), None).await == new_der;
        let peer_side = served_cert(&a, &ca.pem(), Some(&probe_identity)).await == new_der;
        if client_side && peer_side {
            break;
        }
        assert!(i < 400, "the new certificate was not served after {i} revokes");
    }
    for j in i..i + 10 {
        revoke(j);
    }
    let total = i + 10;
    // B got every one of them from A.
    let on_b = tls_client(&b, &ca.pem()).await;
    for j in 0..total {
        let id = format!("rotating-{j}");
        eventually(&format!("B to hold {id}"), Duration::from_secs(30), || {
            let (mut c, id) = (on_b.clone(), id.clone());
            async move { revoked(&mut c, &id).await.then_some(()) }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_and_untrusting_clients_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("rescind CA");
    let other = Ca::new("not the node's CA");
    let other_path = other.write(d, "other.pem");
    let ca_path = ca.write(d, "ca.pem");
    let (cert, key) = ca.issue(&["localhost", "127.0.0.1"], false).write(d, "node");
    let node = NodeProc::start(
        &d.join("data"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let stderr = |out: std::process::Output| {
        assert!(!out.status.success(), "expected a failure");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let plain = stderr(node.cli(&["status", "--timeout", "3s"]));
    assert!(plain.contains("requires TLS"), "{plain}");
    let untrusting = stderr(node.cli(&[
        "status",
        "--timeout",
        "3s",
        "--tls-ca",
        other_path.to_str().unwrap(),
    ]));
    assert!(untrusting.contains("does not chain to --tls-ca"), "{untrusting}");
    let ok = node.cli(&["status", "--tls-ca", ca_path.to_str().unwrap()]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    // HTTP: plain HTTP to the TLS port is answered 400 saying so.
    let http = node.http.unwrap();
    let r = rescind_tests::gateway::http()
        .get(format!("http://{http}/healthz"))
        .send()
        .await
        .expect("plain HTTP answered");
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("requires TLS"));
    // And HTTPS with the CA works.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(pem_der(&ca.pem())))
        .unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap();
    let r = https
        .get(format!("https://127.0.0.1:{}/healthz", http.port()))
        .send()
        .await
        .expect("HTTPS");
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_of_two_clusters_refuse_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (log_a, log_b) = (d.join("a.log"), d.join("b.log"));
    let a = start(
        &d.join("a"),
        "prod-1",
        &["--cluster-id".into(), "prod".into()],
        &log_a,
    );
    let _b = start(
        &d.join("b"),
        "staging-1",
        &[
            "--cluster-id".into(),
            "staging".into(),
            "--peer".into(),
            a.addr.to_string(),
        ],
        &log_b,
    );
    wait_log(
        &log_b,
        "this node belongs to cluster `prod`, the caller to `staging`",
    )
    .await;
    wait_log(&log_a, "refused a peer of another cluster").await;
    let status = a.status().await;
    assert_eq!(status.node_id.split('#').next(), Some("prod-1"));
    let mut client = a.client().await;
    assert!(members(&mut client, &a.admin_token()).await.is_empty());
}

#[test]
fn a_node_beyond_loopback_without_peer_mtls_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin.token");
    std::fs::write(&token, "an-admin-token-of-enough-length-0123456789").unwrap();
    let out = Command::new(rescind_bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--http-listen", "off"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--admin-token-file")
        .arg(&token)
        .args(["--cluster-key", KEY, "--advertise-addr", "10.0.0.1:7400"])
        .env_remove("RESCIND_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without peer mutual TLS") && err.contains("--insecure-peers"),
        "{err}"
    );
}
