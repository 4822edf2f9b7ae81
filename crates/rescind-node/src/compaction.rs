//! Which ops the log may drop after a checkpoint: a plain function over the
//! store, unit-tested without a node.
//!
//! An op of origin `o` with seq `s` goes when both hold:
//! - `s` is at or below the *older* kept checkpoint's seq for `o` (so either
//!   kept generation, with the log after it, still rebuilds the state);
//! - every live peer has acknowledged it (its durable vector covers `s`), or
//!   the op is older than the retention bound (`op_log_retention`): a peer
//!   further behind than that gets a snapshot instead.
//!
//! Ops are dropped as a prefix per origin: a peer's gap is always below what
//! remains.

use std::collections::BTreeMap;

use rescind_core::{Op, OriginId, Payload};
use rescind_store::{Store, StoreError};

/// Ops read per call while looking for the retention bound.
const SCAN_CHUNK: usize = 4096;

/// What every live peer has acknowledged: per origin, the lowest durable
/// seq among them. `None` while some live peer's vector is unknown (then
/// only retention drops ops).
pub type Acknowledged = Option<BTreeMap<OriginId, u64>>;

/// The acknowledged vector of a set of peers: the per-origin minimum, an
/// origin a peer lacks counting as 0. `None` for an unknown peer.
pub fn acknowledged<'a>(peers: impl IntoIterator<Item = Option<&'a [(OriginId, u64)]>>) -> Acknowledged {
    let mut out: Option<BTreeMap<OriginId, u64>> = None;
    for vector in peers {
        let vector: BTreeMap<&OriginId, u64> = vector?.iter().map(|(o, s)| (o, *s)).collect();
        match &mut out {
            None => out = Some(vector.into_iter().map(|(o, s)| (o.clone(), s)).collect()),
            Some(min) => {
                for (origin, seq) in min.iter_mut() {
                    *seq = (*seq).min(vector.get(origin).copied().unwrap_or(0));
                }
            }
        }
    }
    // No live peer at all: nothing to wait for.
    Some(out.unwrap_or_default())
}

fn op_time(op: &Op) -> u64 {
    match &op.payload {
        Payload::Token { revoked_at_ms, .. } | Payload::Cutoff { revoked_at_ms, .. } => *revoked_at_ms,
    }
}

/// Per origin, the seq up to which the log may drop ops (only origins
/// where that is above the current floor). `older` is the older kept
/// checkpoint's vector; `no_peers` says there is no live peer at all.
pub fn plan(
    store: &dyn Store,
    older: &[(OriginId, u64)],
    acknowledged: &Acknowledged,
    no_peers: bool,
    retain_after_ms: u64,
) -> Result<Vec<(OriginId, u64)>, StoreError> {
    let floor: BTreeMap<OriginId, u64> = store.log_floor()?.into_iter().collect();
    let mut out = Vec::new();
    for (origin, hard) in older {
        let acked = match acknowledged {
            _ if no_peers => *hard,
            Some(acked) => acked.get(origin).copied().unwrap_or(0),
            None => 0,
        };
        let mut upto = acked.min(*hard);
        // Past the retention bound, unacknowledged ops go too.
        'scan: while upto < *hard {
            let ops = store.ops_after(origin, upto, SCAN_CHUNK)?;
            if ops.is_empty() {
                break;
            }
            for op in &ops {
                if op.seq > *hard || op_time(op) >= retain_after_ms {
                    break 'scan;
                }
                upto = op.seq;
            }
        }
        if upto > floor.get(origin).copied().unwrap_or(0) {
            out.push((origin.clone(), upto));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use rescind_store::{Identity, MemStore};

    use super::*;

    fn op(origin: &OriginId, seq: u64, at: u64) -> Op {
        Op {
            origin: origin.clone(),
            seq,
            payload: Payload::Token {
                token_id: format!("t{seq}"),
                expires_at_ms: 0,
                revoked_at_ms: at,
                reason: String::new(),
                actor: String::new(),
            },
        }
    }

    fn store() -> (MemStore, OriginId) {
        let store = MemStore::with_identity(Identity {
            node_name: "a".into(),
            incarnation: 1,
        });
        let me = store.identity().origin();
        // Ops 1..=100 at times 10, 20, ..., 1000.
        let ops: Vec<Op> = (1..=100).map(|s| op(&me, s, s * 10)).collect();
        store.append(&ops).unwrap();
        (store, me)
    }

    #[test]
    fn acknowledged_is_the_minimum_and_unknown_peers_block_it() {
        let (a, b) = (OriginId::new("a", 1), OriginId::new("b", 1));
        let p1 = [(a.clone(), 10), (b.clone(), 5)];
        let p2 = [(a.clone(), 7)];
        let acked = acknowledged([Some(&p1[..]), Some(&p2[..])]).unwrap();
        assert_eq!(acked.get(&a), Some(&7));
        assert_eq!(
            acked.get(&b),
            Some(&0),
            "a peer lacking an origin holds none of it"
        );
        assert_eq!(acknowledged([Some(&p1[..]), None]), None);
        assert_eq!(acknowledged([]), Some(BTreeMap::new()));
    }

    #[test]
    fn only_acknowledged_ops_below_the_older_checkpoint_go() {
        let (store, me) = store();
        let acked = Some(BTreeMap::from([(me.clone(), 60)]));
        let older = vec![(me.clone(), 40)];
        assert_eq!(
            plan(&store, &older, &acked, false, 0).unwrap(),
            vec![(me.clone(), 40)]
        );
        let older = vec![(me.clone(), 80)];
        assert_eq!(
            plan(&store, &older, &acked, false, 0).unwrap(),
            vec![(me.clone(), 60)]
        );
        // No peers at all: the checkpoint alone bounds it.
        assert_eq!(
            plan(&store, &older, &None, true, 0).unwrap(),
            vec![(me.clone(), 80)]
        );
        // An unknown peer: nothing goes (retention 0 keeps everything).
        assert!(plan(&store, &older, &None, false, 0).unwrap().is_empty());
    }

    #[test]
    fn retention_drops_unacknowledged_ops_older_than_the_bound() {
        let (store, me) = store();
        let older = vec![(me.clone(), 80)];
        // Ops before time 305 (seqs 1..=30) are past retention.
        assert_eq!(
            plan(&store, &older, &None, false, 305).unwrap(),
            vec![(me.clone(), 30)]
        );
        // Never above the older checkpoint, however old.
        assert_eq!(
            plan(&store, &older, &None, false, u64::MAX).unwrap(),
            vec![(me.clone(), 80)]
        );
        // Nothing again once the floor is there.
        store.truncate_log(&[(me.clone(), 80)]).unwrap();
        assert!(plan(&store, &older, &None, false, u64::MAX).unwrap().is_empty());
    }
}
