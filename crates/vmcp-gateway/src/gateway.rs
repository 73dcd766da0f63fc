//! The gateway's state: the mounted servers, the routing catalog, the connected sessions.
//!
//! Startup mounts every configured server in parallel; each one's lists are fetched for the
//! catalog as soon as it is ready. A `list_changed` from a backend refreshes that server's part
//! and swaps in a new catalog snapshot; readers never wait on a refresh.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use vmcp_config::{GatewayConfig, ServerSpec};
use vmcp_protocol::{splice, version::MODERN};

use crate::catalog::{Catalog, Entry, ServerItems};
pub use crate::mounted::Mounted;
use crate::policy::Caller;
use crate::session::Session;
use crate::upstream;

/// An immutable view of what is mounted, with its routing index.
#[derive(Default)]
pub struct Mounts {
    pub servers: Vec<Arc<Mounted>>,
    pub catalog: Catalog,
}

impl Mounts {
    pub fn get(&self, id: &str) -> Option<&Arc<Mounted>> {
        self.servers.iter().find(|m| m.spec.id == id)
    }
}

/// The running gateway.
pub struct Gateway {
    pub cfg: Arc<GatewayConfig>,
    mounts: RwLock<Arc<Mounts>>,
    sessions: Mutex<HashMap<u64, Weak<Session>>>,
    next_session: AtomicU64,
    pub(crate) opts: upstream::Options,
    ready: watch::Sender<bool>,
    rebuild: tokio::sync::Mutex<()>,
    /// Resource subscriptions held at backends, per replica (see `subscriptions.rs`).
    pub(crate) subscriptions: Mutex<crate::subscriptions::Held>,
    stop: tokio_util::sync::CancellationToken,
    pub started_at: Instant,
    /// Authentication of network callers, set once at start (absent: loopback-only fronts).
    auth: std::sync::OnceLock<Arc<crate::front::http::auth::Auth>>,
    /// Calls of legacy backends waiting for a modern client's input (`input_bridge`).
    pub(crate) parked: crate::input_bridge::ParkedCalls,
}

impl Gateway {
    /// Create the gateway and start mounting `servers` in the background.
    pub fn start(cfg: GatewayConfig, servers: Vec<ServerSpec>) -> Arc<Gateway> {
        let cfg = Arc::new(cfg);
        let gw = Arc::new_cyclic(|weak: &Weak<Gateway>| Gateway {
            opts: upstream::Options {
                max_message_size: cfg.max_message_size,
                startup_timeout: Duration::from_secs_f64(cfg.startup_timeout_secs),
                shutdown_grace: Duration::from_secs_f64(cfg.shutdown_grace_secs),
                events: Arc::new(crate::relay::Relay(weak.clone())),
            },
            cfg: cfg.clone(),
            mounts: RwLock::default(),
            sessions: Mutex::default(),
            next_session: AtomicU64::new(0),
            ready: watch::channel(false).0,
            rebuild: tokio::sync::Mutex::new(()),
            subscriptions: Mutex::default(),
            stop: tokio_util::sync::CancellationToken::new(),
            started_at: Instant::now(),
            auth: std::sync::OnceLock::new(),
            parked: Default::default(),
        });
        let this = gw.clone();
        tokio::spawn(async move { this.mount_all(servers).await });
        gw
    }

    async fn mount_all(self: Arc<Self>, servers: Vec<ServerSpec>) {
        let order: Vec<String> = servers.iter().map(|s| s.id.clone()).collect();
        let mut set = tokio::task::JoinSet::new();
        for spec in servers {
            let gw = self.clone();
            set.spawn(async move { gw.mount_one(Arc::new(spec)).await });
        }
        let mut mounted = Vec::new();
        while let Some(done) = set.join_next().await {
            if let Ok(m) = done {
                mounted.push(m);
            }
        }
        mounted.sort_by_key(|m| order.iter().position(|id| *id == m.spec.id));
        {
            let _guard = self.rebuild.lock().await;
            let next = Self::build(mounted);
            *self.mounts.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        }
        let ready = self.mounts().servers.iter().filter(|m| m.up().is_ready()).count();
        tracing::info!("{ready} of {} servers ready", order.len());
        self.ready.send_replace(true);
    }

    async fn mount_one(self: Arc<Self>, spec: Arc<ServerSpec>) -> Arc<Mounted> {
        Mounted::start(&self, spec).await
    }

    fn build(servers: Vec<Arc<Mounted>>) -> Mounts {
        let items: Vec<ServerItems> =
            servers.iter().map(|m| m.items.lock().unwrap_or_else(|p| p.into_inner()).clone()).collect();
        let entries: Vec<Entry<'_>> = servers
            .iter()
            .zip(&items)
            .map(|(m, items)| Entry { id: &m.spec.id, naming: &m.spec.naming, items })
            .collect();
        let catalog = Catalog::build(&entries);
        Mounts { servers, catalog }
    }

    /// Make the mounted set match `wanted` while running: unchanged servers keep running, new
    /// and changed ones start (in parallel), removed and changed ones stop after the swap.
    /// Every session is told the lists changed.
    pub async fn apply(self: &Arc<Self>, wanted: Vec<ServerSpec>) {
        let current = self.mounts();
        let keep = |spec: &ServerSpec| current.get(&spec.id).filter(|m| *m.spec == *spec).cloned();
        let mut set = tokio::task::JoinSet::new();
        for spec in wanted.iter().filter(|s| keep(s).is_none()) {
            let gw = self.clone();
            let spec = Arc::new(spec.clone());
            tracing::info!(server = %spec.id, "mounting");
            set.spawn(async move { gw.mount_one(spec).await });
        }
        let mut started = Vec::new();
        while let Some(done) = set.join_next().await {
            if let Ok(m) = done {
                started.push(m);
            }
        }
        let next: Vec<Arc<Mounted>> = wanted
            .iter()
            .filter_map(|spec| keep(spec).or_else(|| started.iter().find(|m| m.spec.id == spec.id).cloned()))
            .collect();
        let removed: Vec<Arc<Mounted>> =
            current.servers.iter().filter(|m| !next.iter().any(|n| Arc::ptr_eq(n, m))).cloned().collect();
        if started.is_empty() && removed.is_empty() {
            return;
        }
        // Subscriptions held at a replaced server are made at its successor before the swap.
        let leaving: Vec<_> = removed
            .iter()
            .map(|m| (m.clone(), next.iter().find(|n| n.spec.id == m.spec.id).cloned()))
            .collect();
        crate::subscriptions::remount(self, &self.rebuild, &leaving, || {
            *self.mounts.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Self::build(next));
        })
        .await;
        for m in &removed {
            tracing::info!(server = %m.spec.id, "unmounting");
            m.shutdown().await;
        }
        // Each client in its era: a modern one only on listen requests that asked for it.
        for method in crate::listen::LIST_CHANGES {
            for s in self.sessions() {
                s.notify(method, None, None);
            }
        }
    }

    /// Re-read one server's lists and swap in a new catalog.
    pub async fn refresh(&self, server: &str) {
        let Some(m) = self.mounts().get(server).cloned() else { return };
        if !m.up().is_ready() {
            return;
        }
        let items = crate::lists::fetch_items(&m.up()).await;
        *m.items.lock().unwrap_or_else(|p| p.into_inner()) = items;
        let _guard = self.rebuild.lock().await;
        let servers = self.mounts().servers.clone();
        let next = Self::build(servers);
        *self.mounts.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
    }

    /// Require authentication on the network fronts (call before serving them).
    pub fn set_auth(&self, auth: Arc<crate::front::http::auth::Auth>) {
        let _ = self.auth.set(auth);
    }

    pub fn auth(&self) -> Option<&Arc<crate::front::http::auth::Auth>> {
        self.auth.get()
    }

    /// The current snapshot (cheap: one `Arc` clone).
    pub fn mounts(&self) -> Arc<Mounts> {
        self.mounts.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Wait until the first mount attempt of every server has finished (or `limit` passed).
    pub async fn wait_ready(&self, limit: Duration) {
        // Every request asks; once ready, a look at the value (no timer, no subscription).
        if *self.ready.borrow() {
            return;
        }
        let mut rx = self.ready.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|r| *r)).await;
    }

    pub fn open_session(&self, caller: Caller, out: tokio::sync::mpsc::Sender<String>) -> Arc<Session> {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed) + 1;
        let session = Arc::new(Session::new(id, caller, out));
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).insert(id, Arc::downgrade(&session));
        session
    }

    pub fn close_session(&self, session: &Session) {
        session.cancel_all();
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&session.id);
        let mounts = self.mounts();
        for uri in session.subscriptions() {
            if let Ok(s) = crate::route::resource_owner(&mounts, session, &uri) {
                crate::subscriptions::release(self, session.id, &mounts.servers[s], &uri);
            }
        }
    }

    pub fn session(&self, id: u64) -> Option<Arc<Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(&id).and_then(Weak::upgrade)
    }

    pub fn sessions(&self) -> Vec<Arc<Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).values().filter_map(Weak::upgrade).collect()
    }

    /// Resolves when the gateway starts shutting down (ends long-lived requests gracefully).
    pub async fn stopping(&self) {
        self.stop.cancelled().await;
    }

    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Stop every server (stdin close, SIGTERM, SIGKILL) and wait for them.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let mounts = self.mounts();
        let mut set = tokio::task::JoinSet::new();
        for m in &mounts.servers {
            let m = m.clone();
            set.spawn(async move { m.shutdown().await });
        }
        while set.join_next().await.is_some() {}
    }

    /// The `initialize` / `server/discover` capabilities: what the mounted servers offer,
    /// merged. Not narrowed per persona: a persona granted a server later must be able to use
    /// what it offers without reconnecting (a legacy client learns capabilities once), and a
    /// capability names no server; what a persona may see is decided by the lists.
    pub fn capabilities(&self) -> String {
        crate::capabilities::merged(&self.mounts())
    }

    /// Backends' instructions, each under its server's name: only of servers the caller may use
    /// (they describe what a server offers).
    pub fn instructions(&self, caller: &Caller) -> Option<String> {
        let parts: Vec<String> = self
            .mounts()
            .servers
            .iter()
            .filter(|m| crate::policy::Policy::may_reach(caller, &m.spec.id))
            .filter_map(|m| {
                let hs = m.up().handshake()?;
                let text = hs.instructions.as_deref()?.trim();
                (!text.is_empty()).then(|| format!("## {}\n{}", m.spec.id, text))
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("\n\n"))
    }

    pub fn server_info() -> String {
        format!(r#"{{"name":"vmcp","title":"vMCP gateway","version":"{}"}}"#, env!("CARGO_PKG_VERSION"))
    }

    pub fn modern_version() -> &'static str {
        MODERN
    }

    pub fn quote(s: &str) -> String {
        splice::quote(s)
    }
}
