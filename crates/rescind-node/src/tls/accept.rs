//! One accepted TCP connection to a stream ready to serve.
//!
//! The first bytes decide: a TLS record (0x16) starts a handshake whose
//! config is picked from the client hello (a peer offers [`PEER_ALPN`]); any
//! other bytes on a port that requires TLS get a refusal the client can show
//! (an HTTP/2 GOAWAY with `INADEQUATE_SECURITY`, or an HTTP/1.1 400) before
//! the connection is closed.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;

use super::{Loaded, PEER_ALPN, Tls};

/// Which of a node's ports a connection came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// gRPC: clients and peers.
    Grpc,
    /// HTTP: clients only.
    Http,
}

/// A served connection: plaintext or TLS.
pub enum Stream {
    /// No TLS.
    Plain(TcpStream),
    /// After a TLS handshake.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// An accepted connection and what its handshake proved.
pub struct Accepted {
    /// The stream to serve.
    pub stream: Stream,
    /// The leaf certificate of a peer handshake: chained to the peer CA.
    pub peer_cert: Option<CertificateDer<'static>>,
}

/// Peer handshake refusals logged at `warn`, by reason: a rogue peer retries
/// every round, and its log line would drown the others.
static REFUSALS: crate::log_limit::LogLimit = crate::log_limit::LogLimit::new();

/// Longest the refusal to a plaintext client waits for it to hang up.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Accept `tcp` on `port` with `tls` (the caller bounds the time taken).
pub async fn accept(tcp: TcpStream, tls: &Tls, port: Port) -> io::Result<Accepted> {
    let loaded = tls.current();
    let mut first = [0u8; 1];
    let n = tcp.peek(&mut first).await?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before sending",
        ));
    }
    let client_config = match port {
        Port::Grpc => loaded.client.clone(),
        Port::Http => loaded.http.clone(),
    };
    if first[0] != 0x16 {
        if client_config.is_some() {
            refuse_plaintext(tcp).await;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "plaintext connection on a TLS port",
            ));
        }
        return Ok(Accepted {
            stream: Stream::Plain(tcp),
            peer_cert: None,
        });
    }
    let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
    let offers_peer = start
        .client_hello()
        .alpn()
        .is_some_and(|mut protocols| protocols.any(|p| p == PEER_ALPN));
    let config = pick(&loaded, port, offers_peer, client_config)?;
    let stream = match start.into_stream(config).await {
        Ok(s) => s,
        Err(e) => {
            if offers_peer && REFUSALS.first_in_a_while(&e.to_string()) {
                tracing::warn!(error = %e, "refused a peer's TLS handshake (the same refusal is logged at debug for a minute)");
            }
            return Err(e);
        }
    };
    let peer_cert = if offers_peer {
        stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|c| c.clone().into_owned())
    } else {
        None
    };
    Ok(Accepted {
        stream: Stream::Tls(Box::new(stream)),
        peer_cert,
    })
}

fn pick(
    loaded: &Loaded,
    port: Port,
    offers_peer: bool,
    client_config: Option<Arc<ServerConfig>>,
) -> io::Result<Arc<ServerConfig>> {
    let refused = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
    if offers_peer && port == Port::Grpc {
        return loaded
            .peer_server
            .clone()
            .ok_or_else(|| refused("a peer handshake, and this node has no peer TLS configured"));
    }
    client_config.ok_or_else(|| refused("a TLS handshake on a plaintext client port"))
}

/// Tell a plaintext client why it is refused, in its own protocol, and close.
async fn refuse_plaintext(mut tcp: TcpStream) {
    let mut head = [0u8; 4];
    let n = tcp.peek(&mut head).await.unwrap_or(0);
    let answer: Vec<u8> = if head[..n].starts_with(b"PRI") {
        goaway(b"this port requires TLS")
    } else {
        let body = "This port requires TLS: use https://\n";
        format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let _ = tcp.write_all(&answer).await;
    let _ = tcp.shutdown().await;
    // Closing with unread bytes would reset the connection and could drop
    // the answer before the client reads it: read what it sent first.
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        let mut total = 0usize;
        while let Ok(n) = tcp.read(&mut sink).await {
            total += n;
            if n == 0 || total > 64 * 1024 {
                break;
            }
        }
    })
    .await;
}

/// An HTTP/2 server preface (empty SETTINGS) and a GOAWAY with
/// `INADEQUATE_SECURITY` and `debug` as its debug data.
fn goaway(debug: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0x4, 0, 0, 0, 0, 0];
    let len = 8 + debug.len();
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, 0x7, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&[0, 0, 0, 0]); // last stream id
    out.extend_from_slice(&0xc_u32.to_be_bytes()); // INADEQUATE_SECURITY
    out.extend_from_slice(debug);
    out
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goaway_frames_are_well_formed() {
        let f = goaway(b"x");
        // SETTINGS: length 0, type 4, stream 0.
        assert_eq!(&f[..9], &[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        // GOAWAY: length 9 (last stream 4 + code 4 + debug 1), type 7.
        assert_eq!(&f[9..13], &[0, 0, 9, 7]);
        assert_eq!(&f[22..26], &[0, 0, 0, 0xc]);
        assert_eq!(&f[26..], b"x");
        assert_eq!(f.len(), 9 + 9 + 9);
    }
}
