//! Streamable HTTP on one endpoint, both eras.
//!
//! - **legacy** (2025-03-26 … 2025-11-25): `initialize` opens a session (`Mcp-Session-Id`); POST
//!   carries requests (answered as JSON, or as SSE as soon as related messages such as progress or
//!   a sampling request must go out first), notifications and responses (202); GET opens the
//!   session's own stream; DELETE ends the session; `Last-Event-ID` resumes a stream.
//! - **modern** (2026-07-28): stateless POST; `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name`
//!   must agree with the body (-32020); closing the response stream cancels the request; GET is
//!   405.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::join_all;
use tokio::sync::mpsc;
use vmcp_protocol::message::{self, is_batch, split_batch};
use vmcp_protocol::{ErrorCode, Message, MessageKind, ProtocolVersion, RpcError, meta, splice, sse, version};

use super::HttpState;
use super::registry::HttpSession;
use crate::dispatch;
use crate::session::Session;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const KEEP_ALIVE: Duration = Duration::from_secs(15);
const RETRY_MS: u64 = 1000;
/// Legacy-era methods the modern era (2026-07-28) removed.
const REMOVED_IN_MODERN: [&str; 5] =
    ["initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"];

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn accepts(headers: &HeaderMap, mime: &str) -> bool {
    header(headers, "accept").is_some_and(|a| {
        a.split(',').any(|p| {
            let p = p.trim().split(';').next().unwrap_or("").trim();
            p == mime || p == "*/*" || (p.ends_with("/*") && mime.starts_with(&p[..p.len() - 1]))
        })
    })
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn rpc_error(status: StatusCode, id: Option<&str>, e: RpcError) -> Response {
    json(status, message::error_response(id, &e.to_json()))
}

fn bad_request(msg: impl Into<String>) -> Response {
    rpc_error(StatusCode::BAD_REQUEST, None, RpcError::new(ErrorCode::InvalidRequest, msg))
}

pub(super) async fn post(
    State(st): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !(accepts(&headers, "application/json") && accepts(&headers, "text/event-stream")) {
        return (StatusCode::NOT_ACCEPTABLE, "Accept must list application/json and text/event-stream")
            .into_response();
    }
    if !header(&headers, "content-type").is_some_and(|c| c.starts_with("application/json")) {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json").into_response();
    }
    if let Some(id) = header(&headers, SESSION_HEADER) {
        // Another caller's session answers as an unknown one (see `auth::owns_session`).
        let Some(hs) = st.sessions.get(id).filter(|hs| super::auth::owns_session(&hs.session, peer)) else {
            return rpc_error(
                StatusCode::NOT_FOUND,
                None,
                RpcError::new(ErrorCode::InvalidRequest, "session not found; initialize again"),
            );
        };
        if let Some(v) = header(&headers, VERSION_HEADER)
            && ProtocolVersion::parse(v).is_none_or(|v| v.era() != vmcp_protocol::Era::Legacy)
        {
            return bad_request(format!("unsupported MCP-Protocol-Version `{v}`"));
        }
        hs.touch();
        return legacy_post(&st, hs, &body).await;
    }
    if is_batch(&body) {
        return bad_request("a batch needs a session (initialize first)");
    }
    let msg = match Message::parse(&body) {
        Ok(m) => m,
        Err(e) => return rpc_error(StatusCode::BAD_REQUEST, None, e.to_rpc()),
    };
    // A request that names the modern version in its header is modern, even `initialize`.
    let modern_header = header(&headers, VERSION_HEADER) == Some(version::MODERN);
    if msg.method() == "initialize" && msg.kind() == MessageKind::Request && !modern_header {
        return initialize(&st, peer, msg).await;
    }
    modern_post(&st, peer, &headers, msg).await
}

async fn initialize(st: &Arc<HttpState>, peer: SocketAddr, msg: Message) -> Response {
    let (tx, mut rx) = mpsc::channel::<String>(1024);
    let session = st.gw.open_session(super::auth::caller(peer), tx);
    let line = dispatch::request(&st.gw, &session, msg).await;
    let version = session.info().version.unwrap_or(ProtocolVersion::V2025_11_25);
    let Some(hs) = st.sessions.insert(session.clone(), version) else {
        st.gw.close_session(&session);
        return super::registry::too_many_sessions();
    };
    // Messages not tied to a request go to the session's own stream (GET), kept for resumption.
    // It stops when the session ends: it holds the session, so `rx` alone would never close.
    let pump = hs.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                line = rx.recv() => match line {
                    Some(line) => drop(pump.push(0, &line)),
                    None => break,
                },
                () = pump.ended() => break,
            }
        }
    });
    tracing::debug!(session = %hs.id, version = version.as_str(), "HTTP session opened");
    let mut resp = json(StatusCode::OK, line);
    if let Ok(v) = HeaderValue::from_str(&hs.id) {
        resp.headers_mut().insert(SESSION_HEADER, v);
    }
    resp
}

async fn legacy_post(st: &Arc<HttpState>, hs: Arc<HttpSession>, body: &[u8]) -> Response {
    if is_batch(body) {
        if !hs.version.allows_batches() {
            return bad_request("batches are only part of protocol version 2025-03-26");
        }
        let items = match split_batch(body) {
            Ok(items) => items,
            Err(e) => return rpc_error(StatusCode::BAD_REQUEST, None, e.to_rpc()),
        };
        let answers = join_all(items.iter().map(|raw| {
            let (gw, session) = (st.gw.clone(), hs.session.clone());
            async move {
                match Message::parse(raw.get().as_bytes()) {
                    Err(e) => Some(message::error_response(None, &e.to_rpc().to_json())),
                    Ok(m) if m.kind() == MessageKind::Request => {
                        Some(dispatch::request(&gw, &session, m).await)
                    }
                    Ok(m) => {
                        take_non_request(&gw, &session, m);
                        None
                    }
                }
            }
        }))
        .await;
        let answers: Vec<String> = answers.into_iter().flatten().collect();
        if answers.is_empty() {
            return StatusCode::ACCEPTED.into_response();
        }
        return json(StatusCode::OK, format!("[{}]", answers.join(",")));
    }
    let msg = match Message::parse(body) {
        Ok(m) => m,
        Err(e) => return rpc_error(StatusCode::BAD_REQUEST, None, e.to_rpc()),
    };
    if msg.kind() != MessageKind::Request {
        take_non_request(&st.gw, &hs.session, msg);
        return StatusCode::ACCEPTED.into_response();
    }
    let priming = hs.version >= ProtocolVersion::V2025_11_25;
    answer(st, hs.session.clone(), msg, Stream::Legacy { hs, priming }).await
}

fn take_non_request(gw: &Arc<crate::gateway::Gateway>, session: &Arc<Session>, msg: Message) {
    match msg.kind() {
        MessageKind::Response => {
            session.complete_outgoing(msg);
        }
        _ => dispatch::notification(gw, session, &msg),
    }
}

async fn modern_post(st: &Arc<HttpState>, peer: SocketAddr, headers: &HeaderMap, msg: Message) -> Response {
    let id = msg.id.as_deref().map(|i| i.get().to_owned());
    let mismatch = |what: String| {
        rpc_error(StatusCode::BAD_REQUEST, id.as_deref(), RpcError::new(ErrorCode::HeaderMismatch, what))
    };
    let Some(version) = header(headers, VERSION_HEADER) else {
        return bad_request("missing MCP-Protocol-Version header (or initialize to open a legacy session)");
    };
    if ProtocolVersion::parse(version) != Some(ProtocolVersion::V2026_07_28) {
        let e = RpcError::new(
            ErrorCode::UnsupportedProtocolVersion,
            format!("unsupported protocol version `{version}`"),
        )
        .with_data(serde_json::json!({ "supported": [version::MODERN], "requested": version }));
        return rpc_error(StatusCode::BAD_REQUEST, id.as_deref(), e);
    }
    if msg.kind() == MessageKind::Request && REMOVED_IN_MODERN.contains(&msg.method()) {
        // SEP-2575: methods the modern era removed are unknown (404, -32601), before any other check.
        let e = RpcError::new(
            ErrorCode::MethodNotFound,
            format!("`{}` does not exist in {version}", msg.method()),
        );
        return rpc_error(StatusCode::NOT_FOUND, id.as_deref(), e);
    }
    if let Some(body_version) = meta::request_version(msg.params())
        && body_version != version
    {
        return mismatch(format!("MCP-Protocol-Version `{version}` does not match _meta `{body_version}`"));
    }
    match header(headers, "mcp-method") {
        Some(m) if m == msg.method() => {}
        Some(m) => return mismatch(format!("Mcp-Method `{m}` does not match the body's `{}`", msg.method())),
        None => return mismatch("missing Mcp-Method header".into()),
    }
    let name_key = match msg.method() {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    if let Some(key) = name_key {
        let body_name = msg.params().and_then(|p| splice::get(p, key)).and_then(splice::as_str);
        match (header(headers, "mcp-name"), body_name) {
            (Some(h), Some(b)) if h == b => {}
            (h, b) => {
                return mismatch(format!(
                    "Mcp-Name `{}` does not match the body's `{}`",
                    h.unwrap_or(""),
                    b.unwrap_or_default()
                ));
            }
        }
    }
    if msg.method() == "tools/call"
        && let Err(why) = check_param_headers(&st.gw, peer, headers, msg.params())
    {
        return mismatch(why);
    }
    // SEP-2663: a tasks request's Mcp-Name, when present, names its task.
    if matches!(msg.method(), "tasks/get" | "tasks/update" | "tasks/cancel")
        && let Some(h) = header(headers, "mcp-name").map(|h| h.trim_matches([' ', '\t']))
    {
        let body = msg.params().and_then(|p| splice::get(p, "taskId")).and_then(splice::as_str);
        if body.as_deref() != Some(h) {
            return mismatch(format!("Mcp-Name `{h}` does not match the body's taskId"));
        }
    }
    if msg.kind() != MessageKind::Request {
        // On HTTP a modern client cancels by closing the stream; other notifications have no use.
        return StatusCode::ACCEPTED.into_response();
    }
    let (tx, rx) = mpsc::channel::<String>(256);
    let session = st.gw.open_session(super::auth::caller(peer), tx);
    answer(st, session, msg, Stream::Modern { rx }).await
}

/// SEP-2243: a `tools/call`'s `Mcp-Param-*` headers must agree with its arguments, for a tool
/// the caller may use that declares `x-mcp-header` parameters. Other tools cost one lookup.
fn check_param_headers(
    gw: &crate::Gateway,
    peer: SocketAddr,
    headers: &HeaderMap,
    params: Option<&str>,
) -> Result<(), String> {
    let Some(p) = params else { return Ok(()) };
    let Some(name) = splice::get(p, "name").and_then(splice::as_str) else { return Ok(()) };
    let mounts = gw.mounts();
    let Ok(t) = mounts.catalog.tool(&name) else { return Ok(()) };
    let m = &mounts.servers[t.server];
    let Some(spec) = m.items.lock().unwrap_or_else(|p| p.into_inner()).param_headers.get(t.name).cloned()
    else {
        return Ok(());
    };
    // A tool the caller may not use is refused by routing, without revealing its schema here.
    let subject =
        crate::policy::Subject { server: &m.spec.id, kind: crate::policy::Kind::Tool, name: t.name };
    if !crate::policy::Policy::visible(&super::auth::caller(peer), subject) {
        return Ok(());
    }
    crate::param_headers::validate(&spec, splice::get(p, "arguments"), headers)
}

/// Where messages related to a request go while it runs.
enum Stream {
    /// A legacy session: related messages go on a new resumable stream of that session.
    Legacy { hs: Arc<HttpSession>, priming: bool },
    /// A modern request: everything the session emits belongs to this request.
    Modern { rx: mpsc::Receiver<String> },
}

/// Run one request. Answer with JSON when nothing else must be sent first; switch to SSE as
/// soon as a related message (progress, a server-to-client request, a listen notification) comes.
async fn answer(st: &Arc<HttpState>, session: Arc<Session>, msg: Message, stream: Stream) -> Response {
    let id = msg.id.as_deref().map(|i| i.get().to_owned()).unwrap_or_else(|| "null".into());
    let modern = matches!(stream, Stream::Modern { .. });
    let (related_tx, related_rx) = mpsc::channel::<String>(256);
    let registration = session.open_stream(&id, related_tx);
    let (cancelled, generation) = session.begin(&id, crate::log_level::LogLevel::requested(msg.params()));
    let gw = st.gw.clone();
    let s2 = session.clone();
    let mut work = Box::pin(async move {
        tokio::select! {
            line = dispatch::request(&gw, &s2, msg) => Some(line),
            _ = cancelled => None,
        }
    });
    let (legacy, session_rx) = match stream {
        Stream::Modern { rx } => (None, Some(rx)),
        Stream::Legacy { hs, priming } => (Some((hs, priming)), None),
    };
    let mut related = Related { own: related_rx, session: session_rx };
    let first = tokio::select! {
        done = &mut work => Err(done),
        m = related.recv() => Ok(m),
    };
    let first = match first {
        Err(done) => {
            session.finish(&id, generation);
            drop(registration);
            if modern {
                st.gw.close_session(&session);
            }
            return match done {
                Some(line) => json(status_of(&line, modern), line),
                None => StatusCode::ACCEPTED.into_response(),
            };
        }
        Ok(first) => first,
    };
    // SSE from here on: the request keeps running in its own task.
    let (body_tx, body_rx) = mpsc::channel::<String>(256);
    let st2 = st.clone();
    match legacy {
        Some((hs, priming)) => {
            let sid = hs.new_stream(body_tx.clone());
            if priming {
                let _ = body_tx.try_send(sse::priming(&format!("{sid}-p"), RETRY_MS));
            }
            tokio::spawn(async move {
                if let Some(m) = first {
                    hs.push(sid, &m);
                }
                // Legacy: a disconnect is not a cancellation; events are kept for resumption.
                let line = loop {
                    tokio::select! {
                        done = &mut work => break done,
                        m = related.recv() => if let Some(m) = m { hs.push(sid, &m); },
                    }
                };
                while let Ok(m) = related.own.try_recv() {
                    hs.push(sid, &m);
                }
                if let Some(line) = line {
                    hs.push(sid, &line);
                }
                hs.finish(sid);
                session.finish(&id, generation);
                drop(registration);
            });
        }
        None => {
            tokio::spawn(async move {
                let send = |m: String| body_tx.try_send(sse::encode(None, None, &m)).is_ok();
                let mut open = first.is_none_or(send);
                let mut tick = tokio::time::interval(KEEP_ALIVE);
                tick.tick().await;
                while open {
                    tokio::select! {
                        done = &mut work => {
                            if let Some(line) = done {
                                while let Ok(m) = related.own.try_recv() { send(m); }
                                send(line);
                            }
                            break;
                        }
                        m = related.recv() => if let Some(m) = m { open = send(m); },
                        _ = body_tx.closed() => open = false,
                        _ = tick.tick() => open = body_tx.try_send(": keep-alive\n\n".into()).is_ok(),
                    }
                }
                // Closing the stream is the cancellation: dropping `work` cancels at the backend.
                drop(work);
                session.finish(&id, generation);
                drop(registration);
                st2.gw.close_session(&session);
            });
        }
    }
    sse_response(body_rx)
}

/// The related messages of one request: its own stream, and (modern) the session's channel.
struct Related {
    own: mpsc::Receiver<String>,
    session: Option<mpsc::Receiver<String>>,
}

impl Related {
    async fn recv(&mut self) -> Option<String> {
        match &mut self.session {
            Some(s) => tokio::select! {
                m = self.own.recv() => m,
                m = s.recv() => m,
            },
            None => self.own.recv().await,
        }
    }
}

/// An open `text/event-stream` response fed by `rx`, one event per item.
pub(super) fn sse_response(rx: mpsc::Receiver<String>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Modern errors carry HTTP statuses: malformed or mismatched requests are 400, unknown
/// methods 404.
fn status_of(line: &str, modern: bool) -> StatusCode {
    if !modern {
        return StatusCode::OK;
    }
    match splice::get_path(line, &["error", "code"]).and_then(|c| c.parse::<i32>().ok()) {
        Some(-32602 | -32600 | -32700 | -32020 | -32021 | -32022) => StatusCode::BAD_REQUEST,
        Some(-32601) => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

pub(super) async fn get(
    State(st): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let Some(id) = header(&headers, SESSION_HEADER) else {
        // Modern clients have no GET stream; `subscriptions/listen` replaces it.
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")], "GET needs an Mcp-Session-Id")
            .into_response();
    };
    if !accepts(&headers, "text/event-stream") {
        return (StatusCode::NOT_ACCEPTABLE, "Accept must list text/event-stream").into_response();
    }
    let Some(hs) = st.sessions.get(id).filter(|hs| super::auth::owns_session(&hs.session, peer)) else {
        return rpc_error(
            StatusCode::NOT_FOUND,
            None,
            RpcError::new(ErrorCode::InvalidRequest, "session not found; initialize again"),
        );
    };
    hs.touch();
    let (tx, rx) = mpsc::channel::<String>(1024);
    if let Some(last) = header(&headers, "last-event-id") {
        match hs.resume(last, tx.clone()) {
            Some(missed) => {
                for e in missed {
                    let _ = tx.try_send(e);
                }
            }
            None => return (StatusCode::BAD_REQUEST, "unknown Last-Event-ID").into_response(),
        }
    } else {
        if hs.version >= ProtocolVersion::V2025_11_25 {
            let _ = tx.try_send(sse::priming("0-p", RETRY_MS));
        }
        hs.attach_get(tx);
    }
    sse_response(rx)
}

pub(super) async fn delete(
    State(st): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let Some(id) = header(&headers, SESSION_HEADER) else {
        return bad_request("DELETE needs an Mcp-Session-Id");
    };
    if st.sessions.get(id).is_some_and(|hs| !super::auth::owns_session(&hs.session, peer)) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match st.sessions.remove(id) {
        Some(hs) => {
            st.gw.close_session(&hs.session);
            tracing::debug!(session = %hs.id, "HTTP session deleted by the client");
            StatusCode::NO_CONTENT.into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT, v.parse().unwrap());
            m
        };
        assert!(accepts(&h("application/json, text/event-stream"), "text/event-stream"));
        assert!(accepts(&h("application/json;q=0.9, text/*"), "text/event-stream"));
        assert!(!accepts(&h("application/json"), "text/event-stream"));
        assert!(accepts(&h("*/*"), "application/json"));
        assert_eq!(
            status_of(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"x"}}"#, true),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_of(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"x"}}"#, true),
            StatusCode::NOT_FOUND
        );
        assert_eq!(status_of(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#, true), StatusCode::OK);
    }
}
