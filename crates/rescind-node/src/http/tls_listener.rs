//! The HTTP port over TLS: an axum listener whose connections arrive after
//! their handshake. Handshakes run in tasks of their own (at most
//! [`MAX_HANDSHAKES`] at once, each within the handshake timeout), so one
//! slow client does not hold the others; a plaintext request gets a 400
//! saying the port takes TLS.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};

use crate::net::TlsAccept;
use crate::tls::accept::{Port, Stream, accept};

/// Most TLS handshakes in progress at once on the HTTP port.
pub const MAX_HANDSHAKES: usize = 256;

/// Connections that finished their handshake, waiting for axum.
const READY_QUEUE: usize = 64;

/// An axum listener yielding TLS streams.
pub struct TlsListener {
    ready: mpsc::Receiver<(Stream, SocketAddr)>,
    local: io::Result<SocketAddr>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accept on `listener`, handshaking with `tls`.
    pub fn new(listener: TcpListener, tls: TlsAccept) -> Self {
        let local = listener.local_addr();
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let acceptor = tokio::spawn(accept_loop(listener, tls, tx));
        Self {
            ready,
            local,
            acceptor,
        }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn accept_loop(listener: TcpListener, tls: TlsAccept, ready: mpsc::Sender<(Stream, SocketAddr)>) {
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (tcp, remote) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let (tls, ready) = (tls.clone(), ready.clone());
        tokio::spawn(async move {
            let handshake =
                tokio::time::timeout(tls.handshake_timeout, accept(tcp, &tls.tls, Port::Http)).await;
            drop(permit);
            match handshake {
                Ok(Ok(a)) => {
                    let _ = ready.send((a.stream, remote)).await;
                }
                Ok(Err(e)) => {
                    tracing::debug!(peer = %remote, error = %e, "HTTP connection refused in its TLS handshake")
                }
                Err(_) => tracing::debug!(peer = %remote, "HTTP TLS handshake timed out; connection closed"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = Stream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop ended (it does not, short of a panic): accept
            // nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        match &self.local {
            Ok(a) => Ok(*a),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }
}
