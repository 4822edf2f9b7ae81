//! `rescind check`: is this token revoked?

use anyhow::{Context, anyhow};
use clap::Args;
use rescind_client::ConsistencyToken;
use rescind_proto::v1 as pb;
use serde_json::json;

use crate::opts::{ClientOpts, now_ms, staleness_json, staleness_text};
use crate::timearg::{format_ms, parse_time_ms};

/// `rescind check ...`
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The token's id.
    #[arg(long)]
    token_id: Option<String>,
    /// The token's subject.
    #[arg(long)]
    subject: Option<String>,
    /// The OAuth client it was issued to.
    #[arg(long)]
    client_id: Option<String>,
    /// Its tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Its signing key id (kid).
    #[arg(long)]
    key_id: Option<String>,
    /// Its login session.
    #[arg(long)]
    session_id: Option<String>,
    /// When it was issued (TIME). Absent: unknown, which any time cutoff on one
    /// of its principals revokes.
    #[arg(long)]
    issued_at: Option<String>,
    /// Its version, compared with a principal's --min-version.
    #[arg(long)]
    token_version: Option<u64>,
    /// Wait until the node has applied this revocation (hex from `revoke`).
    #[arg(long)]
    consistency_token: Option<String>,
    /// The token's issuer (`iss`): look the id and principals up in its namespace.
    #[arg(long)]
    issuer: Option<String>,
    #[command(flatten)]
    client: ClientOpts,
}

fn reason_name(r: i32) -> &'static str {
    match pb::Reason::try_from(r) {
        Ok(pb::Reason::TokenId) => "token_id",
        Ok(pb::Reason::Subject) => "subject",
        Ok(pb::Reason::Client) => "client",
        Ok(pb::Reason::Tenant) => "tenant",
        Ok(pb::Reason::KeyId) => "key_id",
        Ok(pb::Reason::Session) => "session",
        Ok(pb::Reason::None) | Err(_) => "none",
    }
}

/// Run `rescind check`.
pub async fn check(args: CheckArgs) -> anyhow::Result<()> {
    let issued_at_ms = match &args.issued_at {
        Some(v) => parse_time_ms(v, now_ms()).map_err(|e| anyhow!("--issued-at: {e}"))?,
        None => 0,
    };
    let consistency_token = match &args.consistency_token {
        Some(h) => Some(
            ConsistencyToken::from_hex(h)
                .map_err(|e| anyhow!("--consistency-token: {e}"))?
                .bytes()
                .to_vec(),
        ),
        None => None,
    };
    let message = pb::CheckRequest {
        token_id: args.token_id,
        subject: args.subject,
        client_id: args.client_id,
        tenant: args.tenant,
        key_id: args.key_id,
        session_id: args.session_id,
        issued_at_ms: i64::try_from(issued_at_ms).context("--issued-at is too far away")?,
        token_version: args.token_version,
        consistency_token,
        issuer: args.issuer.clone(),
    };
    let opts = &args.client;
    let client = opts.client().await?;
    let (r, _, _) = client
        .call(opts.timeout, |mut stub, left| {
            let req = client.request(message.clone(), left);
            async move { stub.check(req).await.map(|r| r.into_inner()) }
        })
        .await
        .map_err(|e| opts.error(e))?;
    let reason = reason_name(r.reason);
    if opts.json {
        println!(
            "{}",
            json!({
                "revoked": r.revoked,
                "reason": reason,
                "revoked_at_ms": r.revoked_at_ms,
                "node_id": r.node_id,
                "staleness_ms": staleness_json(r.staleness_ms),
            })
        );
    } else if r.revoked {
        let when = if r.revoked_at_ms > 0 {
            format!(", at {}", format_ms(r.revoked_at_ms))
        } else {
            String::new()
        };
        println!(
            "revoked (by {reason}{when}); answered by {}, staleness {}",
            r.node_id,
            staleness_text(r.staleness_ms)
        );
    } else {
        println!(
            "allowed; answered by {}, staleness {}",
            r.node_id,
            staleness_text(r.staleness_ms)
        );
    }
    Ok(())
}
