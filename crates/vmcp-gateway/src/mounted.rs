//! A mounted server: its replicas (each an upstream connection kept alive by a supervisor), the
//! names it publishes, and its counters.
//!
//! Supervision: when a replica's process exits or its connection closes, the supervisor starts
//! it again after an exponential, jittered backoff (capped), swaps the new connection in, and
//! refreshes the catalog. Repeated exits are reported as a crash loop in the status, never hidden.
//! Requests in flight on the dead connection have already failed at once (the upstream fails
//! its pending table when it goes).

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use vmcp_config::{ServerSpec, Transport};

use crate::catalog::ServerItems;
use crate::gateway::Gateway;
use crate::stats::Stats;
use crate::upstream::{self, Upstream};

/// One running copy of a server.
pub struct Replica {
    pub index: usize,
    pub spec: Arc<ServerSpec>,
    slot: RwLock<Arc<Upstream>>,
    pub restarts: AtomicU32,
    /// Set while the supervisor sees repeated exits.
    pub crash_loop: std::sync::atomic::AtomicBool,
}

impl Replica {
    pub fn up(&self) -> Arc<Upstream> {
        self.slot.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn swap(&self, up: Arc<Upstream>) {
        *self.slot.write().unwrap_or_else(|p| p.into_inner()) = up;
    }
}

/// A server as the gateway holds it.
pub struct Mounted {
    pub spec: Arc<ServerSpec>,
    pub replicas: Vec<Replica>,
    pub items: Mutex<ServerItems>,
    pub stats: Stats,
    next: AtomicUsize,
    stop: CancellationToken,
}

/// The specs of each replica: `replicas` copies of a stdio server, or one per URL.
fn replica_specs(spec: &ServerSpec) -> Vec<Arc<ServerSpec>> {
    match &spec.transport {
        Transport::Stdio { .. } => (0..spec.replicas.max(1)).map(|_| Arc::new(spec.clone())).collect(),
        t => {
            let urls: Vec<String> = if spec.urls.is_empty() {
                match t {
                    Transport::StreamableHttp { url }
                    | Transport::Sse { url }
                    | Transport::WebSocket { url } => vec![url.clone()],
                    Transport::Stdio { .. } => vec![],
                }
            } else {
                spec.urls.clone()
            };
            urls.into_iter()
                .map(|url| {
                    let mut s = spec.clone();
                    s.transport = match t {
                        Transport::Sse { .. } => Transport::Sse { url },
                        Transport::WebSocket { .. } => Transport::WebSocket { url },
                        _ => Transport::StreamableHttp { url },
                    };
                    Arc::new(s)
                })
                .collect()
        }
    }
}

impl Mounted {
    /// Start every replica in parallel and their supervisors.
    pub async fn start(gw: &Arc<Gateway>, spec: Arc<ServerSpec>) -> Arc<Mounted> {
        let specs = replica_specs(&spec);
        let ups =
            futures_util::future::join_all(specs.iter().map(|s| Upstream::start(s.clone(), &gw.opts))).await;
        for up in &ups {
            if up.era() == Some(vmcp_protocol::Era::Modern) {
                tokio::spawn(crate::listen::upstream_list_changes(up.clone()));
            }
        }
        let replicas: Vec<Replica> = specs
            .into_iter()
            .zip(ups)
            .enumerate()
            .map(|(index, (spec, up))| Replica {
                index,
                spec,
                slot: RwLock::new(up),
                restarts: AtomicU32::new(0),
                crash_loop: Default::default(),
            })
            .collect();
        let m = Arc::new(Mounted {
            spec,
            replicas,
            items: Mutex::default(),
            stats: Stats::default(),
            next: AtomicUsize::new(0),
            stop: CancellationToken::new(),
        });
        let up = m.up();
        if up.is_ready() {
            *m.items.lock().unwrap_or_else(|p| p.into_inner()) = crate::lists::fetch_items(&up).await;
        }
        for i in 0..m.replicas.len() {
            tokio::spawn(supervise(Arc::downgrade(gw), m.clone(), i));
        }
        m
    }

    /// The replica to ask for things every replica answers alike (capabilities, lists): the
    /// first ready one.
    pub fn up(&self) -> Arc<Upstream> {
        self.replicas.iter().map(Replica::up).find(|u| u.is_ready()).unwrap_or_else(|| self.replicas[0].up())
    }

    /// The replica for the next request: round robin over the ready ones.
    pub fn pick(&self) -> Arc<Upstream> {
        let ready: Vec<Arc<Upstream>> =
            self.replicas.iter().map(Replica::up).filter(|u| u.is_ready()).collect();
        if ready.is_empty() {
            return self.replicas[0].up();
        }
        ready[self.next.fetch_add(1, Ordering::Relaxed) % ready.len()].clone()
    }

    pub fn is_ready(&self) -> bool {
        self.replicas.iter().any(|r| r.up().is_ready())
    }

    /// Stop supervising and stop every replica.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        futures_util::future::join_all(self.replicas.iter().map(|r| async move { r.up().shutdown().await }))
            .await;
    }
}

const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// Exits within this window count toward a crash loop; a replica up this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(60);
const CRASH_LOOP_EXITS: u32 = 5;

/// Keep replica `i` running until the server is unmounted or the gateway stops.
async fn supervise(gw: Weak<Gateway>, m: Arc<Mounted>, i: usize) {
    let replica = &m.replicas[i];
    let mut attempt: u32 = 0;
    let mut recent: Vec<Instant> = Vec::new();
    loop {
        let up = replica.up();
        let started = Instant::now();
        tokio::select! {
            _ = up.wait_gone() => {}
            _ = m.stop.cancelled() => return,
        }
        let Some(gateway) = gw.upgrade() else { return };
        if m.stop.is_cancelled() || gateway.is_stopping() {
            return;
        }
        if started.elapsed() > STABLE_AFTER {
            attempt = 0;
        }
        recent.retain(|t| t.elapsed() < STABLE_AFTER);
        recent.push(Instant::now());
        let looping = recent.len() as u32 >= CRASH_LOOP_EXITS;
        replica.crash_loop.store(looping, Ordering::Relaxed);
        let delay = backoff(attempt);
        attempt = attempt.saturating_add(1);
        let why = match up.status() {
            upstream::Status::Exited(r) | upstream::Status::Failed(r) => r,
            other => other.label().to_owned(),
        };
        if looping {
            tracing::error!(server = %m.spec.id, replica = i, "crash loop: {} exits in {STABLE_AFTER:?}; last: {why}; restarting in {delay:?}", recent.len());
        } else {
            tracing::warn!(server = %m.spec.id, replica = i, "restarting in {delay:?} ({why})");
        }
        drop(gateway);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = m.stop.cancelled() => return,
        }
        let Some(gateway) = gw.upgrade() else { return };
        let next = Upstream::start(replica.spec.clone(), &gateway.opts).await;
        replica.restarts.fetch_add(1, Ordering::Relaxed);
        if next.era() == Some(vmcp_protocol::Era::Modern) {
            tokio::spawn(crate::listen::upstream_list_changes(next.clone()));
        }
        let ready = next.is_ready();
        replica.swap(next);
        if ready {
            tracing::info!(server = %m.spec.id, replica = i, "restarted");
            gateway.refresh(&m.spec.id).await;
        }
    }
}

/// Exponential backoff with full jitter, capped.
fn backoff(attempt: u32) -> Duration {
    let exp =
        BACKOFF_BASE.saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX)).min(BACKOFF_CAP);
    let jitter: f64 = rand::random();
    exp.mul_f64(0.5 + jitter / 2.0)
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..40 {
            let d = backoff(attempt);
            let full =
                Duration::from_millis(200).saturating_mul(1 << attempt.min(16)).min(Duration::from_secs(30));
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }
}
