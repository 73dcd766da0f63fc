//! Resource subscriptions through vMCP: per session (who gets `resources/updated`), and per
//! (server, replica, uri) at the backend, counted so that the backend subscription lives while
//! any session wants it and ends with the last one.
//!
//! A subscription is stateful traffic: it is held by the session's affinity replica (the one
//! its MRTR retries go to), and its unsubscribe goes to the replica that holds it, even if the
//! session's affinity has moved since.
//!
//! A legacy backend is subscribed with `resources/subscribe`; a modern backend with a
//! `subscriptions/listen` request naming the URI, held open until the last session leaves.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use vmcp_protocol::splice;
use vmcp_protocol::{Era, RpcError};

use crate::era;
use crate::gateway::{Gateway, Mounted};
use crate::route::{self, Reply};
use crate::session::Session;

/// (server, replica, uri).
type Key = (String, usize, String);

/// The subscriptions vMCP holds at backends.
#[derive(Default)]
pub(crate) struct Held {
    /// How many sessions want each backend subscription.
    counts: HashMap<Key, usize>,
    /// The replica holding each session's subscription: (session, server, uri) → replica.
    by_session: HashMap<(u64, String, String), usize>,
    /// Modern backends: the listen request held open per subscription.
    listens: HashMap<Key, tokio::task::AbortHandle>,
    /// Backend subscriptions still being made: whether they took, once known. A session that
    /// joins meanwhile shares the first one's outcome instead of counting on a subscription
    /// that may fail.
    pending: HashMap<Key, tokio::sync::watch::Receiver<Option<bool>>>,
}

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
    let up = lease.up.clone();
    let outcome = match up.era() {
        Some(Era::Modern) => {
            let params =
                format!(r#"{{"notifications":{{"resourceSubscriptions":[{}]}}}}"#, splice::quote(uri));
            let task = tokio::spawn(async move {
                let params = era::to_backend(Some(&params), &up, None).map(|p| p.into_owned());
                let forever = Duration::from_secs(60 * 60 * 24 * 365);
                let _ =
                    up.request(up.next_id(), "subscriptions/listen", params.as_deref(), None, forever).await;
            });
            held(gw).listens.insert(key.clone(), task.abort_handle());
            lease.answered();
            Ok(())
        }
        _ => {
            let params = format!(r#"{{"uri":{}}}"#, splice::quote(uri));
            let timeout = Duration::from_secs_f64(m.spec.timeout_secs);
            match up.request(up.next_id(), "resources/subscribe", Some(&params), None, timeout).await {
                Ok(reply) => {
                    lease.answered();
                    match reply.result {
                        Some(_) => Ok(()),
                        None => Err(RpcError::new(
                            vmcp_protocol::ErrorCode::BackendError,
                            format!(
                                "server `{}` refused the subscription: {}",
                                m.spec.id,
                                reply.error.as_deref().map_or("", |e| e.get())
                            ),
                        )),
                    }
                }
                Err(e) => {
                    lease.failed();
                    Err(route::upstream_error(&e))
                }
            }
        }
    };
    {
        // One step, so that a session joining now sees either the pending outcome or the count
        // as it stands after it.
        let mut held = held(gw);
        held.pending.remove(&key);
        if outcome.is_err() {
            forget(&mut held, session, &key);
        }
    }
    let _ = made.send(Some(outcome.is_ok()));
    outcome
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
    let (replica, listen) = {
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
        (replica, held.listens.remove(&key))
    };
    if let Some(task) = listen {
        task.abort(); // dropping the request cancels it at the backend
        return;
    }
    let Some(up) = m.replicas.get(replica).map(crate::mounted::Replica::up) else { return };
    if up.is_ready() {
        let params = format!(r#"{{"uri":{}}}"#, splice::quote(uri));
        tokio::spawn(async move {
            let timeout = Duration::from_secs(5);
            let _ = up.request(up.next_id(), "resources/unsubscribe", Some(&params), None, timeout).await;
        });
    }
}
