//! Typed answers: staleness as `Option<Duration>` (`None` = unknown), reasons
//! as an enum, and the node that answered.

use std::time::Duration;

use rescind_core::check::Rule;
use rescind_core::{OriginId, PrincipalKind, VersionVector};
use rescind_proto::v1 as pb;

use crate::consistency::ConsistencyToken;

/// A version vector from the wire's clock entries (what a node sent).
pub fn vector_from_pb(entries: &[pb::ClockEntry]) -> VersionVector {
    let mut v = VersionVector::new();
    for e in entries {
        v.raise_to(&OriginId::new(e.origin_node.clone(), e.incarnation), e.seq);
    }
    v
}

/// A version vector as the wire's clock entries.
pub fn vector_to_pb(v: &VersionVector) -> Vec<pb::ClockEntry> {
    v.iter()
        .map(|(o, seq)| pb::ClockEntry {
            origin_node: o.node.clone(),
            incarnation: o.incarnation,
            seq,
        })
        .collect()
}

/// The wire's staleness (`u64::MAX` = unknown) as a duration.
pub fn staleness_from_wire(ms: u64) -> Option<Duration> {
    (ms != u64::MAX).then(|| Duration::from_millis(ms))
}

/// Which rule revoked a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The token id is in the deny set.
    TokenId,
    /// A cutoff on one of the token's principals.
    Cutoff(PrincipalKind),
}

impl Reason {
    /// From the wire (`None` for `REASON_NONE` or an unknown value).
    pub fn from_pb(raw: i32) -> Option<Reason> {
        match pb::Reason::try_from(raw).ok()? {
            pb::Reason::None => None,
            pb::Reason::TokenId => Some(Reason::TokenId),
            pb::Reason::Subject => Some(Reason::Cutoff(PrincipalKind::Subject)),
            pb::Reason::Client => Some(Reason::Cutoff(PrincipalKind::Client)),
            pb::Reason::Tenant => Some(Reason::Cutoff(PrincipalKind::Tenant)),
            pb::Reason::KeyId => Some(Reason::Cutoff(PrincipalKind::KeyId)),
            pb::Reason::Session => Some(Reason::Cutoff(PrincipalKind::Session)),
        }
    }

    /// From a decision's rule.
    pub fn from_rule(rule: Option<Rule>) -> Option<Reason> {
        rule.map(|r| match r {
            Rule::TokenId => Reason::TokenId,
            Rule::Cutoff(kind) => Reason::Cutoff(kind),
        })
    }

    /// `token_id`, `subject`, `client`, `tenant`, `key_id` or `session`.
    pub fn name(self) -> &'static str {
        match self {
            Reason::TokenId => "token_id",
            Reason::Cutoff(PrincipalKind::Subject) => "subject",
            Reason::Cutoff(PrincipalKind::Client) => "client",
            Reason::Cutoff(PrincipalKind::Tenant) => "tenant",
            Reason::Cutoff(PrincipalKind::KeyId) => "key_id",
            Reason::Cutoff(PrincipalKind::Session) => "session",
        }
    }
}

/// The answer to one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// Revoked, and by which rule; `None` = allowed.
    pub reason: Option<Reason>,
    /// For a token id: when it was revoked; for a cutoff: its `issued_before_ms`.
    pub revoked_at_ms: u64,
    /// The node that answered (`name#incarnation`).
    pub node_id: String,
    /// The endpoint the answer came from.
    pub endpoint: String,
    /// How long the answering node may have been missing revocations; `None`
    /// = unknown (it has not heard from every peer since it started).
    pub staleness: Option<Duration>,
}

impl Checked {
    /// Is the token revoked?
    pub fn revoked(&self) -> bool {
        self.reason.is_some()
    }

    /// From a `CheckResponse` served by `endpoint`.
    pub fn from_pb(r: &pb::CheckResponse, endpoint: &str) -> Self {
        Self {
            reason: if r.revoked {
                Reason::from_pb(r.reason).or(Some(Reason::TokenId))
            } else {
                None
            },
            revoked_at_ms: r.revoked_at_ms,
            node_id: r.node_id.clone(),
            endpoint: endpoint.to_owned(),
            staleness: staleness_from_wire(r.staleness_ms),
        }
    }
}

/// The acknowledgement of a durable revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revoked {
    /// Pass to a check (any node) to read this revocation.
    pub token: ConsistencyToken,
    /// The state already revoked this; nothing new was written.
    pub already_revoked: bool,
    /// The node that accepted it.
    pub node_id: String,
    /// The op's sequence number there (0 when already revoked).
    pub seq: u64,
}

/// A node's `Status`, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeStatus {
    /// `name#incarnation`.
    pub node_id: String,
    /// Region label.
    pub region: String,
    /// Cluster id (see the `Watch` hello).
    pub cluster_id: String,
    /// Revoked ids held.
    pub deny_entries: u64,
    /// Principals with a cutoff.
    pub cutoffs: u64,
    /// State digest (32 hex digits).
    pub digest: String,
    /// The version vector memory holds.
    pub clock: VersionVector,
    /// `None` = unknown.
    pub staleness: Option<Duration>,
    /// For an edge: the node it follows.
    pub upstream: Option<String>,
    /// The raw answer, for fields not typed here.
    pub raw: pb::StatusResponse,
}

impl NodeStatus {
    /// From a `StatusResponse`.
    pub fn from_pb(s: pb::StatusResponse) -> Self {
        let clock = vector_from_pb(&s.clock);
        Self {
            node_id: s.node_id.clone(),
            region: s.region.clone(),
            cluster_id: s.cluster_id.clone(),
            deny_entries: s.deny_entries,
            cutoffs: s.cutoffs,
            digest: s.digest.clone(),
            clock,
            staleness: staleness_from_wire(s.staleness_ms),
            upstream: (!s.upstream.is_empty()).then(|| s.upstream.clone()),
            raw: s,
        }
    }
}
