//! TLS for the client API (gRPC and HTTP) and mutual TLS between peers,
//! with rustls (ring) and certificates reloaded from their files.
//!
//! ## Layout
//! - `mod.rs`: [`TlsConfig`] (the `[tls]` section), loading PEM files into
//!   rustls configs, and [`Tls`], the reloadable set a node serves and dials
//!   with.
//! - [`accept`]: one accepted TCP connection to a served stream: a plaintext
//!   client on a TLS port is told so; a TLS client hello picks the client or
//!   the peer config by ALPN.
//! - [`dial`]: the connector peers dial each other with.
//! - [`names`]: whether a certificate names a node.
//!
//! One gRPC port serves clients and peers. A peer dials with the ALPN
//! protocol [`PEER_ALPN`] and presents its peer certificate; the node then
//! answers with its peer certificate and requires a client certificate from
//! the peer CA. Any other client hello gets the client-API certificate.

pub mod accept;
pub mod dial;
pub mod names;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use serde::Deserialize;

/// ALPN protocol a peer offers, so the node serves it the peer configuration.
pub const PEER_ALPN: &[u8] = b"rescind-peer/1";

/// The `[tls]` section. Every path is a PEM file; all unset means plaintext.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain served to clients on the gRPC and HTTP ports.
    pub cert: Option<PathBuf>,
    /// Private key of `cert`.
    pub key: Option<PathBuf>,
    /// CA bundle client certificates must chain to; set, clients need one.
    pub client_ca: Option<PathBuf>,
    /// Certificate chain a node presents to peers (as server and as client);
    /// it must name the node (`node_name` as a DNS SAN) and the host peers
    /// dial it at.
    pub peer_cert: Option<PathBuf>,
    /// Private key of `peer_cert`.
    pub peer_key: Option<PathBuf>,
    /// The cluster CA: peers' certificates must chain to it.
    pub peer_ca: Option<PathBuf>,
    /// How often the files are checked for changes (a change is loaded
    /// without a restart). Default 5 s.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// A connection that has not finished its TLS handshake this long after
    /// it was accepted is closed. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: None,
            key: None,
            client_ca: None,
            peer_cert: None,
            peer_key: None,
            peer_ca: None,
            reload_interval: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Why TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A setting is missing its pair, or out of range.
    #[error("tls: {0}")]
    Config(String),
    /// A file could not be read or holds no usable PEM.
    #[error("tls.{key} {path}: {reason}")]
    File {
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the material (a key that does not match its certificate, ...).
    #[error("tls.{key}: {source}")]
    Rustls {
        /// The config key it concerns.
        key: &'static str,
        /// rustls' error.
        source: rustls::Error,
    },
}

impl TlsConfig {
    /// Client-API TLS is on (`cert` and `key` set).
    pub fn client_tls(&self) -> bool {
        self.cert.is_some()
    }

    /// Peer mTLS is on (`peer_cert`, `peer_key` and `peer_ca` set).
    pub fn peer_tls(&self) -> bool {
        self.peer_cert.is_some()
    }

    /// Settings come in complete sets, and durations are in range.
    pub fn validate(&self) -> Result<(), TlsError> {
        if self.cert.is_some() != self.key.is_some() {
            return Err(TlsError::Config(
                "cert and key go together: set both or neither".into(),
            ));
        }
        if self.client_ca.is_some() && self.cert.is_none() {
            return Err(TlsError::Config(
                "client_ca needs cert and key (client TLS)".into(),
            ));
        }
        let peer = [&self.peer_cert, &self.peer_key, &self.peer_ca];
        if peer.iter().any(|p| p.is_some()) && !peer.iter().all(|p| p.is_some()) {
            return Err(TlsError::Config(
                "peer_cert, peer_key and peer_ca go together: set all three or none".into(),
            ));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&self.reload_interval) {
            return Err(TlsError::Config("reload_interval must be 100ms..=1h".into()));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(300)).contains(&self.handshake_timeout) {
            return Err(TlsError::Config("handshake_timeout must be 100ms..=300s".into()));
        }
        Ok(())
    }

    fn files(&self) -> Vec<&Path> {
        [
            &self.cert,
            &self.key,
            &self.client_ca,
            &self.peer_cert,
            &self.peer_key,
            &self.peer_ca,
        ]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect()
    }
}

/// The node-level rules: `tls` is complete; client TLS with peers needs
/// peer TLS (peers dial the same port); a node with a cluster that listens
/// beyond loopback needs peer mTLS unless `insecure_peers`.
pub fn check_exposure(
    tls: &TlsConfig,
    listen: std::net::SocketAddr,
    cluster: bool,
    insecure_peers: bool,
) -> Result<(), TlsError> {
    tls.validate()?;
    if !cluster {
        return Ok(());
    }
    if tls.client_tls() && !tls.peer_tls() {
        return Err(TlsError::Config(
            "cert is set but peer TLS is not, and peers dial the same port: set peer_cert, peer_key \
             and peer_ca (--peer-tls-cert, --peer-tls-key, --peer-tls-ca) too"
                .into(),
        ));
    }
    if !listen.ip().is_loopback() && !tls.peer_tls() && !insecure_peers {
        return Err(TlsError::Config(format!(
            "listening on {listen} (beyond loopback) with peers but without peer mutual TLS: set \
             --peer-tls-cert, --peer-tls-key and --peer-tls-ca, or pass --insecure-peers to rely on the \
             cluster key alone"
        )));
    }
    Ok(())
}

/// The rustls configs built from one reading of the files.
pub struct Loaded {
    /// Served to clients (gRPC: ALPN h2).
    pub client: Option<Arc<ServerConfig>>,
    /// Served to HTTP clients (ALPN h2 and http/1.1).
    pub http: Option<Arc<ServerConfig>>,
    /// Served to peers: the peer certificate, client certificates required.
    pub peer_server: Option<Arc<ServerConfig>>,
    /// Dialing peers: trusts the peer CA, presents the peer certificate.
    pub peer_client: Option<Arc<ClientConfig>>,
}

/// The TLS a node serves and dials with; [`Tls::reload_if_changed`] swaps in
/// new files. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    config: Arc<TlsConfig>,
    current: Arc<RwLock<(Arc<Loaded>, Stamps)>>,
}

/// The files' modification times and lengths when they were loaded.
type Stamps = Vec<Option<crate::file_stamp::Stamp>>;

impl Tls {
    /// Load every configured file; `None` when no TLS is configured.
    pub fn load(config: &TlsConfig) -> Result<Option<Tls>, TlsError> {
        config.validate()?;
        if !config.client_tls() && !config.peer_tls() {
            return Ok(None);
        }
        let stamps = stamps(config);
        let loaded = load(config)?;
        Ok(Some(Tls {
            config: Arc::new(config.clone()),
            current: Arc::new(RwLock::new((Arc::new(loaded), stamps))),
        }))
    }

    /// The configs in force.
    pub fn current(&self) -> Arc<Loaded> {
        self.current.read().0.clone()
    }

    /// The settings this was loaded from.
    pub fn config(&self) -> &TlsConfig {
        &self.config
    }

    /// Reload when any file's modification time changed. A reading that
    /// fails keeps the configs in force (and is reported): a half-written
    /// rotation must not take the node's TLS down. Returns whether new
    /// configs were taken.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let stamps = stamps(&self.config);
        if self.current.read().1 == stamps {
            return Ok(false);
        }
        let loaded = load(&self.config)?;
        *self.current.write() = (Arc::new(loaded), stamps);
        Ok(true)
    }

    /// Check the files every `reload_interval` until the process ends.
    pub async fn watch_files(self) {
        let mut every = tokio::time::interval(self.config.reload_interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            every.tick().await;
            let tls = self.clone();
            let outcome = tokio::task::spawn_blocking(move || tls.reload_if_changed()).await;
            match outcome {
                Ok(Ok(true)) => {
                    failing = false;
                    tracing::info!("tls certificates reloaded");
                }
                Ok(Ok(false)) => failing = false,
                Ok(Err(e)) if !failing => {
                    failing = true;
                    tracing::error!(error = %e, "tls certificates changed but cannot be loaded; keeping the ones in force");
                }
                Ok(Err(_)) | Err(_) => {}
            }
        }
    }
}

fn stamps(config: &TlsConfig) -> Stamps {
    config.files().into_iter().map(crate::file_stamp::stamp).collect()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |reason: String| TlsError::File {
        key,
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error("no PEM CERTIFICATE block".into()));
    }
    Ok(certs)
}

fn private_key(key: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
        key,
        path: path.to_owned(),
        reason: format!("no usable private key: {e}"),
    })
}

fn roots(key: &'static str, path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certs(key, path)? {
        store
            .add(cert)
            .map_err(|source| TlsError::Rustls { key, source })?;
    }
    Ok(Arc::new(store))
}

fn server_config(
    cert: (&'static str, &Path),
    key: (&'static str, &Path),
    client_roots: Option<Arc<RootCertStore>>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let rustls = |source| TlsError::Rustls { key: cert.0, source };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls)?;
    let builder = match client_roots {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| TlsError::Config(format!("client certificate verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs(cert.0, cert.1)?, private_key(key.0, key.1)?)
        .map_err(rustls)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

fn load(c: &TlsConfig) -> Result<Loaded, TlsError> {
    let mut loaded = Loaded {
        client: None,
        http: None,
        peer_server: None,
        peer_client: None,
    };
    if let (Some(cert), Some(key)) = (&c.cert, &c.key) {
        let client_roots = c
            .client_ca
            .as_deref()
            .map(|p| roots("client_ca", p))
            .transpose()?;
        let (cert, key) = (("cert", cert.as_path()), ("key", key.as_path()));
        loaded.client = Some(server_config(cert, key, client_roots.clone(), &[b"h2"])?);
        loaded.http = Some(server_config(cert, key, client_roots, &[b"h2", b"http/1.1"])?);
    }
    if let (Some(cert), Some(key), Some(ca)) = (&c.peer_cert, &c.peer_key, &c.peer_ca) {
        let peer_roots = roots("peer_ca", ca)?;
        let (cert, key) = (("peer_cert", cert.as_path()), ("peer_key", key.as_path()));
        loaded.peer_server = Some(server_config(cert, key, Some(peer_roots.clone()), &[PEER_ALPN])?);
        let rustls = |source| TlsError::Rustls {
            key: "peer_cert",
            source,
        };
        let mut client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(rustls)?
            .with_root_certificates(peer_roots)
            .with_client_auth_cert(certs(cert.0, cert.1)?, private_key(key.0, key.1)?)
            .map_err(rustls)?;
        client.alpn_protocols = vec![PEER_ALPN.to_vec()];
        loaded.peer_client = Some(Arc::new(client));
    }
    Ok(loaded)
}
