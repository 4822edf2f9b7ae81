//! # rescind-core
//!
//! The revocation state of a Rescind node as a CRDT, with no I/O and no async:
//! everything here is a plain synchronous function over values, so it can be
//! tested exhaustively (proptest) and driven by the node, the store and the
//! simulator alike.
//!
//! `State = (Deny, Cutoffs, Clock)`:
//! - a grow-only deny set of token ids, where an id present twice keeps the entry
//!   smallest by `(revoked_at, origin)`;
//! - max-wins cutoffs per principal (`issued_before`, `min_version`);
//! - a version vector of the highest contiguous op seq applied per origin.
//!
//! ## Layout
//! - [`origin`]: [`OriginId`], the node name + incarnation every op is stamped with.
//! - [`limits`]: input limits and field validation shared by every front end.
//! - [`digest`]: [`Digest`], an order-independent hash of the observable state.
//! - [`deny`]: [`DenySet`] and its entries.
//! - [`cutoff`]: [`CutoffMap`], [`Cutoff`] and [`PrincipalKind`].
//! - [`clock`]: [`VersionVector`], contiguous seqs per origin.
//! - [`op`]: [`Op`] and [`Payload`], what a local write produces and gossip carries.
//! - [`state`]: [`State`], which applies ops and merges entries, reporting effects.
//! - [`check`]: [`CheckQuery`] and [`Decision`], the revocation rules.
//! - [`scope`]: issuer namespaces, one stored key per (issuer, id).
//! - [`consistency`]: [`ConsistencyToken`], read-your-revocations across nodes.
//! - [`codec`]: every encoding that outlives a process or crosses the network, versioned:
//!   [`wire`] (ops and snapshot entries), meta values, checkpoint files.

pub mod check;
pub mod clock;
pub mod codec;
pub mod consistency;
pub mod cutoff;
pub mod deny;
pub mod digest;
pub mod limits;
pub mod op;
pub mod origin;
pub mod scope;
pub mod state;

pub use codec::wire;

pub use check::{CheckQuery, Decision, Rule};
pub use clock::VersionVector;
pub use consistency::ConsistencyToken;
pub use cutoff::{Cutoff, CutoffMap, PrincipalKind};
pub use deny::{DenyEntry, DenyEntryRef, DenyMeta, DenySet, OriginRef};
pub use digest::Digest;
pub use op::{Op, Payload};
pub use origin::OriginId;
pub use state::{Effect, State};
