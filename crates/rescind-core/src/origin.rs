//! Node identity as it appears on every op.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Who wrote an op: the node's name plus the incarnation id created when its
/// data directory was first initialised.
///
/// A node that loses its disk comes back with a new incarnation, so it can never
/// reuse an old `(origin, seq)` range with different payloads. Ordered by
/// `(node, incarnation)`; that order breaks ties between deny entries.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OriginId {
    /// The configured node name.
    pub node: String,
    /// Random id fixed for the life of one data directory.
    pub incarnation: u64,
}

impl OriginId {
    /// An origin from its parts.
    pub fn new(node: impl Into<String>, incarnation: u64) -> Self {
        Self {
            node: node.into(),
            incarnation,
        }
    }
}

impl fmt::Display for OriginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{:016x}", self.node, self.incarnation)
    }
}

/// Why a string is not an [`OriginId`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("origin must look like `name#0123456789abcdef` (node name, '#', 16 hex digits)")]
pub struct ParseOriginError;

impl FromStr for OriginId {
    type Err = ParseOriginError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (node, inc) = s.rsplit_once('#').ok_or(ParseOriginError)?;
        if node.is_empty() || inc.len() != 16 {
            return Err(ParseOriginError);
        }
        let incarnation = u64::from_str_radix(inc, 16).map_err(|_| ParseOriginError)?;
        Ok(Self::new(node, incarnation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips() {
        let o = OriginId::new("eu-1", 0xdead_beef);
        assert_eq!(o.to_string(), "eu-1#00000000deadbeef");
        assert_eq!(o.to_string().parse::<OriginId>(), Ok(o));
        assert!("eu-1".parse::<OriginId>().is_err());
        assert!("#00000000deadbeef".parse::<OriginId>().is_err());
        assert!("a#xyz".parse::<OriginId>().is_err());
    }
}
