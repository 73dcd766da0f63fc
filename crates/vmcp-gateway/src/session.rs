//! One connected client: its era and capabilities, the requests it has in flight, the requests
//! vMCP sent it on a backend's behalf, its resource subscriptions, and the channel to it.
//!
//! Invariant: a session never talks to backends itself; the dispatcher and the relay do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;
use tokio::sync::{OwnedRwLockWriteGuard, RwLock, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use vmcp_protocol::{Era, Message, ProtocolVersion};

use crate::listen::Filter;
use crate::log_level::LogLevel;
use crate::policy::Caller;

/// What the handshake told us about the client.
#[derive(Debug, Default, Clone)]
pub struct ClientInfo {
    /// Set by `initialize` (legacy) or by the first modern request.
    pub era: Option<Era>,
    pub version: Option<ProtocolVersion>,
    /// The client's capabilities object, raw (legacy: from `initialize`).
    pub capabilities: Option<Box<RawValue>>,
    /// The level a legacy client asked for with `logging/setLevel`; no logs before it does.
    pub log_level: Option<LogLevel>,
}

struct InFlight {
    generation: u64,
    /// The level a modern request asked for in its `_meta` (its logs reach the client).
    log_level: Option<LogLevel>,
    /// Dropping this cancels the request's task.
    _cancel: oneshot::Sender<()>,
}

/// A connected client.
pub struct Session {
    pub id: u64,
    pub caller: Caller,
    out: mpsc::Sender<String>,
    info: Mutex<ClientInfo>,
    inflight: Mutex<HashMap<Box<str>, InFlight>>,
    generation: AtomicU64,
    outgoing: Mutex<HashMap<u64, oneshot::Sender<Message>>>,
    next_outgoing: AtomicU64,
    /// Its resource subscriptions through vMCP: each URI with the token of the subscribe that
    /// made it, so that a late outcome of an older subscribe cannot undo a newer one.
    subscriptions: Mutex<HashMap<String, u64>>,
    next_subscription: AtomicU64,
    listeners: Mutex<Vec<(String, Filter)>>,
    /// Per-request streams (an HTTP POST answered as SSE): messages related to that request go
    /// there instead of the session's own channel.
    streams: Mutex<HashMap<Box<str>, mpsc::Sender<String>>>,
    /// Held for writing while an `initialize` runs ([`Session::begin_opening`]): the requests
    /// accepted after it wait for it, since what they do depends on the session it opens; the
    /// client's responses and notifications go on being handled meanwhile.
    opening: Arc<RwLock<()>>,
    /// Whether an `initialize` holds `opening` (the usual request skips the lock).
    opening_now: Arc<AtomicBool>,
    /// Cancelled when the client's input has ended (stdio): its listens end with their result.
    input_closed: CancellationToken,
}

/// An `initialize` running: dropped when it has answered.
pub struct Opening {
    _gate: OwnedRwLockWriteGuard<()>,
    now: Arc<AtomicBool>,
}

impl Drop for Opening {
    fn drop(&mut self) {
        self.now.store(false, Ordering::Release);
    }
}

/// Closes a per-request stream registration when the request ends.
pub struct StreamGuard {
    session: std::sync::Arc<Session>,
    id: Box<str>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        lock(&self.session.streams).remove(&self.id);
    }
}

/// Removes a listener when its request ends (cancelled or finished).
pub struct ListenerGuard<'a> {
    session: &'a Session,
    id: String,
}

impl Drop for ListenerGuard<'_> {
    fn drop(&mut self) {
        lock(&self.session.listeners).retain(|(id, _)| *id != self.id);
    }
}

impl Session {
    pub fn new(id: u64, caller: Caller, out: mpsc::Sender<String>) -> Self {
        Self {
            id,
            caller,
            out,
            info: Mutex::default(),
            inflight: Mutex::default(),
            generation: AtomicU64::new(0),
            outgoing: Mutex::default(),
            next_outgoing: AtomicU64::new(0),
            subscriptions: Mutex::default(),
            next_subscription: AtomicU64::new(0),
            listeners: Mutex::default(),
            streams: Mutex::default(),
            opening: Arc::default(),
            opening_now: Arc::default(),
            input_closed: CancellationToken::new(),
        }
    }

    /// An `initialize` is accepted: until the returned guard drops, the requests accepted after
    /// it wait ([`Session::opening_gate`]). `None` if another one is running (it waits for that
    /// one like any request).
    pub fn begin_opening(&self) -> Option<Opening> {
        let gate = self.opening.clone().try_write_owned().ok()?;
        self.opening_now.store(true, Ordering::Release);
        Some(Opening { _gate: gate, now: self.opening_now.clone() })
    }

    /// What a request accepted now must wait for before it runs: the `initialize` accepted
    /// before it, if that is still running.
    pub fn opening_gate(&self) -> Option<Arc<RwLock<()>>> {
        self.opening_now.load(Ordering::Acquire).then(|| self.opening.clone())
    }

    /// The client's input has ended (its output may still be open): its listens end.
    pub fn close_input(&self) {
        self.input_closed.cancel();
    }

    /// Resolves once [`Session::close_input`] has been called.
    pub async fn input_closed(&self) {
        self.input_closed.cancelled().await;
    }

    /// Queue a message for the client (a response, notification or request line, no newline).
    pub async fn send(&self, line: String) -> bool {
        self.out.send(line).await.is_ok()
    }

    /// Queue without waiting; used from backend reader tasks so one slow client cannot stall a
    /// backend. A full queue drops the message (logged).
    pub fn try_send(&self, line: String) -> bool {
        match self.out.try_send(line) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(session = self.id, "client is not reading; notification dropped");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Route messages related to request `id` (raw JSON) to `tx` until the guard drops.
    pub fn open_stream(self: &std::sync::Arc<Self>, id: &str, tx: mpsc::Sender<String>) -> StreamGuard {
        lock(&self.streams).insert(id.into(), tx);
        StreamGuard { session: self.clone(), id: id.into() }
    }

    fn stream_for(&self, related: Option<&str>) -> Option<mpsc::Sender<String>> {
        let id = related?;
        lock(&self.streams).get(id).cloned()
    }

    /// Send alongside a request: on its own stream if it has one, else on the session's channel.
    pub async fn send_related(&self, related: Option<&str>, line: String) -> bool {
        match self.stream_for(related) {
            Some(tx) => tx.send(line).await.is_ok(),
            None => self.send(line).await,
        }
    }

    /// Like `send_related`, without waiting (from backend reader tasks).
    pub fn try_send_related(&self, related: Option<&str>, line: String) -> bool {
        match self.stream_for(related) {
            Some(tx) => tx.try_send(line).is_ok(),
            None => self.try_send(line),
        }
    }

    pub fn info(&self) -> ClientInfo {
        lock(&self.info).clone()
    }

    pub fn set_info(&self, info: ClientInfo) {
        *lock(&self.info) = info;
    }

    pub fn era(&self) -> Option<Era> {
        lock(&self.info).era
    }

    /// Does the client declare this capability (legacy `initialize`)?
    pub fn has_capability(&self, name: &str) -> bool {
        let info = lock(&self.info);
        info.capabilities
            .as_deref()
            .and_then(|c| vmcp_protocol::splice::get(c.get(), name))
            .is_some_and(|v| v != "null" && v != "false")
    }

    /// Register a request by its raw id; returns the receiver that fires when it is cancelled
    /// and the generation to pass to [`Session::finish`].
    pub fn begin(&self, id: &str, log_level: Option<LogLevel>) -> (oneshot::Receiver<()>, u64) {
        let (tx, rx) = oneshot::channel();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        lock(&self.inflight).insert(id.into(), InFlight { generation, log_level, _cancel: tx });
        (rx, generation)
    }

    /// The log level the client wants for backend logs caused by its request `id` (raw JSON
    /// id): the request's own (modern) or the session's (legacy `logging/setLevel`).
    pub fn log_level_for(&self, id: Option<&str>) -> Option<LogLevel> {
        let own = id.and_then(|id| lock(&self.inflight).get(id).and_then(|f| f.log_level));
        own.or_else(|| lock(&self.info).log_level)
    }

    /// Remember a legacy client's `logging/setLevel`.
    pub fn set_log_level(&self, level: LogLevel) {
        lock(&self.info).log_level = Some(level);
    }

    /// Forget a finished request (only if the entry is still the one `begin` made).
    pub fn finish(&self, id: &str, generation: u64) {
        let mut map = lock(&self.inflight);
        // One lookup in the usual case; an entry a reused id made since goes back untouched.
        if let Some(newer) = map.remove(id).filter(|e| e.generation != generation) {
            map.insert(id.into(), newer);
        }
    }

    /// Cancel a request in flight; `false` if there is none by that id.
    pub fn cancel(&self, id: &str) -> bool {
        lock(&self.inflight).remove(id).is_some()
    }

    /// Cancel everything (the client went away).
    pub fn cancel_all(&self) {
        lock(&self.inflight).clear();
        lock(&self.outgoing).clear();
    }

    /// Start a request to the client; returns its id and the receiver of the answer.
    pub fn begin_outgoing(&self) -> (u64, oneshot::Receiver<Message>) {
        let id = self.next_outgoing.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        lock(&self.outgoing).insert(id, tx);
        (id, rx)
    }

    pub fn abandon_outgoing(&self, id: u64) {
        lock(&self.outgoing).remove(&id);
    }

    /// Deliver the client's answer to a request vMCP sent it.
    pub fn complete_outgoing(&self, msg: Message) -> bool {
        let Some(id) = msg.id_u64() else { return false };
        match lock(&self.outgoing).remove(&id) {
            Some(tx) => tx.send(msg).is_ok(),
            None => false,
        }
    }

    /// Subscribe to `uri`: the new subscription's token, or `None` if the session already is.
    pub fn subscribe(&self, uri: &str) -> Option<u64> {
        let mut subs = lock(&self.subscriptions);
        if subs.contains_key(uri) {
            return None;
        }
        let token = self.next_subscription.fetch_add(1, Ordering::Relaxed);
        subs.insert(uri.to_owned(), token);
        Some(token)
    }

    /// Unsubscribe from `uri`: the token of the subscription this ends, if there was one.
    pub fn unsubscribe(&self, uri: &str) -> Option<u64> {
        lock(&self.subscriptions).remove(uri)
    }

    /// Take back the subscription `token` made (its subscribe failed or was cancelled), if it is
    /// still the session's: a newer subscription to `uri` stays.
    pub fn forget(&self, uri: &str, token: u64) -> bool {
        let mut subs = lock(&self.subscriptions);
        let ours = subs.get(uri) == Some(&token);
        if ours {
            subs.remove(uri);
        }
        ours
    }

    pub fn is_subscribed(&self, uri: &str) -> bool {
        lock(&self.subscriptions).contains_key(uri)
    }

    /// Register a `subscriptions/listen` request by its raw id.
    pub fn add_listener(&self, id: &str, filter: Filter) -> ListenerGuard<'_> {
        lock(&self.listeners).push((id.to_owned(), filter));
        ListenerGuard { session: self, id: id.to_owned() }
    }

    /// The ids of this session's listeners that want this notification.
    pub fn listeners_for(&self, method: &str, uri: Option<&str>) -> Vec<String> {
        lock(&self.listeners).iter().filter(|(_, f)| f.wants(method, uri)).map(|(id, _)| id.clone()).collect()
    }

    /// Deliver a list change or a resource update (`uri`) the way this client's era takes it:
    /// a legacy client directly (an update only when subscribed to its URI), a modern one on
    /// each of its listen requests that asked for it, tagged with that request's id.
    pub fn notify(&self, method: &str, params: Option<&str>, uri: Option<&str>) {
        if self.era() == Some(Era::Modern) {
            for listener in self.listeners_for(method, uri) {
                self.try_send(crate::listen::tag(method, params, &listener));
            }
        } else if uri.is_none_or(|u| self.is_subscribed(u)) {
            self.try_send(vmcp_protocol::message::notification(method, params));
        }
    }

    pub fn subscriptions(&self) -> Vec<String> {
        lock(&self.subscriptions).keys().cloned().collect()
    }
}

/// A mutex's guard, whether or not a panic poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_id_is_not_cancelled_by_the_old_request_finishing() {
        let (tx, _rx) = mpsc::channel(4);
        let s = Session::new(1, Caller::local_user(), tx);
        let (mut first, g1) = s.begin("1", None);
        s.finish("1", g1);
        assert!(first.try_recv().is_err(), "finished request reads as closed");
        let (mut second, _g2) = s.begin("1", None);
        s.finish("1", g1); // a stale finish for the old generation
        assert!(matches!(second.try_recv(), Err(oneshot::error::TryRecvError::Empty)));
        assert!(s.cancel("1"));
        assert!(matches!(second.try_recv(), Err(oneshot::error::TryRecvError::Closed)));
    }

    #[test]
    fn a_late_undo_of_an_old_subscribe_leaves_a_newer_one() {
        let s = Session::new(1, Caller::local_user(), mpsc::channel(4).0);
        let first = s.subscribe("a://1").expect("a new subscription");
        assert_eq!(s.subscribe("a://1"), None, "already subscribed");
        assert_eq!(s.unsubscribe("a://1"), Some(first));
        let third = s.subscribe("a://1").expect("a new subscription");
        assert_ne!(first, third);
        assert!(!s.forget("a://1", first), "the first subscribe's undo comes late");
        assert!(s.is_subscribed("a://1"));
        assert!(s.forget("a://1", third));
        assert!(!s.is_subscribed("a://1"));
    }
}
