//! The verified-token cache: `blake3(token)` → claims, bounded, so a repeated token skips
//! signature verification and parsing. The token itself is never stored.
//!
//! Each entry carries the key-set generation it was verified under; an entry of another
//! generation is a miss, so a key removed by a reload or [`crate::Verifier::replace_keys`]
//! stops verifying tokens even if a verification racing with the swap inserted late.

use std::sync::Arc;

use quick_cache::sync::Cache;

use crate::claims::Claims;

/// The cache key of a token: its blake3 hash.
pub(crate) fn token_key(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

/// A bounded map of verified tokens.
pub(crate) struct ClaimsCache {
    inner: Cache<[u8; 32], (u64, Arc<Claims>)>,
}

impl ClaimsCache {
    /// A cache of about `capacity` entries; `None` when `capacity` is 0 (disabled).
    pub fn new(capacity: usize) -> Option<Self> {
        (capacity > 0).then(|| Self {
            inner: Cache::new(capacity),
        })
    }

    /// The claims cached for `key` under key-set `generation`.
    pub fn get(&self, key: &[u8; 32], generation: u64) -> Option<Arc<Claims>> {
        match self.inner.get(key) {
            Some((g, claims)) if g == generation => Some(claims),
            _ => None,
        }
    }

    /// Remembers the claims of a token verified under key-set `generation`.
    pub fn insert(&self, key: [u8; 32], generation: u64, claims: Arc<Claims>) {
        self.inner.insert(key, (generation, claims));
    }

    /// Forgets everything (on a key change).
    pub fn clear(&self) {
        self.inner.clear();
    }

    /// The number of cached tokens.
    pub fn len(&self) -> usize {
        self.inner.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Arc<Claims> {
        Arc::new(Claims {
            issuer: "i".into(),
            token_id: None,
            subject: None,
            client_id: None,
            key_id: None,
            session_id: None,
            tenant: None,
            token_version: None,
            issued_at_ms: 0,
            expires_at_ms: None,
            not_before_ms: None,
            raw: serde_json::Map::new(),
        })
    }

    #[test]
    fn generation_mismatch_is_a_miss_and_capacity_is_bounded() {
        assert!(ClaimsCache::new(0).is_none());
        let c = ClaimsCache::new(16).unwrap();
        let k = token_key("a.b.c");
        c.insert(k, 1, claims());
        assert!(c.get(&k, 1).is_some());
        assert!(c.get(&k, 2).is_none());
        for i in 0..1000 {
            c.insert(token_key(&format!("t{i}")), 1, claims());
        }
        assert!(c.len() <= 32, "{}", c.len());
        c.clear();
        assert_eq!(c.len(), 0);
    }
}
