//! [`Client`]: checks and revocations against a set of nodes, nearest first,
//! with failover and retries within the caller's deadline.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rescind_proto::v1 as pb;
use rescind_proto::v1::revocations_client::RevocationsClient;
use tokio::time::Instant;
use tonic::Status;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;

use crate::answer::{Checked, NodeStatus, Revoked};
use crate::consistency::ConsistencyToken;
use crate::endpoints::{Connector, EndpointView, Endpoints, tcp_connector};
use crate::error::ClientError;
use crate::policy::{FailPolicy, Verdict};
use crate::query::Query;

/// Largest message a client sends or accepts (the node's limit).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// How to reach a cluster.
#[derive(Clone)]
pub struct ClientConfig {
    /// Node addresses (`host:port`, DNS names, or `http://` URLs).
    pub endpoints: Vec<String>,
    /// The caller's region: nodes that report it are tried first.
    pub region: Option<String>,
    /// Bearer token: the admin token for revocations, the check token for
    /// reads on nodes that require one.
    pub token: Option<String>,
    /// Default deadline of one call, retries included. Default 2 s.
    pub timeout: Duration,
    /// Longest one attempt on one endpoint may take before the next is
    /// tried. Default 1 s.
    pub attempt_timeout: Duration,
    /// Connect timeout per endpoint. Default 1 s.
    pub connect_timeout: Duration,
    /// A check answered by a node staler than this (or of unknown
    /// staleness) is asked again of the other nodes; the freshest answer
    /// wins. `None`: take the first answer.
    pub max_staleness: Option<Duration>,
    /// How channels are made (default: TCP).
    pub connector: Option<Connector>,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoints", &self.endpoints)
            .field("region", &self.region)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_staleness", &self.max_staleness)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A config for these endpoints with the defaults.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            region: None,
            token: None,
            timeout: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            max_staleness: None,
            connector: None,
        }
    }

    /// Endpoints from a comma-separated list (what `--addr` takes).
    pub fn from_list(list: &str) -> Self {
        Self::new(list.split(',').map(str::trim).filter(|s| !s.is_empty()))
    }

    /// Set the caller's region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Set the bearer token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Set the default deadline of a call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Fail over from nodes staler than `bound`.
    pub fn max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = Some(bound);
        self
    }

    /// Make channels with `connector` instead of TCP.
    pub fn connector(mut self, connector: Connector) -> Self {
        self.connector = Some(connector);
        self
    }
}

struct Inner {
    endpoints: Endpoints,
    auth: Option<AsciiMetadataValue>,
    timeout: Duration,
    attempt_timeout: Duration,
    max_staleness: Option<Duration>,
}

/// A client of a Rescind cluster; cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// Worth trying another endpoint (or again later): the node is down,
/// overloaded, not caught up, or the transport failed.
fn retryable(status: &Status) -> bool {
    use tonic::Code::*;
    matches!(
        status.code(),
        Unavailable | DeadlineExceeded | Unknown | Internal | ResourceExhausted | Aborted | Cancelled
    )
}

fn fresh_enough(staleness: Option<Duration>, bound: Duration) -> bool {
    staleness.is_some_and(|s| s <= bound)
}

impl Client {
    /// A client for `config.endpoints`. Channels connect lazily; every
    /// endpoint is probed once (round trip, region) within the connect
    /// timeout, and an endpoint that does not answer is simply tried last.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let client = Self::new(config)?;
        client.probe().await;
        Ok(client)
    }

    /// Like [`Client::connect`] without the first probe.
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        if config.timeout.is_zero() || config.attempt_timeout.is_zero() {
            return Err(ClientError::Config(
                "timeout and attempt_timeout must be more than 0".into(),
            ));
        }
        let connector = config
            .connector
            .clone()
            .unwrap_or_else(|| tcp_connector(config.connect_timeout));
        let endpoints = Endpoints::new(&config.endpoints, config.region.clone(), &connector)?;
        let auth = match &config.token {
            Some(t) if !t.is_empty() => Some(format!("Bearer {t}").parse().map_err(|_| {
                ClientError::Config("token: has characters that cannot go in a header".into())
            })?),
            _ => None,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                endpoints,
                auth,
                timeout: config.timeout,
                attempt_timeout: config.attempt_timeout,
                max_staleness: config.max_staleness,
            }),
        })
    }

    /// Measure every endpoint's round trip with a `Status` call, all at once,
    /// each bounded by the attempt timeout.
    pub async fn probe(&self) {
        let probes = self
            .inner
            .endpoints
            .order()
            .into_iter()
            .map(|(i, _, channel)| async move {
                let started = Instant::now();
                let mut c = Self::stub(channel);
                let req = self.request(pb::StatusRequest {}, self.inner.attempt_timeout);
                match tokio::time::timeout(self.inner.attempt_timeout, c.status(req)).await {
                    Ok(Ok(s)) => {
                        let s = s.into_inner();
                        self.inner
                            .endpoints
                            .measured(i, started.elapsed(), &s.region, &s.node_id);
                    }
                    _ => self.inner.endpoints.down(i),
                }
            });
        futures_util::future::join_all(probes).await;
    }

    /// The endpoints as last measured.
    pub fn endpoints(&self) -> Vec<EndpointView> {
        self.inner.endpoints.view()
    }

    /// The endpoints to try, best first (index, address, channel).
    pub fn order(&self) -> Vec<(usize, String, Channel)> {
        self.inner.endpoints.order()
    }

    /// Mark endpoint `i` failed (used by a [`crate::Replica`] that lost it).
    pub fn mark_down(&self, i: usize) {
        self.inner.endpoints.down(i);
    }

    /// The default deadline of a call.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    fn stub(channel: Channel) -> RevocationsClient<Channel> {
        RevocationsClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// A request carrying the bearer token and a deadline.
    pub fn request<M>(&self, message: M, timeout: Duration) -> tonic::Request<M> {
        let mut req = tonic::Request::new(message);
        req.set_timeout(timeout);
        if let Some(v) = &self.inner.auth {
            req.metadata_mut().insert("authorization", v.clone());
        }
        req
    }

    /// Run `f` against the best endpoint, failing over to the next on a
    /// retryable error and going round again (with a short back-off) until
    /// `budget` runs out. `f` gets a stub and the time left. Returns the
    /// answer with the endpoint's index and address.
    pub async fn call<T, F, Fut>(&self, budget: Duration, mut f: F) -> Result<(T, usize, String), ClientError>
    where
        F: FnMut(RevocationsClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let deadline = Instant::now() + budget;
        let mut attempts: Vec<(String, String)> = Vec::new();
        let mut backoff = Duration::from_millis(20);
        loop {
            for (i, addr, channel) in self.inner.endpoints.order() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(unreachable(budget, &attempts));
                }
                let this = left.min(self.inner.attempt_timeout);
                match tokio::time::timeout(this, f(Self::stub(channel), this)).await {
                    Ok(Ok(v)) => {
                        self.inner.endpoints.up(i);
                        return Ok((v, i, addr));
                    }
                    Ok(Err(status)) if retryable(&status) => {
                        self.inner.endpoints.down(i);
                        note(
                            &mut attempts,
                            &addr,
                            format!("{:?}: {}", status.code(), status.message()),
                        );
                    }
                    Ok(Err(status)) => {
                        return Err(ClientError::Refused {
                            addr,
                            code: status.code(),
                            message: status.message().to_owned(),
                        });
                    }
                    Err(_) => {
                        self.inner.endpoints.down(i);
                        note(
                            &mut attempts,
                            &addr,
                            format!("no answer within {} ms", this.as_millis()),
                        );
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(unreachable(budget, &attempts));
            }
            tokio::time::sleep(backoff.min(left)).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    /// Check one token within the default deadline.
    pub async fn check(&self, q: &Query) -> Result<Checked, ClientError> {
        self.check_within(q, self.inner.timeout).await
    }

    /// Check one token within `budget`. With `max_staleness` set, an allowed
    /// answer from a node staler than the bound is asked again of the other
    /// endpoints, and the freshest answer is returned (a revoked answer is
    /// final: revocations never go away).
    pub async fn check_within(&self, q: &Query, budget: Duration) -> Result<Checked, ClientError> {
        let deadline = Instant::now() + budget;
        let req = q.to_pb();
        let (resp, first, addr) = self
            .call(budget, |mut stub, left| {
                let r = self.request(req.clone(), left);
                async move { stub.check(r).await.map(|r| r.into_inner()) }
            })
            .await?;
        let mut best = Checked::from_pb(&resp, &addr);
        let Some(bound) = self.inner.max_staleness else {
            return Ok(best);
        };
        if best.revoked() || fresh_enough(best.staleness, bound) {
            return Ok(best);
        }
        for (i, addr, channel) in self.inner.endpoints.order() {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .min(self.inner.attempt_timeout);
            if i == first || left.is_zero() {
                continue;
            }
            let r = self.request(req.clone(), left);
            let Ok(Ok(resp)) = tokio::time::timeout(left, Self::stub(channel).check(r)).await else {
                self.inner.endpoints.down(i);
                continue;
            };
            let other = Checked::from_pb(resp.get_ref(), &addr);
            let better = match (other.staleness, best.staleness) {
                (Some(a), Some(b)) => a < b,
                (Some(_), None) => true,
                _ => false,
            };
            if other.revoked() || better {
                best = other;
            }
            if best.revoked() || fresh_enough(best.staleness, bound) {
                break;
            }
        }
        Ok(best)
    }

    /// Check a batch (at most 1024) in one call; results in request order,
    /// all from one node.
    pub async fn check_batch(&self, qs: &[Query]) -> Result<Vec<Checked>, ClientError> {
        let req = pb::CheckBatchRequest::from(qs.iter().map(Query::to_pb).collect::<Vec<_>>());
        let (resp, _, addr) = self
            .call(self.inner.timeout, |mut stub, left| {
                let r = self.request(req.clone(), left);
                async move { stub.check_batch(r).await.map(|r| r.into_inner()) }
            })
            .await?;
        if resp.results.len() != qs.len() {
            return Err(ClientError::Invalid {
                addr,
                detail: format!("{} results for {} checks", resp.results.len(), qs.len()),
            });
        }
        let staleness = crate::answer::staleness_from_wire(resp.staleness_ms);
        Ok(resp
            .results
            .iter()
            .map(|r| Checked {
                reason: if r.revoked {
                    crate::answer::Reason::from_pb(r.reason).or(Some(crate::answer::Reason::TokenId))
                } else {
                    None
                },
                revoked_at_ms: r.revoked_at_ms,
                node_id: resp.node_id.clone(),
                endpoint: addr.clone(),
                staleness,
            })
            .collect())
    }

    /// Check and apply a fail policy: never an error, always a decision
    /// that says why.
    pub async fn decide(&self, q: &Query, policy: FailPolicy) -> Verdict {
        policy.judge(self.check(q).await)
    }

    /// Revoke (needs the admin token). Retried on another node when the first
    /// fails: a revocation is idempotent (a repeat answers `already_revoked`).
    pub async fn revoke(&self, req: pb::RevokeRequest) -> Result<Revoked, ClientError> {
        let (r, _, _) = self
            .call(self.inner.timeout, |mut stub, left| {
                let r = self.request(req.clone(), left);
                async move { stub.revoke(r).await.map(|r| r.into_inner()) }
            })
            .await?;
        Ok(Revoked {
            token: ConsistencyToken::from_bytes(r.consistency_token),
            already_revoked: r.already_revoked,
            node_id: r.node_id,
            seq: r.seq,
        })
    }

    /// Revoke up to 10,000 in one durable write (needs the admin token).
    /// Retried on another node when the first fails: every revocation is
    /// idempotent, so a repeat writes nothing twice.
    pub async fn revoke_batch(
        &self,
        reqs: Vec<pb::RevokeRequest>,
    ) -> Result<pb::RevokeBatchResponse, ClientError> {
        let message = pb::RevokeBatchRequest { revocations: reqs };
        let (r, _, _) = self
            .call(self.inner.timeout, |mut stub, left| {
                let r = self.request(message.clone(), left);
                async move { stub.revoke_batch(r).await.map(|r| r.into_inner()) }
            })
            .await?;
        Ok(r)
    }

    /// Revoke one token id until `expires_at_ms` (0 = never).
    pub async fn revoke_token(
        &self,
        token_id: &str,
        expires_at_ms: u64,
        reason: &str,
        actor: &str,
    ) -> Result<Revoked, ClientError> {
        self.revoke(pb::RevokeRequest {
            target: Some(pb::revoke_request::Target::Token(pb::TokenRevocation {
                token_id: token_id.to_owned(),
                expires_at_ms: i64::try_from(expires_at_ms).unwrap_or(i64::MAX),
                issuer: String::new(),
            })),
            reason: reason.to_owned(),
            actor: actor.to_owned(),
        })
        .await
    }

    /// The status of the best endpoint.
    pub async fn status(&self) -> Result<NodeStatus, ClientError> {
        let (s, _, _) = self
            .call(self.inner.timeout, |mut stub, left| {
                let r = self.request(pb::StatusRequest {}, left);
                async move { stub.status(r).await.map(|r| r.into_inner()) }
            })
            .await?;
        Ok(NodeStatus::from_pb(s))
    }
}

fn note(attempts: &mut Vec<(String, String)>, addr: &str, error: String) {
    match attempts.iter_mut().find(|(a, _)| a == addr) {
        Some(slot) => slot.1 = error,
        None => attempts.push((addr.to_owned(), error)),
    }
}

fn unreachable(budget: Duration, attempts: &[(String, String)]) -> ClientError {
    let attempts = if attempts.is_empty() {
        "no attempt fitted in the deadline".to_owned()
    } else {
        attempts
            .iter()
            .map(|(a, e)| format!("{a}: {e}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    ClientError::Unreachable {
        deadline_ms: budget.as_millis() as u64,
        attempts,
    }
}
