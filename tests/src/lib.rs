//! # rescind-tests
//!
//! Black-box integration tests: they start the real `rescind` binary on
//! 127.0.0.1 port 0 with a temporary data dir and talk to it over gRPC or
//! through the CLI, exactly as a user would.
//!
//! ## Layout
//! - [`NodeProc`]: one `rescind serve` process (start, kill -9, restart).
//! - [`rescind_bin`]: where the binary is (built by `cargo test` before any test runs).
//! - [`cluster`]: several nodes in several regions on loopback.
//! - [`certs`]: a CA and node certificates, made at run time.
//! - [`edge`]: a `rescind edge` process.
//! - [`gateway`]: JWTs from the test-only fixture keys, an HTTP client, a test upstream, nginx.
//! - `tests/*.rs`: the acceptance tests.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub mod certs;
pub mod cluster;
pub mod edge;
pub mod gateway;

use rescind_proto::v1::revocations_client::RevocationsClient;
use tonic::transport::Channel;

/// How long a node may take to start before a test fails.
pub const START_DEADLINE: Duration = Duration::from_secs(60);

/// The `rescind` binary: `$RESCIND_BIN`, else next to this test's own executable
/// (`target/<profile>/rescind`).
pub fn rescind_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RESCIND_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join(format!("rescind{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the suite with `cargo test --workspace` (which builds it) or set RESCIND_BIN",
        bin.display()
    );
    bin
}

/// Spawn `command` (stdout piped), wait for its line starting with `prefix`
/// followed by the address it listens on; returns the child, that address
/// and the line.
pub fn spawn_listening(mut command: Command, prefix: &str) -> (Child, SocketAddr, String) {
    let mut child = command.stdout(Stdio::piped()).spawn().expect("spawn rescind");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let banner = loop {
        match rx.recv_timeout(START_DEADLINE) {
            Ok(line) if line.starts_with(prefix) => break line,
            Ok(_) => continue,
            Err(e) => {
                let _ = child.kill();
                panic!("rescind did not print `{prefix}` within {START_DEADLINE:?}: {e}");
            }
        }
    };
    let addr = banner
        .trim_start_matches(prefix)
        .split_whitespace()
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unparsable banner: {banner}"));
    (child, addr, banner)
}

/// A running `rescind serve`.
pub struct NodeProc {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where its HTTP API listens (None: `--http-listen off`).
    pub http: Option<SocketAddr>,
    /// Its data dir.
    pub data_dir: PathBuf,
    /// The line it printed on start.
    pub banner: String,
}

impl NodeProc {
    /// Start a node on `data_dir` (port 0, loopback) with extra `serve` flags,
    /// and wait for its "listening" line.
    pub fn start(data_dir: &Path, extra: &[&str]) -> NodeProc {
        Self::start_logging(data_dir, extra, None)
    }

    /// [`NodeProc::start`] with its stderr (the logs) written to `log`.
    pub fn start_logging(data_dir: &Path, extra: &[&str], log: Option<&Path>) -> NodeProc {
        let mut command = Command::new(rescind_bin());
        if let Some(path) = log {
            command.stderr(std::fs::File::create(path).expect("create the log file"));
        }
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra);
        if !extra.contains(&"--log") {
            command.args(["--log", "warn"]);
        }
        if !extra.contains(&"--http-listen") {
            command.args(["--http-listen", "127.0.0.1:0"]);
        }
        command
            .env_remove("RESCIND_ADMIN_TOKEN")
            .env_remove("RESCIND_CONFIG");
        let (child, addr, banner) = spawn_listening(command, "rescind listening on ");
        let http = banner
            .split("(http ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .and_then(|a| a.parse().ok());
        NodeProc {
            child,
            addr,
            http,
            data_dir: data_dir.to_owned(),
            banner,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL the process and reap it: no shutdown code runs.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    /// SIGTERM the process and wait (at most 30 s) for its clean exit.
    pub fn terminate(&mut self) {
        self.signal("TERM");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "rescind serve exited with {status} on SIGTERM");
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no exit within 30 s of SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Send a signal by name (`STOP`, `CONT`, ...).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// The generated admin token.
    pub fn admin_token(&self) -> String {
        let text = std::fs::read_to_string(self.data_dir.join("admin.token")).expect("admin.token");
        text.trim().to_owned()
    }

    /// A gRPC client to this node.
    pub async fn client(&self) -> RevocationsClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .expect("url")
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .connect()
            .await
            .expect("connect to node");
        RevocationsClient::new(channel)
    }

    /// This node's status.
    pub async fn status(&self) -> rescind_proto::v1::StatusResponse {
        let request = rescind_proto::v1::StatusRequest {};
        self.client()
            .await
            .status(request)
            .await
            .expect("status")
            .into_inner()
    }

    /// A request carrying the admin token.
    pub fn admin<T>(&self, message: T) -> tonic::Request<T> {
        with_bearer(message, &self.admin_token())
    }

    /// Run the `rescind` CLI against this node (`--addr` added; the admin
    /// token found through `RESCIND_DATA_DIR`).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(rescind_bin())
            .args(args)
            .arg("--addr")
            .arg(self.addr.to_string())
            .env("RESCIND_DATA_DIR", &self.data_dir)
            .env_remove("RESCIND_TOKEN")
            .output()
            .expect("run rescind CLI")
    }

    /// Run the CLI with `--json`, require success, parse stdout.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "rescind {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "rescind {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request revoking one token id (never expiring).
pub fn revoke_token(id: &str) -> rescind_proto::v1::RevokeRequest {
    use rescind_proto::v1 as pb;
    pb::RevokeRequest {
        target: Some(pb::revoke_request::Target::Token(pb::TokenRevocation {
            token_id: id.into(),
            expires_at_ms: 0,
            issuer: String::new(),
        })),
        reason: "test".into(),
        actor: "tests".into(),
    }
}

/// A request with `authorization: Bearer <token>`.
pub fn with_bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header value"),
    );
    req
}
