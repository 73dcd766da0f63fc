//! The sessions of the HTTP front, both kinds in one table: legacy Streamable HTTP sessions
//! (`Mcp-Session-Id`) with their event logs, so a client can resume a stream with
//! `Last-Event-ID`, and legacy HTTP+SSE sessions (`legacy_sse.rs`).
//!
//! Each Streamable HTTP session has streams: stream 0 is the GET stream (messages not tied to a
//! request); every POST answered as SSE gets a stream of its own. Events are numbered
//! `{stream}-{seq}`, kept (a bounded number per stream) until the session ends, and replayed
//! after the id a client names.
//!
//! Invariants:
//! - one table holds both kinds, so `max_sessions` caps their sum and the table is the only count;
//! - an id names one kind: a Streamable HTTP id is unknown to `/messages` and the other way round;
//! - idle sessions of both kinds are closed by the one `reap` loop; a deleted, ended or expired
//!   session id is unknown (404) from then on, and every stream it had ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vmcp_protocol::{ErrorCode, ProtocolVersion, RpcError, message, sse};

use super::HttpState;
use super::legacy_sse::SseSession;
use crate::gateway::Gateway;
use crate::session::Session;

/// Events kept per stream for resumption.
const KEEP_PER_STREAM: usize = 1000;
/// Streams kept per session (oldest finished ones are dropped first).
const KEEP_STREAMS: usize = 64;

/// When a session's client last made a request.
pub(super) struct LastSeen(Mutex<Instant>);

impl LastSeen {
    pub(super) fn now() -> Self {
        Self(Mutex::new(Instant::now()))
    }

    pub(super) fn touch(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }
}

#[derive(Default)]
struct StreamLog {
    next_seq: u64,
    events: Vec<(u64, String)>,
    live: Option<mpsc::Sender<String>>,
    done: bool,
}

/// One legacy session over Streamable HTTP.
pub struct HttpSession {
    pub id: String,
    pub session: Arc<Session>,
    pub version: ProtocolVersion,
    last_seen: LastSeen,
    streams: Mutex<(u64, HashMap<u64, StreamLog>)>,
    /// Fired when the session ends (deleted or expired).
    ended: CancellationToken,
}

impl HttpSession {
    pub fn touch(&self) {
        self.last_seen.touch();
    }

    /// Open a stream for a POST answered as SSE; returns its number.
    pub fn new_stream(&self, live: mpsc::Sender<String>) -> u64 {
        let mut g = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        g.0 += 1;
        let id = g.0;
        if g.1.len() >= KEEP_STREAMS
            && let Some(old) = g.1.iter().filter(|(k, s)| s.done && **k != 0).map(|(k, _)| *k).min()
        {
            g.1.remove(&old);
        }
        g.1.insert(id, StreamLog { live: Some(live), ..StreamLog::default() });
        id
    }

    /// Append a message to a stream and deliver it if a client is connected. Returns the event
    /// text (with its id).
    pub fn push(&self, stream: u64, message: &str) -> String {
        let mut g = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let log = g.1.entry(stream).or_default();
        let seq = log.next_seq;
        log.next_seq += 1;
        let event = sse::encode(Some(&format!("{stream}-{seq}")), None, message);
        if log.events.len() >= KEEP_PER_STREAM {
            log.events.remove(0);
        }
        log.events.push((seq, event.clone()));
        if let Some(tx) = &log.live
            && tx.try_send(event.clone()).is_err()
        {
            log.live = None; // disconnected (or not reading): keep for resumption
        }
        event
    }

    /// The stream will get no more events.
    pub fn finish(&self, stream: u64) {
        let mut g = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(log) = g.1.get_mut(&stream) {
            log.done = true;
            log.live = None;
        }
    }

    /// Attach a GET connection to the session's own stream (replacing an older one); an ended
    /// session's stream ends at once.
    pub fn attach_get(&self, live: mpsc::Sender<String>) {
        let mut g = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if !self.ended.is_cancelled() {
            g.1.entry(0).or_default().live = Some(live);
        }
    }

    /// Resolves when the session has ended (its pump of GET-stream messages stops then).
    pub async fn ended(&self) {
        self.ended.cancelled().await
    }

    /// End the session's streams: every connected client sees its stream end.
    fn end(&self) {
        self.ended.cancel();
        let mut g = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        for log in g.1.values_mut() {
            log.done = true;
            log.live = None;
        }
    }

    /// Resume after `last_event_id`: the events that followed it, and keep delivering that
    /// stream's new events to `live` if it is still open. `None` if the id is unknown.
    pub fn resume(&self, last_event_id: &str, live: mpsc::Sender<String>) -> Option<Vec<String>> {
        let (stream, seq) = last_event_id.split_once('-')?;
        let (stream, seq): (u64, u64) = (stream.parse().ok()?, seq.parse().ok()?);
        let mut g = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let log = g.1.get_mut(&stream)?;
        let missed = log.events.iter().filter(|(s, _)| *s > seq).map(|(_, e)| e.clone()).collect();
        if !log.done && !self.ended.is_cancelled() {
            log.live = Some(live);
        }
        Some(missed)
    }
}

/// A session of either kind, as the table holds it.
#[derive(Clone)]
enum Slot {
    Streamable(Arc<HttpSession>),
    Sse(Arc<SseSession>),
}

impl Slot {
    fn last_seen(&self) -> &LastSeen {
        match self {
            Slot::Streamable(hs) => &hs.last_seen,
            Slot::Sse(s) => &s.last_seen,
        }
    }

    /// End a session already taken out of the table.
    fn close(&self, gw: &Gateway) {
        match self {
            Slot::Streamable(hs) => {
                hs.end();
                gw.close_session(&hs.session);
            }
            // Its stream task ends the stream and closes the gateway session.
            Slot::Sse(s) => s.close(),
        }
    }
}

/// All sessions of the HTTP front, Streamable HTTP and HTTP+SSE, under one cap.
pub struct Registry {
    max: usize,
    map: Mutex<HashMap<String, Slot>>,
}

impl Registry {
    pub fn new(max: usize) -> Self {
        Self { max, map: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The table, if it has room for one more session.
    fn with_room(&self) -> Option<MutexGuard<'_, HashMap<String, Slot>>> {
        let map = self.lock();
        (map.len() < self.max).then_some(map)
    }

    /// Register a Streamable HTTP session; `None` when the cap is reached.
    pub fn insert(&self, session: Arc<Session>, version: ProtocolVersion) -> Option<Arc<HttpSession>> {
        let mut map = self.with_room()?;
        let hs = Arc::new(HttpSession {
            id: new_id(),
            session,
            version,
            last_seen: LastSeen::now(),
            streams: Mutex::default(),
            ended: CancellationToken::new(),
        });
        map.insert(hs.id.clone(), Slot::Streamable(hs.clone()));
        Some(hs)
    }

    /// Register an HTTP+SSE session; `None` when the cap is reached.
    pub(super) fn insert_sse(&self, session: Arc<Session>) -> Option<Arc<SseSession>> {
        let mut map = self.with_room()?;
        let s = Arc::new(SseSession::new(new_id(), session));
        map.insert(s.id.clone(), Slot::Sse(s.clone()));
        Some(s)
    }

    /// A Streamable HTTP session by its `Mcp-Session-Id`.
    pub fn get(&self, id: &str) -> Option<Arc<HttpSession>> {
        match self.lock().get(id)? {
            Slot::Streamable(hs) => Some(hs.clone()),
            Slot::Sse(_) => None,
        }
    }

    /// An HTTP+SSE session by its `sessionId`.
    pub(super) fn get_sse(&self, id: &str) -> Option<Arc<SseSession>> {
        match self.lock().get(id)? {
            Slot::Sse(s) => Some(s.clone()),
            Slot::Streamable(_) => None,
        }
    }

    /// Take a Streamable HTTP session out and end its streams (the caller closes the gateway
    /// session).
    pub fn remove(&self, id: &str) -> Option<Arc<HttpSession>> {
        let mut map = self.lock();
        let Slot::Streamable(hs) = map.get(id)? else { return None };
        let hs = hs.clone();
        map.remove(id);
        drop(map);
        hs.end();
        Some(hs)
    }

    /// Take an HTTP+SSE session out, freeing its place (a no-op if the reaper already did).
    pub(super) fn remove_sse(&self, id: &str) {
        let mut map = self.lock();
        if matches!(map.get(id), Some(Slot::Sse(_))) {
            map.remove(id);
        }
    }

    /// Take out every session idle longer than `limit`.
    fn take_idle(&self, limit: Duration) -> Vec<(String, Slot)> {
        let mut idle = Vec::new();
        self.lock().retain(|id, slot| {
            let keep = slot.last_seen().idle_for() <= limit;
            if !keep {
                idle.push((id.clone(), slot.clone()));
            }
            keep
        });
        idle
    }
}

/// The answer to a client that would open a session past `max_sessions` (either kind).
pub(super) fn too_many_sessions() -> Response {
    let body =
        message::error_response(None, &RpcError::new(ErrorCode::GatewayError, "too many sessions").to_json());
    (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A session id: 128 random bits, hex (visible ASCII, as the spec asks).
fn new_id() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}

/// Close sessions of both kinds idle longer than `limit`, until `stop`.
pub(super) async fn reap(st: Arc<HttpState>, limit: Duration, stop: CancellationToken) {
    let every = (limit / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        for (id, slot) in st.sessions.take_idle(limit) {
            tracing::info!(session = %id, "closing idle session");
            slot.close(&st.gw);
        }
    }
}
