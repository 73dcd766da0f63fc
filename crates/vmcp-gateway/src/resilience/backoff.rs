//! Restart backoff and crash-loop detection for a supervised replica.
//!
//! Backoff: `base · 2^attempt`, capped at `max`, with "equal" jitter (a uniform draw between half
//! and all of that), so replicas that die together do not restart in lockstep. A replica that
//! stayed up for a whole crash-loop window starts again from `base`.
//!
//! Crash loop: `crash_loop_restarts` exits within `crash_loop_window` (default 5 in 60 s). It is
//! reported (log, health, list), never hidden; the supervisor keeps restarting at the capped
//! backoff.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{InvalidConfig, at_least_one, seconds};

/// The `restart` object as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRestart {
    /// First delay in milliseconds (default 200).
    pub base_ms: u64,
    /// Cap in milliseconds (default 30000).
    pub max_ms: u64,
    /// Exits within the window that make a crash loop (default 5).
    pub crash_loop_restarts: u32,
    /// The crash-loop window in seconds (default 60).
    pub crash_loop_window_seconds: f64,
}

impl Default for RawRestart {
    fn default() -> Self {
        Self { base_ms: 200, max_ms: 30_000, crash_loop_restarts: 5, crash_loop_window_seconds: 60.0 }
    }
}

impl RawRestart {
    pub fn validate(&self) -> Result<RestartConfig, InvalidConfig> {
        if self.base_ms == 0 {
            return Err(InvalidConfig::field("restart.base_ms", "must be at least 1"));
        }
        if self.max_ms < self.base_ms {
            return Err(InvalidConfig::field(
                "restart.max_ms",
                format!("must be at least base_ms ({})", self.base_ms),
            ));
        }
        Ok(RestartConfig {
            base: Duration::from_millis(self.base_ms),
            max: Duration::from_millis(self.max_ms),
            crash_loop_restarts: at_least_one("restart.crash_loop_restarts", self.crash_loop_restarts)?,
            crash_loop_window: seconds("restart.crash_loop_window_seconds", self.crash_loop_window_seconds)?,
        })
    }
}

/// Validated restart settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartConfig {
    pub base: Duration,
    /// At least `base`.
    pub max: Duration,
    pub crash_loop_restarts: u32,
    pub crash_loop_window: Duration,
}

impl Default for RestartConfig {
    fn default() -> Self {
        RawRestart::default().validate().unwrap_or(Self {
            base: Duration::from_millis(200),
            max: Duration::from_secs(30),
            crash_loop_restarts: 5,
            crash_loop_window: Duration::from_secs(60),
        })
    }
}

/// The delay before restart number `attempt` (0-based); `unit` is a uniform draw in `[0, 1)`.
pub fn delay(config: &RestartConfig, attempt: u32, unit: f64) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX);
    let full = config.base.saturating_mul(factor).min(config.max);
    full.mul_f64(0.5 + unit.clamp(0.0, 1.0) / 2.0)
}

/// A replica's exits: the next backoff attempt and whether it is in a crash loop.
#[derive(Debug)]
pub struct RestartTracker {
    config: RestartConfig,
    exits: VecDeque<Instant>,
    attempt: u32,
}

/// What the supervisor should do after an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The backoff attempt number for this restart (0 = first after a stable period).
    pub attempt: u32,
    /// Exits within the window, this one included.
    pub recent_exits: u32,
    pub crash_loop: bool,
}

impl RestartTracker {
    pub fn new(config: RestartConfig) -> Self {
        Self { config, exits: VecDeque::new(), attempt: 0 }
    }

    /// Record an exit at `now` of a replica that had been up since `up_since`.
    pub fn exited(&mut self, up_since: Instant, now: Instant) -> Verdict {
        let window = self.config.crash_loop_window;
        if now.saturating_duration_since(up_since) >= window {
            self.attempt = 0;
        }
        while self.exits.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
            self.exits.pop_front();
        }
        self.exits.push_back(now);
        let verdict = Verdict {
            attempt: self.attempt,
            recent_exits: self.exits.len() as u32,
            crash_loop: self.exits.len() as u32 >= self.config.crash_loop_restarts,
        };
        self.attempt = self.attempt.saturating_add(1);
        verdict
    }

    /// Whether the exits within the window (at `now`) still make a crash loop.
    pub fn in_crash_loop(&self, now: Instant) -> bool {
        let window = self.config.crash_loop_window;
        self.exits.iter().filter(|t| now.saturating_duration_since(**t) < window).count() as u32
            >= self.config.crash_loop_restarts
    }

    pub fn config(&self) -> &RestartConfig {
        &self.config
    }
}
