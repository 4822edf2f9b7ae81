//! A lean gRPC client connection for the load generator: one HTTP/2
//! connection driven by its own task, with requests sent straight on it.
//!
//! tonic's `Channel` puts a `tower::Buffer` (a queue and a worker task) and a
//! reconnect layer in front of the connection. Each request then crosses an
//! extra task, which on a 2-core machine costs the load generator CPU that the
//! node under test should get instead. The node still serves full gRPC over
//! HTTP/2; only the client is lighter.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::body::Body;

/// One HTTP/2 connection; clones share it (each clone is one more caller).
#[derive(Clone)]
pub struct H2Conn {
    send: SendRequest<Body>,
}

/// TLS for the load generator's connections: the rustls config (ALPN h2)
/// and the name the node's certificate must be valid for.
#[derive(Clone)]
pub struct Tls {
    /// Trusts the node's CA.
    pub config: std::sync::Arc<rustls::ClientConfig>,
    /// Checked against the node's certificate.
    pub server_name: rustls::pki_types::ServerName<'static>,
}

impl Tls {
    /// Trust the CA bundle at `ca` (PEM), checking certificates for `server_name`.
    pub fn from_ca(ca: &std::path::Path, server_name: &str) -> anyhow::Result<Self> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca)? {
            roots.add(cert?)?;
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            config: std::sync::Arc::new(config),
            server_name: rustls::pki_types::ServerName::try_from(server_name.to_owned())?,
        })
    }
}

impl H2Conn {
    /// Dial `addr` (`host:port`) and run the connection on a background task
    /// that ends when every clone is dropped or the peer closes.
    pub async fn connect(addr: &str) -> anyhow::Result<Self> {
        Self::connect_tls(addr, None).await
    }

    /// [`H2Conn::connect`], over TLS when `tls` is given.
    pub async fn connect_tls(addr: &str, tls: Option<&Tls>) -> anyhow::Result<Self> {
        let tcp = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow::anyhow!("connecting to {addr} timed out"))??;
        tcp.set_nodelay(true)?;
        let builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        let send = match tls {
            None => {
                let (send, conn) = builder.handshake(TokioIo::new(tcp)).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                send
            }
            Some(tls) => {
                let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
                    .connect(tls.server_name.clone(), tcp)
                    .await?;
                let (send, conn) = builder.handshake(TokioIo::new(stream)).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                send
            }
        };
        Ok(Self { send })
    }
}

impl tower_service::Service<http::Request<Body>> for H2Conn {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.send.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        Box::pin(self.send.send_request(req))
    }
}
