//! Per-server counters for `vmcp/metrics` and `vmcp info`: lock-free, updated on every request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    errors: AtomicU64,
    latency_us_total: AtomicU64,
    /// Requests refused without reaching a backend (breakers open, replicas down).
    rejected: AtomicU64,
    /// Requests retried on another replica after their first replica failed.
    failovers: AtomicU64,
    /// Times this server was left out of a merged list because it failed to answer.
    list_omissions: AtomicU64,
}

/// A point-in-time copy.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub errors: u64,
    pub mean_latency_us: u64,
    pub rejected: u64,
    pub failovers: u64,
    pub list_omissions: u64,
}

impl Stats {
    pub fn record(&self, latency: Duration, ok: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency_us_total.fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failover(&self) {
        self.failovers.fetch_add(1, Ordering::Relaxed);
    }

    pub fn list_omitted(&self) {
        self.list_omissions.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let requests = self.requests.load(Ordering::Relaxed);
        let total = self.latency_us_total.load(Ordering::Relaxed);
        StatsSnapshot {
            requests,
            errors: self.errors.load(Ordering::Relaxed),
            mean_latency_us: total.checked_div(requests).unwrap_or(0),
            rejected: self.rejected.load(Ordering::Relaxed),
            failovers: self.failovers.load(Ordering::Relaxed),
            list_omissions: self.list_omissions.load(Ordering::Relaxed),
        }
    }
}
