//! The byte layout of one deny record in [`super::DenySet`]'s arena.
//!
//! A record is the id, then the entry's fields, padded to 4 bytes:
//!
//! ```text
//! header  id bytes            expires_at_ms  revoked_at_ms  origin no.  pad
//! 1..5 B  len B (16 for UUID) u64 LE         u64 LE         u32 LE      0..3 B
//! ```
//!
//! The header says how the id is stored:
//! - `0x00..=0x7F`: the id's length; the id follows as is;
//! - `0x80..=0xFD`: with the next byte, a 15-bit length (up to 32,255 B);
//! - [`UUID`]: a canonical lowercase UUID (`8-4-4-4-12` hex) packed into 16
//!   bytes, the usual shape of a `jti`: 17 bytes instead of 37;
//! - [`LONG`]: a u32 LE length follows (no id is that long after validation,
//!   but the set never panics on one).
//!
//! Only the exact lowercase form packs, so unpacking gives back the very same
//! string: ids stay case-sensitive and opaque.

/// Header of a packed UUID.
pub const UUID: u8 = 0xFE;
/// Header followed by a u32 length.
pub const LONG: u8 = 0xFF;
/// Bytes of the entry fields after the id.
pub const META_BYTES: usize = 20;
/// Records start at multiples of this, so a u32 offset in these units
/// addresses 16 GiB of arena.
pub const ALIGN: usize = 4;

/// An id in its stored form: what is hashed and compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key<'a> {
    /// A canonical lowercase UUID, packed.
    Uuid([u8; 16]),
    /// Any other id, as its bytes.
    Raw(&'a [u8]),
}

impl<'a> Key<'a> {
    /// The stored form of `id`.
    pub fn of(id: &'a str) -> Self {
        pack_uuid(id).map_or(Key::Raw(id.as_bytes()), Key::Uuid)
    }

    /// The bytes the index hashes.
    pub fn hash_bytes(&self) -> &[u8] {
        match self {
            Key::Uuid(b) => b,
            Key::Raw(b) => b,
        }
    }

    /// The id as text.
    pub fn to_id(self) -> std::borrow::Cow<'a, str> {
        match self {
            Key::Uuid(b) => std::borrow::Cow::Owned(unpack_uuid(&b)),
            // Raw keys come from `&str` ids, so this never fails; a lossy
            // conversion keeps it panic-free regardless.
            Key::Raw(b) => String::from_utf8_lossy(b),
        }
    }

    /// Bytes of a whole record holding this key, padding included.
    pub fn record_len(&self) -> usize {
        let body = match self {
            Key::Uuid(_) => 1 + 16,
            Key::Raw(b) if b.len() < 0x80 => 1 + b.len(),
            Key::Raw(b) if b.len() < 0x7E00 => 2 + b.len(),
            Key::Raw(b) => 5 + b.len(),
        } + META_BYTES;
        body.div_ceil(ALIGN) * ALIGN
    }
}

/// The fields of an entry as a record holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fields {
    /// See `DenyEntry::expires_at_ms`.
    pub expires_at_ms: u64,
    /// See `DenyEntry::revoked_at_ms`.
    pub revoked_at_ms: u64,
    /// Index into the set's origin table.
    pub origin: u32,
}

/// Append a record for `key` with `fields` to `arena` (which must end on an
/// [`ALIGN`] boundary); returns where it starts.
pub fn append(arena: &mut Vec<u8>, key: &Key<'_>, fields: Fields) -> usize {
    let at = arena.len();
    match key {
        Key::Uuid(b) => {
            arena.push(UUID);
            arena.extend_from_slice(b);
        }
        Key::Raw(b) if b.len() < 0x80 => {
            arena.push(b.len() as u8);
            arena.extend_from_slice(b);
        }
        Key::Raw(b) if b.len() < 0x7E00 => {
            arena.push(0x80 + (b.len() >> 8) as u8);
            arena.push((b.len() & 0xFF) as u8);
            arena.extend_from_slice(b);
        }
        Key::Raw(b) => {
            arena.push(LONG);
            arena.extend_from_slice(&(b.len() as u32).to_le_bytes());
            arena.extend_from_slice(b);
        }
    }
    let meta_at = arena.len();
    arena.resize(meta_at + META_BYTES, 0);
    write_fields(arena, meta_at, fields);
    arena.resize(at + key.record_len(), 0);
    at
}

/// The key of the record at `at`, and where its fields start.
pub fn key_at(arena: &[u8], at: usize) -> (Key<'_>, usize) {
    let header = arena[at];
    match header {
        UUID => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&arena[at + 1..at + 17]);
            (Key::Uuid(b), at + 17)
        }
        LONG => {
            let mut len = [0u8; 4];
            len.copy_from_slice(&arena[at + 1..at + 5]);
            let end = at + 5 + u32::from_le_bytes(len) as usize;
            (Key::Raw(&arena[at + 5..end]), end)
        }
        h if h < 0x80 => {
            let end = at + 1 + h as usize;
            (Key::Raw(&arena[at + 1..end]), end)
        }
        h => {
            let len = (((h - 0x80) as usize) << 8) | arena[at + 1] as usize;
            (Key::Raw(&arena[at + 2..at + 2 + len]), at + 2 + len)
        }
    }
}

/// The entry fields starting at `meta_at`.
pub fn read_fields(arena: &[u8], meta_at: usize) -> Fields {
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&arena[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let mut o = [0u8; 4];
    o.copy_from_slice(&arena[meta_at + 16..meta_at + 20]);
    Fields {
        expires_at_ms: u64_at(meta_at),
        revoked_at_ms: u64_at(meta_at + 8),
        origin: u32::from_le_bytes(o),
    }
}

/// Overwrite the entry fields starting at `meta_at`.
pub fn write_fields(arena: &mut [u8], meta_at: usize, f: Fields) {
    arena[meta_at..meta_at + 8].copy_from_slice(&f.expires_at_ms.to_le_bytes());
    arena[meta_at + 8..meta_at + 16].copy_from_slice(&f.revoked_at_ms.to_le_bytes());
    arena[meta_at + 16..meta_at + 20].copy_from_slice(&f.origin.to_le_bytes());
}

/// Where each byte's two hex digits start in a canonical UUID.
const PAIRS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// `id` packed into 16 bytes when it is a canonical lowercase UUID. On the
/// path of every check, so branch-free over fixed positions: a branch per
/// digit ("0-9 or a-f?") is taken at random for random ids, and its
/// mispredictions cost more than all the rest of a lookup's arithmetic.
pub fn pack_uuid(id: &str) -> Option<[u8; 16]> {
    let s = id.as_bytes();
    if s.len() != 36 || s[8] != b'-' || s[13] != b'-' || s[18] != b'-' || s[23] != b'-' {
        return None;
    }
    let mut out = [0u8; 16];
    // Any digit that is not lowercase hex sets a high bit here.
    let mut bad = 0u8;
    for (byte, &at) in out.iter_mut().zip(PAIRS.iter()) {
        let (hi, lo) = (HEX_VALUE[s[at] as usize], HEX_VALUE[s[at + 1] as usize]);
        bad |= hi | lo;
        *byte = (hi << 4) | lo;
    }
    (bad & 0xF0 == 0).then_some(out)
}

/// A lowercase hex digit's value by its byte; 0xFF for any other byte.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0xFF; 256];
    let mut c = 0;
    while c < 10 {
        table[b'0' as usize + c] = c as u8;
        c += 1;
    }
    let mut c = 0;
    while c < 6 {
        table[b'a' as usize + c] = 10 + c as u8;
        c += 1;
    }
    table
};

/// The canonical text of a packed UUID.
pub fn unpack_uuid(b: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[(byte >> 4) as usize] as char);
        out.push(HEX[(byte & 0xF) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_lowercase_uuids_pack_and_they_round_trip() {
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let packed = pack_uuid(id).unwrap();
        assert_eq!(unpack_uuid(&packed), id);
        for other in [
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
            "0f8fad5bd9cb469fa16570867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950",
            "0f8fad5b-d9cb-469f-a165-70867728950g",
            "0f8fad5b_d9cb-469f-a165-70867728950e",
            "{f8fad5b-d9cb-469f-a165-70867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950é",
        ] {
            assert_eq!(pack_uuid(other), None, "{other}");
        }
    }

    #[test]
    fn every_digit_position_takes_lowercase_hex_and_nothing_else() {
        let id = *b"0f8fad5b-d9cb-469f-a165-70867728950e";
        for at in (0..36).filter(|at| ![8, 13, 18, 23].contains(at)) {
            for c in 0u8..128 {
                let mut bytes = id;
                bytes[at] = c;
                let text = std::str::from_utf8(&bytes).unwrap();
                let packs = pack_uuid(text).is_some();
                assert_eq!(packs, c.is_ascii_digit() || (b'a'..=b'f').contains(&c), "{text}");
                if packs {
                    assert_eq!(unpack_uuid(&pack_uuid(text).unwrap()), text);
                }
            }
        }
    }

    #[test]
    fn records_of_every_header_form_read_back() {
        let long = "x".repeat(0x7E00 + 3);
        let medium = "m".repeat(300);
        let ids = ["", "a", "0f8fad5b-d9cb-469f-a165-70867728950e", &medium, &long];
        let mut arena = Vec::new();
        let mut at = Vec::new();
        for (n, id) in ids.iter().enumerate() {
            let f = Fields {
                expires_at_ms: n as u64,
                revoked_at_ms: u64::MAX - n as u64,
                origin: n as u32 * 7,
            };
            let start = append(&mut arena, &Key::of(id), f);
            assert_eq!(start % ALIGN, 0);
            assert_eq!(arena.len() - start, Key::of(id).record_len());
            at.push((start, f));
        }
        for (id, (start, f)) in ids.iter().zip(at) {
            let (key, meta_at) = key_at(&arena, start);
            assert_eq!(key, Key::of(id));
            assert_eq!(key.to_id(), *id);
            assert_eq!(read_fields(&arena, meta_at), f);
        }
        assert_eq!(Key::of("0f8fad5b-d9cb-469f-a165-70867728950e").record_len(), 40);
    }
}
