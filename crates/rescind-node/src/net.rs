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
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::server::{NodeError, Services};

/// A TCP connection that holds one of the server's connection permits until
/// it closes (mini-redis's bounded accept loop).
pub struct LimitedConn {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
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
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut queues = Vec::new();
    let mut done = Vec::new();
    for i in 0..threads.max(1) {
        let (tx, rx) = mpsc::channel::<Handoff>(HANDOFF_QUEUE);
        let (result_tx, result_rx) = tokio::sync::oneshot::channel();
        let (services, mut stop) = (services.clone(), stop_rx.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name(format!("rescind-serve-{i}"))
            .build()
            .map_err(|e| NodeError::Serving(format!("cannot start serving runtime {i}: {e}")))?;
        let thread = std::thread::Builder::new()
            .name(format!("rescind-serve-{i}"))
            .spawn(move || {
                let incoming = tokio_stream::wrappers::ReceiverStream::new(rx).map(|(std, permit)| {
                    TcpStream::from_std(std).map(|stream| LimitedConn {
                        stream,
                        _permit: permit,
                    })
                });
                let stopped = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                let result = runtime.block_on(services.serve_connections(incoming, stopped));
                let _ = result_tx.send(result);
            })
            .map_err(|e| NodeError::Serving(format!("cannot start serving thread {i}: {e}")))?;
        queues.push(tx);
        done.push((thread, result_rx));
    }
    tracing::info!(threads = queues.len(), "serving");

    let permits = Arc::new(Semaphore::new(max_connections));
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
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for LimitedConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedConn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
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
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
