//! The breaker's state machine, driven with explicit instants (no sleeping).

use std::time::{Duration, Instant};

use super::*;

fn breaker(threshold: u32, open_ms: u64) -> Breaker {
    Breaker::new(BreakerConfig {
        failure_threshold: threshold,
        open_for: Duration::from_millis(open_ms),
        max_open_for: Duration::from_millis(open_ms * 4),
        half_open_probes: 1,
    })
}

fn ms(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

#[test]
fn consecutive_failures_open_it_and_a_success_resets_the_count() {
    let t0 = Instant::now();
    let b = breaker(3, 1000);
    b.try_acquire(t0).unwrap().failure(t0);
    b.try_acquire(t0).unwrap().failure(t0);
    b.try_acquire(t0).unwrap().success(t0);
    b.try_acquire(t0).unwrap().failure(t0);
    b.try_acquire(t0).unwrap().failure(t0);
    assert_eq!(b.state(t0), State::Closed, "a success in between resets the count");
    b.try_acquire(t0).unwrap().failure(t0);
    assert_eq!(b.state(t0), State::Open);
    let refused = b.try_acquire(ms(t0, 400)).unwrap_err();
    assert_eq!(refused.retry_after, Duration::from_millis(600));
}

#[test]
fn half_open_lets_one_probe_through_and_its_success_closes() {
    let t0 = Instant::now();
    let b = breaker(1, 1000);
    b.try_acquire(t0).unwrap().failure(t0);
    let later = ms(t0, 1000);
    assert_eq!(b.state(later), State::HalfOpen);
    let probe = b.try_acquire(later).unwrap();
    assert!(probe.is_probe());
    assert!(b.try_acquire(later).is_err(), "only one probe at a time");
    probe.success(later);
    assert_eq!(b.state(later), State::Closed);
    assert!(!b.try_acquire(later).unwrap().is_probe());
}

#[test]
fn a_failed_probe_reopens_for_twice_as_long_capped() {
    let t0 = Instant::now();
    let b = breaker(1, 1000);
    b.try_acquire(t0).unwrap().failure(t0);
    let mut now = t0;
    for expected in [2000, 4000, 4000] {
        now += b.snapshot(now).open_for;
        b.try_acquire(now).unwrap().failure(now);
        assert_eq!(b.snapshot(now).open_for, Duration::from_millis(expected));
        assert_eq!(b.state(now), State::Open);
    }
    assert_eq!(b.snapshot(now).opened, 4);
}

#[test]
fn a_dropped_probe_frees_its_slot_and_stale_outcomes_are_ignored() {
    let t0 = Instant::now();
    let b = breaker(2, 1000);
    let old = b.try_acquire(t0).unwrap();
    b.try_acquire(t0).unwrap().failure(t0);
    b.try_acquire(t0).unwrap().failure(t0);
    assert_eq!(b.state(t0), State::Open);
    old.success(t0);
    assert_eq!(b.state(t0), State::Open, "a success from before it opened does not close it");
    let later = ms(t0, 1000);
    drop(b.try_acquire(later).unwrap());
    assert!(b.try_acquire(later).unwrap().is_probe(), "the slot was freed");
}

#[test]
fn config_is_validated_with_field_names() {
    let raw = RawBreaker { failure_threshold: 0, ..RawBreaker::default() };
    assert!(raw.validate().unwrap_err().to_string().contains("breaker.failure_threshold"));
    let raw = RawBreaker { open_seconds: -1.0, ..RawBreaker::default() };
    assert!(raw.validate().unwrap_err().to_string().contains("breaker.open_seconds"));
    let raw = RawBreaker { open_seconds: 10.0, max_open_seconds: Some(5.0), ..RawBreaker::default() };
    assert!(raw.validate().unwrap_err().to_string().contains("max_open_seconds"));
}
