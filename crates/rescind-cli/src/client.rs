//! The client commands: `revoke`, `check`, `status`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use rescind_proto::v1 as pb;
use rescind_proto::v1::revocations_client::RevocationsClient;
use serde_json::json;
use tonic::transport::Channel;

use crate::timearg::{format_ms, parse_duration, parse_time_ms};

/// Options every client command takes.
#[derive(Args, Debug)]
pub struct ClientOpts {
    /// Address of the node.
    #[arg(long, env = "RESCIND_ADDR", default_value = "127.0.0.1:7400")]
    addr: String,
    /// Bearer token: the admin token for `revoke`, the check token for reads on
    /// a node that requires one. Default: the first line of <data-dir>/admin.token.
    #[arg(long, env = "RESCIND_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Where to find admin.token when --token and RESCIND_TOKEN are not given.
    #[arg(long, env = "RESCIND_DATA_DIR", default_value = "./rescind-data")]
    data_dir: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Give up after this long (DUR).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
}

impl ClientOpts {
    fn token(&self) -> Option<String> {
        rescind_node::auth::token_or_file(self.token.as_deref(), &self.data_dir)
            .ok()
            .filter(|t| !t.is_empty())
    }

    async fn connect(&self) -> anyhow::Result<RevocationsClient<Channel>> {
        let url = if self.addr.contains("://") {
            self.addr.clone()
        } else {
            format!("http://{}", self.addr)
        };
        let endpoint = Channel::from_shared(url)
            .map_err(|_| anyhow!("--addr {} is not a host:port address", self.addr))?
            .connect_timeout(self.timeout)
            .timeout(self.timeout);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| anyhow!("cannot reach rescind node at {}: {}", self.addr, root_cause(&e)))?;
        Ok(RevocationsClient::new(channel))
    }

    fn request<T>(&self, message: T, with_token: bool) -> anyhow::Result<tonic::Request<T>> {
        let mut req = tonic::Request::new(message);
        req.set_timeout(self.timeout);
        if with_token && let Some(t) = self.token() {
            let value = format!("Bearer {t}")
                .parse()
                .map_err(|_| anyhow!("the token has characters that cannot go in a header"))?;
            req.metadata_mut().insert("authorization", value);
        }
        Ok(req)
    }

    fn call_error(&self, status: tonic::Status) -> anyhow::Error {
        if status.code() == tonic::Code::Unavailable && status.message().contains("tcp connect") {
            return anyhow!("cannot reach rescind node at {}: {}", self.addr, status.message());
        }
        anyhow!(
            "node at {} answered {:?}: {}",
            self.addr,
            status.code(),
            status.message()
        )
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Staleness for people: `u64::MAX` means the node has not yet heard of every peer.
fn staleness_text(ms: u64) -> String {
    if ms == u64::MAX {
        "unknown (not yet heard from every peer)".into()
    } else {
        format!("{ms} ms")
    }
}

/// Staleness for JSON: null when unknown.
fn staleness_json(ms: u64) -> serde_json::Value {
    if ms == u64::MAX {
        serde_json::Value::Null
    } else {
        json!(ms)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

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
    #[command(flatten)]
    common: RevokeCommon,
}

#[derive(Args, Debug)]
struct PrincipalArgs {
    /// The principal's id.
    id: String,
    /// Revoke tokens issued at or before this TIME. [default: now]
    #[arg(long)]
    before: Option<String>,
    /// Also revoke tokens whose version is below this.
    #[arg(long, default_value_t = 0)]
    min_version: u64,
    #[command(flatten)]
    common: RevokeCommon,
}

#[derive(Args, Debug)]
struct RevokeCommon {
    /// Why (kept in the node's op log; at most 256 bytes).
    #[arg(long, default_value = "")]
    reason: String,
    /// Who is revoking. [default: $USER]
    #[arg(long)]
    actor: Option<String>,
    #[command(flatten)]
    client: ClientOpts,
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
            });
            (target, t.common, format!("token {}", t.id))
        }
        RevokeWhat::Subject(p) => principal(pb::PrincipalKind::Subject, "subject", p, now)?,
        RevokeWhat::Client(p) => principal(pb::PrincipalKind::Client, "client", p, now)?,
        RevokeWhat::Tenant(p) => principal(pb::PrincipalKind::Tenant, "tenant", p, now)?,
        RevokeWhat::Key(p) => principal(pb::PrincipalKind::KeyId, "key", p, now)?,
        RevokeWhat::Session(p) => principal(pb::PrincipalKind::Session, "session", p, now)?,
    };
    let opts = &common.client;
    let actor = common
        .actor
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default();
    let message = pb::RevokeRequest {
        target: Some(target),
        reason: common.reason,
        actor,
    };
    if opts.token().is_none() {
        return Err(anyhow!(
            "revoke needs the admin token: pass --token, set RESCIND_TOKEN, or run where {}/admin.token is readable",
            opts.data_dir.display()
        ));
    }
    let mut client = opts.connect().await?;
    let resp = client
        .revoke(opts.request(message, true)?)
        .await
        .map_err(|s| opts.call_error(s))?
        .into_inner();
    let token = crate::hex::encode(&resp.consistency_token);
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
    let before = match &p.before {
        Some(v) => parse_time_ms(v, now).map_err(|e| anyhow!("--before: {e}"))?,
        None => now,
    };
    let target = pb::revoke_request::Target::Cutoff(pb::CutoffRevocation {
        principal_kind: kind as i32,
        principal_id: p.id.clone(),
        issued_before_ms: i64::try_from(before).context("--before is too far away")?,
        min_version: p.min_version,
    });
    Ok((
        target,
        p.common,
        format!(
            "{label} {} (tokens issued at or before {})",
            p.id,
            format_ms(before)
        ),
    ))
}

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
        Some(h) => Some(crate::hex::decode(h).map_err(|e| anyhow!("--consistency-token: {e}"))?),
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
    };
    let opts = &args.client;
    let mut client = opts.connect().await?;
    let r = client
        .check(opts.request(message, true)?)
        .await
        .map_err(|s| opts.call_error(s))?
        .into_inner();
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

/// `rescind status`
#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    client: ClientOpts,
}

/// Run `rescind status`.
pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let opts = &args.client;
    let mut client = opts.connect().await?;
    let s = client
        .status(opts.request(pb::StatusRequest {}, true)?)
        .await
        .map_err(|s| opts.call_error(s))?
        .into_inner();
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
                "node_name": s.node_name,
                "incarnation": s.incarnation,
                "region": s.region,
                "digest": s.digest,
                "deny_entries": s.deny_entries,
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

/// `rescind peers [remove NODE]`
#[derive(Args, Debug)]
pub struct PeersArgs {
    #[command(subcommand)]
    action: Option<PeersAction>,
    #[command(flatten)]
    client: ClientOpts,
}

#[derive(Subcommand, Debug)]
enum PeersAction {
    /// Retire a node (by name) so it no longer counts for staleness; spreads by gossip.
    Remove {
        /// The node's name.
        name: String,
        #[command(flatten)]
        client: ClientOpts,
    },
}

/// Run `rescind peers`.
pub async fn peers(args: PeersArgs) -> anyhow::Result<()> {
    if let Some(PeersAction::Remove { name, client: opts }) = args.action {
        let mut client = opts.connect().await?;
        let r = client
            .remove_peer(opts.request(pb::RemovePeerRequest { name: name.clone() }, true)?)
            .await
            .map_err(|s| opts.call_error(s))?
            .into_inner();
        if opts.json {
            println!("{}", json!({ "name": name, "removed": r.removed }));
        } else if r.removed {
            println!("{name}: retired; it no longer counts for staleness");
        } else {
            return Err(anyhow!("{name}: no such peer on {}", opts.addr));
        }
        return Ok(());
    }
    let opts = &args.client;
    let mut client = opts.connect().await?;
    let list = client
        .list_peers(opts.request(pb::ListPeersRequest {}, true)?)
        .await
        .map_err(|s| opts.call_error(s))?
        .into_inner();
    if opts.json {
        let peers: Vec<_> = list
            .peers
            .iter()
            .map(|p| {
                json!({
                    "name": p.name, "region": p.region, "addr": p.addr, "incarnation": p.incarnation,
                    "removed": p.removed, "last_contact_ago_ms": p.last_contact_ago_ms,
                    "staleness_ms": staleness_json(p.staleness_ms),
                })
            })
            .collect();
        println!("{}", json!({ "peers": peers }));
        return Ok(());
    }
    println!(
        "{:<20} {:<12} {:<22} {:>14} {:>12}",
        "NAME", "REGION", "ADDR", "LAST CONTACT", "LAG"
    );
    for p in &list.peers {
        let contact = p
            .last_contact_ago_ms
            .map_or("never".to_string(), |ms| format!("{ms} ms ago"));
        let lag = if p.removed {
            "retired".to_string()
        } else {
            staleness_text(p.staleness_ms)
        };
        println!(
            "{:<20} {:<12} {:<22} {:>14} {:>12}",
            p.name, p.region, p.addr, contact, lag
        );
    }
    Ok(())
}
