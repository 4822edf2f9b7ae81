//! [`Propagation`]: how long a local op takes to be held by each peer, as
//! its origin sees it, on the origin's monotonic clock only.
//!
//! The writer records each durable batch of local ops (`(first seq, last
//! seq)` and the instant it was acknowledged). Whenever a peer reports its
//! durable version vector (in either direction of an exchange, or answering
//! a push), the ops of ours it newly covers are observed with the time since
//! their acknowledgement, under the peer's region. Two nodes' wall clocks are
//! never compared. The figure includes the delay until the peer's report
//! reaches the origin (at most about one gossip round for a push target).
//!
//! A peer's first report only sets its starting point, and a report lower
//! than an earlier one (a wiped data dir catching up) observes nothing until
//! it passes the earlier one: no op is observed twice for the same peer. At most [`MAX_BATCHES`] batches are
//! remembered; ops of older batches are counted in
//! `rescind_propagation_untracked_ops_total` instead of observed.

use std::collections::{HashMap, VecDeque};
// tokio's clock: the OS clock in a node, simulated time in the simulator.
use tokio::time::Instant;

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::histogram::{Histogram, LATENCY_SECONDS};

/// Most acknowledged batches remembered.
pub const MAX_BATCHES: usize = 8192;

/// Most peers tracked (more are ignored until one is forgotten).
pub const MAX_PEERS: usize = 1024;

/// A batch of local ops acknowledged at once.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Acked {
    first: u64,
    last: u64,
    at: Instant,
}

/// The pure bookkeeping: which ops each peer newly covers.
#[derive(Debug, Default)]
pub struct Tracker {
    batches: VecDeque<Acked>,
    /// Per peer, the highest seq of ours it reported.
    peers: HashMap<String, u64>,
    /// Ops that fell out of `batches` before every peer covered them.
    untracked: u64,
}

impl Tracker {
    /// Ops `first..=last` were acknowledged at `at`.
    pub fn acked(&mut self, first: u64, last: u64, at: Instant) {
        if last < first {
            return;
        }
        if self.batches.len() == MAX_BATCHES
            && let Some(old) = self.batches.pop_front()
        {
            let covered = self.peers.values().copied().min().unwrap_or(old.last);
            if covered < old.last {
                self.untracked += old.last - covered.max(old.first - 1);
            }
        }
        self.batches.push_back(Acked { first, last, at });
    }

    /// `peer` reports it holds our ops up to `seq` at `now`: the ops it newly
    /// covers, as `(seconds since acknowledged, how many)`.
    pub fn reported(&mut self, peer: &str, seq: u64, now: Instant) -> Vec<(f64, u64)> {
        let Some(prev) = self.peers.get(peer).copied() else {
            if self.peers.len() < MAX_PEERS {
                self.peers.insert(peer.to_owned(), seq);
            }
            return Vec::new();
        };
        if seq <= prev {
            return Vec::new();
        }
        self.peers.insert(peer.to_owned(), seq);
        let mut out = Vec::new();
        for b in &self.batches {
            if b.last <= prev || b.first > seq {
                continue;
            }
            let n = b.last.min(seq) - b.first.max(prev + 1) + 1;
            out.push((now.saturating_duration_since(b.at).as_secs_f64(), n));
        }
        self.forget_covered();
        out
    }

    /// Drop batches every known peer covers.
    fn forget_covered(&mut self) {
        let Some(covered) = self.peers.values().copied().min() else {
            return;
        };
        while self.batches.front().is_some_and(|b| b.last <= covered) {
            self.batches.pop_front();
        }
    }

    /// Batches held.
    pub fn batches(&self) -> usize {
        self.batches.len()
    }
}

type RegionLabel = Vec<(&'static str, String)>;

/// The tracker and the histogram it feeds.
#[derive(Debug)]
pub struct Propagation {
    tracker: Mutex<Tracker>,
    seconds: Family<RegionLabel, Histogram, fn() -> Histogram>,
    untracked: Counter,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_SECONDS)
}

impl Propagation {
    /// Registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let seconds = Family::<RegionLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "rescind_propagation_seconds",
            "Time from a local revocation's acknowledgement until a peer of peer_region reports holding it \
             durably, on this node's monotonic clock",
            seconds.clone(),
        );
        let untracked = Counter::default();
        registry.register(
            "rescind_propagation_untracked_ops",
            "Local ops whose acknowledgement time was forgotten before every peer reported them",
            untracked.clone(),
        );
        Self {
            tracker: Mutex::new(Tracker::default()),
            seconds,
            untracked,
        }
    }

    /// Local ops `first..=last` were acknowledged now.
    pub fn acked(&self, first: u64, last: u64) {
        let mut t = self.tracker.lock();
        let before = t.untracked;
        t.acked(first, last, Instant::now());
        let lost = t.untracked - before;
        drop(t);
        if lost > 0 {
            self.untracked.inc_by(lost);
        }
    }

    /// `peer` (its advertised address) of `region` holds our ops up to `seq`.
    /// Every region reported from has its series (at 0 before any op), so
    /// `rate()` sees the first ops.
    pub fn reported(&self, peer: &str, region: &str, seq: u64) {
        let observed = self.tracker.lock().reported(peer, seq, Instant::now());
        let h = self
            .seconds
            .get_or_create(&vec![("peer_region", region.to_owned())])
            .clone();
        for (secs, n) in observed {
            h.observe_n(secs, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_peer_report_observes_exactly_the_ops_it_newly_covers() {
        let t0 = Instant::now();
        let mut t = Tracker::default();
        assert!(
            t.reported("b", 0, t0).is_empty(),
            "the first report only sets the start"
        );
        t.acked(1, 3, t0);
        t.acked(4, 4, t0 + Duration::from_millis(100));
        let seen = t.reported("b", 2, t0 + Duration::from_millis(500));
        assert_eq!(seen, vec![(0.5, 2)]);
        let seen = t.reported("b", 4, t0 + Duration::from_secs(1));
        assert_eq!(seen, vec![(1.0, 1), (0.9, 1)]);
        assert!(
            t.reported("b", 4, t0 + Duration::from_secs(2)).is_empty(),
            "nothing new"
        );
        assert_eq!(t.batches(), 0, "batches every peer covers are forgotten");
    }

    #[test]
    fn each_peer_is_observed_on_its_own_and_never_twice() {
        let t0 = Instant::now();
        let mut t = Tracker::default();
        t.reported("b", 0, t0);
        t.reported("c", 0, t0);
        t.acked(1, 10, t0);
        assert_eq!(t.reported("b", 10, t0 + Duration::from_secs(1)), vec![(1.0, 10)]);
        assert_eq!(t.batches(), 1, "c has not reported yet");
        assert!(
            t.reported("b", 0, t0 + Duration::from_secs(2)).is_empty(),
            "a wiped peer"
        );
        assert!(
            t.reported("b", 10, t0 + Duration::from_secs(3)).is_empty(),
            "caught up: seen before"
        );
        assert_eq!(t.reported("c", 5, t0 + Duration::from_secs(4)), vec![(4.0, 5)]);
    }

    #[test]
    fn forgotten_batches_are_counted_not_lost_silently() {
        let t0 = Instant::now();
        let mut t = Tracker::default();
        t.reported("b", 0, t0);
        for i in 0..(MAX_BATCHES as u64 + 10) {
            t.acked(i * 2 + 1, i * 2 + 2, t0);
        }
        assert_eq!(t.batches(), MAX_BATCHES);
        assert_eq!(t.untracked, 20, "10 batches of 2 ops fell out uncovered");
    }
}
