//! `/metrics`, `/readyz` (and `/healthz`, in [`crate::health`]): open to
//! Prometheus and orchestrators without a token. `/metrics` names nodes,
//! regions and counts, never a token or a principal.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::HttpState;
use crate::metrics::{CONTENT_TYPE, NodeView, PeerGauge};

/// `GET /readyz`.
pub async fn readyz(State(s): State<HttpState>) -> Response {
    crate::health::readyz(&s.readiness)
}

/// `GET /metrics`: the node's metrics in the OpenMetrics text format (404
/// with `metrics = false`).
pub async fn metrics(State(s): State<HttpState>) -> Response {
    if !s.engine.metrics().enabled() {
        return super::ApiError::new(
            StatusCode::NOT_FOUND,
            "metrics are off on this node (metrics = false)",
        )
        .into_response();
    }
    // The store reads and /proc reads block: off the async threads.
    let rendered = tokio::task::spawn_blocking(move || {
        let view = view_of(&s);
        s.engine.metrics().render(&view)
    })
    .await;
    match rendered {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => super::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("scrape failed: {e}"))
            .into_response(),
    }
}

/// What a scrape reads from the node.
fn view_of(s: &HttpState) -> NodeView {
    let e = &s.engine;
    let st = e.status();
    let known = |ms: u64| (ms != rescind_gossip::UNKNOWN).then_some(ms);
    let floor = e.store_floor();
    let oplog_ops = st
        .version_vector
        .iter()
        .map(|(o, seq)| {
            let below = floor.iter().find(|(f, _)| f == o).map_or(0, |(_, s)| *s);
            seq.saturating_sub(below)
        })
        .sum();
    NodeView {
        node: st.node_id.clone(),
        region: st.region.clone(),
        recovering: st.recovering,
        ready: s.readiness.check().is_ok(),
        staleness_ms: known(st.staleness_ms),
        peers: st
            .peers
            .iter()
            .map(|p| PeerGauge {
                name: p.info.name.clone(),
                region: p.info.region.clone(),
                retired: p.removed,
                staleness_ms: known(p.staleness_ms),
            })
            .collect(),
        deny_entries: st.deny_entries,
        cutoffs: st.cutoffs,
        deny_memory_bytes: st.deny_bytes,
        expired_pruned: st.expired_pruned,
        oplog_ops,
        checkpoint: (
            st.checkpoint.generation,
            st.checkpoint.bytes,
            st.checkpoint.at_ms,
            st.checkpoint.failures,
        ),
        now_ms: e.now_ms(),
        disk: (st.disk_checkpoint_bytes, st.disk_database_bytes),
        filesystem: crate::metrics::filesystem_space(&s.data_dir),
        writer_queue: (e.queued_writes() as u64, e.write_queue_capacity() as u64),
        watch: (s.watch.watchers(), s.watch.cut_off()),
    }
}
