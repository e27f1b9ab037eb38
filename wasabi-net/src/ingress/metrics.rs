//! [`RequestStats`]: what a tenant's HTTP server did, counted as it
//! happens: requests by status class, their latency, bytes each way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds (the last
/// bucket, `+Inf`, is implicit).
pub const LATENCY_BOUNDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Counters of one tenant's requests, shared by every run of it (a
/// supervisor keeps one per tenant, so they survive restarts). All
/// atomics: the host's connection tasks count from any thread.
#[derive(Debug, Default)]
pub struct RequestStats {
    /// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    by_class: [AtomicU64; 5],
    /// Requests whose client went away before the response ended.
    abandoned: AtomicU64,
    /// Count per latency bucket (not cumulative), `+Inf` last.
    buckets: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    latency_micros: AtomicU64,
    request_bytes: AtomicU64,
    response_bytes: AtomicU64,
}

/// A copy of [`RequestStats`] at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestStatsSnapshot {
    /// Responses by status class, 1xx first.
    pub by_class: [u64; 5],
    /// Requests whose client went away first.
    pub abandoned: u64,
    /// Cumulative counts for each of [`LATENCY_BOUNDS`], then `+Inf` (all
    /// answered requests).
    pub latency_cumulative: Vec<u64>,
    /// The sum of every answered request's latency, in seconds.
    pub latency_sum_seconds: f64,
    /// Request body bytes the handler read.
    pub request_bytes: u64,
    /// Response body bytes the handler wrote.
    pub response_bytes: u64,
}

impl RequestStats {
    /// A response with `status` ended `elapsed` after its request arrived.
    pub(crate) fn answered(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BOUNDS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(LATENCY_BOUNDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// The client went away before the response ended.
    pub(crate) fn abandoned(&self) {
        self.abandoned.fetch_add(1, Ordering::Relaxed);
    }

    /// The handler read `n` body bytes.
    pub(crate) fn read(&self, n: usize) {
        self.request_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The handler wrote `n` body bytes.
    pub(crate) fn wrote(&self, n: usize) {
        self.response_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> RequestStatsSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut running = 0;
        let latency_cumulative = self
            .buckets
            .iter()
            .map(|b| {
                running += load(b);
                running
            })
            .collect();
        RequestStatsSnapshot {
            by_class: std::array::from_fn(|i| load(&self.by_class[i])),
            abandoned: load(&self.abandoned),
            latency_cumulative,
            latency_sum_seconds: load(&self.latency_micros) as f64 / 1e6,
            request_bytes: load(&self.request_bytes),
            response_bytes: load(&self.response_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_land_in_their_class_and_bucket() {
        let s = RequestStats::default();
        s.answered(200, Duration::from_micros(500));
        s.answered(204, Duration::from_millis(30));
        s.answered(503, Duration::from_secs(20));
        s.abandoned();
        s.read(10);
        s.wrote(7);
        let snap = s.snapshot();
        assert_eq!(snap.by_class, [0, 2, 0, 0, 1]);
        assert_eq!(snap.abandoned, 1);
        assert_eq!(snap.latency_cumulative[0], 1); // <= 1 ms
        assert_eq!(snap.latency_cumulative[5], 2); // <= 50 ms
        assert_eq!(*snap.latency_cumulative.last().unwrap(), 3); // +Inf
        assert_eq!((snap.request_bytes, snap.response_bytes), (10, 7));
    }
}
