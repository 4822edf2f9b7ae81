//! Dialing a peer over mutual TLS: TCP, then a rustls handshake that offers
//! [`super::PEER_ALPN`], presents this node's peer certificate, and checks
//! the peer's against the cluster CA for the host dialled. The config is read
//! per connection, so reloaded certificates apply to the next connection.

use std::io;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::Uri;

use super::Tls;

/// Connect to `uri`'s host and port over mutual TLS within `timeout`.
pub async fn connect(
    tls: Tls,
    uri: Uri,
    timeout: Duration,
) -> io::Result<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>> {
    let config = tls
        .current()
        .peer_client
        .clone()
        .ok_or_else(|| io::Error::other("peer TLS is not configured"))?;
    let host = uri
        .host()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "peer address has no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(7400);
    let name = ServerName::try_from(host.clone()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{host}` is not a host name"),
        )
    })?;
    let dial = async {
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        let _ = tcp.set_nodelay(true);
        TlsConnector::from(config).connect(name, tcp).await
    };
    let stream = tokio::time::timeout(timeout, dial)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "peer TLS connect timed out"))??;
    Ok(TokioIo::new(stream))
}
