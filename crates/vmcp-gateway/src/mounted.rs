//! A mounted server: its replicas (each an upstream connection kept alive by a supervisor, with
//! its own circuit breaker, load counters and health), how requests are spread over them, the
//! names it publishes, and its counters.
//!
//! Choosing a replica (`choose`) is on every routed request's path: it takes no lock beyond the
//! replica slots' uncontended read locks and allocates nothing. A replica is a candidate when
//! its process is ready, its health is not unhealthy and its breaker is not open; the server's
//! balancer (`resilience::Balancer`) picks among the candidates, or session affinity does for
//! stateful requests.
//!
//! Supervision and health probing live in `mounted/supervise.rs`.

mod supervise;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use vmcp_config::{ServerSpec, Transport};
use vmcp_protocol::{ErrorCode, RpcError};

use crate::catalog::ServerItems;
use crate::gateway::Gateway;
use crate::resilience::{
    Balancer, Breaker, Health, HealthTracker, Permit, ReplicaLoad, Resilience, State as BreakerState,
};
use crate::stats::Stats;
use crate::upstream::{Status, Upstream};

/// One running copy of a server.
pub struct Replica {
    pub index: usize,
    pub spec: Arc<ServerSpec>,
    slot: RwLock<Arc<Upstream>>,
    pub restarts: AtomicU32,
    /// Set while the supervisor sees repeated exits.
    pub crash_loop: AtomicBool,
    pub breaker: Breaker,
    /// Requests routed to this replica and not yet answered.
    in_flight: AtomicU32,
    /// Smoothed latency of answered requests, in microseconds (0: no sample yet).
    ewma_us: AtomicU64,
    /// Mirrors `health` for the lock-free routing check.
    unhealthy: AtomicBool,
    health: Mutex<HealthTracker>,
}

impl Replica {
    pub fn up(&self) -> Arc<Upstream> {
        self.slot.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn swap(&self, up: Arc<Upstream>) {
        *self.slot.write().unwrap_or_else(|p| p.into_inner()) = up;
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn ewma(&self) -> Duration {
        Duration::from_micros(self.ewma_us.load(Ordering::Relaxed))
    }

    /// Whether routing may send it a request now.
    fn candidate(&self, now: Instant) -> Option<ReplicaLoad> {
        let ready = self.slot.read().unwrap_or_else(|p| p.into_inner()).is_ready();
        if !ready || self.unhealthy.load(Ordering::Relaxed) || self.breaker.state(now) == BreakerState::Open {
            return None;
        }
        Some(ReplicaLoad { in_flight: self.in_flight(), ewma_us: self.ewma_us.load(Ordering::Relaxed) })
    }

    /// Its health: the process, the crash-loop flag, the breaker, then the probes.
    pub fn health(&self, now: Instant) -> Health {
        if !self.up().is_ready() || self.crash_loop.load(Ordering::Relaxed) {
            return Health::Unhealthy;
        }
        match self.breaker.state(now) {
            BreakerState::Open => Health::Unhealthy,
            BreakerState::HalfOpen => Health::Degraded,
            BreakerState::Closed => self.health.lock().unwrap_or_else(|p| p.into_inner()).state(),
        }
    }

    fn record_probe(&self, probe: crate::resilience::Probe) -> Health {
        let state = self.health.lock().unwrap_or_else(|p| p.into_inner()).record(probe);
        self.unhealthy.store(state == Health::Unhealthy, Ordering::Relaxed);
        state
    }

    fn reset_health(&self) {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).reset();
        self.unhealthy.store(false, Ordering::Relaxed);
    }

    /// Fold an answered request's latency into the EWMA (weight 1/5 for the new sample).
    fn observe(&self, latency: Duration) {
        let sample = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        let old = self.ewma_us.load(Ordering::Relaxed);
        let new = if old == 0 { sample } else { (old * 4 + sample) / 5 };
        self.ewma_us.store(new.max(1), Ordering::Relaxed);
    }
}

/// A server as the gateway holds it.
pub struct Mounted {
    pub spec: Arc<ServerSpec>,
    pub replicas: Vec<Replica>,
    pub items: Mutex<ServerItems>,
    pub stats: Stats,
    pub resilience: Resilience,
    balancer: Balancer,
    stop: CancellationToken,
}

/// How many replicas `spec` runs.
pub fn replica_count(spec: &ServerSpec) -> usize {
    replica_specs(spec).len()
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

/// Start one replica's connection, at mount or restart; a modern backend's list changes are
/// listened to from then on.
async fn start_upstream(spec: Arc<ServerSpec>, gw: &Gateway) -> Arc<Upstream> {
    let up = Upstream::start(spec, &gw.opts).await;
    if up.era() == Some(vmcp_protocol::Era::Modern) {
        tokio::spawn(crate::listen::upstream_list_changes(up.clone()));
    }
    up
}

/// A replica chosen for one request: its upstream and breaker permit, and a guard that keeps
/// its in-flight count.
pub struct Lease<'a> {
    pub index: usize,
    pub up: Arc<Upstream>,
    permit: Option<Permit<'a>>,
    replica: &'a Replica,
    started: Instant,
}

impl Lease<'_> {
    /// The replica answered (a backend error is an answer too).
    pub fn answered(mut self) {
        let now = Instant::now();
        self.replica.observe(now - self.started);
        if let Some(p) = self.permit.take() {
            p.success(now);
        }
    }

    /// The replica failed to answer (timeout, closed, gone).
    pub fn failed(mut self) {
        if let Some(p) = self.permit.take() {
            p.failure(Instant::now());
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.replica.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Mounted {
    /// Start every replica in parallel and their supervisors.
    pub async fn start(gw: &Arc<Gateway>, spec: Arc<ServerSpec>) -> Arc<Mounted> {
        let specs = replica_specs(&spec);
        let (resilience, invalid) = match Resilience::from_value(spec.resilience.as_ref(), specs.len()) {
            Ok(r) => (r, None),
            Err(e) => {
                tracing::error!(server = %spec.id, "not started: {e}");
                (
                    Resilience::from_value(None, specs.len()).unwrap_or_else(|_| unreachable_defaults()),
                    Some(e),
                )
            }
        };
        let ups = match &invalid {
            None => futures_util::future::join_all(specs.iter().map(|s| start_upstream(s.clone(), gw))).await,
            Some(e) => specs.iter().map(|s| Upstream::failed(s.clone(), e.to_string(), &gw.opts)).collect(),
        };
        let replicas: Vec<Replica> = specs
            .into_iter()
            .zip(ups)
            .enumerate()
            .map(|(index, (spec, up))| Replica {
                index,
                spec,
                slot: RwLock::new(up),
                restarts: AtomicU32::new(0),
                crash_loop: AtomicBool::new(false),
                breaker: Breaker::new(resilience.breaker),
                in_flight: AtomicU32::new(0),
                ewma_us: AtomicU64::new(0),
                unhealthy: AtomicBool::new(false),
                health: Mutex::new(HealthTracker::new(resilience.health)),
            })
            .collect();
        let balancer = resilience.balancer();
        let m = Arc::new(Mounted {
            spec,
            replicas,
            items: Mutex::default(),
            stats: Stats::default(),
            resilience,
            balancer,
            stop: CancellationToken::new(),
        });
        let up = m.up();
        if up.is_ready() {
            *m.items.lock().unwrap_or_else(|p| p.into_inner()) = crate::lists::fetch_items(&up).await;
        }
        if invalid.is_none() {
            for i in 0..m.replicas.len() {
                tokio::spawn(supervise::supervise(Arc::downgrade(gw), m.clone(), i));
                tokio::spawn(supervise::probe(m.clone(), i));
            }
        }
        m
    }

    /// The replica to ask for things every replica answers alike (capabilities, lists): the
    /// first ready one.
    pub fn up(&self) -> Arc<Upstream> {
        self.replicas.iter().map(Replica::up).find(|u| u.is_ready()).unwrap_or_else(|| self.replicas[0].up())
    }

    /// Choose a replica for one request. `affinity`: the session key of a stateful request;
    /// `tried`: replicas already tried (bit `i` for replica `i`), for failover.
    pub fn choose(&self, affinity: Option<u64>, tried: u64) -> Result<Lease<'_>, RpcError> {
        let now = Instant::now();
        let mut skip = tried;
        for _ in 0..self.replicas.len() {
            let view = |i: usize| {
                if i < 64 && skip & (1 << i) != 0 { None } else { self.replicas[i].candidate(now) }
            };
            let picked = match affinity {
                Some(key) => self.balancer.pick_affine(key, view),
                None => self.balancer.pick(view),
            };
            let Some(i) = picked else { break };
            let replica = &self.replicas[i];
            match replica.breaker.try_acquire(now) {
                Ok(permit) => {
                    replica.in_flight.fetch_add(1, Ordering::Relaxed);
                    return Ok(Lease {
                        index: i,
                        up: replica.up(),
                        permit: Some(permit),
                        replica,
                        started: now,
                    });
                }
                // Half-open with its probe slots taken: try another replica.
                Err(_) => skip |= 1 << i.min(63),
            }
        }
        self.stats.rejected();
        Err(self.no_replica(now))
    }

    /// The replica of a session's stateful requests (`affinity`: its key), by the balancer's
    /// rule, without taking it: among the replicas available now, else (none is) among all, as
    /// when they all are again.
    pub(crate) fn affine(&self, affinity: u64) -> usize {
        let now = Instant::now();
        self.balancer
            .pick_affine(affinity, |i| self.replicas[i].candidate(now))
            .or_else(|| self.balancer.pick_affine(affinity, |_| Some(ReplicaLoad::default())))
            .unwrap_or(0)
    }

    /// Why no replica can take a request: 2001 for a single server that is down or whose breaker
    /// is open, 2003 when every replica of a replicated server is.
    fn no_replica(&self, now: Instant) -> RpcError {
        let why: Vec<serde_json::Value> = self
            .replicas
            .iter()
            .map(|r| {
                let up = r.up();
                let breaker = r.breaker.snapshot(now);
                serde_json::json!({
                    "replica": r.index,
                    "status": up.status().label(),
                    "breaker": breaker.state.as_str(),
                    "health": r.health(now).as_str(),
                })
            })
            .collect();
        let data = serde_json::json!({ "server": self.spec.id, "replicas": why });
        if self.replicas.len() > 1 {
            return RpcError::new(
                ErrorCode::AllServersDown,
                format!("all {} replicas of server `{}` are down", self.replicas.len(), self.spec.id),
            )
            .with_data(data);
        }
        let r = &self.replicas[0];
        let message = match r.breaker.try_acquire(now) {
            Err(open) if r.up().is_ready() => format!(
                "server `{}`: circuit breaker open (retry in {} ms)",
                self.spec.id,
                open.retry_after.as_millis()
            ),
            _ => match r.up().status() {
                Status::Failed(why) | Status::Exited(why) => {
                    format!("server `{}` is down: {why}", self.spec.id)
                }
                s if r.unhealthy.load(Ordering::Relaxed) && s == Status::Ready => {
                    format!("server `{}` is unhealthy (failing health probes)", self.spec.id)
                }
                s => format!("server `{}` is {}", self.spec.id, s.label()),
            },
        };
        RpcError::new(ErrorCode::ServerUnavailable, message).with_data(data)
    }

    pub fn is_ready(&self) -> bool {
        self.replicas.iter().any(|r| r.up().is_ready())
    }

    /// The server's health: its replicas' combined.
    pub fn health(&self) -> Health {
        let now = Instant::now();
        Health::combine(self.replicas.iter().map(|r| r.health(now)))
    }

    pub fn crash_loop(&self) -> bool {
        self.replicas.iter().any(|r| r.crash_loop.load(Ordering::Relaxed))
    }

    /// Stop supervising and stop every replica.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        futures_util::future::join_all(self.replicas.iter().map(|r| async move { r.up().shutdown().await }))
            .await;
    }
}

/// The defaults always validate; this only satisfies the type.
fn unreachable_defaults() -> Resilience {
    Resilience {
        strategy: Default::default(),
        weights: vec![1],
        breaker: Default::default(),
        health: Default::default(),
        restart: Default::default(),
        retry_tools: Default::default(),
    }
}
