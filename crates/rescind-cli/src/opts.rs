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
    /// Dial the nodes over TLS, trusting this CA bundle (PEM).
    #[arg(long, env = "RESCIND_TLS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate chain (PEM) for nodes that require one (`tls.client_ca`).
    #[arg(long, env = "RESCIND_CLIENT_CERT", global = true, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Private key of --client-cert (PEM).
    #[arg(long, env = "RESCIND_CLIENT_KEY", global = true, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Name the nodes' certificates must be valid for. [default: each address's host]
    #[arg(long, env = "RESCIND_TLS_SERVER_NAME", global = true)]
    pub tls_server_name: Option<String>,
}

fn read_pem(flag: &str, path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow!("{flag} {}: {e}", path.display()))
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
        if let Some(ca) = &self.tls_ca {
            let identity = match (&self.client_cert, &self.client_key) {
                (Some(c), Some(k)) => Some((read_pem("--client-cert", c)?, read_pem("--client-key", k)?)),
                _ => None,
            };
            let tls = rescind_client::ClientTls {
                ca_pem: read_pem("--tls-ca", ca)?,
                identity,
                server_name: self.tls_server_name.clone(),
            };
            config.connector = Some(rescind_client::tls_connector(self.timeout, tls));
        } else if self.client_cert.is_some() {
            return Err(anyhow!(
                "--client-cert needs --tls-ca (the CA the node's certificate chains to)"
            ));
        }
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
            ClientError::Unreachable { attempts, .. } => {
                anyhow!(
                    "cannot reach rescind node at {attempts}{}",
                    tls_hint(&attempts, self.tls_ca.is_some())
                )
            }
            other => {
                let text = other.to_string();
                anyhow!("{text}{}", tls_hint(&text, self.tls_ca.is_some()))
            }
        }
    }
}

/// A hint for the TLS failures people meet first.
fn tls_hint(attempts: &str, tls: bool) -> &'static str {
    let lower = attempts.to_ascii_lowercase();
    if !tls && (lower.contains("permissiondenied: h2 protocol error") || lower.contains("requires tls")) {
        "\nhint: the node requires TLS (it refused a plaintext connection): pass --tls-ca with the CA \
         its certificate chains to"
    } else if tls && (lower.contains("unknownissuer") || lower.contains("invalid peer certificate")) {
        "\nhint: the node's certificate does not chain to --tls-ca, or is not valid for the address \
         (see --tls-server-name)"
    } else if tls && lower.contains("certificate required") {
        "\nhint: the node requires a client certificate: pass --client-cert and --client-key"
    } else if tls && (lower.contains("corrupt message") || lower.contains("invalidcontenttype")) {
        "\nhint: the node does not speak TLS on this port: drop --tls-ca"
    } else {
        ""
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
