//! [`Holdings`]: which acknowledged revocations each holder (a node, or an
//! edge replica) still lacks, and when each was first held by all of them.
//! Incremental, so sweeps over many seeds stay fast. Shared by the node and
//! the edge observers.

use std::collections::{BTreeMap, BTreeSet};

use crate::observe::Acked;

/// Per holder, what it lacks; per revocation, when every holder had it.
#[derive(Default)]
pub struct Holdings {
    /// Revocations seen so far (index = position in the log).
    seen: usize,
    /// Per holder: indices of acknowledged revocations it does not hold yet.
    missing: BTreeMap<String, BTreeSet<usize>>,
    /// When each revocation was first held by every holder asked about.
    pub enforced_ms: Vec<Option<u64>>,
    /// Not yet held everywhere.
    unenforced: BTreeSet<usize>,
}

impl Holdings {
    /// Revocations acknowledged since the last call are missing at every
    /// one of `holders` (running or not).
    pub fn grow<'a>(&mut self, holders: impl IntoIterator<Item = &'a String>, log: &[Acked]) {
        for h in holders {
            self.missing
                .entry(h.clone())
                .or_default()
                .extend(self.seen..log.len());
        }
        for i in self.seen..log.len() {
            self.enforced_ms.push(None);
            self.unenforced.insert(i);
        }
        self.seen = log.len();
    }

    /// `holder` lost everything (its disk was wiped).
    pub fn wiped(&mut self, holder: &str, acked: usize) {
        self.missing.insert(holder.to_owned(), (0..acked).collect());
    }

    /// Drop from `holder`'s missing set what `holds` says it has now; returns
    /// its true lag at `now_ms` (age of the oldest revocation it still lacks).
    pub fn update(&mut self, holder: &str, now_ms: u64, log: &[Acked], holds: impl Fn(&str) -> bool) -> u64 {
        let missing = self.missing.entry(holder.to_owned()).or_default();
        missing.retain(|&i| !holds(&log[i].id));
        missing
            .iter()
            .map(|&i| now_ms.saturating_sub(log[i].at_ms))
            .max()
            .unwrap_or(0)
    }

    /// Revocations some of `holders` still lacks.
    pub fn lacking<'a>(&self, holders: impl IntoIterator<Item = &'a String>) -> BTreeSet<usize> {
        holders
            .into_iter()
            .flat_map(|h| self.missing.get(h).into_iter().flatten().copied())
            .collect()
    }

    /// Mark as enforced at `now_ms` every revocation none of `holders` lacks.
    pub fn settle<'a>(&mut self, now_ms: u64, holders: impl IntoIterator<Item = &'a String>) {
        let still = self.lacking(holders);
        let done: Vec<usize> = self
            .unenforced
            .iter()
            .copied()
            .filter(|i| !still.contains(i))
            .collect();
        for i in done {
            self.enforced_ms[i] = Some(now_ms);
            self.unenforced.remove(&i);
        }
    }

    /// How many revocations `holder` lacks.
    pub fn missing_count(&self, holder: &str) -> usize {
        self.missing.get(holder).map_or(0, BTreeSet::len)
    }
}
