//! The legacy HTTP+SSE transport (2024-11-05) for old clients: `GET /sse` opens a session whose
//! first event (`endpoint`) names the URL to POST messages to; every answer and notification
//! then arrives on that stream.
//!
//! Invariants:
//! - the sessions live in the front's `Registry` with the Streamable HTTP ones: they count
//!   against the same `max_sessions` (503 past it) and the same reaper closes them when no POST
//!   came for `session_idle_timeout`;
//! - a session ends when its stream closes (client gone) or when it is closed (reaped); either
//!   way the stream ends, the gateway session closes, its place is freed and its `sessionId` is
//!   unknown (404) from then on.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use vmcp_protocol::sse;

use super::HttpState;
use super::registry::LastSeen;
use crate::dispatch;
use crate::session::Session;

/// Requests in flight per SSE session.
const MAX_IN_FLIGHT: usize = 1024;

/// One open HTTP+SSE session (the `sessionId` query parameter of its endpoint URL).
pub(super) struct SseSession {
    pub id: String,
    pub session: Arc<Session>,
    pub(super) last_seen: LastSeen,
    in_flight: Arc<Semaphore>,
    closed: CancellationToken,
}

impl SseSession {
    pub(super) fn new(id: String, session: Arc<Session>) -> Self {
        Self {
            id,
            session,
            last_seen: LastSeen::now(),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            closed: CancellationToken::new(),
        }
    }

    /// End the session's stream; its task then closes the gateway session.
    pub(super) fn close(&self) {
        self.closed.cancel();
    }
}

pub(super) async fn connect(
    State(st): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    let (tx, mut rx) = mpsc::channel::<String>(1024);
    let session = st.gw.open_session(super::auth::caller(peer), tx);
    let Some(sse) = st.sessions.insert_sse(session.clone()) else {
        st.gw.close_session(&session);
        return super::registry::too_many_sessions();
    };
    let (body_tx, body_rx) = mpsc::channel::<String>(1024);
    let _ = body_tx.try_send(sse::encode(None, Some("endpoint"), &format!("/messages?sessionId={}", sse.id)));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => if body_tx.send(sse::encode(None, Some("message"), &m)).await.is_err() { break },
                    None => break,
                },
                _ = body_tx.closed() => break,
                _ = sse.closed.cancelled() => break,
            }
        }
        // Unknown before the client sees its stream end (dropping `body_tx` ends it).
        st.sessions.remove_sse(&sse.id);
        st.gw.close_session(&sse.session);
        drop(body_tx);
        tracing::debug!(session = %sse.id, "SSE session closed");
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
    // Another caller's session answers as an unknown one (see `auth::owns_session`).
    let found =
        st.sessions.get_sse(&target.session_id).filter(|s| super::auth::owns_session(&s.session, peer));
    let Some(sse) = found else {
        return (StatusCode::NOT_FOUND, "unknown session").into_response();
    };
    sse.last_seen.touch();
    let Ok(permit) = sse.in_flight.clone().acquire_owned().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    dispatch::accept(&st.gw, &sse.session, &body, permit);
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
