//! [`ConsistencyToken`]: the opaque read-your-revocations token, with a hex
//! form for logs, headers and URLs.

use std::fmt;

/// What `Revoke` returned; pass it to a check on any node (or replica) to
/// get an answer only once that revocation is applied there.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ConsistencyToken(Vec<u8>);

/// A string that is not a consistency token's hex form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a consistency token: {0}")]
pub struct BadHex(&'static str);

impl ConsistencyToken {
    /// Wrap the bytes a node returned.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes for the wire.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parse the hex form (the node validates the contents).
    pub fn from_hex(s: &str) -> Result<Self, BadHex> {
        let s = s.trim();
        if s.is_empty() {
            return Err(BadHex("empty"));
        }
        if !s.len().is_multiple_of(2) {
            return Err(BadHex("odd number of hex digits"));
        }
        if s.len() > 2 * 256 * 1024 {
            return Err(BadHex("longer than 256 KiB"));
        }
        s.as_bytes()
            .chunks(2)
            .map(|pair| {
                let digit = |c: u8| (c as char).to_digit(16).ok_or(BadHex("not hex"));
                Ok((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
            })
            .collect::<Result<Vec<u8>, BadHex>>()
            .map(Self)
    }

    /// The decoded token (what a replica waits for).
    pub fn decode(&self) -> Result<rescind_core::ConsistencyToken, rescind_core::consistency::BadToken> {
        rescind_core::ConsistencyToken::decode(&self.0)
    }
}

impl fmt::Debug for ConsistencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConsistencyToken({})", self.to_hex())
    }
}

impl fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        let t = ConsistencyToken::from_bytes(vec![1, 0xab, 0xff]);
        assert_eq!(t.to_hex(), "01abff");
        assert_eq!(ConsistencyToken::from_hex("01ABff").unwrap(), t);
        assert_eq!(
            ConsistencyToken::from_hex("abc").unwrap_err(),
            BadHex("odd number of hex digits")
        );
        assert_eq!(ConsistencyToken::from_hex("zz").unwrap_err(), BadHex("not hex"));
        assert_eq!(ConsistencyToken::from_hex("").unwrap_err(), BadHex("empty"));
    }
}
