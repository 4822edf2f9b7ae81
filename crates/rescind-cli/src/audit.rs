//! `rescind audit`: who revoked what, and when, from a node's audit trail.

use anyhow::anyhow;
use clap::Args;
use rescind_proto::v1 as pb;
use serde_json::json;

use crate::opts::{ClientOpts, now_ms};
use crate::timearg::{format_ms, parse_time_ms};

/// Most records one run prints.
const MAX_LIMIT: usize = 1_000_000;

/// `rescind audit ...`
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Revocations accepted at or after this TIME.
    #[arg(long)]
    since: Option<String>,
    /// Revocations accepted at or before this TIME.
    #[arg(long)]
    until: Option<String>,
    /// Only this actor's.
    #[arg(long)]
    actor: Option<String>,
    /// Only this token id (as the trail keeps it) or principal.
    #[arg(long)]
    principal: Option<String>,
    /// Only this kind: token, subject, client, tenant, key_id, session.
    #[arg(long)]
    target: Option<String>,
    /// Print at most this many (1..=1000000).
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    #[command(flatten)]
    client: ClientOpts,
}

fn time_arg(flag: &str, v: &Option<String>) -> anyhow::Result<u64> {
    match v {
        Some(v) => parse_time_ms(v, now_ms()).map_err(|e| anyhow!("--{flag}: {e}")),
        None => Ok(0),
    }
}

/// Run `rescind audit`.
pub async fn audit(args: AuditArgs) -> anyhow::Result<()> {
    if args.limit == 0 || args.limit > MAX_LIMIT {
        return Err(anyhow!("--limit must be 1..={MAX_LIMIT} (got {})", args.limit));
    }
    let opts = &args.client;
    if opts.token().is_none() {
        return Err(anyhow!(
            "audit needs the admin token: pass --token, set RESCIND_TOKEN, or run where {}/admin.token is readable",
            opts.data_dir.display()
        ));
    }
    let mut request = pb::ListRevocationsRequest {
        since_ms: time_arg("since", &args.since)?,
        until_ms: time_arg("until", &args.until)?,
        actor: args.actor.clone().unwrap_or_default(),
        principal: args.principal.clone().unwrap_or_default(),
        target: args.target.clone().unwrap_or_default(),
        page_size: args.limit.min(1000) as u32,
        cursor: Vec::new(),
    };
    let client = opts.client().await?;
    let (mut records, mut gaps) = (Vec::new(), Vec::new());
    let node = loop {
        let message = request.clone();
        let (page, _, _) = client
            .call(opts.timeout, |mut stub, left| {
                let req = client.request(message.clone(), left);
                async move { stub.list_revocations(req).await.map(|r| r.into_inner()) }
            })
            .await
            .map_err(|e| opts.error(e))?;
        records.extend(page.records);
        gaps.extend(page.gaps);
        if page.next_cursor.is_empty() || records.len() >= args.limit {
            break page.node_id;
        }
        request.cursor = page.next_cursor;
    };
    records.truncate(args.limit);
    if opts.json {
        let rows: Vec<_> = records
            .iter()
            .map(|r| {
                json!({
                    "at_ms": r.at_ms, "origin": r.origin, "seq": r.seq, "actor": r.actor,
                    "reason": r.reason, "issuer": r.issuer, "target": r.target, "id": r.id,
                    "expires_at_ms": r.expires_at_ms, "issued_before_ms": r.issued_before_ms,
                    "min_version": r.min_version,
                })
            })
            .collect();
        let gaps: Vec<_> = gaps
            .iter()
            .map(|g| json!({"origin": g.origin, "from_seq": g.from_seq, "to_seq": g.to_seq, "noted_at_ms": g.noted_at_ms}))
            .collect();
        println!("{}", json!({"node_id": node, "records": rows, "gaps": gaps}));
        return Ok(());
    }
    println!(
        "{:<24} {:<16} {:<8} {:<40} ORIGIN / REASON",
        "TIME", "ACTOR", "TARGET", "ID"
    );
    for r in &records {
        let id = if r.issuer.is_empty() {
            r.id.clone()
        } else {
            format!("{} ({})", r.id, r.issuer)
        };
        println!(
            "{:<24} {:<16} {:<8} {:<40} {}#{} {}",
            format_ms(r.at_ms),
            r.actor,
            r.target,
            id,
            r.origin,
            r.seq,
            r.reason
        );
    }
    println!("{} revocation(s), from {node}", records.len());
    for g in &gaps {
        println!(
            "note: this node adopted a snapshot at {} and holds no audit records of ops {}..={} of {}",
            format_ms(g.noted_at_ms),
            g.from_seq,
            g.to_seq,
            g.origin
        );
    }
    Ok(())
}
