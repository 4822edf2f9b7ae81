//! A `rescind edge` process following some nodes.

use std::net::SocketAddr;
use std::process::{Child, Command};

use rescind_proto::v1 as pb;
use rescind_proto::v1::revocations_client::RevocationsClient;
use tonic::transport::Channel;

use crate::{rescind_bin, spawn_listening};

/// A running `rescind edge`.
pub struct EdgeProc {
    child: Child,
    /// Where it serves.
    pub addr: SocketAddr,
}

impl EdgeProc {
    /// Start an edge on 127.0.0.1 port 0 following `upstreams`, with extra flags.
    pub fn start(upstreams: &[SocketAddr], extra: &[&str]) -> EdgeProc {
        let list: Vec<String> = upstreams.iter().map(ToString::to_string).collect();
        let mut command = Command::new(rescind_bin());
        command
            .args(["edge", "--listen", "127.0.0.1:0", "--log", "warn"])
            .arg("--upstream")
            .arg(list.join(","))
            .args(extra)
            .env_remove("RESCIND_UPSTREAMS")
            .env_remove("RESCIND_CHECK_TOKEN");
        let (child, addr, _) = spawn_listening(command, "rescind edge listening on ");
        EdgeProc { child, addr }
    }

    /// SIGTERM the edge and wait (at most 30 s) for its clean exit.
    pub fn terminate(&mut self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -TERM failed");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "rescind edge exited with {status} on SIGTERM");
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no exit within 30 s of SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// A gRPC client to the edge.
    pub async fn client(&self) -> RevocationsClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .expect("url")
            .connect()
            .await
            .expect("connect to edge");
        RevocationsClient::new(channel)
    }

    /// The edge's status.
    pub async fn status(&self) -> pb::StatusResponse {
        self.client()
            .await
            .status(pb::StatusRequest {})
            .await
            .expect("edge status")
            .into_inner()
    }
}

impl Drop for EdgeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
