//! Logs on stderr and the optional OTLP trace exporter of `rescind serve`.
//!
//! Traces are off unless `--otlp-endpoint` is given. Spans pass their own
//! filter (`--otlp-filter`, default `rescind_node=info,rescind_store=info`:
//! revokes, batch revokes, listings and snapshot pulls; the per-check spans
//! are `debug`), are sampled at `--otlp-sample-ratio`, and leave in batches
//! from a background thread over OTLP/gRPC. Span fields are what the node
//! logs, so no token or secret is in them (token ids are redacted to a keyed
//! short hash before they are recorded).
//!
//! The SDK's batch processor runs the exporter on a plain OS thread, where
//! tonic finds no Tokio reactor; [`OnRuntime`] gives the exporter a small
//! runtime of its own.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (timestamp, level, target, fields, spans).
    Json,
}

/// The default `--otlp-filter`.
pub const DEFAULT_OTLP_FILTER: &str = "rescind_node=info,rescind_store=info";

/// Deadline of one export call to the collector.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Trace export flags of `rescind serve`.
#[derive(Args, Debug, Default)]
pub struct TraceArgs {
    /// Export spans over OTLP/gRPC to this collector, e.g.
    /// http://127.0.0.1:4317 (http:// only: run the collector on loopback or
    /// as a sidecar). [default: off]
    #[arg(long, env = "RESCIND_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Which spans are exported (tracing's env-filter syntax), independent of
    /// --log. `rescind_node=debug` adds one span per Check: costly at high
    /// rates.
    #[arg(long, env = "RESCIND_OTLP_FILTER", default_value = DEFAULT_OTLP_FILTER)]
    pub otlp_filter: String,
    /// Share of traces kept (0.0..=1.0); a span whose parent was kept is kept.
    #[arg(long, env = "RESCIND_OTLP_SAMPLE_RATIO", default_value_t = 1.0)]
    pub otlp_sample_ratio: f64,
}

/// Keeps the trace exporter alive; [`Traces::shutdown`] flushes it.
#[must_use = "dropping the guard does not flush the spans still queued"]
pub struct Traces {
    provider: Option<SdkTracerProvider>,
}

impl Traces {
    /// Export the spans still queued and stop the exporter (blocking; call
    /// it outside the async runtime or from `spawn_blocking`).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: flushing traces to the OTLP collector failed: {e}");
        }
    }
}

/// Logs to stderr with the `--log` filter (text or JSON), plus the OTLP
/// exporter when `traces.otlp_endpoint` is set. `resource` names this
/// process to the collector (`service.name` is always `rescind`).
///
/// Must be called inside the Tokio runtime only in the sense that it may be;
/// the exporter brings its own.
pub fn init(
    filter: &str,
    format: LogFormat,
    traces: &TraceArgs,
    resource: &[(&'static str, String)],
) -> anyhow::Result<Traces> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).context("--log")?;
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => logs.json().with_current_span(true).boxed(),
    };
    let Some(endpoint) = &traces.otlp_endpoint else {
        tracing_subscriber::registry()
            .with(logs.with_filter(filter))
            .try_init()
            .context("installing the log subscriber")?;
        return Ok(Traces { provider: None });
    };
    let endpoint = check_endpoint(endpoint)?;
    let ratio = check_ratio(traces.otlp_sample_ratio)?;
    let span_filter = tracing_subscriber::EnvFilter::try_new(&traces.otlp_filter)
        .with_context(|| format!("--otlp-filter {:?}", traces.otlp_filter))?;
    let provider = provider(endpoint, ratio, resource)?;
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("rescind"))
        .with_filter(span_filter);
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(layer)
        .try_init()
        .context("installing the log subscriber")?;
    tracing::info!(endpoint, ratio, "exporting traces over OTLP/gRPC");
    Ok(Traces {
        provider: Some(provider),
    })
}

fn check_endpoint(endpoint: &str) -> anyhow::Result<&str> {
    let rest = endpoint.strip_prefix("http://").with_context(|| {
        format!(
            "--otlp-endpoint {endpoint:?}: must start with http:// (TLS to the collector is not \
             supported; export to a collector on loopback or a sidecar)"
        )
    })?;
    anyhow::ensure!(
        !rest.is_empty() && endpoint.parse::<tonic::transport::Uri>().is_ok(),
        "--otlp-endpoint {endpoint:?}: not a URL (expected http://HOST:PORT)"
    );
    Ok(endpoint)
}

fn check_ratio(ratio: f64) -> anyhow::Result<f64> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&ratio),
        "--otlp-sample-ratio {ratio}: must be within 0.0..=1.0"
    );
    Ok(ratio)
}

fn provider(
    endpoint: &str,
    ratio: f64,
    resource: &[(&'static str, String)],
) -> anyhow::Result<SdkTracerProvider> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("rescind-otlp")
        .enable_all()
        .build()
        .context("starting the trace exporter's runtime")?;
    // The channel is made lazily on this runtime: its tasks live there.
    let exporter = {
        let _entered = runtime.enter();
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .with_context(|| format!("--otlp-endpoint {endpoint:?}"))?
    };
    let attributes = resource
        .iter()
        .map(|(k, v)| KeyValue::new(*k, v.clone()))
        .collect::<Vec<_>>();
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_service_name("rescind")
        .with_attributes(attributes)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(OnRuntime {
            inner: exporter,
            runtime: Some(runtime),
        })
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio))))
        .with_resource(resource)
        .build())
}

/// A span exporter driven on a runtime of its own (see the module doc).
#[derive(Debug)]
struct OnRuntime<E> {
    inner: E,
    /// `None` only while being dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl<E: SpanExporter> OnRuntime<E> {
    fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> Option<T> {
        self.runtime.as_ref().map(|rt| rt.handle().block_on(f))
    }
}

impl<E: SpanExporter> SpanExporter for OnRuntime<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let result = self.block_on(self.inner.export(batch)).unwrap_or(Ok(()));
        std::future::ready(result)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let _entered = self.runtime.as_ref().map(|rt| rt.enter());
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        let _entered = self.runtime.as_ref().map(|rt| rt.enter());
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

impl<E> Drop for OnRuntime<E> {
    fn drop(&mut self) {
        // Dropping a runtime blocks; this one may be dropped on any thread.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_must_be_plain_http() {
        assert!(check_endpoint("http://127.0.0.1:4317").is_ok());
        let e = check_endpoint("https://collector:4317").unwrap_err().to_string();
        assert!(e.contains("--otlp-endpoint") && e.contains("http://"), "{e}");
        let e = check_endpoint("http://").unwrap_err().to_string();
        assert!(e.contains("not a URL"), "{e}");
        assert!(check_endpoint("collector:4317").is_err());
    }

    #[test]
    fn ratio_within_zero_and_one() {
        assert_eq!(check_ratio(0.0).unwrap(), 0.0);
        assert_eq!(check_ratio(1.0).unwrap(), 1.0);
        for bad in [-0.1, 1.5, f64::NAN] {
            let e = check_ratio(bad).unwrap_err().to_string();
            assert!(e.contains("--otlp-sample-ratio"), "{e}");
        }
    }
}
