//! [`FailPolicy`]: what to do when the answer is stale or no node answers.

use std::fmt;
use std::time::Duration;

use crate::answer::{Checked, Reason};
use crate::error::ClientError;

/// How to decide when the store cannot vouch for an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailPolicy {
    /// Deny unless a node at most `max_staleness` stale said "not revoked".
    Closed {
        /// The staleness an "allowed" may have.
        max_staleness: Duration,
    },
    /// Allow unless a node said "revoked" (availability over safety).
    Open,
}

/// Why a [`Verdict`] went the way it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// A node (or replica) said revoked, by this rule.
    Revoked(Reason),
    /// Not revoked, from an answer fresh enough for the policy.
    NotRevoked,
    /// Fail-closed: the answer was "not revoked" but staler than the bound
    /// (`None`: staleness unknown).
    TooStale {
        /// The answer's staleness.
        staleness: Option<Duration>,
        /// The policy's bound.
        bound: Duration,
    },
    /// No answer: the error says why. Denied when closed, allowed when open.
    Unreachable(String),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Revoked(r) => write!(f, "revoked by {}", r.name()),
            Why::NotRevoked => f.write_str("not revoked"),
            Why::TooStale {
                staleness: Some(s),
                bound,
            } => write!(
                f,
                "fail-closed: the answer is {} ms stale, beyond the {} ms bound",
                s.as_millis(),
                bound.as_millis()
            ),
            Why::TooStale {
                staleness: None,
                bound,
            } => write!(
                f,
                "fail-closed: the answer's staleness is unknown (bound {} ms)",
                bound.as_millis()
            ),
            Why::Unreachable(e) => write!(f, "no answer: {e}"),
        }
    }
}

/// A decision and its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Let the request through?
    pub allow: bool,
    /// Why.
    pub why: Why,
    /// Who answered, when someone did.
    pub node_id: Option<String>,
    /// How stale that answer may be (`None`: unknown or no answer).
    pub staleness: Option<Duration>,
}

impl FailPolicy {
    /// Decide from a check's outcome.
    pub fn judge(self, outcome: Result<Checked, ClientError>) -> Verdict {
        match outcome {
            Ok(c) => self.judge_answer(c.reason, c.staleness, Some(c.node_id)),
            Err(e) => Verdict {
                allow: matches!(self, FailPolicy::Open),
                why: Why::Unreachable(e.to_string()),
                node_id: None,
                staleness: None,
            },
        }
    }

    /// Decide from an answer: revoked is always final; "not revoked" counts
    /// under `Closed` only when fresh enough.
    pub fn judge_answer(
        self,
        reason: Option<Reason>,
        staleness: Option<Duration>,
        node_id: Option<String>,
    ) -> Verdict {
        let (allow, why) = match (reason, self) {
            (Some(r), _) => (false, Why::Revoked(r)),
            (None, FailPolicy::Open) => (true, Why::NotRevoked),
            (None, FailPolicy::Closed { max_staleness }) => match staleness {
                Some(s) if s <= max_staleness => (true, Why::NotRevoked),
                _ => (
                    false,
                    Why::TooStale {
                        staleness,
                        bound: max_staleness,
                    },
                ),
            },
        };
        Verdict {
            allow,
            why,
            node_id,
            staleness,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_secs(30);

    #[test]
    fn revoked_is_final_and_closed_needs_fresh_answers() {
        let closed = FailPolicy::Closed { max_staleness: BOUND };
        let revoked = closed.judge_answer(Some(Reason::TokenId), None, None);
        assert!(!revoked.allow);
        assert!(
            !FailPolicy::Open
                .judge_answer(Some(Reason::TokenId), None, None)
                .allow
        );
        assert!(
            closed
                .judge_answer(None, Some(Duration::from_secs(1)), None)
                .allow
        );
        let stale = closed.judge_answer(None, Some(Duration::from_secs(31)), None);
        assert!(!stale.allow);
        assert!(stale.why.to_string().contains("31000 ms stale"), "{}", stale.why);
        let unknown = closed.judge_answer(None, None, None);
        assert!(!unknown.allow && unknown.why.to_string().contains("unknown"));
        assert!(FailPolicy::Open.judge_answer(None, None, None).allow);
    }

    #[test]
    fn unreachable_denies_closed_and_allows_open_saying_why() {
        let err = || {
            Err(ClientError::Unreachable {
                deadline_ms: 100,
                attempts: "a:1: refused".into(),
            })
        };
        let closed = FailPolicy::Closed { max_staleness: BOUND }.judge(err());
        assert!(!closed.allow);
        assert!(
            closed
                .why
                .to_string()
                .starts_with("no answer: no rescind node answered within 100 ms")
        );
        let open = FailPolicy::Open.judge(err());
        assert!(open.allow);
        assert!(matches!(open.why, Why::Unreachable(_)));
    }
}
