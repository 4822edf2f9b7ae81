//! `rescind revoke`: a token id, or every token of a principal issued before a time.

use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use rescind_proto::v1 as pb;
use serde_json::json;

use crate::opts::{ClientOpts, now_ms};
use crate::timearg::{format_ms, parse_duration, parse_time_ms};

/// `rescind revoke ...`
#[derive(Args, Debug)]
pub struct RevokeArgs {
    #[command(subcommand)]
    what: RevokeWhat,
}

#[derive(Subcommand, Debug)]
enum RevokeWhat {
    /// Revoke one token id (jti, opaque token id, API key id) until it expires.
    Token(TokenArgs),
    /// Revoke every token id listed in a file, in batches (incident response).
    Tokens(crate::bulk::BulkArgs),
    /// Revoke every token of a subject issued at or before --before.
    Subject(PrincipalArgs),
    /// Revoke every token issued to an OAuth client at or before --before.
    Client(PrincipalArgs),
    /// Revoke every token of a tenant issued at or before --before.
    Tenant(PrincipalArgs),
    /// Revoke every token signed with a key (kid) at or before --before.
    Key(PrincipalArgs),
    /// Revoke every token of a login session issued at or before --before.
    Session(PrincipalArgs),
}

#[derive(Args, Debug)]
struct TokenArgs {
    /// The token id.
    id: String,
    /// The token expires this long from now (DUR); the entry is dropped after that.
    #[arg(long, value_parser = parse_duration, conflicts_with = "expires_at")]
    expires_in: Option<Duration>,
    /// The token expires at this TIME. Neither flag: the entry is kept forever.
    #[arg(long)]
    expires_at: Option<String>,
    /// The issuer (`iss`) whose namespace the id lives in. [default: none]
    #[arg(long, default_value = "")]
    issuer: String,
    #[command(flatten)]
    common: RevokeCommon,
}

#[derive(Args, Debug)]
struct PrincipalArgs {
    /// The principal's id.
    id: String,
    /// Revoke tokens issued at or before this TIME. [default: now]
    #[arg(long, conflicts_with = "version_only")]
    before: Option<String>,
    /// Also revoke tokens whose version is below this.
    #[arg(long, default_value_t = 0)]
    min_version: u64,
    /// Raise --min-version only and leave the cutoff's time as it is (without
    /// this, the cutoff also revokes every token issued up to --before, now by
    /// default).
    #[arg(long, requires = "min_version")]
    version_only: bool,
    /// The issuer (`iss`) whose namespace the principal lives in. [default: none]
    #[arg(long, default_value = "")]
    issuer: String,
    #[command(flatten)]
    common: RevokeCommon,
}

/// What every revoke command takes: why, who, and where.
#[derive(Args, Debug)]
pub struct RevokeCommon {
    /// Why (kept in the node's op log; at most 256 bytes).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Who is revoking. [default: $USER]
    #[arg(long)]
    actor: Option<String>,
    #[command(flatten)]
    pub client: ClientOpts,
}

impl RevokeCommon {
    /// `--actor`, else `$USER`, else empty.
    pub fn actor(&self) -> String {
        self.actor
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_default()
    }
}

/// Run `rescind revoke`.
pub async fn revoke(args: RevokeArgs) -> anyhow::Result<()> {
    let now = now_ms();
    let time = |flag: &str, v: &str| parse_time_ms(v, now).map_err(|e| anyhow!("--{flag}: {e}"));
    let (target, common, label) = match args.what {
        RevokeWhat::Token(t) => {
            let expires_at_ms = match (t.expires_in, &t.expires_at) {
                (Some(d), _) => now.saturating_add(d.as_millis() as u64),
                (None, Some(at)) => time("expires-at", at)?,
                (None, None) => 0,
            };
            let target = pb::revoke_request::Target::Token(pb::TokenRevocation {
                token_id: t.id.clone(),
                expires_at_ms: i64::try_from(expires_at_ms).context("--expires-at is too far away")?,
                issuer: t.issuer.clone(),
            });
            (target, t.common, format!("token {}", t.id))
        }
        RevokeWhat::Tokens(bulk) => return crate::bulk::run(bulk).await,
        RevokeWhat::Subject(p) => principal(pb::PrincipalKind::Subject, "subject", p, now)?,
        RevokeWhat::Client(p) => principal(pb::PrincipalKind::Client, "client", p, now)?,
        RevokeWhat::Tenant(p) => principal(pb::PrincipalKind::Tenant, "tenant", p, now)?,
        RevokeWhat::Key(p) => principal(pb::PrincipalKind::KeyId, "key", p, now)?,
        RevokeWhat::Session(p) => principal(pb::PrincipalKind::Session, "session", p, now)?,
    };
    let opts = &common.client;
    let actor = common.actor();
    let message = pb::RevokeRequest {
        target: Some(target),
        reason: common.reason,
        actor,
    };
    opts.require_admin_token()?;
    let client = opts.client().await?;
    let resp = client.revoke(message).await.map_err(|e| opts.error(e))?;
    let token = resp.token.to_hex();
    if opts.json {
        println!(
            "{}",
            json!({
                "revoked": label,
                "already_revoked": resp.already_revoked,
                "seq": resp.seq,
                "node_id": resp.node_id,
                "consistency_token": token,
            })
        );
    } else if resp.already_revoked {
        println!("{label}: already revoked (nothing new written)\nconsistency token: {token}");
    } else {
        println!(
            "{label}: revoked, durable on {} as op {}\nconsistency token: {token}",
            resp.node_id, resp.seq
        );
    }
    Ok(())
}

fn principal(
    kind: pb::PrincipalKind,
    label: &str,
    p: PrincipalArgs,
    now: u64,
) -> anyhow::Result<(pb::revoke_request::Target, RevokeCommon, String)> {
    if p.version_only && p.min_version == 0 {
        return Err(anyhow!("--version-only needs --min-version of at least 1"));
    }
    let before = match &p.before {
        Some(v) => parse_time_ms(v, now).map_err(|e| anyhow!("--before: {e}"))?,
        None if p.version_only => 0,
        None => now,
    };
    let target = pb::revoke_request::Target::Cutoff(pb::CutoffRevocation {
        principal_kind: kind as i32,
        principal_id: p.id.clone(),
        issued_before_ms: i64::try_from(before).context("--before is too far away")?,
        min_version: p.min_version,
        issuer: p.issuer.clone(),
        version_only: p.version_only,
    });
    let what = if p.version_only {
        format!("{label} {} (tokens of a version below {})", p.id, p.min_version)
    } else {
        format!(
            "{label} {} (tokens issued at or before {})",
            p.id,
            format_ms(before)
        )
    };
    Ok((target, p.common, what))
}
