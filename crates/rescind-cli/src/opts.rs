//! Options every client command takes, the [`Client`] they make, and the
//! shared bits of output.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use clap::Args;
use rescind_client::{Client, ClientConfig, ClientError};
use serde_json::json;

use crate::timearg::parse_duration;

/// Options every client command takes (also after a subcommand).
#[derive(Args, Debug, Clone)]
pub struct ClientOpts {
    /// Node address(es), host:port; a comma-separated list lets the client
    /// pick the nearest and fail over.
    #[arg(long, env = "RESCIND_ADDR", default_value = "127.0.0.1:7400", global = true)]
    pub addr: String,
    /// Bearer token: the admin token for `revoke` and `peers remove`, the
    /// check token for reads on a node that requires one. Default: the first
    /// line of <data-dir>/admin.token.
    #[arg(long, env = "RESCIND_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Where to find admin.token when --token and RESCIND_TOKEN are not given.
    #[arg(
        long,
        env = "RESCIND_DATA_DIR",
        default_value = "./rescind-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Give up after this long (DUR), retries on other nodes included.
    #[arg(long, default_value = "5s", value_parser = parse_duration, global = true)]
    pub timeout: Duration,
}

impl ClientOpts {
    /// The bearer token, if any.
    pub fn token(&self) -> Option<String> {
        rescind_node::auth::token_or_file(self.token.as_deref(), &self.data_dir)
            .ok()
            .filter(|t| !t.is_empty())
    }

    /// Writes need the admin token: a clear error when none can be found.
    pub fn require_admin_token(&self) -> anyhow::Result<()> {
        match self.token() {
            Some(_) => Ok(()),
            None => Err(anyhow!(
                "revoke needs the admin token: pass --token, set RESCIND_TOKEN, or run where {}/admin.token is readable",
                self.data_dir.display()
            )),
        }
    }

    /// A client for `--addr`; with several addresses it measures each first.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let mut config = ClientConfig::from_list(&self.addr).timeout(self.timeout);
        config.attempt_timeout = self.timeout;
        config.connect_timeout = self.timeout;
        config.token = self.token();
        let several = config.endpoints.len() > 1;
        let client = Client::new(config).map_err(|e| anyhow!("--addr {}: {e}", self.addr))?;
        if several {
            client.probe().await;
        }
        Ok(client)
    }

    /// A client error for people: one line naming the node.
    pub fn error(&self, e: ClientError) -> anyhow::Error {
        match e {
            ClientError::Unreachable { attempts, .. } => anyhow!("cannot reach rescind node at {attempts}"),
            other => anyhow!("{other}"),
        }
    }
}

/// Staleness for people: `u64::MAX` means the node has not yet heard of every peer.
pub fn staleness_text(ms: u64) -> String {
    if ms == u64::MAX {
        "unknown (not yet heard from every peer)".into()
    } else {
        format!("{ms} ms")
    }
}

/// Staleness for JSON: null when unknown.
pub fn staleness_json(ms: u64) -> serde_json::Value {
    if ms == u64::MAX {
        serde_json::Value::Null
    } else {
        json!(ms)
    }
}

/// The wall clock, unix ms.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
