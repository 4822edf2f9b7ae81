//! `CheckBatchRequest` against the type prost would generate for the same
//! message: same bytes out, same checks in, and the same bytes rejected.

use proptest::prelude::*;
use prost::Message;

use super::{CheckBatchRequest, CheckRequestRef, NotUtf8};
use crate::v1::CheckRequest;

/// What prost generates for `message CheckBatchRequest { repeated
/// CheckRequest checks = 1; }`.
#[derive(Clone, PartialEq, prost::Message)]
struct Generated {
    #[prost(message, repeated, tag = "1")]
    checks: Vec<CheckRequest>,
}

fn refs(g: &Generated) -> Vec<CheckRequestRef<'_>> {
    g.checks.iter().map(CheckRequestRef::from).collect()
}

/// Every check of a batch, or the first string that is not UTF-8.
fn read(b: &CheckBatchRequest) -> Result<Vec<CheckRequestRef<'_>>, NotUtf8> {
    b.checks().collect()
}

fn text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-z0-9é€:/._-]{0,12}")
}

fn check() -> impl Strategy<Value = CheckRequest> {
    (
        (text(), text(), text(), text(), text(), text()),
        any::<i64>(),
        proptest::option::of(any::<u64>()),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        text(),
    )
        .prop_map(
            |(
                (token_id, subject, client_id, tenant, key_id, session_id),
                issued_at_ms,
                token_version,
                consistency_token,
                issuer,
            )| {
                CheckRequest {
                    token_id,
                    subject,
                    client_id,
                    tenant,
                    key_id,
                    session_id,
                    issued_at_ms,
                    token_version,
                    consistency_token,
                    issuer,
                }
            },
        )
}

fn batch() -> impl Strategy<Value = Vec<CheckRequest>> {
    proptest::collection::vec(check(), 0..12)
}

/// Both decoders on the same bytes: both fail (ours at decode, or for a
/// string that is not UTF-8 when the checks are read), or both give the
/// same checks.
fn same_decoding(bytes: &[u8]) -> Result<(), TestCaseError> {
    let ours = CheckBatchRequest::decode(bytes);
    let theirs = Generated::decode(bytes);
    let read_ours = ours.as_ref().map(read);
    match (&read_ours, &theirs) {
        (Ok(Ok(o)), Ok(t)) => prop_assert_eq!(o, &refs(t)),
        (Err(_) | Ok(Err(_)), Err(e)) => {
            // A batch that decodes but fails when read is one prost
            // refused for a string's UTF-8, and only that.
            if let Ok(Err(_)) = &read_ours {
                prop_assert!(e.to_string().contains("UTF-8"), "prost: {e}");
            }
        }
        _ => prop_assert!(false, "ours {read_ours:?}, prost's {theirs:?}, bytes {bytes:?}"),
    }
    Ok(())
}

proptest! {
    #[test]
    fn encodes_as_prost_does(checks in batch()) {
        let ours = CheckBatchRequest::new(&checks);
        let generated = Generated { checks: checks.clone() };
        prop_assert_eq!(ours.encoded_len(), generated.encoded_len());
        prop_assert_eq!(ours.encode_to_vec(), generated.encode_to_vec());
        prop_assert_eq!(ours.len(), checks.len());
        prop_assert_eq!(read(&ours).unwrap(), refs(&generated));
    }

    #[test]
    fn decodes_what_prost_encodes(checks in batch()) {
        let generated = Generated { checks };
        let bytes = generated.encode_to_vec();
        let ours = CheckBatchRequest::decode(bytes.as_slice()).unwrap();
        prop_assert_eq!(read(&ours).unwrap(), refs(&generated));
        // Through the field-by-field path too (a batch inside a message).
        let delimited = CheckBatchRequest::new(&[]).encode_length_delimited_to_vec();
        prop_assert!(CheckBatchRequest::decode_length_delimited(delimited.as_slice()).unwrap().is_empty());
        let mut framed = Vec::new();
        prost::encoding::encode_varint(bytes.len() as u64, &mut framed);
        framed.extend_from_slice(&bytes);
        let by_field = CheckBatchRequest::decode_length_delimited(framed.as_slice()).unwrap();
        prop_assert_eq!(read(&by_field).unwrap(), read(&ours).unwrap());
    }

    #[test]
    fn rejects_what_prost_rejects(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        same_decoding(&bytes)?;
    }

    #[test]
    fn damaged_batches_as_prost(
        checks in batch(),
        cuts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        truncate in any::<prop::sample::Index>(),
    ) {
        let mut bytes = Generated { checks }.encode_to_vec();
        if bytes.is_empty() {
            return Ok(());
        }
        for (at, value) in cuts {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        same_decoding(&bytes)?;
        bytes.truncate(truncate.index(bytes.len()));
        same_decoding(&bytes)?;
    }
}

#[test]
fn a_field_given_twice_keeps_the_last_value_and_unknown_fields_are_kept() {
    let first = CheckRequest {
        token_id: Some("first".into()),
        ..CheckRequest::default()
    };
    let second = CheckRequest {
        token_id: Some("second".into()),
        issued_at_ms: 7,
        ..CheckRequest::default()
    };
    // One check whose fields are the two messages' concatenated.
    let mut inner = first.encode_to_vec();
    inner.extend(second.encode_to_vec());
    let mut bytes = Vec::new();
    prost::encoding::bytes::encode(1, &inner, &mut bytes);
    // An unknown field 15 (varint 99) after it.
    prost::encoding::uint64::encode(15, &99, &mut bytes);
    let batch = CheckBatchRequest::decode(bytes.as_slice()).unwrap();
    let checks = read(&batch).unwrap();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].token_id, Some("second"));
    assert_eq!(checks[0].issued_at_ms, 7);
    assert_eq!(batch.encode_to_vec(), bytes, "re-encoded as received");
}

#[test]
fn a_string_that_is_not_utf8_is_named_when_read() {
    let mut inner = Vec::new();
    prost::encoding::string::encode(1, &"t-1".to_owned(), &mut inner);
    prost::encoding::bytes::encode(4, &vec![0xff, 0xfe], &mut inner);
    let mut bytes = Vec::new();
    prost::encoding::bytes::encode(1, &inner, &mut bytes);
    assert!(Generated::decode(bytes.as_slice()).is_err());
    let batch = CheckBatchRequest::decode(bytes.as_slice()).unwrap();
    assert_eq!(read(&batch).unwrap_err(), NotUtf8 { field: "tenant" });
    assert_eq!(NotUtf8 { field: "tenant" }.to_string(), "tenant is not UTF-8");
}

#[test]
fn a_replaced_string_that_is_not_utf8_fails_too() {
    // prost checks every value of a repeated string field, not only the last.
    let mut inner = Vec::new();
    prost::encoding::bytes::encode(1, &vec![0xff], &mut inner);
    prost::encoding::string::encode(1, &"ok".to_owned(), &mut inner);
    let mut bytes = Vec::new();
    prost::encoding::bytes::encode(1, &inner, &mut bytes);
    assert!(Generated::decode(bytes.as_slice()).is_err());
    let batch = CheckBatchRequest::decode(bytes.as_slice()).unwrap();
    assert_eq!(read(&batch).unwrap_err(), NotUtf8 { field: "token_id" });
}

#[test]
fn merging_field_by_field_keeps_every_check() {
    let checks: Vec<CheckRequest> = (0..300)
        .map(|i| CheckRequest {
            token_id: Some(format!("t{i}")),
            ..CheckRequest::default()
        })
        .collect();
    let framed = Generated {
        checks: checks.clone(),
    }
    .encode_length_delimited_to_vec();
    let batch = CheckBatchRequest::decode_length_delimited(framed.as_slice()).unwrap();
    assert_eq!(batch.len(), 300);
    assert_eq!(read(&batch).unwrap(), refs(&Generated { checks }));
}

#[test]
fn debug_shows_sizes_not_ids() {
    let batch = CheckBatchRequest::new(&[CheckRequest {
        token_id: Some("secret-ish-id".into()),
        ..CheckRequest::default()
    }]);
    let shown = format!("{batch:?}");
    assert!(shown.contains("checks: 1"), "{shown}");
    assert!(!shown.contains("secret-ish-id"), "{shown}");
}
