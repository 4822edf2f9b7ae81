//! `rescind.v1.CheckBatchRequest`, written by hand instead of generated.
//!
//! prost decodes `repeated CheckRequest checks` into a `Vec` of owned
//! `CheckRequest`s: one 216-byte value moved on every growth of the vector
//! and one `String` allocated per id, for up to 1,024 checks per call, only
//! for the node to borrow the ids and drop them all. This type keeps the
//! message's bytes as they arrived (one reference-counted buffer) and where
//! each check lies in them; [`CheckBatchRequest::checks`] hands out
//! [`CheckRequestRef`]s that borrow the ids from that buffer.
//!
//! The wire format is the generated type's: a sender using any protobuf
//! library sees no difference. Decoding rejects what prost's generated code
//! rejects (a test holds the two together on arbitrary bytes), with one
//! difference: a string that is not UTF-8 is found when the checks are read
//! (each string is checked once, there, not twice), as a [`NotUtf8`] naming
//! the field, which the node answers as an invalid argument. (Also: prost
//! skips a check's unknown fields with one level of group nesting fewer
//! than this decoder allows, 99 against 100; both are bounded.)

use std::ops::Range;

use prost::bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};

use crate::v1::CheckRequest;

/// The field number of `checks` in `CheckBatchRequest`.
const CHECKS: u32 = 1;

/// A batch of checks (`rescind.v1.CheckBatchRequest`), at most 1,024 of
/// them (the node's limit). Build one with [`CheckBatchRequest::new`] or
/// `From<Vec<CheckRequest>>`; read its checks with
/// [`CheckBatchRequest::checks`].
#[derive(Clone, Default, PartialEq)]
pub struct CheckBatchRequest {
    /// The message as encoded: field 1 once per check, and whatever unknown
    /// fields a sender added (kept, and sent on if the batch is re-encoded).
    raw: Bytes,
    /// Where each check's encoded `CheckRequest` lies in `raw`, in order.
    spans: Vec<Range<usize>>,
}

impl CheckBatchRequest {
    /// A batch of `checks`, in order.
    pub fn new(checks: &[CheckRequest]) -> Self {
        let len = checks
            .iter()
            .map(|c| encoding::message::encoded_len(CHECKS, c))
            .sum();
        let mut raw = Vec::with_capacity(len);
        let mut spans = Vec::with_capacity(checks.len());
        for check in checks {
            encoding::encode_key(CHECKS, WireType::LengthDelimited, &mut raw);
            encoding::encode_varint(check.encoded_len() as u64, &mut raw);
            let start = raw.len();
            check.encode_raw(&mut raw);
            spans.push(start..raw.len());
        }
        Self {
            raw: raw.into(),
            spans,
        }
    }

    /// How many checks the batch holds.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the batch holds no check.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The checks, in order, borrowing their strings from the batch; a
    /// check with a string field that is not UTF-8 is an error naming it.
    pub fn checks(&self) -> impl ExactSizeIterator<Item = Result<CheckRequestRef<'_>, NotUtf8>> + '_ {
        self.spans.iter().map(|span| {
            // Every span was parsed when the batch was decoded or built, so
            // neither step fails; an empty check (which names nothing, and
            // so fails validation) stands in rather than a panic.
            self.raw
                .get(span.clone())
                .and_then(|bytes| RawCheck::parse(bytes).ok())
                .unwrap_or_default()
                .to_ref()
        })
    }

    /// Append the checks found in `bytes`, a whole encoded batch.
    fn append(&mut self, bytes: Bytes) -> Result<(), DecodeError> {
        let spans = scan(&bytes)?;
        if self.raw.is_empty() {
            self.raw = bytes;
            self.spans = spans;
        } else {
            let offset = self.raw.len();
            // In place when this batch owns its buffer alone (as when
            // merged field by field): appending stays linear in the input.
            let mut raw = std::mem::take(&mut self.raw)
                .try_into_mut()
                .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
            raw.extend_from_slice(&bytes);
            self.raw = raw.freeze();
            self.spans
                .extend(spans.into_iter().map(|s| s.start + offset..s.end + offset));
        }
        Ok(())
    }
}

impl From<Vec<CheckRequest>> for CheckBatchRequest {
    fn from(checks: Vec<CheckRequest>) -> Self {
        Self::new(&checks)
    }
}

impl std::fmt::Debug for CheckBatchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckBatchRequest")
            .field("checks", &self.spans.len())
            .field("bytes", &self.raw.len())
            .finish()
    }
}

/// Where every check of an encoded batch lies, each one parsed on the way;
/// other fields are skipped as prost skips unknown fields.
fn scan(raw: &[u8]) -> Result<Vec<Range<usize>>, DecodeError> {
    let ctx = DecodeContext::default();
    let mut buf = raw;
    let mut spans = Vec::new();
    while buf.has_remaining() {
        let (tag, wire_type) = encoding::decode_key(&mut buf)?;
        if tag == CHECKS {
            encoding::check_wire_type(WireType::LengthDelimited, wire_type)?;
            let check = delimited(&mut buf, tag, ctx.clone())?;
            RawCheck::parse(check)?;
            let start = raw.len() - buf.len() - check.len();
            spans.push(start..start + check.len());
        } else {
            encoding::skip_field(wire_type, tag, &mut buf, ctx.clone())?;
        }
    }
    Ok(spans)
}

/// The payload of the length-delimited field whose key was just read.
fn delimited<'a>(buf: &mut &'a [u8], tag: u32, ctx: DecodeContext) -> Result<&'a [u8], DecodeError> {
    let field = *buf;
    let len = encoding::decode_varint(buf)?;
    match usize::try_from(len) {
        Ok(len) if len <= buf.len() => {
            let (payload, rest) = buf.split_at(len);
            *buf = rest;
            Ok(payload)
        }
        // Too long: prost's own error for it, from prost's own skip.
        _ => {
            *buf = field;
            encoding::skip_field(WireType::LengthDelimited, tag, buf, ctx)?;
            Err(underflow())
        }
    }
}

/// One check's fields as bytes, its structure (keys, wire types, lengths)
/// checked; its strings not yet checked for UTF-8.
#[derive(Clone, Copy, Default)]
struct RawCheck<'a> {
    /// Fields 1 to 6 (`token_id` .. `session_id`), then 10 (`issuer`).
    strings: [Option<&'a [u8]>; 7],
    /// A string field given more than once whose replaced value was not
    /// UTF-8 (prost checks every value, not only the last).
    replaced_not_utf8: Option<&'static str>,
    issued_at_ms: i64,
    token_version: Option<u64>,
    consistency_token: Option<&'a [u8]>,
}

/// The names of [`RawCheck::strings`], in order.
const STRING_FIELDS: [&str; 7] = [
    "token_id",
    "subject",
    "client_id",
    "tenant",
    "key_id",
    "session_id",
    "issuer",
];

impl<'a> RawCheck<'a> {
    /// Parse an encoded `CheckRequest` as prost's generated code does: a
    /// field given twice keeps its last value, unknown fields are skipped.
    fn parse(mut buf: &'a [u8]) -> Result<Self, DecodeError> {
        let ctx = DecodeContext::default();
        let mut check = Self::default();
        while buf.has_remaining() {
            let (tag, wire_type) = encoding::decode_key(&mut buf)?;
            match tag {
                1..=6 | 9 | 10 => {
                    encoding::check_wire_type(WireType::LengthDelimited, wire_type)?;
                    let value = delimited(&mut buf, tag, ctx.clone())?;
                    let slot = match tag {
                        9 => {
                            check.consistency_token = Some(value);
                            continue;
                        }
                        10 => 6,
                        n => n as usize - 1,
                    };
                    if let Some(replaced) = check.strings[slot].replace(value)
                        && std::str::from_utf8(replaced).is_err()
                    {
                        check.replaced_not_utf8.get_or_insert(STRING_FIELDS[slot]);
                    }
                }
                7 | 8 => {
                    encoding::check_wire_type(WireType::Varint, wire_type)?;
                    let value = encoding::decode_varint(&mut buf)?;
                    if tag == 7 {
                        // prost reads an int64 as the varint's bits.
                        check.issued_at_ms = value as i64;
                    } else {
                        check.token_version = Some(value);
                    }
                }
                _ => encoding::skip_field(wire_type, tag, &mut buf, ctx.clone())?,
            }
        }
        Ok(check)
    }

    /// The check with its strings as `str`s.
    fn to_ref(self) -> Result<CheckRequestRef<'a>, NotUtf8> {
        if let Some(field) = self.replaced_not_utf8 {
            return Err(NotUtf8 { field });
        }
        let mut strings = [None; 7];
        for ((out, bytes), field) in strings.iter_mut().zip(self.strings).zip(STRING_FIELDS) {
            if let Some(bytes) = bytes {
                *out = Some(std::str::from_utf8(bytes).map_err(|_| NotUtf8 { field })?);
            }
        }
        let [token_id, subject, client_id, tenant, key_id, session_id, issuer] = strings;
        Ok(CheckRequestRef {
            token_id,
            subject,
            client_id,
            tenant,
            key_id,
            session_id,
            issued_at_ms: self.issued_at_ms,
            token_version: self.token_version,
            consistency_token: self.consistency_token,
            issuer,
        })
    }
}

/// A check's string field that is not UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotUtf8 {
    /// The field's name in `CheckRequest` (`token_id`, ...).
    pub field: &'static str,
}

impl std::fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not UTF-8", self.field)
    }
}

impl std::error::Error for NotUtf8 {}

/// One check of a batch, its strings borrowed from the batch's bytes: the
/// fields of `CheckRequest`, same names, same meaning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckRequestRef<'a> {
    /// `token_id`.
    pub token_id: Option<&'a str>,
    /// `subject`.
    pub subject: Option<&'a str>,
    /// `client_id`.
    pub client_id: Option<&'a str>,
    /// `tenant`.
    pub tenant: Option<&'a str>,
    /// `key_id`.
    pub key_id: Option<&'a str>,
    /// `session_id`.
    pub session_id: Option<&'a str>,
    /// `issued_at_ms`.
    pub issued_at_ms: i64,
    /// `token_version`.
    pub token_version: Option<u64>,
    /// `consistency_token`.
    pub consistency_token: Option<&'a [u8]>,
    /// `issuer`.
    pub issuer: Option<&'a str>,
}

impl<'a> From<&'a CheckRequest> for CheckRequestRef<'a> {
    fn from(c: &'a CheckRequest) -> Self {
        Self {
            token_id: c.token_id.as_deref(),
            subject: c.subject.as_deref(),
            client_id: c.client_id.as_deref(),
            tenant: c.tenant.as_deref(),
            key_id: c.key_id.as_deref(),
            session_id: c.session_id.as_deref(),
            issued_at_ms: c.issued_at_ms,
            token_version: c.token_version,
            consistency_token: c.consistency_token.as_deref(),
            issuer: c.issuer.as_deref(),
        }
    }
}

/// A length past the end of the buffer, should prost's skip not say so
/// itself (it does: this is never reached).
#[cold]
fn underflow() -> DecodeError {
    #[allow(deprecated)]
    DecodeError::new("buffer underflow")
}

impl Message for CheckBatchRequest {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.raw);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        // Only reached through `merge_length_delimited` (a batch inside
        // another message, which the API has not): one field at a time.
        if tag != CHECKS {
            return encoding::skip_field(wire_type, tag, buf, ctx);
        }
        encoding::check_wire_type(WireType::LengthDelimited, wire_type)?;
        let mut check = Vec::new();
        encoding::bytes::merge(wire_type, &mut check, buf, ctx)?;
        let mut field = Vec::with_capacity(check.len() + 11);
        encoding::encode_key(CHECKS, WireType::LengthDelimited, &mut field);
        encoding::encode_varint(check.len() as u64, &mut field);
        field.extend_from_slice(&check);
        self.append(field.into())
    }

    fn merge(&mut self, mut buf: impl Buf) -> Result<(), DecodeError> {
        // tonic's decode buffer hands its bytes over without a copy.
        let bytes = buf.copy_to_bytes(buf.remaining());
        self.append(bytes)
    }

    fn encoded_len(&self) -> usize {
        self.raw.len()
    }

    fn clear(&mut self) {
        self.raw = Bytes::new();
        self.spans.clear();
    }
}

#[cfg(test)]
mod tests;
