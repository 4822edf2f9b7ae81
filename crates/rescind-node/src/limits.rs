//! The `[limits]` section: how long connections and requests may take, and
//! how many failed authentications a source address gets; plus
//! [`AuthThrottle`], which enforces the last.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Deserialize;

/// `[limits]`: connection and request bounds against abuse.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// A connection with nothing read or written for this long is closed
    /// (`0s`: never; otherwise at least `request_timeout`). Default 5 min.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A connection that sends nothing this long after it was accepted is
    /// closed. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub first_byte_timeout: Duration,
    /// Longest a unary request may take before it is answered
    /// DEADLINE_EXCEEDED (a shorter `grpc-timeout` from the client wins;
    /// Watch streams are not bounded). Default 30 s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Largest header block of one request, bytes. Default 16384.
    pub max_header_bytes: u32,
    /// Failed authentications one source address may make at once before
    /// it is throttled. Default 20.
    pub auth_failure_burst: u32,
    /// Failed authentications per second a source address earns back.
    /// Default 1.
    pub auth_failures_per_second: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            first_byte_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            auth_failure_burst: 20,
            auth_failures_per_second: 1,
        }
    }
}

/// A `[limits]` value out of range.
#[derive(Debug, thiserror::Error)]
#[error("limits.{key}: {reason}")]
pub struct LimitsError {
    /// The key.
    pub key: &'static str,
    /// Its range.
    pub reason: &'static str,
}

impl LimitsConfig {
    /// Every value within its range.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let err = |key, reason| Err(LimitsError { key, reason });
        if !self.idle_timeout.is_zero() && self.idle_timeout < Duration::from_secs(1) {
            return err("idle_timeout", "must be 0s (never) or at least 1s");
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(600)).contains(&self.first_byte_timeout) {
            return err("first_byte_timeout", "must be 100ms..=600s");
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&self.request_timeout) {
            return err("request_timeout", "must be 100ms..=1h");
        }
        if !self.idle_timeout.is_zero() && self.idle_timeout < self.request_timeout {
            return err(
                "idle_timeout",
                "must be 0s (never) or at least request_timeout: a request in flight may be silent that long",
            );
        }
        if !(1024..=1 << 20).contains(&self.max_header_bytes) {
            return err("max_header_bytes", "must be 1024..=1048576");
        }
        if !(1..=100_000).contains(&self.auth_failure_burst) {
            return err("auth_failure_burst", "must be 1..=100000");
        }
        if !(1..=100_000).contains(&self.auth_failures_per_second) {
            return err("auth_failures_per_second", "must be 1..=100000");
        }
        Ok(())
    }

    /// The idle policy of the node's listeners.
    pub fn idle(&self) -> crate::net::IdlePolicy {
        crate::net::IdlePolicy {
            idle_timeout: (!self.idle_timeout.is_zero()).then_some(self.idle_timeout),
            first_byte_timeout: self.first_byte_timeout,
        }
    }
}

/// Source addresses tracked at once; past this the fullest buckets (those
/// that have earned everything back) are forgotten first.
const MAX_SOURCES: usize = 16_384;

/// Per source address, a token bucket of failed authentications. A request
/// with valid credentials always passes; one with bad credentials from an
/// address whose bucket is empty is answered "throttled" instead of
/// "unauthenticated", and is not logged one by one.
pub struct AuthThrottle {
    burst: f64,
    per_second: f64,
    sources: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: tokio::time::Instant,
    warned: Option<tokio::time::Instant>,
}

/// What a failed authentication from an address turned into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Within the address's budget: answer "unauthenticated".
    Counted,
    /// Over it: answer "throttled"; `log` is true at most once a minute
    /// per address.
    Throttled {
        /// Log this one.
        log: bool,
    },
}

impl AuthThrottle {
    /// A throttle allowing `burst` failures at once, `per_second` more each second.
    pub fn new(burst: u32, per_second: u32) -> Self {
        Self {
            burst: f64::from(burst),
            per_second: f64::from(per_second),
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// From [`LimitsConfig`].
    pub fn from_config(c: &LimitsConfig) -> Self {
        Self::new(c.auth_failure_burst, c.auth_failures_per_second)
    }

    /// `source` is throttled now (its bucket is empty).
    pub fn is_throttled(&self, source: Option<IpAddr>) -> bool {
        let Some(ip) = source else { return false };
        let now = tokio::time::Instant::now();
        let sources = self.sources.lock();
        sources.get(&ip).is_some_and(|b| self.refilled(b, now) < 1.0)
    }

    fn refilled(&self, b: &Bucket, now: tokio::time::Instant) -> f64 {
        (b.tokens + now.duration_since(b.at).as_secs_f64() * self.per_second).min(self.burst)
    }

    /// Count a failed authentication from `source` (unknown sources are not
    /// throttled: the simulator's and a Unix socket's connections).
    pub fn fail(&self, source: Option<IpAddr>) -> Failure {
        let Some(ip) = source else {
            return Failure::Counted;
        };
        let now = tokio::time::Instant::now();
        let mut sources = self.sources.lock();
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&ip) {
            sources.retain(|_, b| self.refilled(b, now) < self.burst);
            if sources.len() >= MAX_SOURCES {
                sources.clear();
            }
        }
        let fresh = Bucket {
            tokens: self.burst,
            at: now,
            warned: None,
        };
        let bucket = sources.entry(ip).or_insert(fresh);
        bucket.tokens = self.refilled(bucket, now);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Failure::Counted;
        }
        let log = bucket
            .warned
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60));
        if log {
            bucket.warned = Some(now);
        }
        Failure::Throttled { log }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_source_is_throttled_after_its_burst_and_earns_back() {
        let t = AuthThrottle::new(3, 1);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(t.fail(Some(ip)), Failure::Counted);
        }
        assert!(t.is_throttled(Some(ip)));
        assert_eq!(t.fail(Some(ip)), Failure::Throttled { log: true });
        assert_eq!(t.fail(Some(ip)), Failure::Throttled { log: false });
        // Another address is not affected; an unknown one never throttled.
        assert_eq!(t.fail(Some(other)), Failure::Counted);
        assert!(!t.is_throttled(None));
        assert_eq!(t.fail(None), Failure::Counted);
        // One second earns one failure back.
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!t.is_throttled(Some(ip)));
        assert_eq!(t.fail(Some(ip)), Failure::Counted);
        assert!(t.is_throttled(Some(ip)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_source_table_stays_bounded() {
        let t = AuthThrottle::new(1, 1);
        for i in 0..(MAX_SOURCES as u32 + 100) {
            t.fail(Some(IpAddr::from(i.to_be_bytes())));
        }
        assert!(t.sources.lock().len() <= MAX_SOURCES);
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        let bad = LimitsConfig {
            request_timeout: Duration::from_millis(1),
            ..LimitsConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "request_timeout");
        assert!(LimitsConfig::default().validate().is_ok());
    }
}
