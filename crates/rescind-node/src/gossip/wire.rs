//! Conversions between the peer protocol's protobuf messages and the gossip
//! core's types, validating everything that comes in.

use rescind_core::limits::{self, FieldError};
use rescind_core::{OriginId, VersionVector};
use rescind_gossip::{Exchange, ExchangeAnswer, MemberRecord, NodeInfo, Push, SnapshotPage};
use rescind_proto::v1 as pb;

/// Most members or clock entries accepted in one message.
pub const MAX_ENTRIES: usize = 4096;

/// Our info for the wire.
pub fn node_to_pb(n: &NodeInfo) -> pb::NodeInfo {
    pb::NodeInfo {
        name: n.name.clone(),
        incarnation: n.incarnation,
        region: n.region.clone(),
        addr: n.addr.clone(),
    }
}

/// A peer's info, validated.
pub fn node_from_pb(field: &str, n: Option<pb::NodeInfo>) -> Result<NodeInfo, FieldError> {
    let n = n.ok_or_else(|| FieldError::new(field, "is required"))?;
    limits::label(&format!("{field}.name"), &n.name)?;
    limits::label(&format!("{field}.region"), &n.region)?;
    if n.addr.is_empty() || n.addr.len() > 256 || n.addr.chars().any(char::is_control) {
        return Err(FieldError::new(
            format!("{field}.addr"),
            "must be a host:port of at most 256 bytes",
        ));
    }
    Ok(NodeInfo {
        name: n.name,
        incarnation: n.incarnation,
        region: n.region,
        addr: n.addr,
    })
}

/// A version vector for the wire.
pub fn clock_to_pb(v: &VersionVector) -> Vec<pb::ClockEntry> {
    v.iter()
        .map(|(o, seq)| pb::ClockEntry {
            origin_node: o.node.clone(),
            incarnation: o.incarnation,
            seq,
        })
        .collect()
}

/// A peer's version vector, validated.
pub fn clock_from_pb(entries: &[pb::ClockEntry]) -> Result<VersionVector, FieldError> {
    if entries.len() > MAX_ENTRIES {
        return Err(FieldError::new("clock", format!("at most {MAX_ENTRIES} entries")));
    }
    let mut v = VersionVector::new();
    for (i, e) in entries.iter().enumerate() {
        limits::label(&format!("clock[{i}].origin_node"), &e.origin_node)?;
        v.raise_to(&OriginId::new(e.origin_node.clone(), e.incarnation), e.seq);
    }
    Ok(v)
}

/// Clock entries as pairs.
pub fn clock_pairs(v: &VersionVector) -> Vec<(OriginId, u64)> {
    v.iter().map(|(o, s)| (o.clone(), s)).collect()
}

/// Members for the wire.
pub fn members_to_pb(records: &[MemberRecord]) -> Vec<pb::MemberRecord> {
    records
        .iter()
        .map(|r| pb::MemberRecord {
            node: Some(node_to_pb(&r.info)),
            removed: r.removed,
        })
        .collect()
}

/// A peer's members, validated.
pub fn members_from_pb(records: Vec<pb::MemberRecord>) -> Result<Vec<MemberRecord>, FieldError> {
    if records.len() > MAX_ENTRIES {
        return Err(FieldError::new(
            "members",
            format!("at most {MAX_ENTRIES} entries"),
        ));
    }
    records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            Ok(MemberRecord {
                info: node_from_pb(&format!("members[{i}].node"), r.node)?,
                removed: r.removed,
            })
        })
        .collect()
}

/// A round's request for the wire.
pub fn exchange_to_pb(x: &Exchange) -> pb::ExchangeRequest {
    pb::ExchangeRequest {
        from: Some(node_to_pb(&x.from)),
        clock: clock_to_pb(&x.clock),
        members: members_to_pb(&x.members),
    }
}

/// A caller's request, validated (its `from`, then `clock`, then `members`).
pub fn exchange_from_pb(r: pb::ExchangeRequest) -> Result<Exchange, FieldError> {
    Ok(Exchange {
        from: node_from_pb("from", r.from)?,
        clock: clock_from_pb(&r.clock)?,
        members: members_from_pb(r.members)?,
    })
}

/// An answer for the wire.
pub fn answer_to_pb(a: ExchangeAnswer) -> pb::ExchangeResponse {
    pb::ExchangeResponse {
        from: Some(node_to_pb(&a.from)),
        clock: clock_to_pb(&a.clock),
        ops: a.ops,
        more: a.more,
        snapshot_needed: a.snapshot_needed,
        freshness: a
            .freshness
            .into_iter()
            .map(|(node, age_ms)| pb::FreshnessAge { node, age_ms })
            .collect(),
        members: members_to_pb(&a.members),
    }
}

/// A peer's answer, validated (its ops are validated by the core's `receive`).
pub fn answer_from_pb(r: pb::ExchangeResponse) -> Result<ExchangeAnswer, FieldError> {
    Ok(ExchangeAnswer {
        from: node_from_pb("from", r.from)?,
        clock: clock_from_pb(&r.clock)?,
        members: members_from_pb(r.members)?,
        ops: r.ops,
        more: r.more,
        snapshot_needed: r.snapshot_needed,
        freshness: r.freshness.into_iter().map(|f| (f.node, f.age_ms)).collect(),
    })
}

/// A push for the wire.
pub fn push_to_pb(p: Push) -> pb::PushRequest {
    pb::PushRequest {
        from: Some(node_to_pb(&p.from)),
        ops: p.ops,
    }
}

/// A peer's push, its sender validated (its ops by the core's `on_push`).
pub fn push_from_pb(r: pb::PushRequest) -> Result<Push, FieldError> {
    Ok(Push {
        from: node_from_pb("from", r.from)?,
        ops: r.ops,
    })
}

/// A snapshot page for the wire (no `covered`: an empty clock).
pub fn page_to_pb(p: SnapshotPage) -> pb::SnapshotPage {
    pb::SnapshotPage {
        clock: p.covered.as_ref().map(clock_to_pb).unwrap_or_default(),
        deny: p.deny,
        cutoffs: p.cutoffs,
        next_cursor: p.next_cursor,
        done: p.done,
    }
}

/// A peer's snapshot page; its clock is read (and validated) on the `first`
/// page only, its entries are validated by the core's `Pull`.
pub fn page_from_pb(p: pb::SnapshotPage, first: bool) -> Result<SnapshotPage, FieldError> {
    Ok(SnapshotPage {
        covered: if first {
            Some(clock_from_pb(&p.clock)?)
        } else {
            None
        },
        deny: p.deny,
        cutoffs: p.cutoffs,
        next_cursor: p.next_cursor,
        done: p.done,
    })
}

/// A version vector from a client message (a Watch request's `from`),
/// validated; errors name `{field}[i].origin_node`.
pub fn vector_from_pb(field: &str, entries: &[pb::ClockEntry]) -> Result<VersionVector, FieldError> {
    if entries.len() > MAX_ENTRIES {
        return Err(FieldError::new(field, format!("at most {MAX_ENTRIES} entries")));
    }
    let mut v = VersionVector::new();
    for (i, e) in entries.iter().enumerate() {
        limits::label(&format!("{field}[{i}].origin_node"), &e.origin_node)?;
        let origin = OriginId::new(e.origin_node.clone(), e.incarnation);
        if v.get(&origin) != 0 {
            return Err(FieldError::new(
                format!("{field}[{i}]"),
                format!("origin {origin} appears twice"),
            ));
        }
        if e.seq == 0 {
            return Err(FieldError::new(format!("{field}[{i}].seq"), "must be at least 1"));
        }
        v.raise_to(&origin, e.seq);
    }
    Ok(v)
}
