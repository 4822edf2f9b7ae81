//! The node's network over turmoil: an accept stream for the server and a
//! channel factory for clients and peers. Everything above them — services,
//! gossip, writer — is the production code, unchanged.
//!
//! Every simulated TCP connection of a host belongs to that host's
//! [`Sockets`], numbered in the order it was opened. A crash closes them in
//! that order: tokio drops a runtime's tasks grouped by task id, a counter
//! shared by every runtime in the process, so the order in which a crashed
//! host's tasks drop their connections — and with it the order of the FIN
//! and RST segments turmoil sends, each drawing its latency from the seeded
//! random generator — would otherwise depend on how many tasks anything else
//! in the process spawned before (an earlier run, another test's run).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rescind_node::gossip::ChannelFactory;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::transport::{Channel, Endpoint, Uri};

/// The TCP connections one run of a host's software opened.
///
/// While the host runs, a connection closes when its owner drops it. Once
/// [`Sockets::crashing`] is set, a dropped connection is kept here instead,
/// and they all close when the last handle on the `Sockets` goes — after
/// every task of the crashed runtime is gone, in the order they were opened.
#[derive(Default)]
pub struct Sockets {
    crashing: AtomicBool,
    opened: AtomicU64,
    kept: Mutex<BTreeMap<u64, turmoil::net::TcpStream>>,
    /// Bytes the host wrote on its peer connections (it may outlive this
    /// run of the host: the count goes on across crashes).
    peer_bytes_sent: Arc<AtomicU64>,
}

impl Sockets {
    /// A fresh set for one run of a host's software.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A fresh set whose peer connections add the bytes they write to
    /// `peer_bytes_sent`.
    pub fn counting(peer_bytes_sent: Arc<AtomicU64>) -> Arc<Self> {
        Arc::new(Self {
            crashing: AtomicBool::new(false),
            opened: AtomicU64::new(0),
            kept: Mutex::default(),
            peer_bytes_sent,
        })
    }

    /// The host is about to crash: keep its connections until they can be
    /// closed in order.
    pub fn crashing(&self) {
        self.crashing.store(true, Ordering::Relaxed);
    }

    fn adopt(self: &Arc<Self>, stream: turmoil::net::TcpStream, counting: Counting) -> SimConn {
        SimConn {
            stream: Some(stream),
            number: self.opened.fetch_add(1, Ordering::Relaxed),
            sockets: self.clone(),
            counting,
        }
    }
}

impl Drop for Sockets {
    fn drop(&mut self) {
        // A BTreeMap yields its entries by key: oldest connection first.
        for (_, stream) in std::mem::take(self.kept.get_mut()) {
            drop(stream);
        }
    }
}

/// The port every simulated node listens on.
pub const PORT: u16 = 7400;

/// A simulated TCP connection of one host (served, or opened to a peer).
pub struct SimConn {
    /// `None` only while dropping.
    stream: Option<turmoil::net::TcpStream>,
    /// Its place in the order the host opened connections.
    number: u64,
    sockets: Arc<Sockets>,
    /// What of its writes count as peer traffic.
    counting: Counting,
}

/// Which written bytes of a connection count as peer traffic.
enum Counting {
    /// None: a client's or an edge's connection.
    No,
    /// Every byte: a connection this node opened to a peer.
    All,
    /// A peer's connection this node serves: frame by frame (see [`FrameMeter`]).
    Frames(FrameMeter),
}

/// Counts what a server writes on an HTTP/2 connection, frame by frame,
/// leaving out the payload of header blocks (HEADERS and CONTINUATION
/// frames; their 9-byte frame headers count). hyper stamps every response
/// with a `date` header from the real clock, so the size of a response's
/// header block depends on how many real seconds a run took; everything
/// else a server writes (DATA, SETTINGS, PING, WINDOW_UPDATE, RST_STREAM
/// frames) depends on simulated time only. After HPACK indexing a header
/// block is a few bytes.
#[derive(Debug, Default)]
pub struct FrameMeter {
    header: [u8; 9],
    have: usize,
    left: usize,
    counting: bool,
}

impl FrameMeter {
    /// How many of `bytes`, the next ones written, count.
    pub fn counted(&mut self, mut bytes: &[u8]) -> u64 {
        let mut n = 0;
        while !bytes.is_empty() {
            if self.left > 0 {
                let take = self.left.min(bytes.len());
                if self.counting {
                    n += take as u64;
                }
                self.left -= take;
                bytes = &bytes[take..];
                continue;
            }
            let take = (9 - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            n += take as u64;
            bytes = &bytes[take..];
            if self.have == 9 {
                let h = &self.header;
                self.left = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
                // 0x1 HEADERS, 0x9 CONTINUATION.
                self.counting = !matches!(h[3], 0x1 | 0x9);
                self.have = 0;
            }
        }
        n
    }
}

impl SimConn {
    fn stream(&mut self) -> io::Result<Pin<&mut turmoil::net::TcpStream>> {
        match &mut self.stream {
            Some(s) => Ok(Pin::new(s)),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl Drop for SimConn {
    fn drop(&mut self) {
        if let Some(stream) = self.stream.take()
            && self.sockets.crashing.load(Ordering::Relaxed)
        {
            self.sockets.kept.lock().insert(self.number, stream);
        }
    }
}

impl Connected for SimConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        let stream = self.stream.as_ref();
        TcpConnectInfo {
            local_addr: stream.and_then(|s| s.local_addr().ok()),
            remote_addr: stream.and_then(|s| s.peer_addr().ok()),
        }
    }
}

impl AsyncRead for SimConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.stream()?.poll_read(cx, buf)
    }
}

impl AsyncWrite for SimConn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = self.stream()?.poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &written {
            let counted = match &mut self.counting {
                Counting::No => 0,
                Counting::All => *n as u64,
                Counting::Frames(meter) => meter.counted(&buf[..*n]),
            };
            if counted > 0 {
                self.sockets.peer_bytes_sent.fetch_add(counted, Ordering::Relaxed);
            }
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream()?.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream()?.poll_shutdown(cx)
    }
}

/// Accepted connections on `0.0.0.0:PORT` of the current simulated host,
/// each one of `sockets`; those from a host named in `peers` count as peer
/// connections.
pub async fn incoming(
    sockets: Arc<Sockets>,
    peers: Arc<BTreeSet<String>>,
) -> io::Result<impl futures_util::Stream<Item = io::Result<SimConn>>> {
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
    Ok(futures_util::stream::unfold(listener, move |l| {
        let (sockets, peers) = (sockets.clone(), peers.clone());
        async move {
            let item = l.accept().await.map(|(s, from)| {
                let peer = turmoil::reverse_lookup(from.ip()).is_some_and(|h| peers.contains(&h));
                let counting = if peer {
                    Counting::Frames(FrameMeter::default())
                } else {
                    Counting::No
                };
                sockets.adopt(s, counting)
            });
            Some((item, l))
        }
    }))
}

/// A lazily connecting channel to `addr` (`host:port`) over the simulated
/// network, its connections among `sockets` (as peer connections when
/// `peer`).
pub fn channel(addr: &str, timeout: Duration, sockets: Arc<Sockets>, peer: bool) -> Option<Channel> {
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
            .connect_with_connector_lazy(tower::service_fn(move |uri: Uri| {
                let sockets = sockets.clone();
                async move {
                    let host = uri.host().unwrap_or_default().to_owned();
                    let port = uri.port_u16().unwrap_or(PORT);
                    let stream = turmoil::net::TcpStream::connect((host.as_str(), port)).await?;
                    let counting = if peer { Counting::All } else { Counting::No };
                    Ok::<_, io::Error>(TokioIo::new(sockets.adopt(stream, counting)))
                }
            })),
    )
}

/// The channel factory nodes use for their peers.
pub fn channels(timeout: Duration, sockets: Arc<Sockets>) -> ChannelFactory {
    Arc::new(move |addr: &str| channel(addr, timeout, sockets.clone(), true))
}

#[cfg(test)]
mod tests {
    use super::FrameMeter;

    fn frame(kind: u8, payload: usize) -> Vec<u8> {
        let mut f = vec![
            (payload >> 16) as u8,
            (payload >> 8) as u8,
            payload as u8,
            kind,
            0,
            0,
            0,
            0,
            1,
        ];
        f.resize(9 + payload, 0xab);
        f
    }

    #[test]
    fn header_blocks_leave_only_their_frame_headers_whatever_the_write_boundaries() {
        let mut bytes = frame(0x1, 30); // HEADERS
        bytes.extend(frame(0x0, 100)); // DATA
        bytes.extend(frame(0x9, 5)); // CONTINUATION
        bytes.extend(frame(0x4, 0)); // SETTINGS, empty
        bytes.extend(frame(0x0, 70_000)); // DATA, longer than 16 bits
        let want = 9 + (9 + 100) + 9 + 9 + (9 + 70_000);
        assert_eq!(FrameMeter::default().counted(&bytes), want);
        for chunk in [1, 2, 7, 9, 10, 4096] {
            let mut m = FrameMeter::default();
            let n: u64 = bytes.chunks(chunk).map(|c| m.counted(c)).sum();
            assert_eq!(n, want, "chunks of {chunk}");
        }
    }
}
