//! Hex for consistency tokens on the command line.

/// Lower-case hex.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parse hex; errors name the problem.
pub fn decode(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return Err("a consistency token is an even number of hex digits".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16)
                .map_err(|_| "a consistency token is hex digits only".to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        assert_eq!(
            super::decode(&super::encode(&[0, 1, 254, 255])),
            Ok(vec![0, 1, 254, 255])
        );
        assert!(super::decode("abc").is_err());
        assert!(super::decode("zz").is_err());
    }
}
