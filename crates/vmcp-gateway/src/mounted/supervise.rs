//! Keeping a mounted server's replicas alive and watched.
//!
//! - `supervise`: when a replica's process exits or its connection closes, start it again after
//!   an exponential, jittered, capped backoff (`resilience.restart`), swap the new connection in
//!   and refresh the catalog. Before the swap, the resource subscriptions that sessions held
//!   there are made again at the new process (`subscriptions::restore`). Repeated exits are a
//!   crash loop: logged as an error, flagged in health and `vmcp list`, never hidden. Requests
//!   in flight on the dead connection have already failed at once (the upstream fails its
//!   pending table when it goes).
//! - `probe`: every `health.interval`, ask each ready replica the cheapest question its era
//!   has (legacy: `ping`; modern: `server/discover`) within `health.timeout`, and feed the
//!   outcome to its health tracker. An unhealthy replica gets no requests until probes pass.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use vmcp_protocol::Era;

use super::Mounted;
use crate::gateway::Gateway;
use crate::resilience::{Health, Probe, RestartTracker, backoff};
use crate::upstream::{self, Upstream};

/// Keep replica `i` running until the server is unmounted or the gateway stops.
pub(super) async fn supervise(gw: Weak<Gateway>, m: Arc<Mounted>, i: usize) {
    let replica = &m.replicas[i];
    let mut tracker = RestartTracker::new(m.resilience.restart);
    let mut up_since = Instant::now();
    loop {
        let up = replica.up();
        tokio::select! {
            _ = up.wait_gone() => {}
            _ = m.stop.cancelled() => return,
        }
        let Some(gateway) = gw.upgrade() else { return };
        if m.stop.is_cancelled() || gateway.is_stopping() {
            return;
        }
        let verdict = tracker.exited(up_since, Instant::now());
        replica.crash_loop.store(verdict.crash_loop, Ordering::Relaxed);
        let delay = backoff::delay(tracker.config(), verdict.attempt, rand::random());
        let why = match up.status() {
            upstream::Status::Exited(r) | upstream::Status::Failed(r) => r,
            other => other.label().to_owned(),
        };
        if verdict.crash_loop {
            tracing::error!(
                server = %m.spec.id, replica = i,
                "crash loop: {} exits within {:?}; last: {why}; restarting in {delay:?}",
                verdict.recent_exits, tracker.config().crash_loop_window
            );
        } else {
            tracing::warn!(server = %m.spec.id, replica = i, "restarting in {delay:?} ({why})");
        }
        drop(gateway);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = m.stop.cancelled() => return,
        }
        let Some(gateway) = gw.upgrade() else { return };
        let next = super::start_upstream(replica.spec.clone(), &gateway).await;
        up_since = Instant::now();
        replica.restarts.fetch_add(1, Ordering::Relaxed);
        // The new process knows none of the subscriptions its predecessor held: it takes the
        // replica's place once they are made there.
        crate::subscriptions::restore(&gateway, &m, i, &next, || replica.swap(next.clone())).await;
        replica.reset_health();
        if next.is_ready() {
            tracing::info!(server = %m.spec.id, replica = i, pid = ?next.pid(), "restarted");
            gateway.refresh(&m.spec.id).await;
        }
        // A crash loop ends when the window holds fewer exits again.
        if replica.crash_loop.load(Ordering::Relaxed) && !tracker.in_crash_loop(Instant::now()) {
            replica.crash_loop.store(false, Ordering::Relaxed);
        }
    }
}

/// Probe replica `i` every interval until the server is unmounted.
pub(super) async fn probe(m: Arc<Mounted>, i: usize) {
    let cfg = m.resilience.health;
    let interval = cfg.interval.unwrap_or_else(|| Duration::from_secs_f64(m.spec.health_check_interval_secs));
    let replica = &m.replicas[i];
    let mut last = Health::Healthy;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = m.stop.cancelled() => return,
        }
        let up = replica.up();
        if !up.is_ready() {
            continue;
        }
        let outcome = probe_once(&up, cfg.timeout).await;
        let state = replica.record_probe(outcome);
        if state != last {
            match state {
                Health::Healthy => tracing::info!(server = %m.spec.id, replica = i, "healthy again"),
                _ => tracing::warn!(server = %m.spec.id, replica = i, ?outcome, "health: {state}"),
            }
            last = state;
        }
    }
}

async fn probe_once(up: &Upstream, timeout: Duration) -> Probe {
    let (method, params) = match up.era() {
        Some(Era::Modern) => ("server/discover", crate::era::to_backend(Some("{}"), up, None)),
        _ => ("ping", None),
    };
    let started = Instant::now();
    match up.request(up.next_id(), method, params.as_deref(), None, timeout).await {
        Ok(msg) if msg.result.is_some() => Probe::Answered(started.elapsed()),
        _ => Probe::Failed,
    }
}
