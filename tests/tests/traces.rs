//! The optional OTLP trace exporter: a node started with `--otlp-endpoint`
//! sends its revoke spans to a real OTLP/gRPC collector endpoint (a minimal
//! `TraceService` this test serves on 127.0.0.1 port 0), named by its
//! resource, with the token id redacted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use rescind_tests::cluster::eventually;
use rescind_tests::{NodeProc, revoke_token};

/// What the collector received, one request after another.
#[derive(Clone, Default)]
struct Collector {
    received: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.received.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| text(&kv.value))
}

/// One exported span: (resource attributes, span name, span attributes).
type Exported = (Vec<KeyValue>, String, Vec<KeyValue>);

fn spans(received: &[ExportTraceServiceRequest]) -> Vec<Exported> {
    let mut out = Vec::new();
    for request in received {
        for rs in &request.resource_spans {
            let resource = rs.resource.clone().map(|r| r.attributes).unwrap_or_default();
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    out.push((resource.clone(), span.name.clone(), span.attributes.clone()));
                }
            }
        }
    }
    out
}

// Two workers: `terminate` blocks one while the collector takes the
// final flush on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_spans_reach_an_otlp_collector_with_the_token_redacted() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let collector = Collector::default();
    let serving = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{collector_addr}");
    let mut node = NodeProc::start(
        dir.path(),
        &[
            "--region",
            "eu-west",
            "--node-name",
            "traced-1",
            "--otlp-endpoint",
            &endpoint,
        ],
    );
    let raw_id = "leaked-ci-token-7f3a9c1e";
    let mut client = node.client().await;
    client
        .revoke(node.admin(revoke_token(raw_id)))
        .await
        .expect("revoke");

    // The batch processor exports every 5 s by default.
    let (resource, _, attributes) = eventually(
        "an rpc.revoke span at the collector",
        Duration::from_secs(30),
        || {
            let found = spans(&collector.received.lock().unwrap())
                .into_iter()
                .find(|(_, name, _)| name == "rpc.revoke");
            async move { found }
        },
    )
    .await;
    assert_eq!(attribute(&resource, "service.name").as_deref(), Some("rescind"));
    assert_eq!(attribute(&resource, "rescind.region").as_deref(), Some("eu-west"));
    assert_eq!(
        attribute(&resource, "service.instance.id").as_deref(),
        Some("traced-1")
    );
    let id = attribute(&attributes, "id").expect("the span records the revoked id");
    assert!(id.starts_with("token:"), "{id}");
    assert_eq!(attribute(&attributes, "seq").as_deref(), Some("1"));

    // Nothing exported carries the raw token id or the admin token.
    let admin = node.admin_token();
    let everything = format!("{:?}", collector.received.lock().unwrap());
    assert!(!everything.contains(raw_id), "the raw token id was exported");
    assert!(!everything.contains(&admin), "the admin token was exported");

    node.terminate();
    serving.abort();
}
