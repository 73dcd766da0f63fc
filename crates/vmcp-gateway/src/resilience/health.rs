//! Health of a replica from its probe outcomes: healthy, degraded or unhealthy.
//!
//! - A probe that fails (no answer within `timeout`, an error, a dead connection) counts toward
//!   `unhealthy_threshold` failures in a row, which make the replica unhealthy; fewer make it
//!   degraded.
//! - A probe answered slower than `degraded_ms` makes it degraded.
//! - From unhealthy, `healthy_threshold` good probes in a row make it healthy again (fewer:
//!   degraded).
//!
//! The probe itself (ping or `server/discover`, by era) is the supervisor's business.

use std::time::Duration;

use serde::Deserialize;

use super::{InvalidConfig, at_least_one, seconds};

/// The `health` object as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawHealth {
    /// Seconds between probes (default: the entry's `health_check_interval`, else 30).
    pub interval: Option<f64>,
    /// Seconds a probe may take (default 5).
    pub timeout: f64,
    /// Failed probes in a row that make a replica unhealthy (default 3).
    pub unhealthy_threshold: u32,
    /// Good probes in a row that make an unhealthy replica healthy (default 2).
    pub healthy_threshold: u32,
    /// A probe slower than this (milliseconds) makes the replica degraded (default 2500).
    pub degraded_ms: u64,
}

impl Default for RawHealth {
    fn default() -> Self {
        Self { interval: None, timeout: 5.0, unhealthy_threshold: 3, healthy_threshold: 2, degraded_ms: 2500 }
    }
}

impl RawHealth {
    pub fn validate(&self) -> Result<HealthConfig, InvalidConfig> {
        Ok(HealthConfig {
            interval: match self.interval {
                Some(s) => Some(seconds("health.interval", s)?),
                None => None,
            },
            timeout: seconds("health.timeout", self.timeout)?,
            unhealthy_threshold: at_least_one("health.unhealthy_threshold", self.unhealthy_threshold)?,
            healthy_threshold: at_least_one("health.healthy_threshold", self.healthy_threshold)?,
            degraded: Duration::from_millis(self.degraded_ms),
        })
    }
}

/// Validated health settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthConfig {
    /// `None`: the server entry's `health_check_interval`.
    pub interval: Option<Duration>,
    pub timeout: Duration,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
    pub degraded: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            interval: None,
            timeout: Duration::from_secs(5),
            unhealthy_threshold: 3,
            healthy_threshold: 2,
            degraded: Duration::from_millis(2500),
        }
    }
}

/// A replica's or a server's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Health {
    Healthy,
    Degraded,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Unhealthy => "unhealthy",
        }
    }

    /// A server's health from its replicas': healthy if all are, unhealthy if none is usable
    /// (all unhealthy), degraded otherwise.
    pub fn combine(replicas: impl IntoIterator<Item = Health>) -> Health {
        let (mut any, mut all_healthy, mut all_unhealthy) = (false, true, true);
        for h in replicas {
            any = true;
            all_healthy &= h == Health::Healthy;
            all_unhealthy &= h == Health::Unhealthy;
        }
        match (any, all_healthy, all_unhealthy) {
            (false, ..) => Health::Unhealthy,
            (_, true, _) => Health::Healthy,
            (_, _, true) => Health::Unhealthy,
            _ => Health::Degraded,
        }
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One probe's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Answered(Duration),
    Failed,
}

/// Health from probe outcomes, per replica.
#[derive(Debug, Clone)]
pub struct HealthTracker {
    config: HealthConfig,
    state: Health,
    failures: u32,
    successes: u32,
    /// Was unhealthy and has not yet had `healthy_threshold` good probes in a row.
    recovering: bool,
}

impl HealthTracker {
    /// A tracker for a replica that just became ready (healthy until a probe says otherwise).
    pub fn new(config: HealthConfig) -> Self {
        Self { config, state: Health::Healthy, failures: 0, successes: 0, recovering: false }
    }

    pub fn state(&self) -> Health {
        self.state
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// Record a probe; returns the new state.
    pub fn record(&mut self, probe: Probe) -> Health {
        match probe {
            Probe::Failed => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                self.state = if self.failures >= self.config.unhealthy_threshold {
                    self.recovering = true;
                    Health::Unhealthy
                } else {
                    Health::Degraded
                };
            }
            Probe::Answered(latency) => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                if self.recovering && self.successes >= self.config.healthy_threshold {
                    self.recovering = false;
                }
                self.state = if self.recovering || latency > self.config.degraded {
                    Health::Degraded
                } else {
                    Health::Healthy
                };
            }
        }
        self.state
    }

    /// The process is gone or was replaced: start over.
    pub fn reset(&mut self) {
        self.state = Health::Healthy;
        self.failures = 0;
        self.successes = 0;
        self.recovering = false;
    }
}
