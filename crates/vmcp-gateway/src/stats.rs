//! Per-server counters for `vmcp/metrics` and `vmcp info`: lock-free, updated on every request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    errors: AtomicU64,
    latency_us_total: AtomicU64,
}

/// A point-in-time copy.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub errors: u64,
    pub mean_latency_us: u64,
}

impl Stats {
    pub fn record(&self, latency: Duration, ok: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency_us_total.fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let requests = self.requests.load(Ordering::Relaxed);
        let total = self.latency_us_total.load(Ordering::Relaxed);
        StatsSnapshot {
            requests,
            errors: self.errors.load(Ordering::Relaxed),
            mean_latency_us: total.checked_div(requests).unwrap_or(0),
        }
    }
}
