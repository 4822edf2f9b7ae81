//! The op log's behaviour on disk, and its record layout pinned.

mod behaviour {
    use rescind_core::Payload;

    use super::super::*;

    fn op(origin: &OriginId, seq: u64) -> Op {
        Op {
            origin: origin.clone(),
            seq,
            payload: Payload::Token {
                token_id: format!("t{seq}"),
                expires_at_ms: 0,
                revoked_at_ms: seq,
                reason: "r".repeat(200),
                actor: String::new(),
            },
        }
    }

    #[test]
    fn a_torn_tail_is_cut_and_earlier_records_survive() {
        let dir = tempfile::tempdir().unwrap();
        let a = OriginId::new("a", 1);
        let log = OpLogFiles::open(dir.path(), &[]).unwrap();
        log.append(&(1..=10).map(|s| op(&a, s)).collect::<Vec<_>>())
            .unwrap();
        log.sync().unwrap();
        drop(log);
        let path = segment_path(dir.path(), 1);
        let full = std::fs::metadata(&path).unwrap().len();
        // Half a record more, as a crash mid-append leaves it.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 5]).unwrap();
        drop(f);
        let log = OpLogFiles::open(dir.path(), &[]).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), full);
        assert_eq!(log.ops_after(&a, 0, 100).unwrap().len(), 10);
        log.append(&[op(&a, 11)]).unwrap();
        assert_eq!(
            log.ops_after(&a, 9, 100)
                .unwrap()
                .iter()
                .map(|o| o.seq)
                .collect::<Vec<_>>(),
            vec![10, 11]
        );
    }

    #[test]
    fn segments_roll_and_truncation_deletes_whole_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (OriginId::new("a", 1), OriginId::new("b", 1));
        // ~270 B per op: about 10 ops per segment.
        let log = OpLogFiles::open(dir.path(), &[])
            .unwrap()
            .with_segment_bytes(2800);
        let segments = || std::fs::read_dir(dir.path()).unwrap().count();
        log.append(&(1..=25).map(|s| op(&a, s)).collect::<Vec<_>>())
            .unwrap();
        log.append(&(26..=50).map(|s| op(&a, s)).collect::<Vec<_>>())
            .unwrap();
        log.append(&[op(&b, 1)]).unwrap();
        let before = segments();
        assert!(before >= 4, "{before} segments");
        assert_eq!(
            log.ops_after(&a, 0, 100).unwrap().len(),
            50,
            "read across segments"
        );
        assert_eq!(log.truncate(&[(a.clone(), 20)]).unwrap(), 20);
        assert_eq!(log.ops_after(&a, 0, 100).unwrap()[0].seq, 21);
        assert!(segments() < before, "whole segments below the floor went");
        assert_eq!(log.origins().len(), 2);
        assert_eq!(log.truncate(&[(a.clone(), 50), (b.clone(), 1)]).unwrap(), 31);
        assert!(log.origins().is_empty());
        // The newest segment stays (appends go there).
        assert_eq!(segments(), 1);
        drop(log);
        let log = OpLogFiles::open(dir.path(), &[(a.clone(), 50), (b.clone(), 1)]).unwrap();
        assert!(
            log.ops_after(&a, 0, 100).unwrap().is_empty(),
            "the floor holds across a reopen"
        );
    }

    #[test]
    fn damage_before_the_newest_segment_is_reported_with_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let a = OriginId::new("a", 1);
        let log = OpLogFiles::open(dir.path(), &[]).unwrap();
        log.append(&[op(&a, 1), op(&a, 2)]).unwrap();
        drop(log);
        // A second segment makes the first one not the newest.
        std::fs::write(segment_path(dir.path(), 2), b"").unwrap();
        let path = segment_path(dir.path(), 1);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER + 3] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let err = OpLogFiles::open(dir.path(), &[]).unwrap_err().to_string();
        assert!(err.contains("segment-0000000001.log at byte 0"), "{err}");
    }
}

mod golden {
    use rescind_core::Payload;

    use super::super::*;

    /// The segment record framing, pinned (the op inside is pinned by
    /// rescind-core's golden tests).
    #[test]
    fn a_segment_record_is_length_checksum_op() {
        let dir = tempfile::tempdir().unwrap();
        let op = Op {
            origin: OriginId::new("a", 1),
            seq: 1,
            payload: Payload::Token {
                token_id: "t".into(),
                expires_at_ms: 0,
                revoked_at_ms: 2,
                reason: String::new(),
                actor: String::new(),
            },
        };
        let log = OpLogFiles::open(dir.path(), &[]).unwrap();
        log.append(std::slice::from_ref(&op)).unwrap();
        log.sync().unwrap();
        let bytes = std::fs::read(segment_path(dir.path(), 1)).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, GOLDEN_RECORD, "the op-log record layout changed");
    }

    const GOLDEN_RECORD: &str = "0c0000008e5b862a810161010100017400020000";
}
