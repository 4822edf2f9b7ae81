//! What a node keeps in its store's meta besides the state: peers'
//! acknowledged version vectors (which bound compaction) and the members an
//! operator retired (so a restart does not count them live again). Saved
//! with every checkpoint, read at start.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use rescind_core::OriginId;
use rescind_core::codec::meta;
use rescind_gossip::{Cluster, MemberRecord};
use rescind_store::{Store, StoreError, meta_keys};

use crate::compaction::{Acknowledged, acknowledged};
use crate::engine::Shared;

/// Peers' vectors by name.
pub(crate) type PeerVectors = BTreeMap<String, Vec<(OriginId, u64)>>;

fn format_error(what: &'static str) -> impl Fn(rescind_core::codec::FormatError) -> StoreError {
    move |e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    }
}

/// Read the saved peer vectors, and teach `cluster` the retired members.
pub(crate) fn load(store: &dyn Store, cluster: &mut Cluster) -> Result<PeerVectors, StoreError> {
    if let Some(bytes) = store.meta_get(meta_keys::RETIRED)? {
        let retired: Vec<MemberRecord> =
            meta::decode_value("retired members", &bytes).map_err(format_error("retired members"))?;
        cluster.learn(&retired);
    }
    match store.meta_get(meta_keys::PEER_VECTORS)? {
        Some(bytes) => meta::decode_value("peer vectors", &bytes).map_err(format_error("peer vectors")),
        None => Ok(PeerVectors::new()),
    }
}

impl Shared {
    /// Time of the last expiry GC pass (unix ms; 0: none yet).
    pub(crate) fn gc_watermark(&self) -> u64 {
        self.gc_watermark.load(Ordering::Acquire)
    }

    /// An expiry GC pass ran at `now_ms`.
    pub(crate) fn set_gc_watermark(&self, now_ms: u64) {
        self.gc_watermark.fetch_max(now_ms, Ordering::AcqRel);
    }

    /// Record the durable vector peer `name#incarnation` reported (a wiped
    /// peer, a new incarnation, starts over).
    pub(crate) fn note_peer_vector(&self, peer: &str, vector: Vec<(OriginId, u64)>) {
        self.peer_vectors.lock().insert(peer.to_owned(), vector);
    }

    /// True while the state is incomplete.
    pub(crate) fn recovering(&self) -> bool {
        self.recovering.load(Ordering::Acquire)
    }

    /// What every live peer acknowledged, and whether there is no live peer.
    pub(crate) fn acknowledged(&self) -> (Acknowledged, bool) {
        let (live, unknown) = {
            let cluster = self.cluster.lock();
            let live: Vec<String> = cluster
                .records()
                .into_iter()
                .filter(|r| !r.removed && r.info.name != cluster.me().name)
                .map(|r| format!("{}#{:016x}", r.info.name, r.info.incarnation))
                .collect();
            // A seed not yet reached, or a member never heard from, is a
            // peer whose vector is unknown.
            (live, cluster.freshness_floor() == rescind_gossip::Floor::Unknown)
        };
        if unknown {
            return (None, false);
        }
        let vectors = self.peer_vectors.lock();
        let acked = acknowledged(live.iter().map(|n| vectors.get(n).map(Vec::as_slice)));
        (acked, live.is_empty())
    }

    /// Save the peer vectors and retired members (durable at the next flush).
    pub(crate) fn save_meta(&self, store: &dyn Store) -> Result<(), StoreError> {
        let retired: Vec<MemberRecord> = self
            .cluster
            .lock()
            .records()
            .into_iter()
            .filter(|r| r.removed)
            .collect();
        store.meta_put(meta_keys::RETIRED, &meta::encode(&retired))?;
        let vectors = self.peer_vectors.lock().clone();
        store.meta_put(meta_keys::PEER_VECTORS, &meta::encode(&vectors))
    }
}
