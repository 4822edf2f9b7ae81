//! The enforcement point's decision, shared by every gateway protocol:
//! Envoy `ext_authz` ([`crate::ext_authz`]), forward-auth for nginx / Caddy /
//! Traefik and OAuth introspection and revocation ([`crate::http`]). Each
//! protocol is a thin adapter over [`Gateway::decide`],
//! [`Gateway::introspect`] and [`Gateway::revocation_for`].
//!
//! A bearer token is a JWT (verified by [`rescind_jwt::Verifier`], then
//! checked by `(iss, jti)` and every principal its claims name) or, when
//! enabled, an opaque token (checked by its keyed hash: the token itself is
//! never stored, logged or replicated).

use std::sync::Arc;

use rescind_core::check::CheckQuery;
use rescind_core::limits;
use rescind_core::{PrincipalKind, Rule};
use rescind_jwt::{Claims, Rejection, Verifier};

use crate::engine::{Engine, RevokeCommand, RevokeTarget};
use crate::metrics::{Api, CheckOutcome};

pub mod clients;
pub mod config;
pub mod headers;

pub use clients::OAuthClients;
pub use config::{GatewayConfig, GatewayError, StalePolicy};

/// What a caller presents.
#[derive(Debug)]
pub enum Credential<'a> {
    /// The bearer token of an `Authorization` header.
    Bearer(&'a str),
    /// Claims a proxy already verified (Envoy's `jwt_authn` payload).
    Verified(serde_json::Map<String, serde_json::Value>),
}

/// How one route wants staleness handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoutePolicy {
    /// What to do when stale.
    pub on_stale: StalePolicy,
    /// Staleness above this is stale (unknown always is).
    pub max_staleness_ms: u64,
}

impl RoutePolicy {
    /// This policy with a route's overrides (`open` / `closed`, a bound in
    /// ms); an override that is not one of those is an error naming it.
    pub fn with_overrides(
        self,
        on_stale: Option<&str>,
        max_staleness_ms: Option<u64>,
    ) -> Result<RoutePolicy, String> {
        let on_stale = match on_stale {
            None => self.on_stale,
            Some(v) => {
                StalePolicy::parse(v).ok_or_else(|| format!("on_stale must be open or closed (got {v:?})"))?
            }
        };
        Ok(RoutePolicy {
            on_stale,
            max_staleness_ms: max_staleness_ms.unwrap_or(self.max_staleness_ms),
        })
    }
}

/// A request let through.
#[derive(Clone, Debug)]
pub struct Allowed {
    /// The verified claims (None for an opaque token).
    pub claims: Option<Arc<Claims>>,
    /// The node's staleness when it decided (u64 max: unknown).
    pub staleness_ms: u64,
    /// Allowed although stale, because the route fails open.
    pub stale: bool,
}

/// Why a request is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer token.
    NoToken,
    /// The token is not a valid JWT.
    Invalid(Rejection),
    /// An opaque token where only JWTs are accepted.
    OpaqueRefused,
    /// Revoked by this rule.
    Revoked(Rule),
    /// The node may be missing revocations and the route fails closed.
    Stale,
    /// The node is rebuilding its state from a peer: it fails closed on
    /// every route, whatever `on_stale` says.
    Recovering,
}

/// A request refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// Why.
    pub refusal: Refusal,
    /// The node's staleness when it decided (u64 max: unknown).
    pub staleness_ms: u64,
}

impl Denied {
    /// The HTTP status: 401, or 503 when the node cannot vouch for its state.
    pub fn status(&self) -> u16 {
        match self.refusal {
            Refusal::Stale | Refusal::Recovering => 503,
            _ => 401,
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3); the description never
    /// quotes the token.
    pub fn www_authenticate(&self) -> String {
        match &self.refusal {
            Refusal::NoToken => "Bearer realm=\"rescind\"".into(),
            Refusal::Stale | Refusal::Recovering => format!(
                "Bearer realm=\"rescind\", error_description=\"{}\"",
                self.refusal.description()
            ),
            other => format!(
                "Bearer realm=\"rescind\", error=\"invalid_token\", error_description=\"{}\"",
                other.description()
            ),
        }
    }
}

impl Refusal {
    /// A short, quote-free description.
    pub fn description(&self) -> String {
        match self {
            Refusal::NoToken => "no bearer token".into(),
            Refusal::Invalid(r) => r.to_string(),
            Refusal::OpaqueRefused => "opaque tokens are not accepted".into(),
            Refusal::Revoked(_) => "token revoked".into(),
            Refusal::Stale => "revocation state is stale".into(),
            Refusal::Recovering => "the node is recovering its revocation state".into(),
        }
    }
}

/// The outcome of [`Gateway::decide`].
#[derive(Clone, Debug)]
pub enum Decision {
    /// Let it through.
    Allow(Allowed),
    /// Refuse it.
    Deny(Denied),
}

/// Why a token cannot be revoked by RFC 7009.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotRevocable {
    /// An opaque token (or a JWT without `jti`) and no `token_hash_key_file`.
    UnsupportedType,
    /// The token's keys are not known yet (a JWKS URL not fetched, a kid
    /// not seen): the caller must retry rather than believe it revoked.
    KeysUnavailable,
    /// The token belongs to another OAuth client.
    OtherClient,
}

/// The decision function and what it needs.
#[derive(Clone)]
pub struct Gateway {
    engine: Engine,
    verifier: Option<Verifier>,
    token_hash_key: Option<[u8; 32]>,
    config: GatewayConfig,
    clients: OAuthClients,
}

impl Gateway {
    /// A gateway over `engine`, verifying JWTs with `verifier` (None: no JWT
    /// keys are configured, and every JWT is refused).
    pub fn new(
        engine: Engine,
        verifier: Option<Verifier>,
        config: GatewayConfig,
    ) -> Result<Self, GatewayError> {
        config.validate()?;
        let token_hash_key = config.token_hash_key()?;
        let clients = match &config.oauth_clients_file {
            Some(path) => OAuthClients::load(path)?,
            None => OAuthClients::default(),
        };
        Ok(Self {
            engine,
            verifier,
            token_hash_key,
            config,
            clients,
        })
    }

    /// The configured policy, before a route's overrides.
    pub fn default_policy(&self) -> RoutePolicy {
        RoutePolicy {
            on_stale: self.config.on_stale,
            max_staleness_ms: u64::try_from(self.config.max_staleness.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The OAuth clients allowed to revoke and introspect.
    pub fn clients(&self) -> &OAuthClients {
        &self.clients
    }

    /// Allow or deny one request: verify the token, run the revocation check
    /// (every request, cache or not), then apply the staleness policy.
    /// Counted in `rescind_checks_total{api="gateway"}`.
    pub fn decide(&self, credential: Option<Credential<'_>>, route: RoutePolicy) -> Decision {
        let decision = self.decide_uncounted(credential, route);
        self.engine
            .metrics()
            .checks
            .one(Api::Gateway, outcome_of(&decision));
        decision
    }

    fn decide_uncounted(&self, credential: Option<Credential<'_>>, route: RoutePolicy) -> Decision {
        let staleness_ms = self.engine.staleness_ms();
        let deny = |refusal| {
            Decision::Deny(Denied {
                refusal,
                staleness_ms,
            })
        };
        let (claims, opaque_id) = match credential {
            None => return deny(Refusal::NoToken),
            Some(Credential::Verified(_)) if !self.config.trust_jwt_authn => return deny(Refusal::NoToken),
            Some(Credential::Verified(raw)) => match self.verified_payload(raw).and_then(representable) {
                Ok(c) => (Some(c), None),
                Err(r) => return deny(Refusal::Invalid(r)),
            },
            Some(Credential::Bearer(token)) if jwt_shaped(token) => {
                match self.verify(token).and_then(representable) {
                    Ok(c) => {
                        let hashed = c.token_id.is_none().then(|| self.hashed(token)).flatten();
                        (Some(c), hashed)
                    }
                    Err(r) => return deny(Refusal::Invalid(r)),
                }
            }
            Some(Credential::Bearer(token)) => match (self.config.opaque_tokens, self.hashed(token)) {
                (true, Some(id)) => (None, Some(id)),
                _ => return deny(Refusal::OpaqueRefused),
            },
        };
        let query = match &claims {
            Some(c) => query_of(c, opaque_id.as_deref()),
            None => CheckQuery {
                token_id: opaque_id.as_deref(),
                ..CheckQuery::default()
            },
        };
        if self.engine.is_recovering() {
            return deny(Refusal::Recovering);
        }
        let decision = self.engine.check(&query);
        if let Some(rule) = decision.rule {
            return deny(Refusal::Revoked(rule));
        }
        // Unknown staleness is stale whatever the bound (even u64::MAX).
        let stale = staleness_ms == rescind_gossip::UNKNOWN || staleness_ms > route.max_staleness_ms;
        if stale && route.on_stale == StalePolicy::Closed {
            return deny(Refusal::Stale);
        }
        Decision::Allow(Allowed {
            claims,
            staleness_ms,
            stale,
        })
    }

    /// RFC 7662: the claims of a JWT that verifies, is in its validity
    /// window, is not revoked, and that a fresh-enough node vouches for;
    /// None for anything else (the caller answers `active: false`).
    pub fn introspect(&self, token: &str) -> Option<Arc<Claims>> {
        if !jwt_shaped(token) {
            return None;
        }
        match self.decide(Some(Credential::Bearer(token)), self.default_policy()) {
            Decision::Allow(Allowed {
                claims, stale: false, ..
            }) => claims,
            _ => None,
        }
    }

    /// RFC 7009: what revoking `token` writes. Ok(None): nothing to write
    /// (the token does not verify, or has expired: either way it can never
    /// pass). `client` is the authenticated OAuth client (None: the admin),
    /// which may revoke only its own tokens.
    pub fn revocation_for(
        &self,
        token: &str,
        client: Option<&str>,
    ) -> Result<Option<RevokeCommand>, NotRevocable> {
        if !jwt_shaped(token) {
            let Some(id) = self.hashed(token) else {
                return Err(NotRevocable::UnsupportedType);
            };
            return Ok(Some(token_command(id, 0)));
        }
        // A token not valid yet will be: revoke it all the same. Keys not
        // known yet are no proof the token is bad: the caller retries.
        let claims = match self.verify_ignoring_time(token).and_then(representable) {
            Ok(c) => c,
            Err(Rejection::NoKeys | Rejection::UnknownKey) => return Err(NotRevocable::KeysUnavailable),
            Err(_) => return Ok(None),
        };
        let leeway = self.verifier.as_ref().map_or(0, Verifier::leeway_ms);
        if claims
            .expires_at_ms
            .is_some_and(|exp| exp.saturating_add(leeway) <= rescind_jwt::now_ms())
        {
            return Ok(None);
        }
        if let Some(client) = client
            && claims.client_id.as_deref() != Some(client)
        {
            return Err(NotRevocable::OtherClient);
        }
        let id = match &claims.token_id {
            Some(jti) => jti.clone(),
            None => self.hashed(token).ok_or(NotRevocable::UnsupportedType)?,
        };
        // Kept until the last moment the token could still verify.
        let expires = claims.expires_at_ms.map_or(0, |exp| exp.saturating_add(leeway));
        let key = rescind_core::scope::key(&claims.issuer, &id).into_owned();
        Ok(Some(token_command(key, expires)))
    }

    fn verify(&self, token: &str) -> Result<Arc<Claims>, Rejection> {
        match &self.verifier {
            Some(v) => v.verify(token, rescind_jwt::now_ms()),
            None => Err(Rejection::NoKeys),
        }
    }

    fn verify_ignoring_time(&self, token: &str) -> Result<Arc<Claims>, Rejection> {
        match &self.verifier {
            Some(v) => v.verify_ignoring_time(token),
            None => Err(Rejection::NoKeys),
        }
    }

    fn verified_payload(
        &self,
        raw: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Arc<Claims>, Rejection> {
        match &self.verifier {
            Some(v) => v.trusted_payload(raw, rescind_jwt::now_ms()),
            None => Err(Rejection::NoKeys),
        }
    }

    fn hashed(&self, token: &str) -> Option<String> {
        self.token_hash_key
            .as_ref()
            .map(|k| rescind_jwt::opaque_id(k, token))
    }
}

/// Claims the state can hold: every id a valid id ([`limits::id`]: no
/// control characters, so no issuer separator, at most 512 bytes) and `exp`
/// within [`limits::MAX_TIME_MS`]. A token whose claims could not be stored
/// could never be revoked by them, so it is refused.
fn representable(c: Arc<Claims>) -> Result<Arc<Claims>, Rejection> {
    let ids = [
        ("iss", Some(&c.issuer).filter(|s| !s.is_empty())),
        ("jti", c.token_id.as_ref()),
        ("sub", c.subject.as_ref()),
        ("client_id", c.client_id.as_ref()),
        ("kid", c.key_id.as_ref()),
        ("sid", c.session_id.as_ref()),
        ("tenant", c.tenant.as_ref()),
    ];
    for (name, value) in ids {
        if let Some(v) = value
            && limits::id(name, v).is_err()
        {
            return Err(Rejection::InvalidClaim(name));
        }
    }
    let max = limits::MAX_TIME_MS as u64;
    if c.expires_at_ms.is_some_and(|e| e > max) || c.issued_at_ms > max {
        return Err(Rejection::InvalidClaim("exp"));
    }
    Ok(c)
}

/// Three dot-separated parts, even with an empty signature (`alg: none`):
/// such a token is a JWT to verify (and refuse), never an opaque token.
fn jwt_shaped(token: &str) -> bool {
    token.split('.').count() == 3
}

fn token_command(token_id: String, expires_at_ms: u64) -> RevokeCommand {
    RevokeCommand {
        target: RevokeTarget::Token {
            token_id,
            expires_at_ms,
        },
        reason: "oauth2/revoke".into(),
        actor: String::new(),
    }
}

/// How a gateway decision is counted.
fn outcome_of(d: &Decision) -> CheckOutcome {
    match d {
        Decision::Allow(a) if a.stale => CheckOutcome::AllowedStale,
        Decision::Allow(_) => CheckOutcome::Allowed,
        Decision::Deny(denied) => match denied.refusal {
            Refusal::NoToken => CheckOutcome::NoToken,
            Refusal::Invalid(_) => CheckOutcome::InvalidToken,
            Refusal::OpaqueRefused => CheckOutcome::OpaqueRefused,
            Refusal::Revoked(rule) => CheckOutcome::Revoked(rule),
            Refusal::Stale => CheckOutcome::StaleClosed,
            Refusal::Recovering => CheckOutcome::Recovering,
        },
    }
}

/// The check a JWT's claims ask for, in its issuer's namespace; `hashed` is
/// the token's keyed hash when it has no `jti`.
pub fn query_of<'a>(c: &'a Claims, hashed: Option<&'a str>) -> CheckQuery<'a> {
    let mut q = CheckQuery {
        token_id: c.token_id.as_deref().or(hashed),
        issued_at_ms: c.issued_at_ms,
        token_version: c.token_version.unwrap_or(0),
        issuer: &c.issuer,
        ..CheckQuery::default()
    };
    q.principals[PrincipalKind::Subject.index()] = c.subject.as_deref();
    q.principals[PrincipalKind::Client.index()] = c.client_id.as_deref();
    q.principals[PrincipalKind::Tenant.index()] = c.tenant.as_deref();
    q.principals[PrincipalKind::KeyId.index()] = c.key_id.as_deref();
    q.principals[PrincipalKind::Session.index()] = c.session_id.as_deref();
    q
}
