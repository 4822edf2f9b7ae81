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
    /// Watch streams are not bounded; on HTTP, 408, and an HTTP/1.1 request
    /// head must arrive within it too). Default 30 s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Largest header block of one request (gRPC or HTTP), bytes. Default 16384.
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

/// Source addresses tracked at once; past this a new address takes the
/// place of the fullest of [`EVICTION_SAMPLE`] tracked ones (so throttled
/// addresses are the last forgotten, and making room costs the same at any
/// table size).
const MAX_SOURCES: usize = 16_384;

/// Buckets looked at to make room for a new address.
const EVICTION_SAMPLE: usize = 32;

/// The key an address is throttled under: an IPv4 address itself (an
/// IPv4-mapped IPv6 address counts as the IPv4 one), an IPv6 address by its
/// /64 prefix, because one host commonly holds a whole /64 and could
/// otherwise pick a fresh address for every guess.
pub fn throttle_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

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
        let Some(ip) = source.map(throttle_key) else {
            return false;
        };
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
        let Some(ip) = source.map(throttle_key) else {
            return Failure::Counted;
        };
        let now = tokio::time::Instant::now();
        let mut sources = self.sources.lock();
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&ip) {
            // Forget the fullest of a few (the map's order is its hasher's,
            // random per process): the least throttled goes first.
            let fullest = sources
                .iter()
                .take(EVICTION_SAMPLE)
                .max_by(|a, b| self.refilled(a.1, now).total_cmp(&self.refilled(b.1, now)))
                .map(|(k, _)| *k);
            if let Some(k) = fullest {
                sources.remove(&k);
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

    #[tokio::test(start_paused = true)]
    async fn a_throttled_source_survives_a_flood_of_new_addresses() {
        let t = AuthThrottle::new(2, 1);
        let guesser: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..3 {
            t.fail(Some(guesser));
        }
        assert!(t.is_throttled(Some(guesser)));
        // Twice the table's size of addresses failing once each (their
        // buckets stay fuller than the guesser's).
        for i in 0..(2 * MAX_SOURCES as u32) {
            t.fail(Some(IpAddr::from((0x0a00_0000 | i).to_be_bytes())));
        }
        assert!(t.is_throttled(Some(guesser)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_ipv6_slash_64_counts_as_one_source() {
        let t = AuthThrottle::new(2, 1);
        for i in 1..=2u16 {
            let ip = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i);
            assert_eq!(t.fail(Some(IpAddr::V6(ip))), Failure::Counted);
        }
        let third = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0xffff, 1, 2, 3);
        assert!(t.is_throttled(Some(IpAddr::V6(third))));
        // Another /64 is another source.
        let next = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1);
        assert!(!t.is_throttled(Some(IpAddr::V6(next))));
        // An IPv4-mapped address is its IPv4 address.
        let v4: IpAddr = "192.0.2.9".parse().unwrap();
        t.fail(Some(v4));
        t.fail(Some(v4));
        let mapped = "::ffff:192.0.2.9".parse::<IpAddr>().unwrap();
        assert!(t.is_throttled(Some(mapped)));
        assert_eq!(throttle_key(mapped), v4);
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
