//! The revocation rules (docs/design.md §1).

use std::borrow::Cow;

use crate::cutoff::{CutoffMap, PrincipalKind};
use crate::deny::DenySet;
use crate::scope;

/// One token to decide on. Absent fields are not consulted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckQuery<'a> {
    /// The token's id.
    pub token_id: Option<&'a str>,
    /// The principals it carries, indexed by [`PrincipalKind::index`].
    pub principals: [Option<&'a str>; 5],
    /// When it was issued (unix ms); 0 = unknown, which any time cutoff revokes.
    pub issued_at_ms: u64,
    /// Its version; absent counts as 0 against `min_version`.
    pub token_version: u64,
    /// The issuer whose namespace the id and principals are looked up in
    /// ([`scope`]); empty: the issuer-less namespace.
    pub issuer: &'a str,
}

impl<'a> CheckQuery<'a> {
    /// A query by token id alone.
    pub fn token(id: &'a str) -> Self {
        Self {
            token_id: Some(id),
            ..Self::default()
        }
    }

    /// Set one principal.
    pub fn with(mut self, kind: PrincipalKind, id: &'a str) -> Self {
        self.principals[kind.index()] = Some(id);
        self
    }

    /// Set the issue time.
    pub fn issued_at(mut self, ms: u64) -> Self {
        self.issued_at_ms = ms;
        self
    }

    /// Set the issuer.
    pub fn in_issuer(mut self, issuer: &'a str) -> Self {
        self.issuer = issuer;
        self
    }

    /// True when the query names a token id or at least one principal; a
    /// query that names nothing cannot be decided and front ends refuse it.
    pub fn names_something(&self) -> bool {
        self.token_id.is_some() || self.principals.iter().any(Option::is_some)
    }

    /// The deny-set key of the token id, namespaced by the issuer.
    pub fn token_key(&self) -> Option<Cow<'a, str>> {
        self.token_id.map(|id| scope::key(self.issuer, id))
    }
}

/// Which rule revoked a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Its id is in the deny set.
    TokenId,
    /// A cutoff on one of its principals.
    Cutoff(PrincipalKind),
}

/// The answer to a [`CheckQuery`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// The first rule that matched, or None when the token is allowed.
    pub rule: Option<Rule>,
    /// For a token id: when it was revoked; for a cutoff: its
    /// `issued_before_ms` (0 when only `min_version` matched).
    pub revoked_at_ms: u64,
}

impl Decision {
    /// True when the token must be rejected.
    pub fn revoked(&self) -> bool {
        self.rule.is_some()
    }
}

/// Decide one query. The deny set is consulted first, then each principal in
/// [`PrincipalKind::ALL`] order; a token is revoked when *any* rule matches, so
/// cutoffs at several scopes combine by max.
pub fn decide(deny: &DenySet, cutoffs: &CutoffMap, q: &CheckQuery<'_>) -> Decision {
    decide_given(q.token_key().and_then(|k| deny.revoked_at_ms(&k)), cutoffs, q)
}

/// [`decide`] for each query of a batch, the deny-set lookups overlapped
/// (see [`DenySet::revoked_at_each`]).
pub fn decide_many(deny: &DenySet, cutoffs: &CutoffMap, qs: &[CheckQuery<'_>]) -> Vec<Decision> {
    let keys: Vec<Option<Cow<'_, str>>> = qs.iter().map(CheckQuery::token_key).collect();
    let ids: Vec<Option<&str>> = keys.iter().map(|k| k.as_deref()).collect();
    let revoked = deny.revoked_at_each(&ids);
    qs.iter()
        .zip(revoked)
        .map(|(q, revoked_at_ms)| decide_given(revoked_at_ms, cutoffs, q))
        .collect()
}

/// [`decide`] with the deny-set lookup done: `by_id` is when the token's id
/// was revoked, if it was.
fn decide_given(by_id: Option<u64>, cutoffs: &CutoffMap, q: &CheckQuery<'_>) -> Decision {
    if let Some(revoked_at_ms) = by_id {
        return Decision {
            rule: Some(Rule::TokenId),
            revoked_at_ms,
        };
    }
    let mut buf = String::new();
    for kind in PrincipalKind::ALL {
        let Some(principal) = q.principals[kind.index()] else {
            continue;
        };
        let key = if q.issuer.is_empty() {
            principal
        } else {
            scope::key_into(&mut buf, q.issuer, principal)
        };
        let Some(cutoff) = cutoffs.get(kind, key) else {
            continue;
        };
        if cutoff.revokes(q.issued_at_ms, q.token_version) {
            let by_time = cutoff.issued_before_ms != 0 && q.issued_at_ms <= cutoff.issued_before_ms;
            return Decision {
                rule: Some(Rule::Cutoff(kind)),
                revoked_at_ms: if by_time { cutoff.issued_before_ms } else { 0 },
            };
        }
    }
    Decision::default()
}
