//! Membership and freshness.
//!
//! # Staleness that never under-reports
//! `fresh_as_of[M]` is a time on *this* node's monotonic clock at which this
//! node held every op M had written by then. A round A→B gives A, per node M,
//! B's age of that knowledge; A adopts `sent_at - age`, where `sent_at` is when
//! A sent the request (so the whole round trip counts against freshness), and
//! only for nodes M whose ops A now holds at least as far as B's version
//! vector does. Only durations on each node's own monotonic clock are used, so
//! wall-clock skew between nodes cannot make a node look fresher than it is.
//!
//! Staleness = now − the oldest `fresh_as_of` among live (not removed)
//! members. While some live member (or configured seed) has never been heard
//! of since this node started, staleness is *unknown* ([`UNKNOWN`]): a node
//! restarted after downtime cannot know what it missed until a peer tells it.

use std::collections::BTreeMap;

use rand::Rng;

/// Staleness of a node that has not yet heard of every live peer since it started.
pub const UNKNOWN: u64 = u64::MAX;

/// What a node knows of its own freshness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Floor {
    /// No live peer: nothing to be stale about.
    NoPeers,
    /// Some live peer was never heard of since start.
    Unknown,
    /// Fresh about every live peer as of this monotonic time.
    At(u64),
}
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

/// How a node describes itself to peers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node name.
    pub name: String,
    /// Incarnation of its data dir.
    pub incarnation: u64,
    /// Region label.
    pub region: String,
    /// Address peers dial (`host:port`).
    pub addr: String,
}

/// A member as peers exchange it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// Who.
    pub info: NodeInfo,
    /// Retired by an operator: no longer counted for staleness or chosen as a peer.
    pub removed: bool,
}

/// One peer as `rescind peers` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerView {
    /// Who.
    pub info: NodeInfo,
    /// Retired.
    pub removed: bool,
    /// Milliseconds since the last direct exchange (None: never).
    pub last_contact_ago_ms: Option<u64>,
    /// How long this node may be missing this peer's revocations ([`UNKNOWN`]: never heard).
    pub staleness_ms: u64,
}

#[derive(Clone, Debug)]
struct Member {
    info: NodeInfo,
    removed: bool,
    last_contact: Option<u64>,
    fresh_as_of: Option<u64>,
}

/// What this node knows of the cluster.
#[derive(Clone, Debug)]
pub struct Cluster {
    me: NodeInfo,
    members: BTreeMap<String, Member>,
    /// Configured seed addresses, and the member each turned out to be.
    seeds: BTreeMap<String, Option<String>>,
}

impl Cluster {
    /// A cluster view with only seeds.
    pub fn new(me: NodeInfo, seeds: impl IntoIterator<Item = String>) -> Self {
        let seeds = seeds
            .into_iter()
            .filter(|s| *s != me.addr)
            .map(|s| (s, None))
            .collect();
        Self {
            me,
            members: BTreeMap::new(),
            seeds,
        }
    }

    /// This node.
    pub fn me(&self) -> &NodeInfo {
        &self.me
    }

    /// Set the address peers dial (known once the listener is bound).
    pub fn set_addr(&mut self, addr: &str) {
        self.me.addr = addr.to_owned();
        self.seeds.remove(addr);
    }

    /// A peer described itself in a direct exchange (`dialed`: the address we
    /// called it on, if we called).
    pub fn contact(&mut self, dialed: Option<&str>, info: &NodeInfo, now: u64) {
        if let Some(addr) = dialed
            && let Some(seed) = self.seeds.get_mut(addr)
        {
            *seed = Some(info.name.clone());
        }
        if info.name == self.me.name {
            return;
        }
        let m = self.members.entry(info.name.clone()).or_insert_with(|| Member {
            info: info.clone(),
            removed: false,
            last_contact: None,
            fresh_as_of: None,
        });
        if info.incarnation > m.info.incarnation {
            m.removed = false;
        }
        if info.incarnation >= m.info.incarnation {
            m.info = info.clone();
            m.last_contact = Some(now);
        }
    }

    /// Members a peer told us about. Removal is sticky for an incarnation; a
    /// higher incarnation is a new life of that node.
    pub fn learn(&mut self, records: &[MemberRecord]) {
        for r in records {
            if r.info.name == self.me.name {
                continue;
            }
            match self.members.get_mut(&r.info.name) {
                None => {
                    self.members.insert(
                        r.info.name.clone(),
                        Member {
                            info: r.info.clone(),
                            removed: r.removed,
                            last_contact: None,
                            fresh_as_of: None,
                        },
                    );
                }
                Some(m) if r.info.incarnation > m.info.incarnation => {
                    m.info = r.info.clone();
                    m.removed = r.removed;
                }
                Some(m) if r.info.incarnation == m.info.incarnation => m.removed |= r.removed,
                Some(_) => {}
            }
        }
    }

    /// Everything we know, ourselves included, for a peer.
    pub fn records(&self) -> Vec<MemberRecord> {
        let me = MemberRecord {
            info: self.me.clone(),
            removed: false,
        };
        std::iter::once(me)
            .chain(self.members.values().map(|m| MemberRecord {
                info: m.info.clone(),
                removed: m.removed,
            }))
            .collect()
    }

    /// Retire a member; false when unknown.
    pub fn remove(&mut self, name: &str) -> bool {
        match self.members.get_mut(name) {
            Some(m) => {
                m.removed = true;
                true
            }
            None => false,
        }
    }

    /// Adopt a peer's freshness ages (see the module doc). `sent_at`: when the
    /// request left this node; `covered(name)`: this node now holds every op of
    /// `name` that the peer's version vector holds.
    pub fn adopt_freshness(&mut self, sent_at: u64, ages: &[(String, u64)], covered: impl Fn(&str) -> bool) {
        for (name, age) in ages {
            let Some(m) = self.members.get_mut(name) else {
                continue;
            };
            let candidate = sent_at.saturating_sub(*age);
            if m.fresh_as_of.is_none_or(|f| candidate > f) && covered(name) {
                m.fresh_as_of = Some(candidate);
            }
        }
    }

    /// Our freshness ages for a peer: 0 for ourselves, and the age of what we
    /// know of each member we have ever been fresh for.
    pub fn ages(&self, now: u64) -> Vec<(String, u64)> {
        std::iter::once((self.me.name.clone(), 0))
            .chain(
                self.members
                    .iter()
                    .filter_map(|(n, m)| m.fresh_as_of.map(|f| (n.clone(), now.saturating_sub(f)))),
            )
            .collect()
    }

    /// The oldest freshness among live members.
    pub fn freshness_floor(&self) -> Floor {
        if self.seeds.values().any(Option::is_none) {
            return Floor::Unknown;
        }
        let mut floor = Floor::NoPeers;
        for m in self.live() {
            floor = match (floor, m.fresh_as_of) {
                (_, None) | (Floor::Unknown, _) => return Floor::Unknown,
                (Floor::NoPeers, Some(f)) => Floor::At(f),
                (Floor::At(a), Some(f)) => Floor::At(a.min(f)),
            };
        }
        floor
    }

    /// How long this node may have been missing some live member's revocations.
    pub fn staleness_ms(&self, now: u64) -> u64 {
        floor_staleness(self.freshness_floor(), now)
    }

    fn live(&self) -> impl Iterator<Item = &Member> {
        self.members.values().filter(|m| !m.removed)
    }

    /// A random peer for anti-entropy: a live member, or a seed not yet known
    /// as a member.
    pub fn anti_entropy_target<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<String> {
        let known: Vec<&str> = self.members.values().map(|m| m.info.addr.as_str()).collect();
        let mut candidates: Vec<&str> = self.live().map(|m| m.info.addr.as_str()).collect();
        candidates.extend(
            self.seeds
                .iter()
                .filter(|(addr, name)| name.is_none() && !known.contains(&addr.as_str()))
                .map(|(addr, _)| addr.as_str()),
        );
        candidates.choose(rng).map(|s| (*s).to_owned())
    }

    /// Peers to push a new op to at once: every live peer of our own region
    /// (cheap, and ops from our region are not relayed), plus one node per
    /// other region, which relays to its neighbours. The node chosen in a
    /// region is sticky (a hash of our name, among the nodes heard from in the
    /// last `fresh_ms`), so its connection stays warm; at most `fanout` in all.
    pub fn push_targets(&self, now: u64, fresh_ms: u64, fanout: usize) -> Vec<String> {
        let mut by_region: BTreeMap<&str, Vec<&Member>> = BTreeMap::new();
        for m in self.live() {
            by_region.entry(m.info.region.as_str()).or_default().push(m);
        }
        let own = self.me.region.as_str();
        let mut picked: Vec<String> = by_region
            .get(own)
            .into_iter()
            .flatten()
            .map(|m| m.info.addr.clone())
            .collect();
        for (region, members) in by_region.iter().filter(|(r, _)| **r != own) {
            let recent: Vec<&&Member> = members
                .iter()
                .filter(|m| m.last_contact.is_some_and(|t| now.saturating_sub(t) <= fresh_ms))
                .collect();
            let pool: Vec<&&Member> = if recent.is_empty() {
                members.iter().collect()
            } else {
                recent
            };
            let h = stable_hash(&self.me.name) ^ stable_hash(region);
            picked.push(pool[(h % pool.len() as u64) as usize].info.addr.clone());
        }
        picked.truncate(fanout);
        picked
    }

    /// Live members of this node's own region (relay targets for ops pushed
    /// in from another region).
    pub fn region_peers(&self) -> Vec<String> {
        self.live()
            .filter(|m| m.info.region == self.me.region)
            .map(|m| m.info.addr.clone())
            .collect()
    }

    /// The region of the member advertising `addr`.
    pub fn region_of(&self, addr: &str) -> Option<&str> {
        self.members
            .values()
            .find(|m| m.info.addr == addr)
            .map(|m| m.info.region.as_str())
    }

    /// Every member as `rescind peers` shows it.
    pub fn view(&self, now: u64) -> Vec<PeerView> {
        self.members
            .values()
            .map(|m| PeerView {
                info: m.info.clone(),
                removed: m.removed,
                last_contact_ago_ms: m.last_contact.map(|t| now.saturating_sub(t)),
                staleness_ms: m.fresh_as_of.map_or(UNKNOWN, |f| now.saturating_sub(f)),
            })
            .collect()
    }
}

/// FNV-1a: a hash that is the same on every node and every run.
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Staleness at `now` for a floor.
pub fn floor_staleness(floor: Floor, now: u64) -> u64 {
    match floor {
        Floor::NoPeers => 0,
        Floor::Unknown => UNKNOWN,
        Floor::At(f) => now.saturating_sub(f),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn info(name: &str, region: &str, inc: u64) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            incarnation: inc,
            region: region.into(),
            addr: format!("{name}:1"),
        }
    }

    #[test]
    fn a_lone_node_is_never_stale_and_unheard_peers_make_staleness_unknown() {
        let alone = Cluster::new(info("a", "eu", 1), Vec::new());
        assert_eq!(alone.staleness_ms(10_000), 0);
        let seeded = Cluster::new(info("a", "eu", 1), vec!["b:1".to_string()]);
        assert_eq!(
            seeded.staleness_ms(1_100),
            UNKNOWN,
            "an unreached seed: we cannot know"
        );
    }

    #[test]
    fn freshness_is_adopted_only_when_covered_and_counts_the_round_trip() {
        let mut c = Cluster::new(info("a", "eu", 1), vec!["b:1".to_string()]);
        c.contact(Some("b:1"), &info("b", "us", 2), 500);
        c.learn(&[MemberRecord {
            info: info("c", "ap", 3),
            removed: false,
        }]);
        assert_eq!(c.staleness_ms(1_000), UNKNOWN, "contact alone proves nothing");
        // Sent at 400; b's own age 0, c's 300. We hold b's ops but not all of c's.
        let ages = vec![("b".to_string(), 0), ("c".to_string(), 300)];
        c.adopt_freshness(400, &ages, |n| n == "b");
        let view = c.view(1_000);
        assert_eq!(view[0].staleness_ms, 600);
        assert_eq!(view[1].staleness_ms, UNKNOWN);
        assert_eq!(c.staleness_ms(1_000), UNKNOWN, "c keeps us in the dark");
        c.adopt_freshness(900, &ages, |_| true);
        assert_eq!(c.staleness_ms(1_000), 400, "c fresh as of 600");
        // Older news never rolls freshness back.
        c.adopt_freshness(100, &ages, |_| true);
        assert_eq!(c.staleness_ms(1_000), 400);
        // A removed member stops counting.
        assert!(c.remove("c"));
        assert_eq!(c.staleness_ms(1_000), 100);
        assert!(!c.remove("zz"));
    }

    #[test]
    fn removal_is_sticky_per_incarnation_and_spreads() {
        let mut a = Cluster::new(info("a", "eu", 1), Vec::new());
        a.contact(None, &info("b", "us", 2), 0);
        a.remove("b");
        let mut c = Cluster::new(info("c", "ap", 1), Vec::new());
        c.contact(None, &info("b", "us", 2), 0);
        c.learn(&a.records());
        assert!(c.view(0).iter().any(|v| v.info.name == "b" && v.removed));
        assert!(c.view(0).iter().any(|v| v.info.name == "a" && !v.removed));
        // b's next incarnation is a new member.
        c.contact(None, &info("b", "us", 3), 0);
        assert!(c.view(0).iter().any(|v| v.info.name == "b" && !v.removed));
    }

    #[test]
    fn push_targets_cover_every_region_first() {
        let mut c = Cluster::new(info("a", "eu", 1), Vec::new());
        for (n, r) in [
            ("a2", "eu"),
            ("b1", "us"),
            ("b2", "us"),
            ("c1", "ap"),
            ("c2", "ap"),
        ] {
            c.contact(None, &info(n, r, 1), 0);
        }
        let t = c.push_targets(0, 5_000, 8);
        assert_eq!(t.len(), 3, "own region's peer and one per other region: {t:?}");
        assert!(t.iter().any(|a| a.starts_with('b')), "{t:?}");
        assert!(t.iter().any(|a| a.starts_with('c')), "{t:?}");
        assert!(t.iter().any(|a| a.starts_with("a2")), "{t:?}");
        assert_eq!(
            c.push_targets(0, 5_000, 8),
            t,
            "sticky: the same targets every time"
        );
        assert_eq!(c.push_targets(0, 5_000, 2).len(), 2);
        // A region's chosen node that stopped answering is passed over for one heard from lately.
        let mut d = c.clone();
        let chosen_b = t.iter().find(|a| a.starts_with('b')).unwrap().clone();
        let other_b = if chosen_b.starts_with("b1") { "b2" } else { "b1" };
        d.contact(None, &info(other_b, "us", 1), 10_000);
        let t2 = d.push_targets(10_000, 5_000, 8);
        assert!(t2.contains(&format!("{other_b}:1")), "{t2:?}");
        let mut rng = StdRng::seed_from_u64(7);
        assert!(c.anti_entropy_target(&mut rng).is_some());
    }
}
