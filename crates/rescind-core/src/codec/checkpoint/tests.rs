use super::*;

fn sample() -> State {
    let mut s = State::new(0);
    for i in 0..500u64 {
        let id = if i % 2 == 0 {
            format!("{i:08x}-d9cb-469f-a165-70867728950e")
        } else {
            format!("token-{i}").repeat(1 + (i % 40) as usize)
        };
        let origin = OriginId::new(if i % 3 == 0 { "a" } else { "b" }, 1 + i % 3);
        let entry = DenyEntry {
            // Expiries before, after and at the revocation, and none.
            expires_at_ms: [0, i * 10 + 1, i.saturating_sub(5).max(1), u64::MAX][(i % 4) as usize],
            revoked_at_ms: i,
            origin,
        };
        s.merge_deny(&id, &entry, 0);
    }
    for i in 0..20u64 {
        s.merge_cutoff(
            PrincipalKind::ALL[(i % 5) as usize],
            &format!("p-{i}"),
            Cutoff {
                issued_before_ms: i,
                min_version: u64::MAX - i,
            },
        );
    }
    s.raise_clock(&OriginId::new("a", 1), 42);
    s
}

fn bytes_of(s: &State) -> Vec<u8> {
    let mut out = Vec::new();
    write(s, 1, 0, 0, &mut out).unwrap();
    out
}

#[test]
fn a_checkpoint_reads_back_the_same_state_with_or_without_holes() {
    let mut s = sample();
    for holes in [false, true] {
        if holes {
            s.prune_expired(u64::MAX);
        }
        let (back, header) = read(&bytes_of(&s)[..], 0).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.digest(), s.digest());
        assert_eq!(header.deny_records as usize, s.deny().len());
    }
}

#[test]
fn damaged_checkpoints_are_refused_never_half_read() {
    let bytes = bytes_of(&sample());
    for cut in [
        0,
        4,
        8,
        9,
        12,
        13,
        bytes.len() / 2,
        bytes.len() - 33,
        bytes.len() - 1,
    ] {
        assert!(read(&bytes[..cut], 0).is_err(), "cut at {cut}");
    }
    for at in (0..bytes.len()).step_by(61) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        assert!(read(&bad[..], 0).is_err(), "flip at {at}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(read(&longer[..], 0).is_err(), "trailing byte");
    let mut newer = bytes;
    newer[8] = 2;
    let err = read(&newer[..], 0).unwrap_err().to_string();
    assert!(err.contains("newer than this build reads"), "{err}");
}

#[test]
fn a_section_reader_serves_records_from_any_boundary() {
    let s = sample();
    let bytes = bytes_of(&s);
    let mut input = &bytes[..];
    let (header, len) = read_header(&mut input, None).unwrap();
    let start = header.deny_start(len) as usize;
    let mut section = SectionReader::new(&bytes[start..], header.deny_bytes, 0);
    let mut ids = Vec::new();
    for _ in 0..header.deny_records {
        let (id, f) = section.deny_record().unwrap();
        let entry = entry_of(f, &header.origins).unwrap();
        assert_eq!(s.deny().get(&id).map(|m| m.to_entry()), Some(entry));
        ids.push(id);
    }
    assert_eq!(section.left(), 0);
    assert_eq!(ids.len(), s.deny().len());
}
