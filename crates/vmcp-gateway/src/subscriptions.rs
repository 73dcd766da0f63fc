//! Resource subscriptions through vMCP: per session (who gets `resources/updated`), and per
//! (server, replica, uri) at the backend, counted so that the backend subscription lives while
//! any session wants it and ends with the last one.
//!
//! A subscription is stateful traffic: it is held by the session's affinity replica (the one
//! its MRTR retries go to), and its unsubscribe goes to the replica that holds it, even if the
//! session's affinity has moved since.
//!
//! A legacy backend is subscribed with `resources/subscribe`; a modern backend with a
//! `subscriptions/listen` request naming the URI, taken once the backend acknowledges it and
//! held open until the last session leaves.
//!
//! While the first subscribe to a (server, replica, uri) is out, a session subscribing there
//! joins it (shares its outcome), even if every session that wanted it has left meanwhile; and
//! the last session leaving leaves its end to it, done once the backend has answered it, so an
//! unsubscribe never overtakes the subscribe it ends (HTTP requests in flight together may reach
//! the backend in either order). Nor does a fresh subscribe overtake an unsubscribe still out at
//! that connection: it is sent once that one is answered (`Unsubscribing`). A modern listen
//! abandoned mid-setup is ended at once; a legacy subscribe abandoned while out is awaited, and
//! ended if it took and no session counts on it.
//!
//! A replica the supervisor restarts is a new process that knows none of this: `restore` makes
//! every subscription its predecessor held again (once per URI, however many sessions share
//! it) before the new process takes the replica's place, so it returns to rotation with them.
//!
//! A server remounted with a changed spec (`Gateway::apply`) is new processes too: `remount`
//! makes every subscription of the old server again at the new one (at the replica a fresh
//! subscribe would choose, once per URI there) before it takes the old one's place, then ends
//! them at the old one. An unmounted server's subscriptions are dropped, and its sessions no
//! longer count as subscribed (they can subscribe again if it comes back).
//!
//! Invariant: the table only speaks of the servers mounted now. Whatever swaps the mounted set
//! or a replica's process does it under the table's lock, and whatever adds to the table checks,
//! under that lock, that the server it adds for is still the one mounted (`is_current`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;
use vmcp_protocol::splice;
use vmcp_protocol::{Era, RpcError};

use crate::era;
use crate::gateway::{Gateway, Mounted};
use crate::mounted::Replica;
use crate::route::{self, Reply};
use crate::session::{Session, lock};
use crate::upstream::{Upstream, UpstreamError};

mod remount;
pub(crate) use remount::remount;

/// (server, replica, uri).
type Key = (String, usize, String);

/// A listen request vMCP sent: (its upstream, as an address; its request id).
type ListenId = (usize, u64);

/// The subscriptions vMCP holds at backends.
#[derive(Default)]
pub(crate) struct Held {
    /// How many sessions want each backend subscription.
    counts: HashMap<Key, usize>,
    /// Each session's subscription: (session, server, uri) → the replica holding it, and the
    /// token of the session's subscribe that counted it (`Session::subscribe`).
    by_session: HashMap<(u64, String, String), Counted>,
    /// Modern backends: the listen request held open per subscription.
    listens: HashMap<Key, AbortHandle>,
    /// Backend subscriptions still being made, each with its outcome once known (whether it
    /// took). A session that joins meanwhile shares the first one's outcome instead of counting
    /// on a subscription that may fail. Every session counted on a key while it is pending is
    /// its first one or one that joined it (a key is pending only from a first count on).
    pending: HashMap<Key, tokio::sync::watch::Receiver<Option<bool>>>,
    /// Modern listens waiting for the backend's `notifications/subscriptions/acknowledged`.
    acks: HashMap<ListenId, tokio::sync::oneshot::Sender<()>>,
    /// Legacy unsubscribes not yet answered.
    unsubscribing: Arc<Unsubscribing>,
}

/// Per (connection, URI), the last legacy `resources/unsubscribe` vMCP decided to send there,
/// until it is answered. A fresh subscribe there goes out only after it (over HTTP two requests
/// in flight may reach the backend in either order, and an unsubscribe handled after the
/// subscribe that followed it leaves the backend unsubscribed while sessions count on it); so
/// does the next unsubscribe, so that the last one answered means every one before it is. (The
/// other order needs no entry: while a first subscribe is out, its end is left to it, `Making`.)
#[derive(Default)]
struct Unsubscribing(std::sync::Mutex<HashMap<(usize, String), Answered>>);

/// A backend connection as a table key: its address (a restarted process is a new connection).
fn conn(up: &Arc<Upstream>) -> usize {
    Arc::as_ptr(up) as usize
}

/// Closed (its sender dropped) once a legacy unsubscribe is answered or given up.
type Answered = tokio::sync::watch::Receiver<()>;

impl Held {
    /// The unsubscribe a subscribe to `uri` at `up` decided now must wait for, if one is out.
    fn unsubscribe_out(&self, up: &Arc<Upstream>, uri: &str) -> Option<Answered> {
        lock(&self.unsubscribing.0).get(&(conn(up), uri.to_owned())).cloned()
    }

    /// A backend subscription to end, decided now (under the table's lock): a legacy
    /// unsubscribe takes its place in the order of its (connection, URI) here.
    fn end(&self, up: Arc<Upstream>, uri: String, listen: Option<AbortHandle>) -> End {
        let turn = (listen.is_none() && up.is_ready() && up.era() != Some(Era::Modern)).then(|| {
            let key = (conn(&up), uri.clone());
            let (done, answered) = tokio::sync::watch::channel(());
            let after = lock(&self.unsubscribing.0).insert(key.clone(), answered);
            Turn { unsubscribing: self.unsubscribing.clone(), key, after, done }
        });
        End { up, uri, listen, turn }
    }
}

/// A legacy unsubscribe's place in the order of its (connection, URI), from when it is decided
/// until it is answered.
struct Turn {
    unsubscribing: Arc<Unsubscribing>,
    key: (usize, String),
    /// The unsubscribe before it, if it was still out.
    after: Option<Answered>,
    /// Dropped when this one is answered: what waits on it goes on.
    done: tokio::sync::watch::Sender<()>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut out = lock(&self.unsubscribing.0);
        // Still the last one there: none is out after it.
        if out.get(&self.key).is_some_and(|last| last.same_channel(&self.done.subscribe())) {
            out.remove(&self.key);
        }
    }
}

/// Until `before` (an unsubscribe still out when this was decided) is answered.
async fn after(before: Option<Answered>) {
    if let Some(mut before) = before {
        // Nothing is ever sent: this returns when its sender is dropped.
        let _ = before.changed().await;
    }
}

/// A session counted on a backend subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counted {
    replica: usize,
    /// Which of the session's subscribes to the URI it is: a late failure of an older one must
    /// not take back a newer one.
    token: u64,
}

/// Why a backend subscription did not take.
enum Failure {
    /// The backend answered with an error (or ended the listen at once).
    Refused(String),
    /// The backend did not answer: gone, closed, timed out.
    Upstream(UpstreamError),
}

impl Failure {
    fn rpc(&self, server: &str, uri: &str) -> RpcError {
        match self {
            Self::Refused(why) => refused(server, uri, Some(why)),
            Self::Upstream(e) => route::upstream_error(e),
        }
    }
}

/// The client's error for a subscription the backend refused (`why`: its reason, when known).
fn refused(server: &str, uri: &str, why: Option<&str>) -> RpcError {
    let reason = why.map(|w| format!(": {w}")).unwrap_or_default();
    RpcError::new(
        vmcp_protocol::ErrorCode::BackendError,
        format!("server `{server}` refused the subscription to `{uri}`{reason}"),
    )
}

/// Long enough for a listen request that lives as long as its subscription.
const FOREVER: Duration = Duration::from_secs(60 * 60 * 24 * 365);

fn held(gw: &Gateway) -> std::sync::MutexGuard<'_, Held> {
    lock(&gw.subscriptions)
}

/// `resources/subscribe` or `resources/unsubscribe` from a client.
pub async fn handle(
    gw: &Arc<Gateway>,
    session: &Arc<Session>,
    method: &str,
    params: Option<&str>,
) -> Result<Reply, RpcError> {
    handle_as(gw, session, method, method, params).await?;
    Ok(Reply::Result(era::to_client("{}", session).into_owned()))
}

/// [`handle`], with a refusal audited under `asked`, the method the client sent.
async fn handle_as(
    gw: &Arc<Gateway>,
    session: &Arc<Session>,
    method: &str,
    asked: &str,
    params: Option<&str>,
) -> Result<(), RpcError> {
    let routed = route::resolve(gw, session, method, asked, params)?;
    let m = routed.mounted;
    let uri = splice::get(&routed.params, "uri")
        .and_then(splice::as_str)
        .map(|u| u.into_owned())
        .unwrap_or_default();
    if method == "resources/subscribe" {
        if let Some(token) = session.subscribe(&uri) {
            // Undone however the acquire fails to complete, its failure or the request being
            // cancelled (this future dropped) mid-subscribe.
            let mut undo = UndoSubscribe { gw, session, m: &m, uri: &uri, token, done: false };
            acquire(gw, session.id, token, &m, &uri).await?;
            undo.done = true;
        }
    } else if let Some(token) = session.unsubscribe(&uri) {
        release_where(gw, session.id, Some(token), &m, &uri);
    }
    Ok(())
}

/// A session's subscribe in `handle` until its acquire completes. Dropped before that (the
/// acquire failed, or the client's request was cancelled while it was out), it takes the URI
/// off the session and any count the session got meanwhile (as one that joined a first
/// subscribe still out): else the session would go on listing a URI the gateway does not count
/// it on, and its next subscribe to it would return at once, subscribing nowhere. It takes back
/// this subscribe's own (`token`) only: by the time it is dropped the client may have
/// unsubscribed and subscribed again, and that newer subscription stays.
struct UndoSubscribe<'a> {
    gw: &'a Gateway,
    session: &'a Session,
    m: &'a Arc<Mounted>,
    uri: &'a str,
    token: u64,
    done: bool,
}

impl Drop for UndoSubscribe<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.session.forget(self.uri, self.token);
            release_where(self.gw, self.session.id, Some(self.token), self.m, self.uri);
        }
    }
}

/// A modern client's listen names `uri`: subscribe this session through vMCP.
pub async fn for_listener(gw: &Arc<Gateway>, session: &Arc<Session>, uri: &str) -> Result<(), RpcError> {
    let params = format!(r#"{{"uri":{}}}"#, splice::quote(uri));
    handle_as(gw, session, "resources/subscribe", "subscriptions/listen", Some(&params)).await
}

/// Count the session's subscribe `token` on (server, its replica, uri); the first one subscribes
/// at that replica. If the server was remounted since the request was routed, subscribe at the
/// one mounted now.
async fn acquire(
    gw: &Arc<Gateway>,
    session: u64,
    token: u64,
    m: &Arc<Mounted>,
    uri: &str,
) -> Result<(), RpcError> {
    let mut m = m.clone();
    loop {
        if let Some(done) = acquire_at(gw, session, token, &m, uri).await {
            return done;
        }
        m = gw.mounts().get(&m.spec.id).cloned().ok_or_else(|| {
            RpcError::new(
                vmcp_protocol::ErrorCode::ServerUnavailable,
                format!("server `{}` was unmounted", m.spec.id),
            )
        })?;
    }
}

/// `acquire` at `m`; `None` if `m` is no longer the server mounted under its id.
async fn acquire_at(
    gw: &Arc<Gateway>,
    session: u64,
    token: u64,
    m: &Arc<Mounted>,
    uri: &str,
) -> Option<Result<(), RpcError>> {
    let lease = match m.choose(Some(crate::resilience::affinity_key(session)), 0) {
        Ok(lease) => lease,
        Err(e) => return Some(Err(e)),
    };
    let replica = lease.index;
    let key = (m.spec.id.clone(), replica, uri.to_owned());
    let modern = lease.up.era() == Some(Era::Modern);
    let (making, joined, unsubscribe) = {
        let mut held = held(gw);
        if !is_current(gw, m) {
            return None;
        }
        held.by_session.insert((session, m.spec.id.clone(), uri.to_owned()), Counted { replica, token });
        let n = held.counts.entry(key.clone()).or_insert(0);
        *n += 1;
        let first = *n == 1;
        if let Some(outcome) = held.pending.get(&key) {
            // Still out, even if every session that wanted it left meanwhile (then its outcome
            // decides whether it is kept for this one or ended): join it rather than make
            // another, whose order against the first's end at the backend nothing would decide.
            (None, Some(outcome.clone()), None)
        } else if first {
            let (tx, rx) = tokio::sync::watch::channel(None);
            held.pending.insert(key.clone(), rx);
            let unsubscribe = if modern { None } else { held.unsubscribe_out(&lease.up, uri) };
            let up = lease.up.clone();
            let making = Making { gw, key, up, outcome: tx, settled: false, subscribing: None };
            (Some(making), None, unsubscribe)
        } else {
            (None, None, None)
        }
    };
    let Some(mut making) = making else {
        // Another session's subscribe at this replica may still be out: share its outcome.
        let took = match joined {
            Some(mut rx) => rx.wait_for(Option::is_some).await.is_ok_and(|o| *o == Some(true)),
            None => true,
        };
        if took {
            return Some(Ok(()));
        }
        // Its failure took this session's count back with its own, in the same step.
        return Some(Err(refused(&m.spec.id, uri, None)));
    };
    let outcome = if modern {
        subscribe_at(gw, &lease.up, uri).await
    } else {
        // Sent once an unsubscribe still out there is answered (else it could undo this). Held
        // by `making` while out, so that if this is cancelled it is handed on, not dropped.
        let subscribe = subscribe_legacy(lease.up.clone(), uri);
        let subscribe = async move {
            after(unsubscribe).await;
            subscribe.await
        };
        let outcome = making.subscribing.insert(Box::pin(subscribe)).await;
        making.subscribing = None;
        outcome
    };
    match &outcome {
        Err(Failure::Upstream(_)) => lease.failed(),
        _ => lease.answered(),
    }
    making.settle(outcome.as_ref().map(Option::as_ref).map_err(|_| ()));
    Some(outcome.map(|_| ()).map_err(|f| f.rpc(&m.spec.id, uri)))
}

/// The first session's subscribe at a (server, replica, uri) while it is out; sessions that
/// join meanwhile wait for its outcome. Dropped unsettled (its client cancelled the request) it
/// settles as failed, so that no one waits on it or counts on it. While it is out it owns the
/// backend subscription's end: a `release` of the last session leaves that to it, so that a
/// legacy `resources/unsubscribe` goes out only once the subscribe is answered (over HTTP two
/// requests in flight may reach the backend in either order).
///
/// A legacy subscribe cancelled while out is not dropped (the backend may apply it all the same:
/// cancellation is advisory, and over HTTP the POST may already be handled): a task awaits its
/// answer and, if it took and no session counts on that subscription by then, ends it.
struct Making<'a> {
    gw: &'a Arc<Gateway>,
    key: Key,
    /// The connection it subscribes at, to end it there if no one is left when it took.
    up: Arc<Upstream>,
    outcome: tokio::sync::watch::Sender<Option<bool>>,
    settled: bool,
    /// A legacy `resources/subscribe` while it is out.
    subscribing: Option<Subscribing>,
}

/// A legacy backend's `resources/subscribe` in flight.
type Subscribing = Pin<Box<dyn Future<Output = Result<Option<AbortHandle>, Failure>> + Send>>;

impl Making<'_> {
    /// In one step under the table's lock, so that a session subscribing now either joined this
    /// subscribe (and shares its outcome) or finds the table as it stands after it: a live
    /// subscription counted with its listen, or, if it failed, no count of the first session nor
    /// of any that joined it (else a later one would be counted on it and told it is subscribed
    /// although nothing was made at the backend).
    fn settle(&mut self, listen: Result<Option<&AbortHandle>, ()>) {
        self.settled = true;
        let mut end = None;
        {
            let mut held = held(self.gw);
            let key = &self.key;
            // The pending entry is this one's: a key's entry is made only when it has none, and
            // goes only here, once.
            let ours = held.pending.remove(key);
            debug_assert!(ours.is_some_and(|p| p.same_channel(&self.outcome.subscribe())));
            let counted = held.counts.contains_key(key);
            match listen {
                Ok(Some(listen)) if counted => {
                    held.listens.insert(key.clone(), listen.clone());
                }
                // Every session left while the listen was being made: end it.
                Ok(Some(listen)) => listen.abort(),
                // Every session left while the legacy subscribe was out: their `release` left its
                // end to this, now that the backend has answered it.
                Ok(None) if !counted => end = Some(held.end(self.up.clone(), key.2.clone(), None)),
                Ok(None) => {}
                // Whoever counts on it is the first session or one that joined it.
                Err(()) => {
                    held.counts.remove(key);
                    let (server, replica, uri) = key;
                    held.by_session
                        .retain(|(_, s, u), c| !(s == server && u == uri && c.replica == *replica));
                }
            }
        }
        if let Some(end) = end {
            end_at(end);
        }
        let _ = self.outcome.send(Some(listen.is_ok()));
    }
}

impl Drop for Making<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        self.settle(Err(()));
        let (Some(subscribing), Ok(rt)) = (self.subscribing.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let (gw, key, up) = (Arc::downgrade(self.gw), self.key.clone(), self.up.clone());
        rt.spawn(async move {
            // Bounded by the server's timeout; the unsubscribe goes out only once it is answered.
            if subscribing.await.is_err() {
                return;
            }
            let end = loop {
                let Some(live) = gw.upgrade() else { return };
                let mut pending = {
                    let held = held(&live);
                    match held.pending.get(&key) {
                        // Another first subscribe is out: whether anyone counts is known after it.
                        Some(p) => p.clone(),
                        None if held.counts.contains_key(&key) => return,
                        None => break held.end(up, key.2, None),
                    }
                };
                drop(live);
                let _ = pending.wait_for(Option::is_some).await;
            };
            end_at(end);
        });
    }
}

/// Whether `m` is the server mounted under its id now: not one still starting to replace it,
/// nor one replaced or unmounted. Call under the table's lock (`remount` swaps under it).
fn is_current(gw: &Gateway, m: &Mounted) -> bool {
    gw.mounts().get(&m.spec.id).is_some_and(|c| std::ptr::eq(Arc::as_ptr(c), m))
}

/// How long a backend subscribe at `up` may take: its server's timeout for `resources/subscribe`
/// (`timeouts`, else its general one), as for every request routed there; for a modern listen,
/// how long to wait for its acknowledgement.
fn subscribe_timeout(up: &Upstream) -> Duration {
    up.spec.timeout_for("resources/subscribe")
}

/// Subscribe to `uri` at one backend connection: `resources/subscribe` (legacy), or a
/// `subscriptions/listen` naming it (modern), held open by a task and taken once the backend
/// acknowledges it (or, from a backend that sends no acknowledgement, when it is still open after
/// `subscribe_timeout`). `Ok(Some(listen))`: the task to abort to end it.
async fn subscribe_at(gw: &Gateway, up: &Arc<Upstream>, uri: &str) -> Result<Option<AbortHandle>, Failure> {
    if up.era() != Some(Era::Modern) {
        return subscribe_legacy(up.clone(), uri).await;
    }
    let timeout = subscribe_timeout(up);
    let id = up.next_id();
    let listen_id = (conn(up), id);
    let (ack_tx, ack_rx) = tokio::sync::oneshot::channel();
    held(gw).acks.insert(listen_id, ack_tx);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let params = format!(r#"{{"notifications":{{"resourceSubscriptions":[{}]}}}}"#, splice::quote(uri));
    let task = {
        let up = up.clone();
        tokio::spawn(async move {
            let params = era::to_backend(Some(&params), &up, None).map(|p| p.into_owned());
            let _ =
                done_tx.send(up.request(id, "subscriptions/listen", params.as_deref(), None, FOREVER).await);
        })
    };
    // From here on, however this ends (even by the caller's future being dropped), the ack entry
    // goes, and so does the listen unless it was taken.
    let mut setup = ListenSetup { gw, ack: listen_id, task: task.abort_handle(), taken: false };
    let outcome = tokio::select! {
        _ = ack_rx => Ok(Some(task.abort_handle())),
        ended = done_rx => Err(match ended {
            Ok(Ok(reply)) => Failure::Refused(match reply.error {
                Some(e) => e.get().to_owned(),
                None => "it ended the listen at once".to_owned(),
            }),
            Ok(Err(e)) => Failure::Upstream(e),
            Err(_) => Failure::Upstream(UpstreamError::Closed(up.id().to_owned())),
        }),
        _ = tokio::time::sleep(timeout) => {
            tracing::debug!(server = %up.id(), "no acknowledgement of the listen for `{uri}`; it is open, so it counts");
            Ok(Some(task.abort_handle()))
        }
    };
    setup.taken = outcome.is_ok();
    drop(setup);
    outcome
}

/// `resources/subscribe` to `uri` at a legacy backend connection (owning what it needs, so that
/// it can be handed to a task).
fn subscribe_legacy(
    up: Arc<Upstream>,
    uri: &str,
) -> impl Future<Output = Result<Option<AbortHandle>, Failure>> + Send + 'static {
    let params = format!(r#"{{"uri":{}}}"#, splice::quote(uri));
    let timeout = subscribe_timeout(&up);
    async move {
        let reply = up
            .request(up.next_id(), "resources/subscribe", Some(&params), None, timeout)
            .await
            .map_err(Failure::Upstream)?;
        match reply.result {
            Some(_) => Ok(None),
            None => Err(Failure::Refused(reply.error.as_deref().map_or("", |e| e.get()).to_owned())),
        }
    }
}

/// A modern listen being set up by `subscribe_at`. Dropped, it removes its ack entry and, unless
/// the listen was taken, aborts its task, which cancels the request at the backend (the listen
/// stream closes): a caller cancelled mid-setup leaves no listen open that nothing counts on.
struct ListenSetup<'a> {
    gw: &'a Gateway,
    ack: ListenId,
    task: AbortHandle,
    taken: bool,
}

impl Drop for ListenSetup<'_> {
    fn drop(&mut self) {
        held(self.gw).acks.remove(&self.ack);
        if !self.taken {
            self.task.abort();
        }
    }
}

/// A modern backend acknowledged one of vMCP's listens (`relay`): wake its `subscribe_at`.
pub(crate) fn acknowledged(gw: &Gateway, up: &Arc<Upstream>, params: Option<&str>) {
    let Some(id) = params
        .and_then(|p| splice::get(p, "_meta"))
        .and_then(|m| splice::get(m, vmcp_protocol::meta::SUBSCRIPTION_ID))
        .and_then(|raw| raw.parse::<u64>().ok().or_else(|| splice::as_str(raw)?.parse().ok()))
    else {
        return;
    };
    if let Some(tx) = held(gw).acks.remove(&(conn(up), id)) {
        let _ = tx.send(());
    }
}

/// One session fewer on (server, replica, uri); the last one ends the backend subscription at
/// the replica that holds it.
pub fn release(gw: &Gateway, session: u64, m: &Arc<Mounted>, uri: &str) {
    release_where(gw, session, None, m, uri);
}

/// `release`, if the session is counted through its subscribe `token` (when given): the late
/// undo of an older subscribe leaves a newer one counted.
fn release_where(gw: &Gateway, session: u64, token: Option<u64>, m: &Arc<Mounted>, uri: &str) {
    let end = {
        let mut held = held(gw);
        let entry = (session, m.spec.id.clone(), uri.to_owned());
        let Some(&Counted { replica, token: counted }) = held.by_session.get(&entry) else {
            return;
        };
        if token.is_some_and(|t| t != counted) {
            return;
        }
        held.by_session.remove(&entry);
        let key = (m.spec.id.clone(), replica, uri.to_owned());
        match held.counts.get_mut(&key) {
            Some(n) if *n > 1 => {
                *n -= 1;
                return;
            }
            Some(_) => {
                held.counts.remove(&key);
            }
            None => return,
        }
        if held.pending.contains_key(&key) {
            // Its first subscribe is still out: it ends the subscription once answered (an
            // unsubscribe sent now could reach the backend before it).
            return;
        }
        let listen = held.listens.remove(&key);
        // Read under the lock: a replica `restore`s and a server is remounted under it too, so
        // exactly one ends a subscription whose last session leaves while it is being made again;
        // and `m` may be a server replaced since the caller looked it up: end it where it is held.
        let Some(up) = gw.mounts().get(&m.spec.id).and_then(|c| c.replicas.get(replica)).map(Replica::up)
        else {
            return end_at_none(listen);
        };
        held.end(up, uri.to_owned(), listen)
    };
    end_at(end);
}

fn end_at_none(listen: Option<AbortHandle>) {
    if let Some(task) = listen {
        task.abort();
    }
}

/// A backend subscription to end (`Held::end`): where, its URI, its listen (modern) or its
/// turn for a `resources/unsubscribe` (legacy, while the connection runs).
struct End {
    up: Arc<Upstream>,
    uri: String,
    listen: Option<AbortHandle>,
    turn: Option<Turn>,
}

/// End a backend subscription: abort its listen (dropping the request cancels it at the
/// backend), or send a legacy backend `resources/unsubscribe` once the one before it there is
/// answered.
fn end_at(End { up, uri, listen, turn }: End) {
    if let Some(task) = listen {
        task.abort();
        return;
    }
    let Some(mut turn) = turn else { return };
    let params = format!(r#"{{"uri":{}}}"#, splice::quote(&uri));
    tokio::spawn(async move {
        after(turn.after.take()).await;
        // The server's own timeout for it, as for a routed request: a fresh subscribe to the
        // same URI waits behind this one, at most that long.
        let timeout = up.spec.timeout_for("resources/unsubscribe");
        let _ = up.request(up.next_id(), "resources/unsubscribe", Some(&params), None, timeout).await;
        drop(turn);
    });
}

/// Replica `i` of `m` came back as `next`, a new process that knows nothing of the subscriptions
/// its predecessor held: make each again at `next`, once per URI however many sessions share it,
/// then `swap` puts `next` in the replica's place. Before the swap the replica is no candidate,
/// so no session subscribes there meanwhile; a subscription whose last session left meanwhile
/// is ended again at once. A subscription that cannot be made again is logged; its sessions
/// stay subscribed through vMCP. A `next` that did not get ready takes the place at once: it
/// holds nothing, and the subscriptions are made at the process started after it.
pub(crate) async fn restore(gw: &Gateway, m: &Mounted, i: usize, next: &Arc<Upstream>, swap: impl FnOnce()) {
    let server = &m.spec.id;
    let uris = {
        let held = held(gw);
        // A server starting to replace another, or replaced: nothing in the table is its own.
        if !is_current(gw, m) {
            swap();
            return;
        }
        // A subscription still being made was being made at the dead process: it fails and is
        // taken back, with the sessions that joined it, by its own `acquire`.
        let uris: Vec<String> = held
            .counts
            .keys()
            .filter(|k| k.0 == *server && k.1 == i && !held.pending.contains_key(k))
            .map(|k| k.2.clone())
            .collect();
        if uris.is_empty() || !next.is_ready() {
            swap();
            return;
        }
        uris
    };
    let made = futures_util::future::join_all(uris.iter().map(|uri| subscribe_at(gw, next, uri))).await;
    let (mut restored, mut ends) = (0, Vec::new());
    {
        let mut held = held(gw);
        swap();
        // Replaced while these were being made (`remount`): they are not the table's any more.
        let current = is_current(gw, m);
        for (uri, outcome) in uris.into_iter().zip(made) {
            match outcome {
                Ok(listen) if !current => ends.push(held.end(next.clone(), uri, listen)),
                Err(_) if !current => {}
                outcome => {
                    let key = (server.clone(), i, uri);
                    restored += usize::from(adopt(&mut held, key, next, outcome, &mut ends, "restart"));
                }
            }
        }
    }
    tracing::info!(server = %server, replica = i, "re-established {restored} resource subscription(s)");
    ends.into_iter().for_each(end_at);
}

/// A subscription `restore` or `remount` made again at `up`, in the table step after the swap:
/// taken into the table if a session still counts on it (`true`), else added to `ends`. One that
/// could not be made is logged if a session counts on it (it is lost in the `what`).
fn adopt(
    held: &mut Held,
    key: Key,
    up: &Arc<Upstream>,
    outcome: Result<Option<AbortHandle>, Failure>,
    ends: &mut Vec<End>,
    what: &str,
) -> bool {
    let counted = held.counts.contains_key(&key);
    match outcome {
        Ok(listen) if !counted => ends.push(held.end(up.clone(), key.2, listen)),
        Ok(listen) => {
            if let Some(old) = listen.and_then(|l| held.listens.insert(key, l)) {
                old.abort();
            }
            return true;
        }
        Err(_) if !counted => {}
        Err(f) => tracing::error!(
            server = %key.0, replica = key.1,
            "subscription lost in the {what}: {}", f.rpc(&key.0, &key.2).message
        ),
    }
    false
}

#[cfg(test)]
mod tests;
