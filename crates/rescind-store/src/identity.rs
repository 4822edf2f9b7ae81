//! Node identity: a name plus an incarnation created once per data directory.

use rescind_core::OriginId;
use serde::{Deserialize, Serialize};

/// Who this data directory belongs to (docs/design.md §2, "Node identity").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The node's name, fixed when the data dir was created.
    pub node_name: String,
    /// Random, non-zero, created with the data dir. A wiped disk gets a new one,
    /// so an old `(origin, seq)` range is never reused.
    pub incarnation: u64,
}

impl Identity {
    /// A fresh identity with a random incarnation.
    pub fn fresh(node_name: &str) -> Self {
        Self {
            node_name: node_name.to_owned(),
            incarnation: rand::random::<u64>().max(1),
        }
    }

    /// The origin stamped on this node's ops.
    pub fn origin(&self) -> OriginId {
        OriginId::new(self.node_name.clone(), self.incarnation)
    }
}
