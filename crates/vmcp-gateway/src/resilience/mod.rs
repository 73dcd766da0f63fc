//! Resilience primitives for a server's replicas, and their configuration: circuit breakers
//! (`breaker`), replica choice (`balance`), restart backoff and crash-loop detection
//! (`backoff`), health from probe outcomes (`health`).
//!
//! Configuration is the `resilience` object of a `servers.json` entry:
//!
//! ```json
//! "resilience": {
//!   "strategy": "weighted",
//!   "weights": [1, 2, 7],
//!   "breaker": { "failure_threshold": 5, "open_seconds": 10, "max_open_seconds": 300, "half_open_probes": 1 },
//!   "health": { "interval": 30, "timeout": 5, "unhealthy_threshold": 3, "healthy_threshold": 2, "degraded_ms": 2500 },
//!   "restart": { "base_ms": 200, "max_ms": 30000, "crash_loop_restarts": 5, "crash_loop_window_seconds": 60 },
//!   "limits": { "cpu_seconds": 60, "memory_mb": 512, "open_files": 256 },
//!   "retry_tools": ["search", "get_page"]
//! }
//! ```
//!
//! Every member is optional. [`RawResilience`] is that object as written; [`Resilience::from_raw`]
//! validates it into durations and counts.
//!
//! Invariant: pure state machines. No IO, no tasks, no timers: whatever depends on time takes
//! `now: Instant`, and randomness comes from a seed or the caller's `Rng`, so tests are
//! deterministic and never sleep.

pub mod backoff;
pub mod balance;
pub mod breaker;
pub mod health;

use std::time::Duration;

use serde::Deserialize;

pub use backoff::{RawRestart, RestartConfig, RestartTracker};
pub use balance::{Balancer, ReplicaLoad, Strategy, affinity_key};
pub use breaker::{Breaker, BreakerConfig, BreakerSnapshot, Open, Permit, RawBreaker, State};
pub use health::{Health, HealthConfig, HealthTracker, Probe, RawHealth};

/// The `resilience` object of a `servers.json` entry, as written. Every member is optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawResilience {
    /// How requests are spread over replicas: `round_robin` (default), `least_connections`,
    /// `weighted` or `adaptive`.
    pub strategy: Strategy,
    /// One weight per replica (default: all 1). Used by `weighted` and by session affinity under
    /// any strategy; a weight of 0 drains a replica (it is chosen only when nothing else is).
    pub weights: Vec<u32>,
    pub breaker: RawBreaker,
    pub health: RawHealth,
    pub restart: RawRestart,
    /// Child rlimits: validated by the supervisor that applies them, kept here so that the
    /// documented member is accepted.
    pub limits: Option<serde_json::Value>,
    /// Which `tools/call`s may fail over to another replica besides those annotated
    /// `idempotentHint`: `true` (all), `false` (default) or a list of the backend's tool names.
    pub retry_tools: RawRetryTools,
}

/// `retry_tools` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RawRetryTools {
    All(bool),
    Only(Vec<String>),
}

impl Default for RawRetryTools {
    fn default() -> Self {
        RawRetryTools::All(false)
    }
}

/// Which `tools/call`s the operator allows to fail over (besides idempotent ones).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RetryTools {
    #[default]
    Annotated,
    All,
    Only(Vec<String>),
}

impl RetryTools {
    pub fn allows(&self, tool: &str) -> bool {
        match self {
            RetryTools::Annotated => false,
            RetryTools::All => true,
            RetryTools::Only(names) => names.iter().any(|n| n == tool),
        }
    }
}

/// Validated resilience settings of one server.
#[derive(Debug, Clone, PartialEq)]
pub struct Resilience {
    pub strategy: Strategy,
    /// Exactly one per replica.
    pub weights: Vec<u32>,
    pub breaker: BreakerConfig,
    pub health: HealthConfig,
    pub restart: RestartConfig,
    pub retry_tools: RetryTools,
}

impl Resilience {
    /// Read and validate a server's `resilience` value (absent: all defaults) for `replicas`
    /// replicas.
    pub fn from_value(value: Option<&serde_json::Value>, replicas: usize) -> Result<Self, InvalidConfig> {
        let raw = match value {
            None => RawResilience::default(),
            Some(v) => RawResilience::deserialize(v).map_err(|e| InvalidConfig::syntax(e.to_string()))?,
        };
        Self::from_raw(&raw, replicas)
    }

    /// Validate `raw` for a server with `replicas` replicas.
    pub fn from_raw(raw: &RawResilience, replicas: usize) -> Result<Self, InvalidConfig> {
        let replicas = replicas.max(1);
        let weights = if raw.weights.is_empty() {
            vec![1; replicas]
        } else if raw.weights.len() != replicas {
            return Err(InvalidConfig::field(
                "weights",
                format!(
                    "has {} entries for {replicas} replicas; give one weight per replica",
                    raw.weights.len()
                ),
            ));
        } else if raw.weights.iter().all(|&w| w == 0) {
            return Err(InvalidConfig::field("weights", "at least one weight must be above 0"));
        } else {
            raw.weights.clone()
        };
        Ok(Self {
            strategy: raw.strategy,
            weights,
            breaker: raw.breaker.validate()?,
            health: raw.health.validate()?,
            restart: raw.restart.validate()?,
            retry_tools: match &raw.retry_tools {
                RawRetryTools::All(false) => RetryTools::Annotated,
                RawRetryTools::All(true) => RetryTools::All,
                RawRetryTools::Only(names) => RetryTools::Only(names.clone()),
            },
        })
    }

    /// A balancer over this server's replicas.
    pub fn balancer(&self) -> Balancer {
        Balancer::new(self.strategy, &self.weights)
    }
}

/// A `resilience` object that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidConfig {
    /// Not the expected shape (unknown member, wrong type).
    #[error("resilience: {0}")]
    Syntax(String),
    #[error("resilience.{field}: {problem}")]
    Field { field: String, problem: String },
}

impl InvalidConfig {
    fn syntax(message: String) -> Self {
        Self::Syntax(message)
    }

    fn field(field: &str, problem: impl Into<String>) -> Self {
        Self::Field { field: field.to_owned(), problem: problem.into() }
    }
}

/// A positive, finite number of seconds as a duration.
fn seconds(field: &str, secs: f64) -> Result<Duration, InvalidConfig> {
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(InvalidConfig::field(field, format!("must be a positive number of seconds, not {secs}"))),
    }
}

/// A count of at least 1.
fn at_least_one(field: &str, n: u32) -> Result<u32, InvalidConfig> {
    if n == 0 { Err(InvalidConfig::field(field, "must be at least 1")) } else { Ok(n) }
}

#[cfg(test)]
mod tests;
