//! Serving the HTTP port under the same bounds as the gRPC port: at most
//! `max_connections` open at once (the accept loop waits for a slot, as
//! mini-redis's does), TLS handshakes in tasks of their own within the
//! handshake timeout, every connection closed after `first_byte_timeout` of
//! nothing or `idle_timeout` of silence ([`crate::net::LimitedConn`]), and
//! hyper's limits on request heads: an HTTP/1.1 head must arrive whole within
//! `request_timeout`, and a head (either version) is at most
//! `max_header_bytes`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::net::{ConnLimits, LimitedConn};
use crate::tls::accept::{Port, Stream};

/// The bounds of one HTTP listener.
#[derive(Clone)]
pub struct HttpLimits {
    /// Connections, silence and TLS, as on the gRPC port.
    pub conns: ConnLimits,
    /// An HTTP/1.1 request head (and a keep-alive connection's wait for the
    /// next one) must arrive within this.
    pub request_timeout: Duration,
    /// Largest request head, bytes.
    pub max_header_bytes: u32,
}

impl HttpLimits {
    /// From the node's settings.
    pub fn new(
        max_connections: usize,
        limits: &crate::limits::LimitsConfig,
        tls: Option<crate::net::TlsAccept>,
    ) -> Self {
        Self {
            conns: ConnLimits {
                max_connections,
                idle: limits.idle(),
                tls,
            },
            request_timeout: limits.request_timeout,
            max_header_bytes: limits.max_header_bytes,
        }
    }
}

/// Serve `router` on `listener` until `shutdown`, then stop accepting and
/// finish the requests in flight (connections are asked to close once idle).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.conns.max_connections.max(1)));
    let tls = limits.conns.tls.clone().filter(|t| t.tls.config().client_tls());
    let graceful = GracefulShutdown::new();
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, remote) = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off a
                    // moment rather than spin.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (router, limits, tls, watcher) =
            (router.clone(), limits.clone(), tls.clone(), graceful.watcher());
        tokio::spawn(async move {
            let Some(stream) = handshake(tcp, remote, tls.as_ref()).await else {
                return;
            };
            let conn = LimitedConn::new(stream, Some(remote), None, limits.conns.idle, permit);
            serve_connection(conn, remote, router, &limits, watcher).await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The connection's stream: as accepted, or after its TLS handshake (None
/// when that fails or takes longer than the handshake timeout).
async fn handshake(
    tcp: TcpStream,
    remote: SocketAddr,
    tls: Option<&crate::net::TlsAccept>,
) -> Option<Stream> {
    let Some(tls) = tls else {
        return Some(Stream::Plain(tcp));
    };
    match tokio::time::timeout(
        tls.handshake_timeout,
        crate::tls::accept::accept(tcp, &tls.tls, Port::Http),
    )
    .await
    {
        Ok(Ok(a)) => Some(a.stream),
        Ok(Err(e)) => {
            tracing::debug!(peer = %remote, error = %e, "HTTP connection refused in its TLS handshake");
            None
        }
        Err(_) => {
            tracing::debug!(peer = %remote, "HTTP TLS handshake timed out; connection closed");
            None
        }
    }
}

/// HTTP/1.1 or HTTP/2 on one connection, every request stamped with the
/// client's address for [`crate::auth`]'s throttle (replacing any the
/// client sent).
async fn serve_connection(
    conn: LimitedConn,
    remote: SocketAddr,
    router: Router,
    limits: &HttpLimits,
    watcher: Watcher,
) {
    let source = crate::auth::source_value(remote.ip());
    let service = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        crate::auth::set_source(req.headers_mut(), source.clone());
        router.clone().oneshot(req)
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_timeout)
        // hyper's floor for its read buffer is 8 KiB.
        .max_buf_size(
            usize::try_from(limits.max_header_bytes)
                .unwrap_or(usize::MAX)
                .max(8192),
        );
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes);
    let served = builder
        .serve_connection_with_upgrades(TokioIo::new(conn), service)
        .into_owned();
    if let Err(e) = watcher.watch(served).await {
        tracing::debug!(peer = %remote, error = %e, "HTTP connection ended with an error");
    }
}
