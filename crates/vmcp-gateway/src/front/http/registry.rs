//! Legacy Streamable HTTP sessions (`Mcp-Session-Id`) and their event logs, so a client can
//! resume a stream with `Last-Event-ID`.
//!
//! Each session has streams: stream 0 is the GET stream (messages not tied to a request); every
//! POST answered as SSE gets a stream of its own. Events are numbered `{stream}-{seq}`, kept (a
//! bounded number per stream) until the session ends, and replayed after the id a client names.
//!
//! Invariants: the number of sessions is capped; idle sessions are closed by `reap`; a deleted or
//! expired session id is unknown (404) from then on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vmcp_protocol::{ProtocolVersion, sse};

use super::HttpState;
use crate::session::Session;

/// Events kept per stream for resumption.
const KEEP_PER_STREAM: usize = 1000;
/// Streams kept per session (oldest finished ones are dropped first).
const KEEP_STREAMS: usize = 64;

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
    last_seen: Mutex<Instant>,
    streams: Mutex<(u64, HashMap<u64, StreamLog>)>,
}

impl HttpSession {
    pub fn touch(&self) {
        *self.last_seen.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last_seen.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
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

    /// Attach a GET connection to the session's own stream (replacing an older one).
    pub fn attach_get(&self, live: mpsc::Sender<String>) {
        let mut g = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        g.1.entry(0).or_default().live = Some(live);
    }

    /// Resume after `last_event_id`: the events that followed it, and keep delivering that
    /// stream's new events to `live` if it is still open. `None` if the id is unknown.
    pub fn resume(&self, last_event_id: &str, live: mpsc::Sender<String>) -> Option<Vec<String>> {
        let (stream, seq) = last_event_id.split_once('-')?;
        let (stream, seq): (u64, u64) = (stream.parse().ok()?, seq.parse().ok()?);
        let mut g = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let log = g.1.get_mut(&stream)?;
        let missed = log.events.iter().filter(|(s, _)| *s > seq).map(|(_, e)| e.clone()).collect();
        if !log.done {
            log.live = Some(live);
        }
        Some(missed)
    }
}

/// All legacy sessions of the HTTP front.
pub struct Registry {
    max: usize,
    map: Mutex<HashMap<String, Arc<HttpSession>>>,
}

impl Registry {
    pub fn new(max: usize) -> Self {
        Self { max, map: Mutex::default() }
    }

    /// Register a session; `None` when the cap is reached.
    pub fn insert(&self, session: Arc<Session>, version: ProtocolVersion) -> Option<Arc<HttpSession>> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.max {
            return None;
        }
        let id = new_id();
        let hs = Arc::new(HttpSession {
            id: id.clone(),
            session,
            version,
            last_seen: Mutex::new(Instant::now()),
            streams: Mutex::default(),
        });
        map.insert(id, hs.clone());
        Some(hs)
    }

    pub fn get(&self, id: &str) -> Option<Arc<HttpSession>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    pub fn remove(&self, id: &str) -> Option<Arc<HttpSession>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(id)
    }

    fn idle(&self, limit: Duration) -> Vec<Arc<HttpSession>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.values().filter(|s| s.idle_for() > limit).cloned().collect()
    }
}

/// A session id: 128 random bits, hex (visible ASCII, as the spec asks).
fn new_id() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}

/// Close sessions idle longer than `limit`, until `stop`.
pub(super) async fn reap(st: Arc<HttpState>, limit: Duration, stop: CancellationToken) {
    let every = (limit / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        for hs in st.sessions.idle(limit) {
            tracing::info!(session = %hs.id, "closing idle session");
            st.sessions.remove(&hs.id);
            st.gw.close_session(&hs.session);
        }
    }
}
