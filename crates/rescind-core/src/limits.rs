//! Input limits and field validation (docs/design.md §7), shared by the gRPC
//! service, the CLI and the simulator so that every front end rejects the same
//! input with the same words.

/// Longest token or principal id, in bytes.
pub const MAX_ID_BYTES: usize = 512;
/// Longest `reason` / `actor` text, in bytes.
pub const MAX_TEXT_BYTES: usize = 256;
/// Most checks in one `CheckBatch`.
pub const MAX_BATCH: usize = 1024;
/// Most revocations in one `RevokeBatch` (one durable write).
pub const MAX_REVOKE_BATCH: usize = 10_000;
/// Latest accepted time: 9999-12-31T23:59:59.999Z in unix milliseconds.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;
/// Largest gRPC message a node decodes, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// A request field that breaks a limit. Displays as `field: problem`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    /// The field's name as the API spells it (e.g. `checks[3].token_id`).
    pub field: String,
    /// What is wrong and what the limit is.
    pub problem: String,
}

impl FieldError {
    /// A field error from its parts.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// A token or principal id: 1..=[`MAX_ID_BYTES`] bytes, no control characters.
pub fn id(field: &str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_ID_BYTES} bytes (got {})", value.len()),
        ));
    }
    no_control(field, value)
}

/// Free text (`reason`, `actor`): at most [`MAX_TEXT_BYTES`] bytes, no control characters.
pub fn text(field: &str, value: &str) -> Result<(), FieldError> {
    if value.len() > MAX_TEXT_BYTES {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_TEXT_BYTES} bytes (got {})", value.len()),
        ));
    }
    no_control(field, value)
}

fn no_control(field: &str, value: &str) -> Result<(), FieldError> {
    match first_control(value) {
        Some(at) => Err(FieldError::new(
            field,
            format!("must not contain control characters (found one at byte {at})"),
        )),
        None => Ok(()),
    }
}

/// The byte offset of the first control character (Unicode `Cc`: U+0000 to
/// U+001F and U+007F to U+009F) in `value`. Every id of every check goes
/// through here, so one pass over the bytes with no early exit (which the
/// compiler vectorises) settles the usual id: all ASCII, no control. Only
/// a value that fails it is scanned again, by character if not ASCII.
fn first_control(value: &str) -> Option<usize> {
    let bytes = value.as_bytes();
    let ascii_control = |b: u8| b < 0x20 || b == 0x7f;
    let flags = bytes
        .iter()
        .fold(0u8, |acc, &b| acc | (b & 0x80) | u8::from(ascii_control(b)));
    if flags == 0 {
        return None;
    }
    if flags & 0x80 == 0 {
        return bytes.iter().position(|&b| ascii_control(b));
    }
    value
        .char_indices()
        .find(|(_, c)| c.is_control())
        .map(|(at, _)| at)
}

/// A unix-millisecond time: 0..=[`MAX_TIME_MS`].
pub fn time_ms(field: &str, value: i64) -> Result<u64, FieldError> {
    if !(0..=MAX_TIME_MS).contains(&value) {
        return Err(FieldError::new(
            field,
            format!("must be a unix time in milliseconds between 0 and {MAX_TIME_MS} (got {value})"),
        ));
    }
    Ok(value as u64)
}

/// A node name or region label: 1..=64 of `A-Z a-z 0-9 . _ -`.
pub fn label(field: &str, value: &str) -> Result<(), FieldError> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            "must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
        ))
    }
}

/// An op received from a peer: the same limits as a client's request, so a
/// malformed or hostile peer message can never put into the state what a
/// client could not.
pub fn op(op: &crate::Op) -> Result<(), FieldError> {
    label("op.origin.node", &op.origin.node)?;
    if op.seq == 0 {
        return Err(FieldError::new("op.seq", "must be at least 1"));
    }
    let max = MAX_TIME_MS as u64;
    match &op.payload {
        crate::Payload::Token {
            token_id,
            expires_at_ms,
            revoked_at_ms,
            reason,
            actor,
        } => {
            crate::scope::check_key("op.token_id", token_id)?;
            text("op.reason", reason)?;
            text("op.actor", actor)?;
            if *expires_at_ms > max || *revoked_at_ms > max {
                return Err(FieldError::new(
                    "op.time",
                    format!("must be at most {MAX_TIME_MS}"),
                ));
            }
        }
        crate::Payload::Cutoff {
            principal,
            cutoff,
            revoked_at_ms,
            reason,
            actor,
            ..
        } => {
            crate::scope::check_key("op.principal", principal)?;
            text("op.reason", reason)?;
            text("op.actor", actor)?;
            if cutoff.issued_before_ms > max || *revoked_at_ms > max {
                return Err(FieldError::new(
                    "op.time",
                    format!("must be at most {MAX_TIME_MS}"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bounded_and_printable() {
        assert!(id("token_id", "tok-1").is_ok());
        assert!(id("token_id", &"x".repeat(MAX_ID_BYTES)).is_ok());
        let e = id("token_id", &"x".repeat(MAX_ID_BYTES + 1)).unwrap_err();
        assert_eq!(e.field, "token_id");
        assert!(e.to_string().contains("512"), "{e}");
        assert!(id("token_id", "").is_err());
        assert!(
            id("subject", "a\nb")
                .unwrap_err()
                .to_string()
                .starts_with("subject:")
        );
        assert!(id("subject", "a\u{7f}b").is_err());
        assert!(id("subject", "ünïcødé").is_ok());
    }

    proptest::proptest! {
        #[test]
        fn the_ascii_scan_finds_what_the_character_scan_finds(value in "(\\PC|[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}]|[ -~]){0,40}") {
            let by_chars = value.char_indices().find(|(_, c)| c.is_control()).map(|(at, _)| at);
            proptest::prop_assert_eq!(first_control(&value), by_chars);
        }
    }

    #[test]
    fn control_characters_are_found_in_ascii_and_beyond() {
        assert_eq!(first_control("abc"), None);
        assert_eq!(first_control("ab\tc"), Some(2));
        assert_eq!(first_control("\u{7f}"), Some(0));
        assert_eq!(
            first_control("é\u{85}"),
            Some(2),
            "a C1 control after a 2-byte character"
        );
        assert_eq!(first_control("é~"), None);
        let e = id("token_id", "ab\u{1}").unwrap_err();
        assert!(e.to_string().contains("at byte 2"), "{e}");
    }

    #[test]
    fn times_are_in_range() {
        assert_eq!(time_ms("t", 0), Ok(0));
        assert!(time_ms("t", -1).is_err());
        assert!(time_ms("t", MAX_TIME_MS + 1).is_err());
        assert!(text("reason", &"r".repeat(MAX_TEXT_BYTES + 1)).is_err());
        assert!(text("reason", "").is_ok());
    }
}
