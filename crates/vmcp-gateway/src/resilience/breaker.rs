//! A per-replica circuit breaker: closed → open → half-open → closed.
//!
//! Policy: **consecutive failures**. A failure ratio over a window needs a window size and a
//! minimum volume, and reacts differently at 1 and at 1,000 requests a second; a count of
//! failures in a row means the same at any rate and is what an operator can reason about.
//!
//! - **Closed**: requests pass. `failure_threshold` failures in a row open the breaker; any
//!   success resets the count.
//! - **Open**: requests fail fast ([`Open`] with the time left) for `open_for`.
//! - **Half-open**: when `open_for` has passed, at most `half_open_probes` requests at once go
//!   through as probes; the others still fail fast. A probe's success closes the breaker and
//!   resets `open_for` to its base; a probe's failure opens it again for twice as long as last
//!   time, capped at `max_open_for`. A probe dropped without an outcome (cancelled) frees its
//!   slot and changes nothing else.
//!
//! An outcome counts only in the period its permit was issued in: the failures of requests
//! already in flight when the breaker opened do not extend it, and a late success from before
//! it opened does not close it.
//!
//! What counts as a failure is the caller's choice; the gateway counts transport failures and
//! timeouts of the replica, not a backend's own JSON-RPC errors.
//!
//! Concurrency: the closed path takes no lock (two atomic loads to acquire, one more load to
//! record a success); failures and transitions take a short `std` mutex, never held across an
//! `.await`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{InvalidConfig, at_least_one, seconds};

/// The `breaker` object as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawBreaker {
    /// Failures in a row that open the breaker (default 5).
    pub failure_threshold: u32,
    /// How long it first stays open, in seconds (default 10).
    pub open_seconds: f64,
    /// The cap for the doubling open time, in seconds (default 30 × `open_seconds`).
    pub max_open_seconds: Option<f64>,
    /// Probes let through at once when half-open (default 1).
    pub half_open_probes: u32,
}

impl Default for RawBreaker {
    fn default() -> Self {
        Self { failure_threshold: 5, open_seconds: 10.0, max_open_seconds: None, half_open_probes: 1 }
    }
}

impl RawBreaker {
    pub fn validate(&self) -> Result<BreakerConfig, InvalidConfig> {
        let open_for = seconds("breaker.open_seconds", self.open_seconds)?;
        let max_open_for = match self.max_open_seconds {
            Some(s) => seconds("breaker.max_open_seconds", s)?,
            None => open_for.saturating_mul(30),
        };
        if max_open_for < open_for {
            return Err(InvalidConfig::field(
                "breaker.max_open_seconds",
                format!("must be at least open_seconds ({})", self.open_seconds),
            ));
        }
        Ok(BreakerConfig {
            failure_threshold: at_least_one("breaker.failure_threshold", self.failure_threshold)?,
            open_for,
            max_open_for,
            half_open_probes: at_least_one("breaker.half_open_probes", self.half_open_probes)?,
        })
    }
}

/// Validated breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// At least 1.
    pub failure_threshold: u32,
    pub open_for: Duration,
    /// At least `open_for`.
    pub max_open_for: Duration,
    /// At least 1.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(10),
            max_open_for: Duration::from_secs(300),
            half_open_probes: 1,
        }
    }
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The breaker refused a request: fail fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker open (retry in {retry_after:?})")]
pub struct Open {
    /// Until the breaker lets a probe through; zero while half-open with every probe slot taken.
    pub retry_after: Duration,
}

/// A breaker's counters, for status and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSnapshot {
    pub state: State,
    /// Failures in a row while closed.
    pub consecutive_failures: u32,
    /// How long the breaker stays open next time it opens (or now, if open).
    pub open_for: Duration,
    /// How many times it has opened.
    pub opened: u64,
    /// When the current state began (`None`: closed since creation).
    pub since: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { probes: u32 },
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// The open time of the next (or current) open period.
    open_for: Duration,
    opened: u64,
    since: Option<Instant>,
}

/// A circuit breaker for one replica. Share it by reference (it lives with its replica).
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    /// Mirrors `phase == Closed`, for the lock-free closed path.
    closed: AtomicBool,
    /// Failures in a row while closed; written under the lock, read without it.
    failures: AtomicU32,
    /// Bumped (under the lock) at every transition; permits remember the one they came from.
    epoch: AtomicU64,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        let config = BreakerConfig {
            failure_threshold: config.failure_threshold.max(1),
            half_open_probes: config.half_open_probes.max(1),
            max_open_for: config.max_open_for.max(config.open_for),
            ..config
        };
        Self {
            config,
            closed: AtomicBool::new(true),
            failures: AtomicU32::new(0),
            epoch: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                phase: Phase::Closed,
                open_for: config.open_for,
                opened: 0,
                since: None,
            }),
        }
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Ask to send one request. The permit must be told how it went; a probe permit dropped
    /// without an outcome frees its slot.
    pub fn try_acquire(&self, now: Instant) -> Result<Permit<'_>, Open> {
        if self.closed.load(Ordering::Acquire) {
            let epoch = self.epoch.load(Ordering::Acquire);
            return Ok(Permit { breaker: self, epoch, probe: false, recorded: false });
        }
        let mut inner = self.lock();
        match inner.phase {
            Phase::Closed => Ok(Permit { breaker: self, epoch: self.epoch(), probe: false, recorded: false }),
            Phase::Open { until } if now < until => Err(Open { retry_after: until - now }),
            Phase::Open { .. } => {
                self.transition(&mut inner, Phase::HalfOpen { probes: 1 }, now);
                Ok(Permit { breaker: self, epoch: self.epoch(), probe: true, recorded: false })
            }
            Phase::HalfOpen { probes } if probes < self.config.half_open_probes => {
                inner.phase = Phase::HalfOpen { probes: probes + 1 };
                Ok(Permit { breaker: self, epoch: self.epoch(), probe: true, recorded: false })
            }
            Phase::HalfOpen { .. } => Err(Open { retry_after: Duration::ZERO }),
        }
    }

    /// The state at `now` (an open breaker whose time is up reads as half-open).
    pub fn state(&self, now: Instant) -> State {
        if self.closed.load(Ordering::Acquire) {
            return State::Closed;
        }
        Self::state_of(self.lock().phase, now)
    }

    pub fn snapshot(&self, now: Instant) -> BreakerSnapshot {
        let inner = self.lock();
        BreakerSnapshot {
            state: Self::state_of(inner.phase, now),
            consecutive_failures: self.failures.load(Ordering::Relaxed),
            open_for: inner.open_for,
            opened: inner.opened,
            since: inner.since,
        }
    }

    fn state_of(phase: Phase, now: Instant) -> State {
        match phase {
            Phase::Closed => State::Closed,
            Phase::Open { until } if now < until => State::Open,
            Phase::Open { .. } | Phase::HalfOpen { .. } => State::HalfOpen,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Move to `phase`; the caller holds the lock.
    fn transition(&self, inner: &mut Inner, phase: Phase, now: Instant) {
        inner.phase = phase;
        inner.since = Some(now);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.closed.store(phase == Phase::Closed, Ordering::Release);
    }

    fn open(&self, inner: &mut Inner, open_for: Duration, now: Instant) {
        inner.open_for = open_for;
        inner.opened += 1;
        self.failures.store(0, Ordering::Relaxed);
        self.transition(inner, Phase::Open { until: now + open_for }, now);
    }

    fn on_success(&self, epoch: u64, probe: bool, now: Instant) {
        if !probe && self.failures.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut inner = self.lock();
        if self.epoch() != epoch {
            return;
        }
        match inner.phase {
            Phase::Closed => self.failures.store(0, Ordering::Relaxed),
            Phase::HalfOpen { .. } if probe => {
                inner.open_for = self.config.open_for;
                self.failures.store(0, Ordering::Relaxed);
                self.transition(&mut inner, Phase::Closed, now);
            }
            _ => {}
        }
    }

    fn on_failure(&self, epoch: u64, probe: bool, now: Instant) {
        let mut inner = self.lock();
        if self.epoch() != epoch {
            return;
        }
        match inner.phase {
            Phase::Closed => {
                let failures = self.failures.load(Ordering::Relaxed).saturating_add(1);
                self.failures.store(failures, Ordering::Relaxed);
                if failures >= self.config.failure_threshold {
                    self.open(&mut inner, self.config.open_for, now);
                }
            }
            Phase::HalfOpen { .. } if probe => {
                let longer = inner.open_for.saturating_mul(2).min(self.config.max_open_for);
                self.open(&mut inner, longer, now);
            }
            _ => {}
        }
    }

    fn on_abandoned(&self, epoch: u64) {
        let mut inner = self.lock();
        if self.epoch() == epoch
            && let Phase::HalfOpen { probes } = inner.phase
        {
            inner.phase = Phase::HalfOpen { probes: probes.saturating_sub(1) };
        }
    }
}

impl Default for Breaker {
    fn default() -> Self {
        Self::new(BreakerConfig::default())
    }
}

/// Leave to send one request through a breaker; say how it went with [`Permit::success`] or
/// [`Permit::failure`]. Dropped unrecorded, it counts as neither.
#[must_use = "record the outcome with success() or failure()"]
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    epoch: u64,
    probe: bool,
    recorded: bool,
}

impl Permit<'_> {
    /// Whether this request is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    pub fn success(mut self, now: Instant) {
        self.recorded = true;
        self.breaker.on_success(self.epoch, self.probe, now);
    }

    pub fn failure(mut self, now: Instant) {
        self.recorded = true;
        self.breaker.on_failure(self.epoch, self.probe, now);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.recorded && self.probe {
            self.breaker.on_abandoned(self.epoch);
        }
    }
}

#[cfg(test)]
mod tests;
