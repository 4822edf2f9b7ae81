//! Which ops a peer lacks, bounded by count and bytes.

use rescind_core::VersionVector;

use crate::source::{OpLog, SourceError};
use crate::wire::encode_op;

/// Bounds on one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most ops in one message.
    pub max_ops: usize,
    /// Most encoded op bytes in one message (at least one op is always sent).
    pub max_bytes: usize,
    /// A peer lagging by more ops than this gets a snapshot instead (when
    /// the snapshot covers that many of them; see [`OpLog::snapshot_clock`]).
    pub snapshot_after_ops: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_ops: 2048,
            max_bytes: 1024 * 1024,
            snapshot_after_ops: 100_000,
        }
    }
}

/// What to send a peer whose version vector is `theirs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// It lacks nothing we can vouch for.
    UpToDate,
    /// These encoded ops, in per-origin seq order; `more` when limits cut the list.
    Ops {
        /// Encoded ops.
        ops: Vec<Vec<u8>>,
        /// More remain for the next round.
        more: bool,
    },
    /// Our op log cannot serve what it lacks (or it lacks too much): it should
    /// pull a snapshot.
    Snapshot,
}

/// Plan the ops a peer lacks. `mine` must be the *durable* version vector: an
/// op is only ever shipped once its origin can no longer lose it.
pub fn plan_ops(
    log: &dyn OpLog,
    mine: &VersionVector,
    theirs: &VersionVector,
    limits: &Limits,
) -> Result<Plan, SourceError> {
    let behind: Vec<_> = mine
        .iter()
        .filter(|(o, seq)| theirs.get(o) < *seq)
        .map(|(o, seq)| (o.clone(), theirs.get(o), seq))
        .collect();
    if behind.is_empty() {
        return Ok(Plan::UpToDate);
    }
    let lag: u64 = behind.iter().map(|(_, from, to)| to - from).sum();
    if lag > limits.snapshot_after_ops {
        // Worth it only for the ops the snapshot itself covers: the rest
        // come from the log either way.
        let saved: u64 = match log.snapshot_clock()? {
            None => lag,
            Some(snap) => behind
                .iter()
                .map(|(o, from, to)| snap.get(o).min(*to).saturating_sub(*from))
                .sum(),
        };
        if saved > limits.snapshot_after_ops {
            return Ok(Plan::Snapshot);
        }
    }
    let (mut ops, mut bytes, mut more) = (Vec::new(), 0usize, false);
    for (origin, from, to) in behind {
        let room = limits.max_ops - ops.len();
        if room == 0 {
            more = true;
            break;
        }
        let wanted = usize::try_from(to - from).unwrap_or(usize::MAX);
        let found = log.ops_after(&origin, from, room.min(wanted))?;
        let mut expected = from + 1;
        if found.first().map(|op| op.seq) != Some(expected) {
            // The log no longer holds (or never held) the next op they need.
            return Ok(Plan::Snapshot);
        }
        for op in found {
            if op.seq != expected || op.seq > to {
                more |= op.seq != expected;
                break;
            }
            let encoded = encode_op(&op);
            if !ops.is_empty() && bytes + encoded.len() > limits.max_bytes {
                return Ok(Plan::Ops { ops, more: true });
            }
            bytes += encoded.len();
            ops.push(encoded);
            expected += 1;
        }
        if expected <= to {
            more = true;
        }
    }
    Ok(Plan::Ops { ops, more })
}

#[cfg(test)]
mod tests {
    use rescind_core::{Op, OriginId};

    use super::*;
    use crate::testing::{Log, token_op};
    use crate::wire::decode_ops;

    /// A log holding `ops`, and the version vector they make.
    fn log_with(ops: &[Op]) -> (Log, VersionVector) {
        let mut log = Log::new();
        let mut clock = VersionVector::new();
        for o in ops {
            clock.observe(&o.origin, o.seq);
            log.insert((o.origin.clone(), o.seq), o.clone());
        }
        (log, clock)
    }

    fn op(origin: &OriginId, seq: u64) -> Op {
        token_op(origin, seq, &format!("{}-{seq}", origin.node))
    }

    fn seqs(plan: &Plan) -> Vec<(String, u64)> {
        match plan {
            Plan::Ops { ops, .. } => decode_ops(ops)
                .unwrap()
                .into_iter()
                .map(|o| (o.origin.node, o.seq))
                .collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn sends_exactly_what_is_missing_in_order() {
        let (a, b) = (OriginId::new("a", 1), OriginId::new("b", 2));
        let mut ops: Vec<Op> = (1..=5).map(|s| op(&a, s)).collect();
        ops.extend((1..=3).map(|s| op(&b, s)));
        let (log, mine) = log_with(&ops);
        let mut theirs = VersionVector::new();
        theirs.raise_to(&a, 3);
        let plan = plan_ops(&log, &mine, &theirs, &Limits::default()).unwrap();
        assert_eq!(
            seqs(&plan),
            vec![
                ("a".into(), 4),
                ("a".into(), 5),
                ("b".into(), 1),
                ("b".into(), 2),
                ("b".into(), 3)
            ]
        );
        assert!(matches!(plan, Plan::Ops { more: false, .. }));
        assert_eq!(
            plan_ops(&log, &mine, &mine, &Limits::default()).unwrap(),
            Plan::UpToDate
        );
        // A peer ahead of us gets nothing (it pushes to us instead).
        let mut ahead = mine.clone();
        ahead.raise_to(&a, 50);
        ahead.raise_to(&b, 50);
        assert_eq!(
            plan_ops(&log, &mine, &ahead, &Limits::default()).unwrap(),
            Plan::UpToDate
        );
    }

    #[test]
    fn limits_cut_the_list_and_say_more() {
        let a = OriginId::new("a", 1);
        let ops: Vec<Op> = (1..=10).map(|s| op(&a, s)).collect();
        let (log, mine) = log_with(&ops);
        let few = Limits {
            max_ops: 4,
            ..Limits::default()
        };
        let plan = plan_ops(&log, &mine, &VersionVector::new(), &few).unwrap();
        assert_eq!(seqs(&plan).len(), 4);
        assert!(matches!(plan, Plan::Ops { more: true, .. }));
        let tiny = Limits {
            max_bytes: 1,
            ..Limits::default()
        };
        let plan = plan_ops(&log, &mine, &VersionVector::new(), &tiny).unwrap();
        assert_eq!(seqs(&plan).len(), 1, "one op always goes, whatever its size");
        // Only up to our (durable) clock, never beyond.
        let mut durable = VersionVector::new();
        durable.raise_to(&a, 6);
        let plan = plan_ops(&log, &durable, &VersionVector::new(), &Limits::default()).unwrap();
        assert_eq!(seqs(&plan).last(), Some(&("a".into(), 6)));
    }

    #[test]
    fn a_log_that_cannot_serve_or_a_large_lag_means_snapshot() {
        let a = OriginId::new("a", 1);
        // The log holds 6..=8 only (as after catching up from a snapshot).
        let ops: Vec<Op> = (6..=8).map(|s| op(&a, s)).collect();
        let (log, _) = log_with(&ops);
        let mut mine = VersionVector::new();
        mine.raise_to(&a, 8);
        let mut theirs = VersionVector::new();
        theirs.raise_to(&a, 2);
        assert_eq!(
            plan_ops(&log, &mine, &theirs, &Limits::default()).unwrap(),
            Plan::Snapshot
        );
        theirs.raise_to(&a, 5);
        assert_eq!(
            seqs(&plan_ops(&log, &mine, &theirs, &Limits::default()).unwrap()).len(),
            3
        );
        let eager = Limits {
            snapshot_after_ops: 2,
            ..Limits::default()
        };
        assert_eq!(
            plan_ops(&log, &mine, &VersionVector::new(), &eager).unwrap(),
            Plan::Snapshot
        );
    }

    #[test]
    fn a_failing_log_is_an_error() {
        struct Broken;
        impl OpLog for Broken {
            fn ops_after(&self, _: &OriginId, _: u64, _: usize) -> Result<Vec<Op>, SourceError> {
                Err(SourceError("disk on fire".into()))
            }
        }
        let a = OriginId::new("a", 1);
        let mut mine = VersionVector::new();
        mine.raise_to(&a, 1);
        let err = plan_ops(&Broken, &mine, &VersionVector::new(), &Limits::default()).unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
    }
}
