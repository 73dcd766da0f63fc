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
//! A replica the supervisor restarts is a new process that knows none of this: `restore` makes
//! every subscription its predecessor held again (once per URI, however many sessions share
//! it) before the new process takes the replica's place, so it returns to rotation with them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;
use vmcp_protocol::splice;
use vmcp_protocol::{Era, RpcError};

use crate::era;
use crate::gateway::{Gateway, Mounted};
use crate::route::{self, Reply};
use crate::session::Session;
use crate::upstream::{Upstream, UpstreamError};

/// (server, replica, uri).
type Key = (String, usize, String);

/// A listen request vMCP sent: (its upstream, as an address; its request id).
type ListenId = (usize, u64);

/// The subscriptions vMCP holds at backends.
#[derive(Default)]
pub(crate) struct Held {
    /// How many sessions want each backend subscription.
    counts: HashMap<Key, usize>,
    /// The replica holding each session's subscription: (session, server, uri) → replica.
    by_session: HashMap<(u64, String, String), usize>,
    /// Modern backends: the listen request held open per subscription.
    listens: HashMap<Key, AbortHandle>,
    /// Backend subscriptions still being made: whether they took, once known. A session that
    /// joins meanwhile shares the first one's outcome instead of counting on a subscription
    /// that may fail.
    pending: HashMap<Key, tokio::sync::watch::Receiver<Option<bool>>>,
    /// Modern listens waiting for the backend's `notifications/subscriptions/acknowledged`.
    acks: HashMap<ListenId, tokio::sync::oneshot::Sender<()>>,
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
            Self::Refused(why) => RpcError::new(
                vmcp_protocol::ErrorCode::BackendError,
                format!("server `{server}` refused the subscription to `{uri}`: {why}"),
            ),
            Self::Upstream(e) => route::upstream_error(e),
        }
    }
}

/// Long enough for a listen request that lives as long as its subscription.
const FOREVER: Duration = Duration::from_secs(60 * 60 * 24 * 365);

fn held(gw: &Gateway) -> std::sync::MutexGuard<'_, Held> {
    gw.subscriptions.lock().unwrap_or_else(|p| p.into_inner())
}

/// `resources/subscribe` or `resources/unsubscribe` from a client.
pub async fn handle(
    gw: &Gateway,
    session: &Arc<Session>,
    method: &str,
    params: Option<&str>,
) -> Result<Reply, RpcError> {
    let routed = route::resolve(gw, session, method, params)?;
    let m = routed.mounted;
    let uri = splice::get(&routed.params, "uri")
        .and_then(splice::as_str)
        .map(|u| u.into_owned())
        .unwrap_or_default();
    if method == "resources/subscribe" {
        if session.subscribe(&uri)
            && let Err(e) = acquire(gw, session.id, &m, &uri).await
        {
            session.unsubscribe(&uri);
            return Err(e);
        }
    } else if session.unsubscribe(&uri) {
        release(gw, session.id, &m, &uri);
    }
    Ok(Reply::Result(era::to_client("{}", session).into_owned()))
}

/// A modern client's listen names `uri`: subscribe this session through vMCP.
pub async fn for_listener(gw: &Gateway, session: &Arc<Session>, uri: &str) -> Result<(), RpcError> {
    let params = format!(r#"{{"uri":{}}}"#, splice::quote(uri));
    handle(gw, session, "resources/subscribe", Some(&params)).await.map(|_| ())
}

/// Count the session on (server, its replica, uri); the first one subscribes at that replica.
async fn acquire(gw: &Gateway, session: u64, m: &Arc<Mounted>, uri: &str) -> Result<(), RpcError> {
    let lease = m.choose(Some(crate::resilience::affinity_key(session)), 0)?;
    let replica = lease.index;
    let key = (m.spec.id.clone(), replica, uri.to_owned());
    let (made, joined) = {
        let mut held = held(gw);
        held.by_session.insert((session, m.spec.id.clone(), uri.to_owned()), replica);
        let n = held.counts.entry(key.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            let (tx, rx) = tokio::sync::watch::channel(None);
            held.pending.insert(key.clone(), rx);
            (Some(tx), None)
        } else {
            (None, held.pending.get(&key).cloned())
        }
    };
    let Some(made) = made else {
        // Another session's subscribe at this replica may still be out: share its outcome.
        let took = match joined {
            Some(mut rx) => rx.wait_for(Option::is_some).await.is_ok_and(|o| *o == Some(true)),
            None => true,
        };
        if took {
            return Ok(());
        }
        forget(&mut held(gw), session, &key);
        return Err(RpcError::new(
            vmcp_protocol::ErrorCode::BackendError,
            format!("server `{}` refused the subscription to `{uri}`", m.spec.id),
        ));
    };
    let timeout = Duration::from_secs_f64(m.spec.timeout_secs);
    let outcome = subscribe_at(gw, &lease.up, uri, timeout).await;
    match &outcome {
        Err(Failure::Upstream(_)) => lease.failed(),
        _ => lease.answered(),
    }
    {
        // One step, so that a session joining now sees either the pending outcome or the count
        // as it stands after it.
        let mut held = held(gw);
        held.pending.remove(&key);
        match &outcome {
            // Every session left while the listen was being made: end it.
            Ok(Some(listen)) if !held.counts.contains_key(&key) => listen.abort(),
            Ok(Some(listen)) => {
                held.listens.insert(key.clone(), listen.clone());
            }
            Ok(None) => {}
            Err(_) => forget(&mut held, session, &key),
        }
    }
    let _ = made.send(Some(outcome.is_ok()));
    outcome.map(|_| ()).map_err(|f| f.rpc(&m.spec.id, uri))
}

/// Subscribe to `uri` at one backend connection: `resources/subscribe` (legacy), or a
/// `subscriptions/listen` naming it (modern), held open by a task and taken once the backend
/// acknowledges it (or, from a backend that sends no acknowledgement, when it is still open after
/// `timeout`). `Ok(Some(listen))`: the task to abort to end it.
async fn subscribe_at(
    gw: &Gateway,
    up: &Arc<Upstream>,
    uri: &str,
    timeout: Duration,
) -> Result<Option<AbortHandle>, Failure> {
    if up.era() != Some(Era::Modern) {
        let params = format!(r#"{{"uri":{}}}"#, splice::quote(uri));
        let reply = up
            .request(up.next_id(), "resources/subscribe", Some(&params), None, timeout)
            .await
            .map_err(Failure::Upstream)?;
        return match reply.result {
            Some(_) => Ok(None),
            None => Err(Failure::Refused(reply.error.as_deref().map_or("", |e| e.get()).to_owned())),
        };
    }
    let id = up.next_id();
    let listen_id = (Arc::as_ptr(up) as usize, id);
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
    held(gw).acks.remove(&listen_id);
    if outcome.is_err() {
        task.abort();
    }
    outcome
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
    if let Some(tx) = held(gw).acks.remove(&(Arc::as_ptr(up) as usize, id)) {
        let _ = tx.send(());
    }
}

/// Take back one session's count on a backend subscription that did not take.
fn forget(held: &mut Held, session: u64, key: &Key) {
    let (server, _, uri) = key;
    held.by_session.remove(&(session, server.clone(), uri.clone()));
    if let Some(n) = held.counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            held.counts.remove(key);
        }
    }
}

/// One session fewer on (server, replica, uri); the last one ends the backend subscription at
/// the replica that holds it.
pub fn release(gw: &Gateway, session: u64, m: &Arc<Mounted>, uri: &str) {
    let (up, listen) = {
        let mut held = held(gw);
        let Some(replica) = held.by_session.remove(&(session, m.spec.id.clone(), uri.to_owned())) else {
            return;
        };
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
        // Read under the lock: a replica `restore`s and swaps in under it too, so exactly one of
        // the two ends a subscription whose last session leaves while its replica comes back.
        let Some(up) = m.replicas.get(replica).map(crate::mounted::Replica::up) else { return };
        (up, held.listens.remove(&key))
    };
    end_at(up, uri, listen);
}

/// End a backend subscription at `up`: abort its listen (dropping the request cancels it at
/// the backend), or send a legacy backend `resources/unsubscribe`.
fn end_at(up: Arc<Upstream>, uri: &str, listen: Option<AbortHandle>) {
    if let Some(task) = listen {
        task.abort();
        return;
    }
    if up.is_ready() && up.era() != Some(Era::Modern) {
        let params = format!(r#"{{"uri":{}}}"#, splice::quote(uri));
        tokio::spawn(async move {
            let timeout = Duration::from_secs(5);
            let _ = up.request(up.next_id(), "resources/unsubscribe", Some(&params), None, timeout).await;
        });
    }
}

/// Replica `i` of `m` came back as `next`, a new process that knows nothing of the subscriptions
/// its predecessor held: make each again at `next`, once per URI however many sessions share it,
/// then `swap` puts `next` in the replica's place. Before the swap the replica is no candidate,
/// so no session subscribes there meanwhile; a subscription whose last session left meanwhile
/// is ended again at once. A subscription that cannot be made again is logged; its sessions
/// stay subscribed through vMCP.
pub(crate) async fn restore(gw: &Gateway, m: &Mounted, i: usize, next: &Arc<Upstream>, swap: impl FnOnce()) {
    let server = &m.spec.id;
    let uris: Vec<String> = {
        let held = held(gw);
        // A subscription still being made was being made at the dead process: it fails and is
        // taken back by its own `acquire`.
        held.counts
            .keys()
            .filter(|k| k.0 == *server && k.1 == i && !held.pending.contains_key(k))
            .map(|k| k.2.clone())
            .collect()
    };
    if uris.is_empty() {
        swap();
        return;
    }
    let timeout = Duration::from_secs_f64(m.spec.timeout_secs);
    let made =
        futures_util::future::join_all(uris.iter().map(|uri| subscribe_at(gw, next, uri, timeout))).await;
    let (mut restored, mut stale) = (0, Vec::new());
    {
        let mut held = held(gw);
        swap();
        for (uri, outcome) in uris.into_iter().zip(made) {
            let key = (server.clone(), i, uri);
            match outcome {
                Err(f) => tracing::error!(
                    server = %server, replica = i,
                    "subscription lost in the restart: {}", f.rpc(server, &key.2).message
                ),
                Ok(listen) if !held.counts.contains_key(&key) => stale.push((key.2, listen)),
                Ok(listen) => {
                    restored += 1;
                    if let Some(old) = listen.and_then(|l| held.listens.insert(key, l)) {
                        old.abort();
                    }
                }
            }
        }
    }
    tracing::info!(server = %server, replica = i, "re-established {restored} resource subscription(s)");
    for (uri, listen) in stale {
        end_at(next.clone(), &uri, listen);
    }
}
