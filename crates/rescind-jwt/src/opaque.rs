//! Token-shape helpers: the `Authorization: Bearer` scheme, telling a JWT from an opaque token,
//! and the keyed id under which an opaque token is stored and logged (never the token itself).

/// The token of an `Authorization` header value `Bearer <token>`: the scheme is matched
/// case-insensitively, surrounding whitespace is trimmed, and a value with no token, another
/// scheme, or whitespace inside the token gives `None`.
pub fn bearer(header_value: &str) -> Option<&str> {
    let v = header_value.trim();
    let (scheme, rest) = v.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    if token.is_empty() || token.contains(|c: char| c.is_whitespace()) {
        return None;
    }
    Some(token)
}

/// Whether `token` has the JWS compact shape: three non-empty base64url segments
/// (`[A-Za-z0-9_-]+`) separated by dots.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut n = 0;
    for seg in token.split('.') {
        n += 1;
        if n > 3
            || seg.is_empty()
            || !seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
    }
    n == 3
}

/// The id of an opaque token: `"opaque-"` followed by the 64 lowercase hex digits of
/// `blake3::keyed_hash(key, token)`. Stable for a given `key`, so a revocation stored under it
/// matches later presentations, and the token cannot be recovered from it.
pub fn opaque_id(key: &[u8; 32], token: &str) -> String {
    let hash = blake3::keyed_hash(key, token.as_bytes());
    format!("opaque-{}", hash.to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("  bEaReR   abc.def.ghi  "), Some("abc.def.ghi"));
        assert_eq!(bearer("BEARER\tx"), Some("x"));
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer   "), None);
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer a b"), None);
        assert_eq!(bearer("Bearerabc"), None);
        assert_eq!(bearer(""), None);
    }

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(looks_like_jwt("a-_.b.c"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt("a.b."));
        assert!(!looks_like_jwt("a.b+.c"));
        assert!(!looks_like_jwt("a.b=.c"));
        assert!(!looks_like_jwt("opaque_token_value"));
        assert!(!looks_like_jwt(""));
    }

    #[test]
    fn opaque_ids_are_keyed_and_full_length() {
        let k1 = [1u8; 32];
        let k2 = [2u8; 32];
        let id = opaque_id(&k1, "secret-token");
        assert!(id.starts_with("opaque-"));
        assert_eq!(id.len(), "opaque-".len() + 64);
        assert!(!id.contains("secret-token"));
        assert!(
            id["opaque-".len()..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(id, opaque_id(&k1, "secret-token"));
        assert_ne!(id, opaque_id(&k2, "secret-token"));
        assert_ne!(id, opaque_id(&k1, "secret-token2"));
    }
}
