//! `rescind status`: a node's (or an edge's) identity, counts, digest and version vector.

use clap::Args;
use serde_json::json;

use crate::opts::{ClientOpts, staleness_json, staleness_text};

/// `rescind status`
#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    client: ClientOpts,
}

/// Run `rescind status`.
pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let opts = &args.client;
    let client = opts.client().await?;
    let s = client.status().await.map_err(|e| opts.error(e))?.raw;
    if opts.json {
        let vv: serde_json::Map<String, serde_json::Value> = s
            .version_vector
            .iter()
            .map(|e| (e.origin.clone(), json!(e.seq)))
            .collect();
        println!(
            "{}",
            json!({
                "node_id": s.node_id,
                "cluster_id": s.cluster_id,
                "upstream": (!s.upstream.is_empty()).then_some(&s.upstream),
                "watchers": s.watchers,
                "watchers_cut_off": s.watchers_cut_off,
                "node_name": s.node_name,
                "incarnation": s.incarnation,
                "region": s.region,
                "digest": s.digest,
                "deny_entries": s.deny_entries,
                "deny_bytes": s.deny_bytes,
                "cutoffs": s.cutoffs,
                "staleness_ms": staleness_json(s.staleness_ms),
                "version_vector": vv,
                "expired_pruned": s.expired_pruned,
                "uptime_ms": s.uptime_ms,
                "gc_last": {"before": s.gc_last_before, "after": s.gc_last_after},
                "peer_lag": s.peer_lag.iter().map(|p| json!({
                    "node": p.node, "region": p.region, "staleness_ms": staleness_json(p.staleness_ms),
                })).collect::<Vec<_>>(),
            })
        );
    } else {
        println!("node          {} (region {})", s.node_id, s.region);
        if !s.upstream.is_empty() {
            println!("following     {}", s.upstream);
        }
        println!("cluster       {}", s.cluster_id);
        println!("revoked ids   {}", s.deny_entries);
        println!("cutoffs       {}", s.cutoffs);
        println!("digest        {}", s.digest);
        println!("staleness     {}", staleness_text(s.staleness_ms));
        println!("expired GC'd  {}", s.expired_pruned);
        println!("uptime        {} s", s.uptime_ms / 1000);
        println!(
            "last GC       {} -> {} revoked ids",
            s.gc_last_before, s.gc_last_after
        );
        for e in &s.version_vector {
            println!("applied       {} up to op {}", e.origin, e.seq);
        }
        for p in &s.peer_lag {
            println!(
                "peer lag      {} ({}) {}",
                p.node,
                p.region,
                staleness_text(p.staleness_ms)
            );
        }
    }
    Ok(())
}
