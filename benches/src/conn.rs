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

impl H2Conn {
    /// Dial `addr` (`host:port`) and run the connection on a background task
    /// that ends when every clone is dropped or the peer closes.
    pub async fn connect(addr: &str) -> anyhow::Result<Self> {
        let tcp = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow::anyhow!("connecting to {addr} timed out"))??;
        tcp.set_nodelay(true)?;
        let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(tcp))
            .await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
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
