//! The node's network over turmoil: an accept stream for the server and a
//! channel factory for clients and peers. Everything above them — services,
//! gossip, writer — is the production code, unchanged.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rescind_node::gossip::ChannelFactory;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::transport::{Channel, Endpoint, Uri};

/// The port every simulated node listens on.
pub const PORT: u16 = 7400;

/// A simulated TCP connection the tonic server can serve.
pub struct SimConn(turmoil::net::TcpStream);

impl Connected for SimConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        TcpConnectInfo {
            local_addr: self.0.local_addr().ok(),
            remote_addr: self.0.peer_addr().ok(),
        }
    }
}

impl AsyncRead for SimConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimConn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Accepted connections on `0.0.0.0:PORT` of the current simulated host.
pub async fn incoming() -> io::Result<impl futures_util::Stream<Item = io::Result<SimConn>>> {
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
    Ok(futures_util::stream::unfold(listener, |l| async move {
        let item = l.accept().await.map(|(s, _)| SimConn(s));
        Some((item, l))
    }))
}

/// A lazily connecting channel to `addr` (`host:port`) over the simulated network.
pub fn channel(addr: &str, timeout: Duration) -> Option<Channel> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).ok()?;
    Some(
        endpoint
            .connect_timeout(timeout)
            .timeout(timeout)
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(timeout)
            .keep_alive_while_idle(true)
            // h2 forgets a stream it reset after this long on the *real*
            // clock (its default is 1 s), and answers a late frame for a
            // forgotten stream with a RST_STREAM it would not send for a
            // remembered one: an extra message that shifts every later
            // random draw of the network. An hour outlasts any run, so what
            // is sent depends on simulated time only (h2 still bounds the
            // remembered streams by count, which is deterministic).
            .http2_reset_stream_duration(Duration::from_secs(3600))
            .connect_with_connector_lazy(tower::service_fn(|uri: Uri| async move {
                let host = uri.host().unwrap_or_default().to_owned();
                let port = uri.port_u16().unwrap_or(PORT);
                let stream = turmoil::net::TcpStream::connect((host.as_str(), port)).await?;
                Ok::<_, io::Error>(TokioIo::new(stream))
            })),
    )
}

/// The channel factory nodes use for their peers.
pub fn channels(timeout: Duration) -> ChannelFactory {
    Arc::new(move |addr: &str| channel(addr, timeout))
}
