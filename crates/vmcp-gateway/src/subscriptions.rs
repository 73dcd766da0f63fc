//! Resource subscriptions through vMCP: per session (who gets `resources/updated`), and per
//! (server, uri) at the backend, counted so that the backend subscription lives while any
//! session wants it and ends with the last one.
//!
//! A legacy backend is subscribed with `resources/subscribe`; a modern backend with a
//! `subscriptions/listen` request naming the URI, held open until the last session leaves.

use std::sync::Arc;
use std::time::Duration;

use vmcp_protocol::splice;
use vmcp_protocol::{Era, RpcError};

use crate::era;
use crate::gateway::{Gateway, Mounted};
use crate::route::{self, Reply};
use crate::session::Session;

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
            && let Err(e) = acquire(gw, &m, &uri).await
        {
            session.unsubscribe(&uri);
            return Err(e);
        }
    } else if session.unsubscribe(&uri) {
        release(gw, &m, &uri);
    }
    Ok(Reply::Result(era::to_client("{}", session).into_owned()))
}

/// A modern client's listen names `uri`: subscribe this session through vMCP.
pub async fn for_listener(gw: &Gateway, session: &Arc<Session>, uri: &str) -> Result<(), RpcError> {
    let params = format!(r#"{{"uri":{}}}"#, splice::quote(uri));
    handle(gw, session, "resources/subscribe", Some(&params)).await.map(|_| ())
}

/// Count one more session on (server, uri); the first one subscribes at the backend.
async fn acquire(gw: &Gateway, m: &Arc<Mounted>, uri: &str) -> Result<(), RpcError> {
    let key = (m.spec.id.clone(), uri.to_owned());
    let first = {
        let mut counts = gw.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key.clone()).or_insert(0);
        *n += 1;
        *n == 1
    };
    if !first {
        return Ok(());
    }
    let outcome = match m.up().era() {
        Some(Era::Modern) => {
            let up = m.up();
            let params =
                format!(r#"{{"notifications":{{"resourceSubscriptions":[{}]}}}}"#, splice::quote(uri));
            let task = tokio::spawn(async move {
                let params = era::to_backend(Some(&params), &up, None).map(|p| p.into_owned());
                let forever = Duration::from_secs(60 * 60 * 24 * 365);
                let _ =
                    up.request(up.next_id(), "subscriptions/listen", params.as_deref(), None, forever).await;
            });
            gw.upstream_listens
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key.clone(), task.abort_handle());
            Ok(())
        }
        _ => {
            let params = format!(r#"{{"uri":{}}}"#, splice::quote(uri));
            let timeout = Duration::from_secs_f64(m.spec.timeout_secs);
            match m.up().request(m.up().next_id(), "resources/subscribe", Some(&params), None, timeout).await
            {
                Ok(reply) if reply.result.is_some() => Ok(()),
                Ok(reply) => Err(RpcError::new(
                    vmcp_protocol::ErrorCode::BackendError,
                    format!(
                        "server `{}` refused the subscription: {}",
                        m.spec.id,
                        reply.error.as_deref().map_or("", |e| e.get())
                    ),
                )),
                Err(e) => Err(route::upstream_error(&e)),
            }
        }
    };
    if outcome.is_err() {
        gw.subscriptions.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
    }
    outcome
}

/// One session fewer on (server, uri); the last one ends the backend subscription.
pub fn release(gw: &Gateway, m: &Arc<Mounted>, uri: &str) {
    let key = (m.spec.id.clone(), uri.to_owned());
    let last = {
        let mut counts = gw.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        match counts.get_mut(&key) {
            Some(n) if *n <= 1 => {
                counts.remove(&key);
                true
            }
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    };
    if !last {
        return;
    }
    if let Some(task) = gw.upstream_listens.lock().unwrap_or_else(|p| p.into_inner()).remove(&key) {
        task.abort(); // dropping the request cancels it at the backend
        return;
    }
    if m.up().is_ready() {
        let m = m.clone();
        let params = format!(r#"{{"uri":{}}}"#, splice::quote(uri));
        tokio::spawn(async move {
            let _ = m
                .up()
                .request(
                    m.up().next_id(),
                    "resources/unsubscribe",
                    Some(&params),
                    None,
                    Duration::from_secs(5),
                )
                .await;
        });
    }
}
