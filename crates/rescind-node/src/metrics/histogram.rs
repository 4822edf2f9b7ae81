//! [`Histogram`]: fixed buckets of atomics, with [`Histogram::observe_n`]
//! for many equal observations at once (a batch of ops acknowledged
//! together). prometheus-client's own histogram takes a lock per
//! observation and has no `observe_n`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// A histogram; clones share their counts.
#[derive(Clone, Debug)]
pub struct Histogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Upper bounds, ascending; `+Inf` is implied.
    bounds: &'static [f64],
    /// Per bucket (not cumulative), the last one for `+Inf`.
    counts: Vec<AtomicU64>,
    /// Sum of observations, in millionths of the unit.
    sum_micros: AtomicU64,
}

impl Histogram {
    /// A histogram over `bounds` (ascending upper bounds).
    pub fn new(bounds: &'static [f64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        Self {
            inner: Arc::new(Inner {
                bounds,
                counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                sum_micros: AtomicU64::new(0),
            }),
        }
    }

    /// Record one observation of `v`.
    pub fn observe(&self, v: f64) {
        self.observe_n(v, 1);
    }

    /// Record `n` observations of `v` (negative and NaN count as 0).
    pub fn observe_n(&self, v: f64, n: u64) {
        if n == 0 {
            return;
        }
        let v = if v.is_finite() && v > 0.0 { v } else { 0.0 };
        let i = self.inner.bounds.partition_point(|b| *b < v);
        self.inner.counts[i].fetch_add(n, Ordering::Relaxed);
        let micros = (v * 1e6).min(u64::MAX as f64 / 2.0) as u64;
        self.inner
            .sum_micros
            .fetch_add(micros.saturating_mul(n), Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.inner.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Sum of the observations.
    pub fn sum(&self) -> f64 {
        self.inner.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
    }

    /// `(upper bound, cumulative count)` per bucket, `+Inf` last.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        let bounds = self.inner.bounds.iter().copied().chain([f64::INFINITY]);
        bounds
            .zip(&self.inner.counts)
            .map(|(b, c)| {
                total += c.load(Ordering::Relaxed);
                (b, total)
            })
            .collect()
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // The encoder sums the buckets itself: hand it each bucket's own count.
        let bounds = self.inner.bounds.iter().copied().chain([f64::INFINITY]);
        let own: Vec<(f64, u64)> = bounds
            .zip(&self.inner.counts)
            .map(|(b, c)| (b, c.load(Ordering::Relaxed)))
            .collect();
        let count = own.iter().map(|b| b.1).sum();
        encoder.encode_histogram::<NoLabelSet>(self.sum(), count, &own, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// A counter whose value is set from a count kept elsewhere (expiry GC,
/// Watch cut-offs, CPU time), encoded as a counter (`_total`).
#[derive(Clone, Debug, Default)]
pub struct SetCounter {
    bits: Arc<AtomicU64>,
}

impl SetCounter {
    /// Set the value (it should never go down).
    pub fn set(&self, v: f64) {
        self.bits.store(v.to_bits(), Ordering::Relaxed);
    }
}

impl TypedMetric for SetCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for SetCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let v = f64::from_bits(self.bits.load(Ordering::Relaxed));
        encoder.encode_counter::<NoLabelSet, f64, f64>(&v, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// Seconds, for latencies from milliseconds to minutes.
pub const LATENCY_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Seconds, for a disk flush.
pub const FLUSH_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Seconds, for writing a checkpoint.
pub const CHECKPOINT_SECONDS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Ops per durable batch.
pub const BATCH_OPS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0, 16384.0, 65536.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let h = Histogram::new(&[1.0, 2.0]);
        h.observe(0.5);
        h.observe(1.0);
        h.observe_n(1.5, 3);
        h.observe(9.0);
        h.observe(f64::NAN);
        assert_eq!(h.buckets(), vec![(1.0, 3), (2.0, 6), (f64::INFINITY, 7)]);
        assert_eq!(h.count(), 7);
        assert!((h.sum() - (0.5 + 1.0 + 4.5 + 9.0)).abs() < 1e-6);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("h_seconds", "a test histogram", h);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "h_seconds_bucket{le=\"1.0\"} 3",
            "h_seconds_bucket{le=\"2.0\"} 6",
            "h_seconds_bucket{le=\"+Inf\"} 7",
            "h_seconds_count 7",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
