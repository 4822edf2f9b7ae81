//! [`CheckCounters`]: `rescind_checks_total` by API, result and reason, and
//! `rescind_check_fail_policy_total` by outcome. Every label combination is
//! made once, up front, so counting a check is one atomic add (no label
//! hashing, no lock on the check path).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use rescind_core::{PrincipalKind, Rule};

/// Which API answered a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `Check` / `CheckBatch` over gRPC.
    Grpc,
    /// `POST /v1/check`.
    Http,
    /// A gateway decision: Envoy ext_authz, forward-auth, introspection.
    Gateway,
}

impl Api {
    const ALL: [Api; 3] = [Api::Grpc, Api::Http, Api::Gateway];

    fn name(self) -> &'static str {
        match self {
            Api::Grpc => "grpc",
            Api::Http => "http",
            Api::Gateway => "gateway",
        }
    }
}

/// How one check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Not revoked.
    Allowed,
    /// Let through although the node may be stale: the route fails open.
    AllowedStale,
    /// Revoked by this rule.
    Revoked(Rule),
    /// A gateway request without a bearer token.
    NoToken,
    /// A gateway request whose token is not a valid JWT.
    InvalidToken,
    /// An opaque token where only JWTs are accepted.
    OpaqueRefused,
    /// Refused because the node may be stale and the route fails closed.
    StaleClosed,
    /// Refused: the node is rebuilding its state from a peer.
    Recovering,
    /// A consistency token the node did not catch up with in time.
    NotCaughtUp,
}

/// Distinct outcomes (the stride of the counter table).
const OUTCOMES: usize = 14;

impl CheckOutcome {
    fn index(self) -> usize {
        match self {
            CheckOutcome::Allowed => 0,
            CheckOutcome::AllowedStale => 1,
            CheckOutcome::Revoked(Rule::TokenId) => 2,
            CheckOutcome::Revoked(Rule::Cutoff(k)) => 3 + k.index(),
            CheckOutcome::NoToken => 8,
            CheckOutcome::InvalidToken => 9,
            CheckOutcome::OpaqueRefused => 10,
            CheckOutcome::StaleClosed => 11,
            CheckOutcome::Recovering => 12,
            CheckOutcome::NotCaughtUp => 13,
        }
    }

    fn all() -> Vec<CheckOutcome> {
        let mut out = vec![
            CheckOutcome::Allowed,
            CheckOutcome::AllowedStale,
            CheckOutcome::Revoked(Rule::TokenId),
        ];
        out.extend(PrincipalKind::ALL.map(|k| CheckOutcome::Revoked(Rule::Cutoff(k))));
        out.extend([
            CheckOutcome::NoToken,
            CheckOutcome::InvalidToken,
            CheckOutcome::OpaqueRefused,
            CheckOutcome::StaleClosed,
            CheckOutcome::Recovering,
            CheckOutcome::NotCaughtUp,
        ]);
        out
    }

    /// `(result, reason)` labels.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            CheckOutcome::Allowed => ("allowed", "none"),
            CheckOutcome::AllowedStale => ("allowed", "stale_open"),
            CheckOutcome::Revoked(Rule::TokenId) => ("revoked", "token_id"),
            CheckOutcome::Revoked(Rule::Cutoff(k)) => ("revoked", k.name()),
            CheckOutcome::NoToken => ("denied", "no_token"),
            CheckOutcome::InvalidToken => ("denied", "invalid_token"),
            CheckOutcome::OpaqueRefused => ("denied", "opaque_refused"),
            CheckOutcome::StaleClosed => ("unavailable", "stale_closed"),
            CheckOutcome::Recovering => ("unavailable", "recovering"),
            CheckOutcome::NotCaughtUp => ("unavailable", "not_caught_up"),
        }
    }

    /// The outcome of a decision from memory.
    pub fn of(decision: &rescind_core::Decision) -> CheckOutcome {
        match decision.rule {
            None => CheckOutcome::Allowed,
            Some(rule) => CheckOutcome::Revoked(rule),
        }
    }
}

type Labels = Vec<(&'static str, &'static str)>;

/// The check counters of one node.
#[derive(Debug)]
pub struct CheckCounters {
    /// Counting off (`metrics = false`): [`CheckCounters::count`] does nothing.
    enabled: bool,
    /// By `Api` × `CheckOutcome` index.
    counters: Vec<Counter>,
    failed_open: Counter,
    failed_closed: Counter,
}

impl CheckCounters {
    /// Counters registered in `registry` (every label set shows, at 0).
    pub fn register(registry: &mut Registry, enabled: bool) -> Self {
        let family = Family::<Labels, Counter>::default();
        let mut counters = Vec::with_capacity(Api::ALL.len() * OUTCOMES);
        for api in Api::ALL {
            for (i, outcome) in CheckOutcome::all().into_iter().enumerate() {
                debug_assert_eq!(i, outcome.index());
                let (result, reason) = outcome.labels();
                let labels = vec![("api", api.name()), ("result", result), ("reason", reason)];
                counters.push(family.get_or_create(&labels).clone());
            }
        }
        registry.register(
            "rescind_checks",
            "Checks answered, by API, result (allowed, revoked, denied, unavailable) and reason",
            family,
        );
        let policy = Family::<Labels, Counter>::default();
        let failed_open = policy.get_or_create(&vec![("outcome", "failed_open")]).clone();
        let failed_closed = policy.get_or_create(&vec![("outcome", "failed_closed")]).clone();
        registry.register(
            "rescind_check_fail_policy",
            "Checks decided by the stale policy while the node may be missing revocations",
            policy,
        );
        Self {
            enabled,
            counters,
            failed_open,
            failed_closed,
        }
    }

    /// Count `n` checks of `api` that ended as `outcome`.
    pub fn count(&self, api: Api, outcome: CheckOutcome, n: u64) {
        if !self.enabled {
            return;
        }
        let api_index = Api::ALL.iter().position(|a| *a == api).unwrap_or(0);
        self.counters[api_index * OUTCOMES + outcome.index()].inc_by(n);
        match outcome {
            CheckOutcome::AllowedStale => {
                self.failed_open.inc_by(n);
            }
            CheckOutcome::StaleClosed => {
                self.failed_closed.inc_by(n);
            }
            _ => {}
        }
    }

    /// Count one check.
    pub fn one(&self, api: Api, outcome: CheckOutcome) {
        self.count(api, outcome, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_own_counter() {
        let mut registry = Registry::default();
        let c = CheckCounters::register(&mut registry, true);
        for (i, o) in CheckOutcome::all().into_iter().enumerate() {
            c.count(Api::Http, o, i as u64 + 1);
        }
        c.one(Api::Gateway, CheckOutcome::AllowedStale);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(r#"rescind_checks_total{api="http",result="revoked",reason="key_id"} 7"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"rescind_checks_total{api="http",result="unavailable",reason="not_caught_up"} 14"#
            )
        );
        assert!(text.contains(r#"rescind_checks_total{api="grpc",result="allowed",reason="none"} 0"#));
        assert!(
            text.contains(r#"rescind_check_fail_policy_total{outcome="failed_open"} 3"#),
            "{text}"
        );
        assert!(text.contains(r#"rescind_check_fail_policy_total{outcome="failed_closed"} 12"#));
    }

    #[test]
    fn counting_off_counts_nothing() {
        let mut registry = Registry::default();
        let c = CheckCounters::register(&mut registry, false);
        c.one(Api::Grpc, CheckOutcome::Allowed);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains(r#"rescind_checks_total{api="grpc",result="allowed",reason="none"} 0"#));
    }
}
