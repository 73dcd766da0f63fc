//! Config validation, restart backoff, health and balancing: pure, table-driven, no sleeping.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

#[test]
fn resilience_config_defaults_and_errors() {
    let r = Resilience::from_value(None, 3).unwrap();
    assert_eq!((r.strategy, r.weights.clone()), (Strategy::RoundRobin, vec![1, 1, 1]));
    assert_eq!(r.retry_tools, RetryTools::Annotated);
    let v = json!({ "strategy": "weighted", "weights": [1, 2, 7], "retry_tools": ["a"],
                     "breaker": { "failure_threshold": 2 }, "health": { "interval": 0.5 } });
    let r = Resilience::from_value(Some(&v), 3).unwrap();
    assert_eq!(r.strategy, Strategy::Weighted);
    assert!(r.retry_tools.allows("a") && !r.retry_tools.allows("b"));
    assert_eq!(r.breaker.failure_threshold, 2);
    assert_eq!(r.health.interval, Some(Duration::from_millis(500)));
    for (bad, needle) in [
        (json!({ "strategy": "random" }), "random"),
        (json!({ "weights": [1, 2] }), "weights"),
        (json!({ "weights": [0, 0, 0] }), "weights"),
        (json!({ "bogus": 1 }), "bogus"),
        (json!({ "health": { "timeout": 0 } }), "health.timeout"),
        (json!({ "restart": { "base_ms": 500, "max_ms": 100 } }), "restart.max_ms"),
    ] {
        let e = Resilience::from_value(Some(&bad), 3).unwrap_err().to_string();
        assert!(e.contains(needle), "{bad}: {e}");
    }
}

#[test]
fn restart_backoff_grows_with_jitter_and_is_capped() {
    let c = RestartConfig::default();
    for attempt in 0..40 {
        let full =
            Duration::from_millis(200).saturating_mul(1 << attempt.min(16)).min(Duration::from_secs(30));
        assert_eq!(backoff::delay(&c, attempt, 0.0), full / 2);
        assert_eq!(backoff::delay(&c, attempt, 1.0), full);
    }
}

#[test]
fn five_exits_in_a_minute_is_a_crash_loop_and_a_stable_run_resets_backoff() {
    let t0 = Instant::now();
    let mut t = RestartTracker::new(RestartConfig::default());
    let verdicts: Vec<_> = (0..5).map(|i| t.exited(t0, t0 + Duration::from_secs(i))).collect();
    assert_eq!(verdicts.iter().map(|v| v.attempt).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert!(!verdicts[3].crash_loop && verdicts[4].crash_loop);
    assert!(t.in_crash_loop(t0 + Duration::from_secs(30)));
    assert!(!t.in_crash_loop(t0 + Duration::from_secs(61)));
    let up = t0 + Duration::from_secs(100);
    let v = t.exited(up, up + Duration::from_secs(120));
    assert_eq!((v.attempt, v.recent_exits, v.crash_loop), (0, 1, false));
}

#[test]
fn health_follows_probe_outcomes_with_thresholds() {
    use Health::*;
    let mut h = HealthTracker::new(HealthConfig::default());
    let ok = Probe::Answered(Duration::from_millis(5));
    let slow = Probe::Answered(Duration::from_secs(3));
    let seq = [
        (ok, Healthy),
        (slow, Degraded),
        (ok, Healthy),
        (Probe::Failed, Degraded),
        (Probe::Failed, Degraded),
        (Probe::Failed, Unhealthy),
        (ok, Degraded),
        (ok, Healthy),
    ];
    for (i, (probe, want)) in seq.into_iter().enumerate() {
        assert_eq!(h.record(probe), want, "step {i}");
    }
    assert_eq!(Health::combine([Healthy, Healthy]), Healthy);
    assert_eq!(Health::combine([Healthy, Unhealthy]), Degraded);
    assert_eq!(Health::combine([Unhealthy, Unhealthy]), Unhealthy);
}

fn counts(b: &Balancer, n: usize, picks: usize, view: impl Fn(usize) -> Option<ReplicaLoad>) -> Vec<usize> {
    let mut c = vec![0; n];
    for _ in 0..picks {
        c[b.pick(&view).unwrap()] += 1;
    }
    c
}

#[test]
fn round_robin_and_weighted_spread_as_configured() {
    let up = |_| Some(ReplicaLoad::default());
    let rr = Balancer::with_seed(Strategy::RoundRobin, &[1, 1, 1], 7);
    assert_eq!(counts(&rr, 3, 300, up), [100, 100, 100]);
    let w = Balancer::with_seed(Strategy::Weighted, &[1, 2, 7], 7);
    assert_eq!(counts(&w, 3, 1000, up), [100, 200, 700]);
    // Interleaved, not bursts: no replica of weight 7 of 10 gets more than 3 in a row.
    let seq: Vec<usize> = (0..10).map(|_| w.pick(up).unwrap()).collect();
    assert!(seq.windows(4).all(|win| !win.iter().all(|&i| i == 2)), "{seq:?}");
    // A down replica is skipped; weight 0 serves only when nothing else can.
    assert_eq!(counts(&rr, 3, 10, |i| (i != 1).then(ReplicaLoad::default))[1], 0);
    let drained = Balancer::with_seed(Strategy::RoundRobin, &[0, 1], 7);
    assert_eq!(counts(&drained, 2, 10, up), [0, 10]);
    assert_eq!(counts(&drained, 2, 10, |i| (i == 0).then(ReplicaLoad::default)), [10, 0]);
    assert_eq!(rr.pick(|_| None), None);
}

#[test]
fn least_connections_and_adaptive_avoid_the_loaded_or_slow_replica() {
    let lc = Balancer::with_seed(Strategy::LeastConnections, &[1, 1, 1], 7);
    let busy = |i: usize| Some(ReplicaLoad { in_flight: if i == 0 { 5 } else { 1 }, ewma_us: 0 });
    assert_eq!(counts(&lc, 3, 100, busy)[0], 0);
    let ad = Balancer::with_seed(Strategy::Adaptive, &[1, 1, 1], 7);
    let slow = |i: usize| Some(ReplicaLoad { in_flight: 0, ewma_us: if i == 2 { 200_000 } else { 1_000 } });
    let c = counts(&ad, 3, 3200, slow);
    assert!(c[2] < 3200 / 20, "the slow replica gets only exploration traffic: {c:?}");
    assert!(c[0] > 1000 && c[1] > 1000, "{c:?}");
}

#[test]
fn affinity_is_stable_and_moves_only_the_sessions_of_a_lost_replica() {
    let b = Balancer::with_seed(Strategy::RoundRobin, &[1, 1, 1], 7);
    let all = |_| Some(ReplicaLoad::default());
    let before: Vec<usize> = (0..300).map(|s| b.pick_affine(affinity_key(s), all).unwrap()).collect();
    let again: Vec<usize> = (0..300).map(|s| b.pick_affine(affinity_key(s), all).unwrap()).collect();
    assert_eq!(before, again);
    assert!((0..3).all(|r| before.iter().filter(|&&x| x == r).count() > 60), "spread over replicas");
    let without_1 = |i: usize| (i != 1).then(ReplicaLoad::default);
    for (s, &was) in before.iter().enumerate() {
        let now = b.pick_affine(affinity_key(s as u64), without_1).unwrap();
        if was != 1 {
            assert_eq!(now, was, "session {s} moved although its replica is up");
        } else {
            assert_ne!(now, 1);
        }
    }
}
