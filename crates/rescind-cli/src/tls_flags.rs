//! `rescind serve` flags of `[tls]` and `insecure_peers`; each overrides the
//! TOML config and has an env twin.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use rescind_node::Config;

use crate::timearg::parse_duration;

/// TLS flags.
#[derive(Args, Debug)]
pub struct TlsArgs {
    /// Certificate chain (PEM) served to clients on the gRPC and HTTP ports;
    /// reloaded when the file changes. Needs --tls-key. [default: plaintext]
    #[arg(long, env = "RESCIND_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "RESCIND_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// CA bundle (PEM) client certificates must chain to: set, every client
    /// needs a certificate.
    #[arg(long, env = "RESCIND_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
    /// Certificate chain (PEM) this node presents to peers, valid for its
    /// --node-name and the host peers dial it at. With --peer-tls-key and
    /// --peer-tls-ca: mutual TLS between peers.
    #[arg(long, env = "RESCIND_PEER_TLS_CERT")]
    peer_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --peer-tls-cert.
    #[arg(long, env = "RESCIND_PEER_TLS_KEY")]
    peer_tls_key: Option<PathBuf>,
    /// The cluster CA (PEM) peers' certificates must chain to.
    #[arg(long, env = "RESCIND_PEER_TLS_CA")]
    peer_tls_ca: Option<PathBuf>,
    /// How often the certificate files are checked for changes (DUR). [default: 5s]
    #[arg(long, env = "RESCIND_TLS_RELOAD_INTERVAL", value_parser = parse_duration)]
    tls_reload_interval: Option<Duration>,
    /// A connection still in its TLS handshake this long after it was
    /// accepted is closed (DUR). [default: 10s]
    #[arg(long, env = "RESCIND_TLS_HANDSHAKE_TIMEOUT", value_parser = parse_duration)]
    tls_handshake_timeout: Option<Duration>,
    /// Listen beyond loopback with peers but without peer mutual TLS (the
    /// cluster key alone guards peer traffic). Without it such a node refuses
    /// to start.
    #[arg(long, env = "RESCIND_INSECURE_PEERS")]
    insecure_peers: bool,
}

impl TlsArgs {
    /// Apply the flags given over `config`.
    pub fn apply(&self, config: &mut Config) {
        let t = &mut config.tls;
        for (flag, key) in [
            (&self.tls_cert, &mut t.cert),
            (&self.tls_key, &mut t.key),
            (&self.tls_client_ca, &mut t.client_ca),
            (&self.peer_tls_cert, &mut t.peer_cert),
            (&self.peer_tls_key, &mut t.peer_key),
            (&self.peer_tls_ca, &mut t.peer_ca),
        ] {
            if let Some(v) = flag {
                *key = Some(v.clone());
            }
        }
        if let Some(v) = self.tls_reload_interval {
            t.reload_interval = v;
        }
        if let Some(v) = self.tls_handshake_timeout {
            t.handshake_timeout = v;
        }
        if self.insecure_peers {
            config.insecure_peers = true;
        }
    }
}
