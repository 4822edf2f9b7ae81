//! Accepting connections with a bound on how many are open at once, and
//! serving them on threads that each run their own single-threaded runtime.
//!
//! Why threads of their own: on a multi-threaded runtime a request wakes
//! several tasks (connection, stream, handler) that the scheduler spreads over
//! workers, and each cross-thread wake-up costs a futex call and a context
//! switch. Measured on a 2-core VM, that doubled the CPU per `Check`. Here a
//! connection lives and dies on the thread it was handed to; the threads
//! share only the engine.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tonic::transport::server::Connected;

use crate::server::{NodeError, Services};
use crate::tls::Tls;
use crate::tls::accept::{Port, Stream};

/// A connection (plaintext or TLS) that holds one of the server's connection
/// permits until it closes (mini-redis's bounded accept loop).
pub struct LimitedConn {
    stream: Stream,
    info: ConnInfo,
    idle: IdleTimer,
    _permit: OwnedSemaphorePermit,
}

/// How long a connection may stay silent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdlePolicy {
    /// Closed when nothing was read or written for this long (None: never).
    pub idle_timeout: Option<Duration>,
    /// Closed when its first byte has not arrived this long after it was
    /// accepted (a connection that sends nothing).
    pub first_byte_timeout: Duration,
}

/// Bounds on the connections one listener serves.
#[derive(Clone)]
pub struct ConnLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Silence allowed.
    pub idle: IdlePolicy,
    /// TLS, if any.
    pub tls: Option<TlsAccept>,
}

/// Closes a silent connection: a read that would wait past the deadline
/// reads end-of-file instead, and the HTTP/2 server then closes it.
struct IdleTimer {
    policy: IdlePolicy,
    last: tokio::time::Instant,
    heard: bool,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl IdleTimer {
    fn new(policy: IdlePolicy) -> Self {
        let last = tokio::time::Instant::now();
        Self {
            policy,
            last,
            heard: false,
            sleep: Box::pin(tokio::time::sleep_until(last + policy.first_byte_timeout)),
        }
    }

    fn touch(&mut self, read: bool) {
        self.last = tokio::time::Instant::now();
        self.heard |= read;
    }

    /// The silence allowed now.
    fn limit(&self) -> Option<Duration> {
        if self.heard {
            self.policy.idle_timeout
        } else {
            Some(self.policy.first_byte_timeout)
        }
    }

    /// True once the connection has been silent past its limit; otherwise
    /// the timer is armed to wake `cx` at the deadline.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            let Some(limit) = self.limit() else {
                // No idle limit once heard from: park the timer far away.
                let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
                self.sleep.as_mut().reset(far);
                continue;
            };
            let deadline = self.last + limit;
            if tokio::time::Instant::now() >= deadline {
                return true;
            }
            self.sleep.as_mut().reset(deadline);
        }
    }
}

impl LimitedConn {
    /// `stream`, holding `permit` until it closes, under `idle`.
    pub fn new(
        stream: Stream,
        remote: Option<std::net::SocketAddr>,
        peer_cert: Option<Arc<rustls::pki_types::CertificateDer<'static>>>,
        idle: IdlePolicy,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            stream,
            info: ConnInfo::new(remote, peer_cert),
            idle: IdleTimer::new(idle),
            _permit: permit,
        }
    }
}

/// What a request's handler can learn about its connection (in the
/// request's extensions).
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// The client's address.
    pub remote: Option<std::net::SocketAddr>,
    /// The certificate of a peer handshake (mutual TLS, chained to the peer CA).
    pub peer_cert: Option<Arc<rustls::pki_types::CertificateDer<'static>>>,
    /// `remote`'s IP as the value of [`crate::auth::SOURCE_HEADER`],
    /// formatted once per connection: stamping it on a request is then a
    /// reference-count increment, not a formatted string per call.
    pub source: Option<http::HeaderValue>,
}

impl ConnInfo {
    /// What a connection from `remote` tells its requests.
    pub fn new(
        remote: Option<std::net::SocketAddr>,
        peer_cert: Option<Arc<rustls::pki_types::CertificateDer<'static>>>,
    ) -> Self {
        Self {
            remote,
            peer_cert,
            source: remote.and_then(|a| crate::auth::source_value(a.ip())),
        }
    }
}

/// TLS on a listener: the certificates, and how long a handshake may take.
#[derive(Clone)]
pub struct TlsAccept {
    /// The certificates in force.
    pub tls: Tls,
    /// A connection still handshaking after this is closed.
    pub handshake_timeout: Duration,
}

/// An accepted connection on its way to a serving thread: a std socket,
/// because a tokio one is tied to the runtime that accepted it.
type Handoff = (std::net::TcpStream, OwnedSemaphorePermit);

/// Accepted connections waiting for a serving thread; small, so a stalled
/// thread pushes back on the accept loop rather than hoarding sockets.
const HANDOFF_QUEUE: usize = 64;

/// gRPC services one serving thread runs over the connections handed to it:
/// the node's, or an edge's (`rescind edge`).
pub trait Serve: Clone + Send + 'static {
    /// Serve `incoming` on the current runtime until `shutdown` completes,
    /// then finish the requests in flight.
    fn serve_connections<S>(
        self,
        incoming: S,
        shutdown: impl Future<Output = ()> + Send,
    ) -> impl Future<Output = Result<(), tonic::transport::Error>>
    where
        S: futures_util::Stream<Item = io::Result<LimitedConn>> + Send;
}

impl Serve for Services {
    fn serve_connections<S>(
        self,
        incoming: S,
        shutdown: impl Future<Output = ()> + Send,
    ) -> impl Future<Output = Result<(), tonic::transport::Error>>
    where
        S: futures_util::Stream<Item = io::Result<LimitedConn>> + Send,
    {
        self.serve(incoming, shutdown)
    }
}

/// Accept on `listener` (at most `max_connections` open at once) and serve
/// the connections round-robin on `threads` serving threads until
/// `shutdown` completes; then stop accepting, let every thread finish its
/// in-flight requests, and return the first error any thread hit.
pub async fn serve_on_threads<T: Serve>(
    services: T,
    listener: TcpListener,
    threads: usize,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut queues = Vec::new();
    let mut done = Vec::new();
    for i in 0..threads.max(1) {
        let (tx, rx) = mpsc::channel::<Handoff>(HANDOFF_QUEUE);
        let (result_tx, result_rx) = tokio::sync::oneshot::channel();
        let (services, mut stop, tls, idle) =
            (services.clone(), stop_rx.clone(), limits.tls.clone(), limits.idle);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name(format!("rescind-serve-{i}"))
            .build()
            .map_err(|e| NodeError::Serving(format!("cannot start serving runtime {i}: {e}")))?;
        let thread = std::thread::Builder::new()
            .name(format!("rescind-serve-{i}"))
            .spawn(move || {
                let stopped = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                let result = runtime.block_on(async move {
                    match tls {
                        None => {
                            let incoming = tokio_stream::wrappers::ReceiverStream::new(rx)
                                .map(move |(std, permit)| plain(std, permit, idle));
                            services.serve_connections(incoming, stopped).await
                        }
                        Some(tls) => {
                            let (tx, handshaken) = mpsc::channel(HANDOFF_QUEUE);
                            let handshakes = tokio::spawn(handshake_all(rx, tx, tls, idle));
                            let incoming = tokio_stream::wrappers::ReceiverStream::new(handshaken).map(Ok);
                            let served = services.serve_connections(incoming, stopped).await;
                            handshakes.abort();
                            served
                        }
                    }
                });
                let _ = result_tx.send(result);
            })
            .map_err(|e| NodeError::Serving(format!("cannot start serving thread {i}: {e}")))?;
        queues.push(tx);
        done.push((thread, result_rx));
    }
    tracing::info!(threads = queues.len(), "serving");

    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut next = 0usize;
    let mut failed = None;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = accept(&listener, &permits) => a,
        };
        let handoff = match accepted {
            Ok(h) => h,
            Err(e) => {
                // Out of file descriptors and the like: back off a moment
                // rather than spin; the listener itself stays usable.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let sent = tokio::select! {
            () = &mut shutdown => break,
            sent = queues[next % queues.len()].send(handoff) => sent,
        };
        if sent.is_err() {
            failed = Some(NodeError::Serving(format!(
                "serving thread {} stopped",
                next % queues.len()
            )));
            break;
        }
        next = next.wrapping_add(1);
    }
    let _ = stop_tx.send(true);
    drop(queues);
    for (thread, result) in done {
        let outcome = result.await;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = failed.or(Some(NodeError::Serve(e))),
            Err(_) => failed = failed.or(Some(NodeError::Serving("a serving thread panicked".into()))),
        }
    }
    failed.map_or(Ok(()), Err)
}

/// A plaintext connection, as accepted.
fn plain(
    std: std::net::TcpStream,
    permit: OwnedSemaphorePermit,
    idle: IdlePolicy,
) -> io::Result<LimitedConn> {
    let stream = TcpStream::from_std(std)?;
    let remote = stream.peer_addr().ok();
    Ok(LimitedConn::new(
        Stream::Plain(stream),
        remote,
        None,
        idle,
        permit,
    ))
}

/// Handshake every connection handed over, each in a task of its own (at
/// most one per connection permit), and pass on those that complete within
/// the handshake timeout; the others are closed.
async fn handshake_all(
    mut handed: mpsc::Receiver<Handoff>,
    ready: mpsc::Sender<LimitedConn>,
    tls: TlsAccept,
    idle: IdlePolicy,
) {
    while let Some((std, permit)) = handed.recv().await {
        let (ready, tls) = (ready.clone(), tls.clone());
        tokio::spawn(async move {
            let Ok(tcp) = TcpStream::from_std(std) else {
                return;
            };
            let remote = tcp.peer_addr().ok();
            let accepted = tokio::time::timeout(
                tls.handshake_timeout,
                crate::tls::accept::accept(tcp, &tls.tls, Port::Grpc),
            )
            .await;
            match accepted {
                Ok(Ok(a)) => {
                    let conn = LimitedConn::new(a.stream, remote, a.peer_cert.map(Arc::new), idle, permit);
                    let _ = ready.send(conn).await;
                }
                Ok(Err(e)) => {
                    tracing::debug!(peer = ?remote, error = %e, "connection refused in its TLS handshake")
                }
                Err(_) => tracing::debug!(peer = ?remote, "TLS handshake timed out; connection closed"),
            }
        });
    }
}

/// One accepted connection with its permit, ready to move to another runtime.
async fn accept(listener: &TcpListener, permits: &Arc<Semaphore>) -> io::Result<Handoff> {
    let permit = permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| io::Error::other("connection limit closed"))?;
    let (stream, _) = listener.accept().await?;
    let _ = stream.set_nodelay(true);
    Ok((stream.into_std()?, permit))
}

impl Connected for LimitedConn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for LimitedConn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.idle.touch(true);
                }
                Poll::Ready(result)
            }
            Poll::Pending if this.idle.expired(cx) => {
                tracing::debug!(peer = ?this.info.remote, "closing a silent connection");
                Poll::Ready(Ok(()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl LimitedConn {
    fn wrote(&mut self, result: &Poll<io::Result<usize>>) {
        if matches!(result, Poll::Ready(Ok(n)) if *n > 0) {
            self.idle.touch(false);
        }
    }
}

impl AsyncWrite for LimitedConn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.wrote(&result);
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
