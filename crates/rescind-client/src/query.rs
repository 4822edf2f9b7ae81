//! [`Query`]: an owned check request, built field by field.

use rescind_core::PrincipalKind;
use rescind_core::check::CheckQuery;
use rescind_proto::v1 as pb;

use crate::consistency::ConsistencyToken;

/// One token to check. Every field is optional, but a node refuses a query
/// that names neither a token id nor a principal; a principal that is absent
/// is not consulted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Token id (`jti`, opaque token id, API key id).
    pub token_id: Option<String>,
    /// Principals the token carries, by [`PrincipalKind::index`].
    pub principals: [Option<String>; 5],
    /// When the token was issued, unix ms; 0 = unknown (any time cutoff revokes it).
    pub issued_at_ms: u64,
    /// The token's version, against a principal's `min_version`.
    pub token_version: Option<u64>,
    /// Read-your-revocations: answer only once this revocation is applied.
    pub consistency: Option<ConsistencyToken>,
    /// The token's issuer (`iss`): ids and principals are looked up in its
    /// namespace. Empty: the issuer-less namespace.
    pub issuer: String,
}

impl Query {
    /// A query for one token id.
    pub fn token(id: impl Into<String>) -> Self {
        Self {
            token_id: Some(id.into()),
            ..Self::default()
        }
    }

    /// Add a principal the token carries.
    pub fn with(mut self, kind: PrincipalKind, id: impl Into<String>) -> Self {
        self.principals[kind.index()] = Some(id.into());
        self
    }

    /// Set when the token was issued (unix ms).
    pub fn issued_at(mut self, ms: u64) -> Self {
        self.issued_at_ms = ms;
        self
    }

    /// Set the token's version.
    pub fn version(mut self, v: u64) -> Self {
        self.token_version = Some(v);
        self
    }

    /// Look the token up in `issuer`'s namespace.
    pub fn in_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// Wait for a revocation (read-your-revocations).
    pub fn after(mut self, token: ConsistencyToken) -> Self {
        self.consistency = Some(token);
        self
    }

    /// The borrowed form the state decides on (what a [`crate::Replica`] uses).
    pub fn as_check(&self) -> CheckQuery<'_> {
        let mut q = CheckQuery {
            token_id: self.token_id.as_deref(),
            issued_at_ms: self.issued_at_ms,
            token_version: self.token_version.unwrap_or(0),
            issuer: &self.issuer,
            ..CheckQuery::default()
        };
        for (slot, value) in q.principals.iter_mut().zip(&self.principals) {
            *slot = value.as_deref();
        }
        q
    }

    /// The wire form.
    pub fn to_pb(&self) -> pb::CheckRequest {
        let p = |k: PrincipalKind| self.principals[k.index()].clone();
        pb::CheckRequest {
            token_id: self.token_id.clone(),
            subject: p(PrincipalKind::Subject),
            client_id: p(PrincipalKind::Client),
            tenant: p(PrincipalKind::Tenant),
            key_id: p(PrincipalKind::KeyId),
            session_id: p(PrincipalKind::Session),
            issued_at_ms: i64::try_from(self.issued_at_ms).unwrap_or(i64::MAX),
            token_version: self.token_version,
            consistency_token: self.consistency.as_ref().map(|t| t.bytes().to_vec()),
            issuer: (!self.issuer.is_empty()).then(|| self.issuer.clone()),
        }
    }
}
