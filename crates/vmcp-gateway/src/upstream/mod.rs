//! Connections to backend servers: one `Upstream` per mounted server.
//!
//! An upstream owns its transport (today: a stdio child process, see `stdio`), the table of
//! requests it has in flight (`pending`), and what the handshake learned (era, version,
//! capabilities). What the backend sends on its own (notifications, server-to-client requests,
//! its exit) goes to an [`Events`] sink that the gateway implements; upstreams know nothing of
//! client sessions.

mod child;
mod handshake;
mod http;
mod pending;
pub mod reaper;
mod sse;
mod stdio;
mod ws;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use vmcp_config::ServerSpec;
use vmcp_protocol::{Era, Message, ProtocolVersion, message};

pub use child::{BASE_ENV, child_env};
pub use handshake::Handshake;
pub use pending::Origin;
use pending::Pending;

/// What a backend does on its own, delivered by the upstream's reader task.
pub trait Events: Send + Sync + 'static {
    fn notification(&self, upstream: &Arc<Upstream>, msg: Message);
    fn request(&self, upstream: &Arc<Upstream>, msg: Message);
    fn status_changed(&self, upstream: &Arc<Upstream>);
}

/// Where a backend is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Starting,
    Ready,
    /// It never became ready (spawn failure, handshake error or timeout).
    Failed(String),
    /// It was ready and then went away.
    Exited(String),
    Stopped,
}

impl Status {
    pub fn label(&self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Ready => "ready",
            Status::Failed(_) => "failed",
            Status::Exited(_) => "exited",
            Status::Stopped => "stopped",
        }
    }
}

/// Why a request to a backend did not get an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("server `{0}` is not available ({1})")]
    Unavailable(String, String),
    #[error("server `{0}` closed the connection before answering")]
    Closed(String),
    #[error("server `{0}` did not answer within {1:?}")]
    Timeout(String, Duration),
}

/// Settings shared by all upstreams.
#[derive(Clone)]
pub struct Options {
    pub max_message_size: usize,
    pub startup_timeout: Duration,
    pub shutdown_grace: Duration,
    pub events: Arc<dyn Events>,
}

/// A connection to one backend server.
pub struct Upstream {
    pub spec: Arc<ServerSpec>,
    pending: Pending,
    /// Lines for the transport's writer (for Streamable HTTP: notifications and responses only).
    tx: mpsc::Sender<String>,
    status: watch::Sender<Status>,
    /// Set once, when the handshake succeeds: read on every request without a lock.
    handshake: std::sync::OnceLock<Arc<Handshake>>,
    stop: CancellationToken,
    /// Becomes `true` once the process is reaped.
    gone: watch::Sender<bool>,
    /// The last line the backend wrote to stderr, to explain a failure.
    last_stderr: Mutex<Option<String>>,
    /// The child's process id (stdio), 0 otherwise.
    pid: std::sync::atomic::AtomicU32,
    /// Streamable HTTP servers: requests are POSTed from the task awaiting them
    /// (`http::Link::post_request`); everything else goes through `tx`.
    http: std::sync::OnceLock<Arc<http::Link>>,
}

/// Extra HTTP headers of one request.
pub type ParamHeaders = Vec<(axum::http::HeaderName, axum::http::HeaderValue)>;

/// What the caller already read from a request it routed, so that the transport does not read
/// the params again: the HTTP transport's `MCP-Protocol-Version`, `Mcp-Name` and SEP-2243
/// `Mcp-Param-*` headers come from it. Other transports ignore it.
pub struct Known {
    /// The params carry the modern `_meta` (the backend is modern).
    pub modern: bool,
    /// What the request names, as the backend knows it: a tool or prompt name, a resource URI.
    pub name: String,
    pub headers: ParamHeaders,
}

impl Upstream {
    /// Connect (spawn the process), then run the handshake. Always returns an upstream; a
    /// failure shows in its status so that `vmcp list` can report it.
    pub async fn start(spec: Arc<ServerSpec>, opts: &Options) -> Arc<Upstream> {
        let (up, rx) = Self::new(spec);
        let connected = match &up.spec.transport {
            vmcp_config::Transport::Stdio { .. } => stdio::connect(&up, rx, opts),
            vmcp_config::Transport::StreamableHttp { .. } => {
                http::connect(&up, rx, opts).map(|link| drop(up.http.set(link)))
            }
            vmcp_config::Transport::Sse { .. } => sse::connect(&up, rx, opts),
            vmcp_config::Transport::WebSocket { .. } => ws::connect(&up, rx, opts),
        };
        if let Err(reason) = connected {
            tracing::warn!(server = %up.spec.id, "server failed to start: {reason}");
            up.set_status(Status::Failed(reason), opts);
            up.gone.send_replace(true);
            return up;
        }
        match tokio::time::timeout(opts.startup_timeout, handshake::run(&up, opts)).await {
            Ok(Ok(hs)) => {
                tracing::info!(server = %up.spec.id, era = ?hs.era, version = hs.version.as_str(), "server ready");
                let _ = up.handshake.set(Arc::new(hs));
                up.set_status(Status::Ready, opts);
            }
            Ok(Err(reason)) => up.fail(reason, opts),
            Err(_) => up.fail(format!("no handshake within {:?}", opts.startup_timeout), opts),
        }
        up
    }

    fn new(spec: Arc<ServerSpec>) -> (Arc<Upstream>, mpsc::Receiver<String>) {
        let (tx, rx) = mpsc::channel(256);
        let up = Arc::new(Upstream {
            spec,
            pending: Pending::default(),
            tx,
            status: watch::channel(Status::Starting).0,
            handshake: std::sync::OnceLock::new(),
            stop: CancellationToken::new(),
            gone: watch::channel(false).0,
            last_stderr: Mutex::new(None),
            pid: std::sync::atomic::AtomicU32::new(0),
            http: std::sync::OnceLock::new(),
        });
        (up, rx)
    }

    /// An upstream that was never started (e.g. its configuration is invalid), failed for `reason`.
    pub fn failed(spec: Arc<ServerSpec>, reason: String, opts: &Options) -> Arc<Upstream> {
        let (up, _rx) = Self::new(spec);
        up.pending.fail_all();
        up.set_status(Status::Failed(reason), opts);
        up.gone.send_replace(true);
        up
    }

    /// The child's process id, for stdio servers.
    pub fn pid(&self) -> Option<u32> {
        Some(self.pid.load(std::sync::atomic::Ordering::Relaxed)).filter(|&p| p != 0)
    }

    fn fail(self: &Arc<Self>, reason: String, opts: &Options) {
        // A backend that exited during the handshake already has its reason recorded.
        if matches!(*self.status.borrow(), Status::Starting) {
            tracing::warn!(server = %self.spec.id, "server failed to start: {reason}");
            self.set_status(Status::Failed(reason), opts);
        }
        self.stop.cancel();
    }

    fn set_status(self: &Arc<Self>, status: Status, opts: &Options) {
        self.status.send_replace(status);
        opts.events.status_changed(self);
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }

    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Ready, and its connection not already gone (the status follows a moment later).
    pub fn is_ready(&self) -> bool {
        matches!(*self.status.borrow(), Status::Ready) && !self.pending.is_closed()
    }

    /// What the handshake learned; `None` until ready.
    pub fn handshake(&self) -> Option<Arc<Handshake>> {
        self.handshake.get().cloned()
    }

    /// The backend's era; `None` until ready. No lock, no reference count: read per request.
    pub fn era(&self) -> Option<Era> {
        self.handshake.get().map(|h| h.era)
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Allocate the id of the next request (callers that must put it in params, e.g. as a progress token).
    pub fn next_id(&self) -> u64 {
        self.pending.next_id()
    }

    /// The backend ended one of vMCP's requests without answering it (a modern server closing a
    /// `subscriptions/listen`): its waiter sees the connection as closed.
    pub fn end_request(&self, id: u64) {
        self.pending.remove(id);
    }

    pub fn origin(&self, id: u64) -> Option<Origin> {
        self.pending.origin(id)
    }

    pub fn latest_origin(&self) -> Option<Origin> {
        self.pending.latest_origin()
    }

    /// Send a request with the given id and wait for its answer. Dropping the future cancels the
    /// request at the backend (`notifications/cancelled`).
    pub async fn request(
        &self,
        id: u64,
        method: &str,
        params: Option<&str>,
        origin: Option<Origin>,
        timeout: Duration,
    ) -> Result<Message, UpstreamError> {
        self.send_request(id, method, params, origin, timeout, None).await
    }

    /// `request` of a routed request, with what routing already read from it (`Known`).
    pub async fn request_known(
        &self,
        id: u64,
        method: &str,
        params: Option<&str>,
        origin: Option<Origin>,
        timeout: Duration,
        known: Known,
    ) -> Result<Message, UpstreamError> {
        self.send_request(id, method, params, origin, timeout, Some(known)).await
    }

    async fn send_request(
        &self,
        id: u64,
        method: &str,
        params: Option<&str>,
        origin: Option<Origin>,
        timeout: Duration,
        known: Option<Known>,
    ) -> Result<Message, UpstreamError> {
        let mut line = message::request(&id.to_string(), method, params);
        line.push('\n');
        // The connection may have gone between the caller's readiness check and now: a closed
        // table refuses the entry, so nothing waits for an answer that cannot come.
        let Some(rx) = self.pending.insert(id, origin) else { return Err(self.unavailable()) };
        let mut guard = InFlight { up: self, id, armed: true };
        let sent = async {
            match self.http.get() {
                Some(link) => link.spawn_request(id, method, params, line, known),
                None => self.tx.send(line).await.map_err(|_| ())?,
            }
            Ok(rx.await)
        };
        let outcome = tokio::time::timeout(timeout, sent).await;
        // From here on this function settles the request itself.
        guard.armed = false;
        match outcome {
            Ok(Ok(Ok(msg))) => Ok(msg),
            // The connection went before answering.
            Ok(Ok(Err(_))) => Err(match self.status() {
                Status::Ready | Status::Starting => UpstreamError::Closed(self.spec.id.clone()),
                _ => self.unavailable(),
            }),
            // The transport is gone: the line was never sent.
            Ok(Err(())) => {
                self.pending.remove(id);
                Err(self.unavailable())
            }
            Err(_) => {
                if self.pending.remove(id) {
                    self.cancel(id, "request timed out");
                }
                Err(UpstreamError::Timeout(self.spec.id.clone(), timeout))
            }
        }
    }

    fn unavailable(&self) -> UpstreamError {
        let status = self.status();
        let why = match &status {
            Status::Failed(r) | Status::Exited(r) => r.clone(),
            other => other.label().to_owned(),
        };
        UpstreamError::Unavailable(self.spec.id.clone(), why)
    }

    /// Tell the backend to stop working on request `id`.
    fn cancel(&self, id: u64, reason: &str) {
        let params = format!(r#"{{"requestId":{id},"reason":{}}}"#, vmcp_protocol::splice::quote(reason));
        let mut line = message::notification("notifications/cancelled", Some(&params));
        line.push('\n');
        let _ = self.tx.try_send(line);
    }

    /// Send a notification.
    pub async fn notify(&self, method: &str, params: Option<&str>) {
        let mut line = message::notification(method, params);
        line.push('\n');
        let _ = self.tx.send(line).await;
    }

    /// Answer a request the backend sent us; `body` is `"result":{...}` or `"error":{...}` text.
    pub async fn respond(&self, id: &RawValue, result: Result<&str, &str>) {
        let mut line = match result {
            Ok(r) => message::response(id.get(), r),
            Err(e) => message::error_response(Some(id.get()), e),
        };
        line.push('\n');
        let _ = self.tx.send(line).await;
    }

    /// Orderly stop; returns when the process is gone.
    pub async fn shutdown(&self) {
        let mut gone = self.gone.subscribe();
        self.stop.cancel();
        let _ = gone.wait_for(|g| *g).await;
    }

    /// Resolves when the connection is gone for good (process reaped, transport closed).
    pub async fn wait_gone(&self) {
        let mut gone = self.gone.subscribe();
        let _ = gone.wait_for(|g| *g).await;
    }

    fn last_stderr(&self) -> Option<String> {
        self.last_stderr.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Negotiated protocol version, for logs and `vmcp info`.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.handshake.get().map(|h| h.version)
    }
}

/// Hand a message from the backend to its waiter or to the events sink.
pub(super) fn deliver(up: &Arc<Upstream>, msg: Message, opts: &Options) {
    match msg.kind() {
        vmcp_protocol::MessageKind::Response => match msg.id_u64() {
            Some(id) => {
                if !up.pending.complete(id, msg) {
                    tracing::debug!(server = %up.spec.id, id, "late or unknown response dropped");
                }
            }
            None => tracing::warn!(server = %up.spec.id, "response with an id vMCP never sent; dropped"),
        },
        vmcp_protocol::MessageKind::Notification => opts.events.notification(up, msg),
        vmcp_protocol::MessageKind::Request => opts.events.request(up, msg),
    }
}

/// A network transport ended: fail what is in flight, record why, mark the connection gone.
pub(super) fn transport_ended(up: &Arc<Upstream>, reason: Option<String>, opts: &Options) {
    up.pending.fail_all();
    let status = match (reason, up.status()) {
        (_, Status::Failed(r)) => Status::Failed(r),
        (None, _) => Status::Stopped,
        (Some(r), Status::Starting) => Status::Failed(r),
        (Some(r), _) => {
            tracing::warn!(server = %up.spec.id, "{r}");
            Status::Exited(r)
        }
    };
    up.set_status(status, opts);
    up.gone.send_replace(true);
}

/// Headers configured for a network upstream, with `${VAR}` expanded from the gateway's environment
/// or the secrets file (`vmcp_config::secrets`), checked once when the transport connects.
pub(super) fn configured_headers(up: &Upstream) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (k, v) in &up.spec.headers {
        let v = vmcp_config::expand_env(v, vmcp_config::secrets::lookup)?;
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("invalid header name `{k}`"))?;
        let value = HeaderValue::from_str(&v).map_err(|_| format!("invalid value for header `{k}`"))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// reqwest's client for a network upstream (legacy SSE, or Streamable HTTP behind a proxy):
/// pooled keep-alive connections over rustls, honouring the environment's proxy variables.
pub(super) fn http_client(redirects: reqwest::redirect::Policy) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(redirects)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// Return once the tasks that are ready to run now have run: a writer awaits this before it
/// flushes, so that the lines those tasks are about to queue go out in the same write (one
/// write, one wake-up of the reader at the other end, for a burst of messages).
///
/// Not `tokio::task::yield_now`: that one also waits for the runtime to poll its IO driver, one
/// more `epoll_wait` per flush even with nothing else to run (measured: two more syscalls per
/// call at c=1). A task that wakes itself goes to the back of the run queue; with nothing else
/// ready it runs again at once.
pub(crate) async fn after_ready_tasks() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
}

/// Cancels a request at the backend if its waiter goes away before the answer.
struct InFlight<'a> {
    up: &'a Upstream,
    id: u64,
    armed: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.armed && self.up.pending.remove(self.id) {
            self.up.cancel(self.id, "cancelled by the client");
        }
    }
}
