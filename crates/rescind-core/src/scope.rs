//! Issuer namespaces: token ids and principals are unique only per issuer
//! (OWASP: key a deny list on issuer + `jti`). A namespaced id is stored as
//! one key, `issuer` + [`SEPARATOR`] + `id`, so the state, its merge, digest,
//! checkpoint, the peer protocol and Watch carry the issuer with no format of
//! their own. The empty issuer is the issuer-less namespace: its keys are the
//! bare ids, exactly as before namespaces existed.
//!
//! The separator is a control character, which no validated issuer or id
//! contains ([`crate::limits::id`]), so a key splits back unambiguously.

use std::borrow::Cow;

use crate::limits::{self, FieldError};

/// Between the issuer and the id in a namespaced key (ASCII unit separator).
pub const SEPARATOR: char = '\u{1f}';

/// The stored key of `id` in `issuer`'s namespace; the bare id when `issuer`
/// is empty.
pub fn key<'a>(issuer: &str, id: &'a str) -> Cow<'a, str> {
    if issuer.is_empty() {
        Cow::Borrowed(id)
    } else {
        let mut k = String::with_capacity(issuer.len() + 1 + id.len());
        k.push_str(issuer);
        k.push(SEPARATOR);
        k.push_str(id);
        Cow::Owned(k)
    }
}

/// Write the key of `id` in `issuer`'s namespace into `buf` (reused across
/// lookups so a check allocates at most once) and return it.
pub fn key_into<'b>(buf: &'b mut String, issuer: &str, id: &str) -> &'b str {
    buf.clear();
    buf.push_str(issuer);
    buf.push(SEPARATOR);
    buf.push_str(id);
    buf.as_str()
}

/// A stored key split back into `(issuer, id)`; the issuer is empty for a
/// bare id.
pub fn split(key: &str) -> (&str, &str) {
    match key.split_once(SEPARATOR) {
        Some((issuer, id)) => (issuer, id),
        None => ("", key),
    }
}

/// Validate a stored key as it arrives from a peer or a file: its id, and its
/// issuer if it has one, are each a valid id ([`limits::id`]).
pub fn check_key(field: &str, key: &str) -> Result<(), FieldError> {
    let (issuer, id) = split(key);
    if key.contains(SEPARATOR) {
        limits::id(&format!("{field} (issuer)"), issuer)?;
    }
    limits::id(field, id)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_empty_issuer_keeps_bare_ids() {
        assert_eq!(key("", "jti-1"), "jti-1");
        assert_eq!(split("jti-1"), ("", "jti-1"));
        assert_eq!(split(&key("https://idp", "jti-1")), ("https://idp", "jti-1"));
        assert_ne!(key("a", "b"), key("", "b"));
        let mut buf = String::new();
        assert_eq!(key_into(&mut buf, "iss", "x"), key("iss", "x"));
    }

    #[test]
    fn keys_from_peers_are_validated_part_by_part() {
        assert!(check_key("op.token_id", &key("iss", "jti")).is_ok());
        assert!(check_key("op.token_id", "plain").is_ok());
        let empty_issuer = format!("{SEPARATOR}jti");
        assert!(check_key("op.token_id", &empty_issuer).is_err());
        let two = format!("a{SEPARATOR}b{SEPARATOR}c");
        assert!(check_key("op.token_id", &two).is_err());
        let long = key(&"i".repeat(limits::MAX_ID_BYTES + 1), "jti");
        assert!(
            check_key("op.token_id", &long)
                .unwrap_err()
                .field
                .contains("issuer")
        );
    }

    proptest! {
        /// Distinct (issuer, id) pairs of valid parts never share a key, and
        /// every key splits back to its parts.
        #[test]
        fn namespaces_never_collide(a in "[^\u{0}-\u{1f}]{0,6}", b in "[^\u{0}-\u{1f}]{1,6}",
                                    c in "[^\u{0}-\u{1f}]{0,6}", d in "[^\u{0}-\u{1f}]{1,6}") {
            let k = key(&a, &b);
            prop_assert_eq!(split(&k), (a.as_str(), b.as_str()));
            if (a.as_str(), b.as_str()) != (c.as_str(), d.as_str()) {
                prop_assert_ne!(key(&a, &b), key(&c, &d));
            }
        }
    }
}
