//! Gateway test kit: JWTs minted with the test-only fixture keys, a node
//! configured to verify them, an HTTP client, a test upstream and nginx.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rescind_jwt::Algorithm;
use rescind_jwt::testing::{self, EC_PEM, ED_PEM, JWKS, RSA_PEM};
use serde_json::{Value, json};

use crate::NodeProc;

/// The issuer every test token names.
pub const ISSUER: &str = "https://idp.test";
/// The audience the node requires.
pub const AUDIENCE: &str = "api";
/// An OAuth client of the node's clients file.
pub const CLIENT_ID: &str = "gateway-1";
/// Its secret.
pub const CLIENT_SECRET: &str = "s3cret-s3cret-s3cret";

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    testing::now_secs()
}

/// Claims of a valid token for `sub` with id `jti`, valid for an hour.
pub fn claims(sub: &str, jti: &str) -> Value {
    let now = now_secs();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "jti": jti, "iat": now - 10, "exp": now + 3600,
           "client_id": CLIENT_ID, "scope": "read"})
}

/// An ES256 token of `claims` (kid `ec-1`).
pub fn es256(claims: &Value) -> String {
    testing::sign_with_fixture(Algorithm::ES256, "ec-1", EC_PEM, claims)
}

/// An RS256 token (kid `rsa-1`).
pub fn rs256(claims: &Value) -> String {
    testing::sign_with_fixture(Algorithm::RS256, "rsa-1", RSA_PEM, claims)
}

/// An EdDSA token (kid `ed-1`).
pub fn eddsa(claims: &Value) -> String {
    testing::sign_with_fixture(Algorithm::EdDSA, "ed-1", ED_PEM, claims)
}

/// Copy the fixture JWKS into `dir` (so a test can add keys to it).
pub fn jwks_copy(dir: &Path) -> PathBuf {
    let path = dir.join("jwks.json");
    std::fs::write(&path, testing::read_fixture(JWKS)).unwrap();
    path
}

/// A node verifying the fixture keys: issuer [`ISSUER`], audience
/// [`AUDIENCE`], the JWKS re-read every 100 ms, one OAuth client, a token
/// hash key, opaque tokens accepted; `extra` flags after these.
pub fn gateway_node(dir: &Path, extra: &[&str]) -> NodeProc {
    std::fs::create_dir_all(dir).unwrap();
    let jwks = jwks_copy(dir);
    let clients = dir.join("clients");
    std::fs::write(&clients, format!("{CLIENT_ID}:{CLIENT_SECRET}\n")).unwrap();
    let key = dir.join("token-hash.key");
    std::fs::write(&key, "7".repeat(64)).unwrap();
    let data = dir.join("data");
    let (jwks, clients, key) = (
        jwks.display().to_string(),
        clients.display().to_string(),
        key.display().to_string(),
    );
    let mut args = vec![
        "--jwks-file",
        &jwks,
        "--jwt-issuer",
        ISSUER,
        "--jwt-audience",
        AUDIENCE,
        "--jwt-refresh-interval",
        "100ms",
        "--oauth-clients-file",
        &clients,
        "--token-hash-key-file",
        &key,
        "--opaque-tokens",
        "true",
    ];
    args.extend_from_slice(extra);
    NodeProc::start(&data, &args)
}

/// An HTTP client (rustls with ring; plain HTTP in tests).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The base URL of a node's HTTP API.
pub fn base(node: &NodeProc) -> String {
    format!("http://{}", node.http.expect("the node serves HTTP"))
}

/// A test upstream on 127.0.0.1 port 0: answers 200 with the identity
/// headers it received, and counts requests.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Requests served.
    pub hits: Arc<AtomicU64>,
}

impl Upstream {
    /// Start it on the current runtime.
    pub async fn start() -> Upstream {
        let hits = Arc::new(AtomicU64::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let get = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                format!(
                    "upstream subject={} staleness={}",
                    get("x-rescind-subject"),
                    get("x-rescind-staleness-ms")
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Upstream { addr, hits }
    }
}

/// A free loopback port (for nginx, which cannot report a port 0 bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx in the foreground with a generated config, killed on drop.
pub struct Nginx {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx on a free port: `/` behind `auth_request` to `authz` (a node's
    /// HTTP address), `/stale/` behind `stale_authz`, both proxied to `upstream`.
    pub fn start(upstream: SocketAddr, authz: SocketAddr, stale_authz: SocketAddr) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for t in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(p.join("tmp").join(t)).unwrap();
        }
        let port = free_port();
        let tmp = p.join("tmp").display().to_string();
        let conf = format!(
            r#"worker_processes 1;
daemon off;
pid {pid};
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  upstream app {{ server {upstream}; keepalive 16; }}
  upstream rescind {{ server {authz}; keepalive 16; }}
  upstream rescind_stale {{ server {stale_authz}; keepalive 16; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      auth_request /_authz;
      auth_request_set $rescind_sub $upstream_http_x_rescind_subject;
      auth_request_set $rescind_staleness $upstream_http_x_rescind_staleness_ms;
      proxy_set_header X-Rescind-Subject $rescind_sub;
      proxy_set_header X-Rescind-Staleness-Ms $rescind_staleness;
      proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_pass http://app;
    }}
    location /stale/ {{
      auth_request /_authz_stale;
      proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_pass http://app;
    }}
    location = /_authz {{
      internal;
      proxy_pass http://rescind/v1/authz;
      proxy_pass_request_body off; proxy_set_header Content-Length "";
      proxy_http_version 1.1; proxy_set_header Connection "";
    }}
    location = /_authz_stale {{
      internal;
      proxy_pass http://rescind_stale/v1/authz?on_stale=closed;
      proxy_pass_request_body off; proxy_set_header Content-Length "";
      proxy_http_version 1.1; proxy_set_header Connection "";
    }}
  }}
}}
"#,
            pid = p.join("nginx.pid").display()
        );
        let conf_path = p.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(nginx_bin())
            .arg("-p")
            .arg(p)
            .args(["-e", "stderr", "-c"])
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx (installed by .ci/run: nginx-light)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    /// SIGTERM to the master (a SIGKILL would orphan its workers), then
    /// SIGKILL if it has not exited within 10 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The nginx binary: `$NGINX`, else `nginx` on PATH, else /usr/sbin/nginx.
pub fn nginx_bin() -> PathBuf {
    if let Ok(p) = std::env::var("NGINX") {
        return p.into();
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("nginx");
        if p.exists() {
            return p;
        }
    }
    "/usr/sbin/nginx".into()
}
