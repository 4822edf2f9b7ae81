//! Health: `grpc.health.v1` and gRPC server reflection on the gRPC port,
//! `/healthz` and `/readyz` on the HTTP port, and the [`Loading`] server
//! that answers them while the state loads.
//!
//! - gRPC health, service `""` (the node): `NOT_SERVING` while loading or
//!   recovering, and again once shutdown starts; `SERVING` otherwise.
//! - gRPC health, service `rescind.v1.Revocations` (ready for checks): as
//!   `""`, and also `NOT_SERVING` until `/readyz` would answer 200 — what a
//!   Kubernetes gRPC readiness probe should name.
//! - `/healthz`: 200 while the process runs (loading included).
//! - `/readyz`: 200 once loaded, not recovering, and every live peer heard
//!   from once since start — or `ready_peer_wait` after loading, so a peer
//!   that is down does not keep the node out of service; 503 otherwise, with
//!   the reason.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::engine::Engine;

/// Connections the HTTP health port takes at once while the state loads
/// (probes only; the full port's `max_connections` applies after).
const LOADING_CONNECTIONS: usize = 64;

/// The gRPC service names whose health is reported besides `""`.
pub const SERVICES: [&str; 1] = ["rescind.v1.Revocations"];

/// How often the health task looks at the engine.
const POLL: Duration = Duration::from_millis(200);

/// What `/readyz` decides from.
#[derive(Clone)]
pub struct Readiness {
    engine: Engine,
    loaded_at: Instant,
    peer_wait: Duration,
}

impl Readiness {
    /// Readiness of `engine`, loaded now.
    pub fn new(engine: Engine, peer_wait: Duration) -> Self {
        Self {
            engine,
            loaded_at: Instant::now(),
            peer_wait,
        }
    }

    /// `Ok` when ready, else why not.
    pub fn check(&self) -> Result<(), String> {
        if self.engine.is_recovering() {
            return Err("recovering: the state is being rebuilt from a peer".into());
        }
        if self.engine.staleness_ms() == rescind_gossip::UNKNOWN {
            let waited = self.loaded_at.elapsed();
            if waited < self.peer_wait {
                return Err(format!(
                    "waiting to hear from every live peer once ({} s of ready_peer_wait {} s)",
                    waited.as_secs(),
                    self.peer_wait.as_secs()
                ));
            }
        }
        Ok(())
    }
}

/// `/readyz` for a loaded node.
pub fn readyz(readiness: &Readiness) -> Response {
    match readiness.check() {
        Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({"ready": true}))).into_response(),
        Err(reason) => not_ready(&reason),
    }
}

fn not_ready(reason: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({"ready": false, "reason": reason})),
    )
        .into_response()
}

/// `/healthz`.
pub async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(serde_json::json!({"alive": true}))).into_response()
}

async fn set_all(reporter: &HealthReporter, status: ServingStatus) {
    set(reporter, status, status).await;
}

/// The node's status (`""`) and the checks' (`rescind.v1.Revocations`).
async fn set(reporter: &HealthReporter, node: ServingStatus, checks: ServingStatus) {
    reporter.set_service_status("", node).await;
    for s in SERVICES {
        reporter.set_service_status(s, checks).await;
    }
}

/// A health reporter and service, every service `NOT_SERVING`.
pub async fn not_serving() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (reporter, server) = tonic_health::server::health_reporter();
    set_all(&reporter, ServingStatus::NotServing).await;
    (reporter, server)
}

/// Keep `reporter` in step with the node until `stop` turns true, then
/// report `NOT_SERVING` (draining).
pub async fn track(reporter: HealthReporter, readiness: Readiness, mut stop: watch::Receiver<bool>) {
    let of = |ok: bool| {
        if ok {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        }
    };
    let mut last = None;
    loop {
        let now = (
            of(!readiness.engine.is_recovering()),
            of(readiness.check().is_ok()),
        );
        if last != Some(now) {
            set(&reporter, now.0, now.1).await;
            last = Some(now);
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    set_all(&reporter, ServingStatus::NotServing).await;
}

/// gRPC server reflection (v1) over the rescind and health services.
pub fn reflection() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<impl tonic_reflection::server::v1::ServerReflection>,
    tonic_reflection::server::Error,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(rescind_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
}

/// The listeners of a node that is still loading, answering health probes
/// (gRPC `NOT_SERVING`, `/healthz` 200, everything else 503) until
/// [`Loading::finish`] hands the listeners to the node.
pub struct Loading {
    grpc: TcpListener,
    http: Option<TcpListener>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Bind `addr`, returning the listener and a second handle on the same socket.
fn bind_twice(addr: SocketAddr) -> std::io::Result<(TcpListener, TcpListener)> {
    let std = std::net::TcpListener::bind(addr)?;
    std.set_nonblocking(true)?;
    let twin = std.try_clone()?;
    Ok((TcpListener::from_std(std)?, TcpListener::from_std(twin)?))
}

impl Loading {
    /// Bind `grpc` and `http` and answer probes on them in plaintext; with
    /// `probes` false (client TLS: the certificates load with the node)
    /// only hold the ports, so connections wait in the backlog until the
    /// node serves them.
    pub async fn bind(
        grpc: SocketAddr,
        http: Option<SocketAddr>,
        probes: bool,
    ) -> Result<Loading, crate::NodeError> {
        let bind_err = |addr| move |source| crate::NodeError::Bind { addr, source };
        let (grpc_listener, grpc_twin) = bind_twice(grpc).map_err(bind_err(grpc))?;
        let http_pair = match http {
            Some(a) => Some(bind_twice(a).map_err(bind_err(a))?),
            None => None,
        };
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        if !probes {
            return Ok(Loading {
                grpc: grpc_listener,
                http: http_pair.map(|(listener, _)| listener),
                stop,
                tasks,
            });
        }
        let (reporter, health) = not_serving().await;
        let mut rx = stop_rx.clone();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(grpc_twin);
        let mut server = tonic::transport::Server::builder();
        let router = match reflection() {
            Ok(r) => server.add_service(health).add_service(r),
            Err(_) => server.add_service(health),
        };
        tasks.push(tokio::spawn(async move {
            let _keep = reporter;
            let stopped = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = router.serve_with_incoming_shutdown(incoming, stopped).await {
                tracing::warn!(error = %e, "health server while loading failed");
            }
        }));
        let http = http_pair.map(|(listener, twin)| {
            let mut rx = stop_rx.clone();
            let router = Router::new()
                .route("/healthz", get(healthz))
                .fallback(|| async { not_ready("loading: the state is being read from the data dir") });
            tasks.push(tokio::spawn(async move {
                let stopped = async move {
                    let _ = rx.wait_for(|s| *s).await;
                };
                let limits = crate::http::HttpLimits::new(LOADING_CONNECTIONS, &Default::default(), None);
                if let Err(e) = crate::http::serve(twin, router, limits, stopped).await {
                    tracing::warn!(error = %e, "HTTP health while loading failed");
                }
            }));
            listener
        });
        Ok(Loading {
            grpc: grpc_listener,
            http,
            stop,
            tasks,
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    /// The bound HTTP address, if any.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Stop answering (open connections get up to 5 s to finish) and hand
    /// back the listeners for the node.
    pub async fn finish(self) -> (TcpListener, Option<TcpListener>) {
        let _ = self.stop.send(true);
        for mut t in self.tasks {
            if tokio::time::timeout(Duration::from_secs(5), &mut t)
                .await
                .is_err()
            {
                t.abort();
            }
        }
        (self.grpc, self.http)
    }

    /// Run `load` while answering probes, then hand back the listeners.
    pub async fn during<T>(self, load: impl Future<Output = T>) -> (T, TcpListener, Option<TcpListener>) {
        let out = load.await;
        let (grpc, http) = self.finish().await;
        (out, grpc, http)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;

    async fn http_get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn while_loading_probes_answer_not_serving_and_the_listeners_are_handed_over() {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let loading = Loading::bind(any, Some(any), true).await.unwrap();
        let (grpc, http) = (loading.grpc_addr().unwrap(), loading.http_addr().unwrap());
        let (loaded, load) = tokio::sync::oneshot::channel::<()>();
        let probes = tokio::spawn(async move {
            let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut client = HealthClient::new(channel);
            for service in ["", SERVICES[0]] {
                let answer = client
                    .check(HealthCheckRequest {
                        service: service.into(),
                    })
                    .await
                    .unwrap()
                    .into_inner();
                let not_serving = tonic_health::pb::health_check_response::ServingStatus::NotServing;
                assert_eq!(answer.status(), not_serving, "{service:?}");
            }
            let ready = http_get(http, "/readyz").await;
            assert!(
                ready.starts_with("HTTP/1.1 503") && ready.contains("loading"),
                "{ready}"
            );
            let alive = http_get(http, "/healthz").await;
            assert!(alive.starts_with("HTTP/1.1 200"), "{alive}");
            loaded.send(()).unwrap();
        });
        let (_, grpc_listener, http_listener) = loading.during(async { load.await.unwrap() }).await;
        probes.await.unwrap();
        assert_eq!(grpc_listener.local_addr().unwrap(), grpc);
        assert_eq!(http_listener.unwrap().local_addr().unwrap(), http);
    }
}
