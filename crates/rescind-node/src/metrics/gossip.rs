//! [`GossipMetrics`]: peer traffic by kind, direction and peer region, and
//! the pusher's queue.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A kind of peer message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// An anti-entropy exchange (request or answer).
    Exchange,
    /// An eager push of new ops.
    Push,
    /// A push forwarded within the region.
    Relay,
    /// A snapshot page.
    Snapshot,
}

impl MessageKind {
    fn name(self) -> &'static str {
        match self {
            MessageKind::Exchange => "exchange",
            MessageKind::Push => "push",
            MessageKind::Relay => "relay",
            MessageKind::Snapshot => "snapshot",
        }
    }
}

type Labels = Vec<(&'static str, String)>;

/// Gossip counters of one node.
#[derive(Debug)]
pub struct GossipMetrics {
    messages: Family<Labels, Counter>,
    bytes: Family<Labels, Counter>,
    /// Ops received that this node already had.
    pub duplicate_ops: Counter,
    rounds: Family<Labels, Counter>,
    /// Eager pushes skipped because too many were in flight.
    pub pushes_skipped: Counter,
    snapshots: Family<Labels, Counter>,
    /// Local ops waiting for the eager pusher.
    pub push_queue: Gauge,
}

impl GossipMetrics {
    /// Registered in `r`.
    pub fn register(r: &mut Registry) -> Self {
        let m = Self {
            messages: Family::default(),
            bytes: Family::default(),
            duplicate_ops: Counter::default(),
            rounds: Family::default(),
            pushes_skipped: Counter::default(),
            snapshots: Family::default(),
            push_queue: Gauge::default(),
        };
        r.register(
            "rescind_gossip_messages",
            "Peer messages by kind, direction (sent, received) and peer region",
            m.messages.clone(),
        );
        r.register(
            "rescind_gossip_bytes",
            "Encoded op and snapshot-entry bytes in peer messages, by kind, direction and peer region",
            m.bytes.clone(),
        );
        r.register(
            "rescind_gossip_duplicate_ops",
            "Ops received that this node already held",
            m.duplicate_ops.clone(),
        );
        r.register(
            "rescind_gossip_rounds",
            "Anti-entropy rounds this node started, by result",
            m.rounds.clone(),
        );
        r.register(
            "rescind_gossip_pushes_skipped",
            "Eager pushes skipped because too many were in flight (anti-entropy delivers)",
            m.pushes_skipped.clone(),
        );
        r.register(
            "rescind_gossip_snapshot_transfers",
            "Whole snapshots pulled from a peer, or first pages served",
            m.snapshots.clone(),
        );
        r.register(
            "rescind_gossip_push_queue",
            "Local ops waiting for the eager pusher",
            m.push_queue.clone(),
        );
        // Series an alert or a panel reads exist at 0 from the start.
        for direction in ["pulled", "served"] {
            drop(
                m.snapshots
                    .get_or_create(&vec![("direction", direction.to_owned())]),
            );
        }
        for result in ["ok", "error"] {
            drop(m.rounds.get_or_create(&vec![("result", result.to_owned())]));
        }
        m
    }

    fn count(&self, kind: MessageKind, direction: &'static str, region: &str, bytes: usize) {
        let labels = vec![
            ("kind", kind.name().to_owned()),
            ("direction", direction.to_owned()),
            ("peer_region", region.to_owned()),
        ];
        self.messages.get_or_create(&labels).inc();
        self.bytes.get_or_create(&labels).inc_by(bytes as u64);
    }

    /// A message sent to a peer of `region` carrying `bytes`.
    pub fn sent(&self, kind: MessageKind, region: &str, bytes: usize) {
        self.count(kind, "sent", region, bytes);
    }

    /// A message received from a peer of `region` carrying `bytes`.
    pub fn received(&self, kind: MessageKind, region: &str, bytes: usize) {
        self.count(kind, "received", region, bytes);
    }

    /// An anti-entropy round ended, well or not.
    pub fn round(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.rounds
            .get_or_create(&vec![("result", result.to_owned())])
            .inc();
    }

    /// A whole snapshot was pulled, or a first page served.
    pub fn snapshot(&self, pulled: bool) {
        let direction = if pulled { "pulled" } else { "served" };
        self.snapshots
            .get_or_create(&vec![("direction", direction.to_owned())])
            .inc();
    }
}
