//! Requests sent to one backend and not yet answered, keyed by the id vMCP gave them.
//!
//! Invariants: ids are unique per backend connection; every entry ends exactly once (answer,
//! timeout, cancellation by drop, or the backend exiting), and a late answer finds no entry and
//! is dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::value::RawValue;
use tokio::sync::oneshot;
use vmcp_protocol::Message;

/// Who asked: lets backend notifications (progress) and server-to-client requests find their
/// way back to the client session that caused them.
#[derive(Debug, Clone)]
pub struct Origin {
    pub session: u64,
    /// The client's own id for the request (raw JSON), so related messages can follow it
    /// (e.g. onto that request's HTTP response stream).
    pub request: Option<std::sync::Arc<str>>,
    /// The client's own progress token, when its request carried one.
    pub progress_token: Option<Box<RawValue>>,
    /// A modern client behind this legacy backend: where the backend's server-to-client
    /// requests go to become input requests (`input_bridge`).
    pub inputs: Option<crate::input_bridge::Inputs>,
}

struct Entry {
    reply: oneshot::Sender<Message>,
    origin: Option<Origin>,
}

/// The pending-request table of one backend connection.
#[derive(Default)]
pub struct Pending {
    next: AtomicU64,
    map: Mutex<Table>,
    /// Mirrors `Table::closed` for lock-free readiness checks.
    closed: std::sync::atomic::AtomicBool,
}

/// The entries, and whether the connection is gone (then no entry is accepted).
#[derive(Default)]
struct Table {
    entries: HashMap<u64, Entry>,
    closed: bool,
}

impl Pending {
    pub fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Register a request; `None` once the connection is gone (after [`Pending::fail_all`]).
    pub fn insert(&self, id: u64, origin: Option<Origin>) -> Option<oneshot::Receiver<Message>> {
        let (tx, rx) = oneshot::channel();
        let mut table = self.lock();
        if table.closed {
            return None;
        }
        table.entries.insert(id, Entry { reply: tx, origin });
        Some(rx)
    }

    /// Deliver an answer; `false` if nobody waits for it any more.
    pub fn complete(&self, id: u64, msg: Message) -> bool {
        match self.lock().entries.remove(&id) {
            Some(entry) => entry.reply.send(msg).is_ok(),
            None => false,
        }
    }

    /// Forget an entry (timeout or cancellation); `true` if it was still waiting.
    pub fn remove(&self, id: u64) -> bool {
        self.lock().entries.remove(&id).is_some()
    }

    pub fn origin(&self, id: u64) -> Option<Origin> {
        self.lock().entries.get(&id).and_then(|e| e.origin.clone())
    }

    /// The origin of the most recent request still waiting, for a backend request that names no
    /// cause (stdio carries no link between a server request and the client request behind it).
    pub fn latest_origin(&self) -> Option<Origin> {
        let map = self.lock();
        map.entries
            .iter()
            .filter_map(|(id, e)| e.origin.as_ref().map(|o| (*id, o)))
            .max_by_key(|(id, _)| *id)
            .map(|(_, o)| o.clone())
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Fail everything at once (the backend is gone): waiters see a closed channel, and later
    /// requests are refused at once.
    pub fn fail_all(&self) {
        let mut table = self.lock();
        table.closed = true;
        self.closed.store(true, Ordering::Release);
        table.entries.clear();
    }

    /// Whether the connection is gone (no request can be sent any more).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: u64) -> Message {
        Message::parse(format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#).as_bytes()).unwrap()
    }

    #[test]
    fn entries_end_exactly_once() {
        let p = Pending::default();
        let a = p.next_id();
        let b = p.next_id();
        assert_ne!(a, b);
        let mut rx_a = p.insert(a, None).unwrap();
        let mut rx_b = p
            .insert(b, Some(Origin { session: 7, request: None, progress_token: None, inputs: None }))
            .unwrap();
        assert_eq!(p.latest_origin().map(|o| o.session), Some(7));
        assert!(p.complete(a, msg(a)));
        assert!(!p.complete(a, msg(a)), "a second answer must find nothing");
        assert!(rx_a.try_recv().is_ok());
        p.fail_all();
        assert!(rx_b.try_recv().is_err());
        assert_eq!(p.len(), 0);
        assert!(p.insert(p.next_id(), None).is_none(), "a gone connection takes no new request");
    }
}
