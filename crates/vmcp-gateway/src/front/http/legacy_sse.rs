//! The legacy HTTP+SSE transport (2024-11-05) for old clients: `GET /sse` opens a session whose
//! first event (`endpoint`) names the URL to POST messages to; every answer and notification
//! then arrives on that stream. The session ends when the stream closes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::{Semaphore, mpsc};
use vmcp_protocol::sse;

use super::HttpState;
use crate::dispatch;
use crate::session::Session;

/// An open SSE session and the bound on its requests in flight.
type Entry = (Arc<Session>, Arc<Semaphore>);

/// Open SSE sessions of one HTTP front by id (the `sessionId` query parameter of the endpoint
/// URL).
#[derive(Default)]
pub(super) struct SseSessions(Mutex<HashMap<String, Entry>>);

impl SseSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(super) async fn connect(
    State(st): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    let (tx, mut rx) = mpsc::channel::<String>(1024);
    let session = st.gw.open_session(super::auth::caller(peer), tx);
    let id = format!("{:032x}", rand::random::<u128>());
    st.sse_sessions.lock().insert(id.clone(), (session.clone(), Arc::new(Semaphore::new(1024))));
    let (body_tx, body_rx) = mpsc::channel::<String>(1024);
    let _ = body_tx.try_send(sse::encode(None, Some("endpoint"), &format!("/messages?sessionId={id}")));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => if body_tx.send(sse::encode(None, Some("message"), &m)).await.is_err() { break },
                    None => break,
                },
                _ = body_tx.closed() => break,
            }
        }
        st.sse_sessions.lock().remove(&id);
        st.gw.close_session(&session);
        tracing::debug!(session = %id, "SSE session closed");
    });
    super::streamable::sse_response(body_rx)
}

#[derive(serde::Deserialize)]
pub(super) struct Target {
    #[serde(rename = "sessionId", alias = "session_id")]
    session_id: String,
}

pub(super) async fn message(
    State(st): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(target): Query<Target>,
    body: Bytes,
) -> Response {
    let found = st.sse_sessions.lock().get(&target.session_id).cloned();
    // Another caller's session answers as an unknown one (see `auth::owns_session`).
    let found = found.filter(|(session, _)| super::auth::owns_session(session, peer));
    let Some((session, limit)) = found else {
        return (StatusCode::NOT_FOUND, "unknown session").into_response();
    };
    let Ok(permit) = limit.acquire_owned().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    dispatch::accept(&st.gw, &session, &body, permit);
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
