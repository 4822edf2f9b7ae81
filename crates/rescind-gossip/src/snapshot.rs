//! Snapshot paging: a node whose op log cannot serve a peer sends it its
//! whole state instead, page by page.
//!
//! The serving side is [`page`]: one page from a [`SnapshotSource`] and an
//! opaque cursor (empty for the first page, then the previous page's
//! [`SnapshotPage::next_cursor`]). The source decides the order (deny entries
//! first, then cutoffs) and what a position is; the first page carries the
//! version vector the snapshot covers.
//!
//! The receiving side is [`Pull`]: it validates each page ([`receive`]) and
//! hands back the entries to merge at once (a partial snapshot is still a
//! valid join), and the covered version vector only with the last page, so a
//! pull cut short never claims ops it did not get.

use rescind_core::limits::FieldError;
use rescind_core::{Cutoff, DenyEntry, PrincipalKind, VersionVector};

use crate::source::{SnapshotSource, SourceError};
use crate::wire::{decode_cutoffs, decode_deny, encode_cutoff, encode_deny};

/// Format version, the first byte of every cursor (1 named an id to
/// continue after; 2 carries the source's own position).
const CURSOR_VERSION: u8 = 2;

fn bad_cursor(why: impl std::fmt::Display) -> FieldError {
    FieldError::new("cursor", format!("not from this node: {why}"))
}

/// The source position a cursor carries; None for the first page.
fn decode_cursor(bytes: &[u8]) -> Result<Option<&[u8]>, FieldError> {
    match bytes.split_first() {
        None => Ok(None),
        Some((&CURSOR_VERSION, position)) => Ok(Some(position)),
        Some((version, _)) => Err(bad_cursor(format!("unknown format version {version}"))),
    }
}

fn encode_cursor(position: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + position.len());
    out.push(CURSOR_VERSION);
    out.extend_from_slice(position);
    out
}

/// One page of a snapshot, as it travels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotPage {
    /// On the first page: the version vector the whole snapshot covers.
    pub covered: Option<VersionVector>,
    /// Encoded deny entries ([`crate::wire::encode_deny`]).
    pub deny: Vec<Vec<u8>>,
    /// Encoded cutoffs ([`crate::wire::encode_cutoff`]).
    pub cutoffs: Vec<Vec<u8>>,
    /// The cursor to ask for the next page with (empty when done).
    pub next_cursor: Vec<u8>,
    /// This is the last page.
    pub done: bool,
}

impl SnapshotPage {
    /// Encoded entry bytes in this page (what the traffic counters count).
    pub fn entry_bytes(&self) -> usize {
        self.deny.iter().chain(&self.cutoffs).map(Vec::len).sum()
    }
}

/// Why a page cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The cursor is garbage, or from another version or node (field `cursor`).
    #[error(transparent)]
    Cursor(#[from] FieldError),
    /// Reading the source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// Serve the page of `source` that `cursor` names, with at most `page_size`
/// entries (at least 1). The first page (empty cursor) starts the snapshot
/// and carries the version vector it covers.
pub fn page(source: &dyn SnapshotSource, cursor: &[u8], page_size: usize) -> Result<SnapshotPage, PageError> {
    let size = page_size.max(1);
    let mut page = SnapshotPage::default();
    let position = match decode_cursor(cursor)? {
        Some(position) => position.to_vec(),
        None => {
            let (covered, first) = source.start()?;
            page.covered = Some(covered);
            first
        }
    };
    let entries = source
        .entries(&position, size)?
        .ok_or_else(|| bad_cursor("no such position"))?;
    page.deny = entries.deny.iter().map(|(id, e)| encode_deny(id, e)).collect();
    page.cutoffs = entries
        .cutoffs
        .iter()
        .map(|(k, p, c)| encode_cutoff(*k, p, *c))
        .collect();
    match entries.next {
        Some(next) => page.next_cursor = encode_cursor(&next),
        None => page.done = true,
    }
    Ok(page)
}

/// The validated entries of one page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entries {
    /// Deny entries to merge.
    pub deny: Vec<(String, DenyEntry)>,
    /// Cutoffs to merge.
    pub cutoffs: Vec<(PrincipalKind, String, Cutoff)>,
}

/// Decode and validate a page's entries: all of them, or an error naming the
/// first bad one.
pub fn receive(page: &SnapshotPage) -> Result<Entries, FieldError> {
    Ok(Entries {
        deny: decode_deny(&page.deny)?,
        cutoffs: decode_cutoffs(&page.cutoffs)?,
    })
}

/// What to merge after one page of a [`Pull`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Merge {
    /// Deny entries to merge now.
    pub deny: Vec<(String, DenyEntry)>,
    /// Cutoffs to merge now.
    pub cutoffs: Vec<(PrincipalKind, String, Cutoff)>,
    /// On the last page: the version vector to raise the clock to.
    pub clock: Option<VersionVector>,
    /// The snapshot is complete.
    pub done: bool,
}

/// A snapshot being pulled from one peer, page after page.
#[derive(Clone, Debug, Default)]
pub struct Pull {
    cursor: Vec<u8>,
    first: bool,
    covered: Option<VersionVector>,
    done: bool,
}

impl Pull {
    /// A pull that has not asked for anything yet.
    pub fn new() -> Self {
        Self {
            first: true,
            ..Self::default()
        }
    }

    /// The cursor to ask for the next page with.
    pub fn cursor(&self) -> &[u8] {
        &self.cursor
    }

    /// No page received yet: the next one carries the covered version vector.
    pub fn is_first(&self) -> bool {
        self.first
    }

    /// The last page was received.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Take the page answering [`Pull::cursor`]: validate it, remember the
    /// covered version vector from the first page, and say what to merge.
    /// An invalid page changes nothing (the pull can be retried or dropped).
    pub fn receive(&mut self, page: &SnapshotPage) -> Result<Merge, FieldError> {
        let entries = receive(page)?;
        if self.first {
            self.covered = Some(page.covered.clone().unwrap_or_default());
            self.first = false;
        }
        self.cursor.clone_from(&page.next_cursor);
        self.done = page.done;
        Ok(Merge {
            deny: entries.deny,
            cutoffs: entries.cutoffs,
            clock: if page.done { self.covered.take() } else { None },
            done: page.done,
        })
    }
}

#[cfg(test)]
mod tests {
    use rescind_core::OriginId;

    use super::*;
    use crate::testing::MemNode;

    /// A node holding `tokens` deny entries and `subjects` cutoffs, flushed.
    fn node(tokens: usize, subjects: usize) -> MemNode {
        let mut n = MemNode::new("a", "eu", &[]);
        for i in 0..tokens {
            n.revoke_token(&format!("t{i:03}"));
        }
        for i in 0..subjects {
            n.revoke_cutoff(&format!("s{i:03}"), 10);
        }
        n.flush();
        n
    }

    /// Every page from the start, and the pull's merges.
    fn pull_all(source: &MemNode, size: usize) -> (Vec<SnapshotPage>, Vec<Merge>) {
        let (mut pages, mut merges, mut pull) = (Vec::new(), Vec::new(), Pull::new());
        while !pull.is_done() {
            let p = page(source, pull.cursor(), size).unwrap();
            merges.push(pull.receive(&p).unwrap());
            pages.push(p);
            assert!(pages.len() < 100, "a snapshot must end");
        }
        (pages, merges)
    }

    #[test]
    fn pages_visit_every_entry_once_and_rebuild_the_state() {
        let source = node(7, 5);
        let (pages, merges) = pull_all(&source, 3);
        // deny 3+3+1, then cutoffs fill the rest: 2+3 (the last one is done).
        let sizes: Vec<(usize, usize)> = pages.iter().map(|p| (p.deny.len(), p.cutoffs.len())).collect();
        assert_eq!(sizes, vec![(3, 0), (3, 0), (1, 2), (0, 3)]);
        assert_eq!(pages[0].covered, Some(source.durable.clone()));
        assert!(pages[1..].iter().all(|p| p.covered.is_none()));
        assert!(pages.last().unwrap().done && pages.last().unwrap().next_cursor.is_empty());
        assert!(merges[..3].iter().all(|m| m.clock.is_none() && !m.done));
        assert_eq!(merges[3].clock, Some(source.durable.clone()));
        let mut rebuilt = MemNode::new("b", "eu", &[]);
        for m in &merges {
            rebuilt.merge(m);
        }
        assert_eq!(rebuilt.state, source.state);
        assert!(pages.iter().map(SnapshotPage::entry_bytes).sum::<usize>() > 0);
    }

    #[test]
    fn an_empty_source_is_one_page_and_a_zero_page_size_is_one() {
        let (pages, merges) = pull_all(&MemNode::new("a", "eu", &[]), 1024);
        assert_eq!(pages.len(), 1, "one empty page");
        assert_eq!(merges[0].clock, Some(VersionVector::new()));
        let (pages, _) = pull_all(&node(2, 0), 0);
        assert_eq!(pages.iter().map(|p| p.deny.len()).sum::<usize>(), 2);
    }

    #[test]
    fn bad_cursors_are_refused_naming_the_cursor() {
        let source = node(3, 0);
        let good = page(&source, &[], 1).unwrap().next_cursor;
        assert_eq!(good[0], CURSOR_VERSION);
        let mut trailing = good.clone();
        trailing.push(0);
        let mut future = good.clone();
        future[0] = 3;
        for bad in [vec![0xff; 8], vec![CURSOR_VERSION, 0xff, 0xff], trailing, future] {
            match page(&source, &bad, 1) {
                Err(PageError::Cursor(e)) => {
                    assert_eq!(e.field, "cursor", "{e}");
                    assert!(e.to_string().starts_with("cursor: not from this node"), "{e}");
                }
                other => panic!("{bad:?} was not refused: {other:?}"),
            }
        }
    }

    #[test]
    fn an_invalid_page_is_refused_whole_and_leaves_the_pull_as_it_was() {
        let source = node(2, 0);
        let mut p = page(&source, &[], 10).unwrap();
        p.deny.push(vec![0xff]);
        let mut pull = Pull::new();
        assert_eq!(pull.receive(&p).unwrap_err().field, "deny[2]");
        assert!(pull.is_first() && pull.cursor().is_empty());
        let mut bad_id = SnapshotPage::default();
        bad_id.deny.push(encode_deny(
            "",
            &DenyEntry {
                expires_at_ms: 0,
                revoked_at_ms: 1,
                origin: OriginId::new("a", 1),
            },
        ));
        assert_eq!(receive(&bad_id).unwrap_err().field, "deny[0]");
    }

    #[test]
    fn a_failing_source_is_a_source_error() {
        struct Broken;
        impl SnapshotSource for Broken {
            fn start(&self) -> Result<(VersionVector, Vec<u8>), SourceError> {
                Err(SourceError("no flush".into()))
            }
            fn entries(
                &self,
                _: &[u8],
                _: usize,
            ) -> Result<Option<crate::source::SourceEntries>, SourceError> {
                Ok(None)
            }
        }
        let err = page(&Broken, &[], 10).unwrap_err();
        assert!(matches!(err, PageError::Source(_)));
        assert_eq!(err.to_string(), "no flush");
    }
}
