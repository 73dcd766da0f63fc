//! One client connection's shared state: the outgoing queue and its single writer task, the
//! requests in flight (for cancellation), server->client requests awaiting their answers, the
//! log level, and notification subscriptions.
//!
//! Invariant: stdout carries only what goes through this queue, one JSON message per line; the
//! writer is the only task that touches it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot, watch};

use super::level::Level;
use super::registry::Registry;
use super::server::Config;
use super::subscriptions::{Change, Subscriptions};
use super::wire::{self, Id, RpcError};

/// Bound on queued outgoing messages.
pub const OUT_QUEUE: usize = 1024;

/// One line for the writer.
#[derive(Debug)]
pub struct Outgoing {
    pub line: String,
    /// A response (gets the configured preamble line first).
    pub response: bool,
}

/// The answer a server->client request gets.
pub type Reply = Result<Value, RpcError>;

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connection's state, shared by the read loop and every handler.
pub struct Conn {
    pub registry: Arc<Registry>,
    pub config: Arc<Config>,
    pub subs: Subscriptions,
    out: Mutex<Option<mpsc::Sender<Outgoing>>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    inflight: Mutex<HashMap<String, watch::Sender<bool>>>,
    log_level: Mutex<Option<Level>>,
    /// What a legacy client declared in `initialize`.
    client_capabilities: Mutex<Value>,
    next_id: AtomicU64,
}

impl Conn {
    pub fn new(registry: Arc<Registry>, config: Arc<Config>, out: mpsc::Sender<Outgoing>) -> Self {
        Self {
            registry,
            config,
            subs: Subscriptions::default(),
            out: Mutex::new(Some(out)),
            pending: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            log_level: Mutex::new(None),
            client_capabilities: Mutex::new(Value::Object(Default::default())),
            next_id: AtomicU64::new(1),
        }
    }

    async fn push(&self, line: String, response: bool) {
        let tx = lock(&self.out).clone();
        if let Some(tx) = tx {
            let _ = tx.send(Outgoing { line, response }).await;
        }
    }

    /// Queue a response line.
    pub async fn respond(&self, line: String) {
        self.push(line, true).await;
    }

    /// Queue any other line (notification or request).
    pub async fn send(&self, line: String) {
        self.push(line, false).await;
    }

    pub async fn notify(&self, method: &str, params: Option<&Value>) {
        self.send(wire::notification(method, params)).await;
    }

    /// Send `change` to whoever subscribed to it.
    pub async fn broadcast(&self, change: Change) {
        for line in self.subs.lines(self.config.era, &change) {
            self.send(line).await;
        }
    }

    /// Track a request in flight; the receiver turns true when the client cancels it.
    pub fn begin(&self, id: &Id) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        lock(&self.inflight).insert(id.key().to_owned(), tx);
        rx
    }

    pub fn finish(&self, id: &Id) {
        lock(&self.inflight).remove(id.key());
    }

    /// Mark the request with id key `key` cancelled (a listen stream stops at once); false if it
    /// is not in flight.
    pub fn cancel(&self, key: &str) -> bool {
        self.subs.stop_listening_key(key);
        lock(&self.inflight).get(key).map(|tx| tx.send_replace(true)).is_some()
    }

    /// Reserve an id for a server->client request and the channel its answer arrives on.
    pub fn expect_reply(&self) -> (u64, oneshot::Receiver<Reply>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id.to_string(), tx);
        (id, rx)
    }

    /// Stop waiting for the answer to request `id`.
    pub fn forget(&self, id: u64) {
        lock(&self.pending).remove(&id.to_string());
    }

    /// Deliver the client's answer to a server->client request; false if none was waiting.
    pub fn resolve(&self, id: &Id, reply: Reply) -> bool {
        let waiter = lock(&self.pending).remove(id.key());
        waiter.is_some_and(|tx| tx.send(reply).is_ok())
    }

    /// The input is gone: fail every server->client request still waiting.
    pub fn fail_pending(&self) {
        lock(&self.pending).clear();
    }

    /// Stop writing: the writer drains what is queued and ends.
    pub fn close(&self) {
        lock(&self.out).take();
        self.fail_pending();
    }

    pub fn set_client_capabilities(&self, caps: Value) {
        *lock(&self.client_capabilities) = caps;
    }

    pub fn client_capabilities(&self) -> Value {
        lock(&self.client_capabilities).clone()
    }

    pub fn set_log_level(&self, level: Level) {
        *lock(&self.log_level) = Some(level);
    }

    /// Whether a legacy client wants messages at `level` (all of them until it sets a level).
    pub fn logs(&self, level: Level) -> bool {
        lock(&self.log_level).is_none_or(|min| level >= min)
    }
}

/// The writer task: one line per message, flushed whenever the queue runs dry.
pub async fn write_loop<W: AsyncWrite + Unpin>(
    mut rx: mpsc::Receiver<Outgoing>,
    writer: W,
    preamble: Option<String>,
) -> std::io::Result<()> {
    let mut w = BufWriter::new(writer);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(msg) = next {
            if msg.response
                && let Some(p) = &preamble
            {
                w.write_all(p.as_bytes()).await?;
                w.write_all(b"\n").await?;
            }
            w.write_all(msg.line.as_bytes()).await?;
            w.write_all(b"\n").await?;
            next = rx.try_recv().ok();
        }
        w.flush().await?;
    }
    w.flush().await?;
    w.shutdown().await
}
