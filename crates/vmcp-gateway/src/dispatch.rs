//! The pipeline every client message goes through, whatever the front:
//! parse -> (batch?) -> classify -> era check -> handler (local, list fan-out, routed, vmcp/*)
//! -> response line.
//!
//! Requests run concurrently, each in its own task registered with the session so that
//! `notifications/cancelled` (or the client going away) drops it, which cancels the backend
//! request too.

use std::sync::Arc;

use futures_util::future::join_all;
use tokio::sync::OwnedSemaphorePermit;
use vmcp_protocol::message::{self, is_batch, split_batch};
use vmcp_protocol::splice;
use vmcp_protocol::{
    Era, ErrorCode, Message, MessageKind, ParseError, ProtocolVersion, RpcError, meta, version,
};

use crate::era;
use crate::gateway::Gateway;
use crate::lists::{self, List};
use crate::log_level::LogLevel;
use crate::route::{self, Reply};
use crate::session::{ClientInfo, Session};

/// Take one frame from a client. Requests are spawned; the permit bounds how many run at once.
/// A request accepted while the session's `initialize` runs waits for it before it runs (what
/// it does depends on the session `initialize` opens), so a client that pipelines `initialize`
/// and its first calls gets them handled in that order; responses and notifications are handled
/// at once (a backend may be waiting for the client's answer to finish starting).
pub fn accept(gw: &Arc<Gateway>, session: &Arc<Session>, frame: &[u8], permit: OwnedSemaphorePermit) {
    let gate = session.opening_gate();
    if is_batch(frame) {
        let (gw, session) = (gw.clone(), session.clone());
        let frame = frame.to_vec();
        tokio::spawn(async move {
            opened(gate).await;
            if let Some(line) = batch(&gw, &session, &frame).await {
                session.send(line).await;
            }
            drop(permit);
        });
        return;
    }
    match Message::parse(frame) {
        Err(e) => {
            tracing::debug!(session = session.id, "bad message from client: {e}");
            session.try_send(message::error_response(None, &e.to_rpc().to_json()));
        }
        Ok(msg) => match msg.kind() {
            MessageKind::Response => {
                if !session.complete_outgoing(msg) {
                    tracing::debug!(
                        session = session.id,
                        "client answered a request vMCP is no longer waiting for"
                    );
                }
            }
            MessageKind::Notification => notification(gw, session, &msg),
            MessageKind::Request => {
                let id = msg.id.as_deref().map(|i| i.get().to_owned()).unwrap_or_default();
                let (cancelled, generation) = session.begin(&id, LogLevel::requested(msg.params()));
                let opening = if msg.method() == "initialize" { session.begin_opening() } else { None };
                let (gw, session) = (gw.clone(), session.clone());
                // Boxed: the future is over 5 KB, which the task would otherwise copy several
                // times per request (into its cell, and again when it completes).
                tokio::spawn(Box::pin(async move {
                    tokio::select! {
                        line = async { opened(gate).await; request(&gw, &session, msg).await } => {
                            session.send(line).await;
                        }
                        _ = cancelled => tracing::debug!(session = session.id, id, "request cancelled by the client"),
                    }
                    drop(opening);
                    session.finish(&id, generation);
                    drop(permit);
                }));
            }
        },
    }
}

/// Wait for the `initialize` a request was accepted behind, if any ([`Session::opening_gate`]).
async fn opened(gate: Option<Arc<tokio::sync::RwLock<()>>>) {
    if let Some(gate) = gate {
        drop(gate.read().await);
    }
}

/// A JSON-RPC batch (2025-03-26): every element handled, the answers returned as one array.
async fn batch(gw: &Arc<Gateway>, session: &Arc<Session>, frame: &[u8]) -> Option<String> {
    let allowed = session.info().version.is_none_or(ProtocolVersion::allows_batches);
    let items = match split_batch(frame) {
        Ok(items) if allowed => items,
        Ok(_) => {
            let e = RpcError::new(ErrorCode::InvalidRequest, "batches are not part of this protocol version");
            return Some(message::error_response(None, &e.to_json()));
        }
        Err(e) => return Some(message::error_response(None, &e.to_rpc().to_json())),
    };
    let answers = join_all(items.iter().map(|raw| async move {
        match Message::parse(raw.get().as_bytes()) {
            Err(e) => Some(message::error_response(None, &e.to_rpc().to_json())),
            Ok(msg) => match msg.kind() {
                MessageKind::Request => Some(request(gw, session, msg).await),
                MessageKind::Notification => {
                    notification(gw, session, &msg);
                    None
                }
                MessageKind::Response => {
                    session.complete_outgoing(msg);
                    None
                }
            },
        }
    }))
    .await;
    let answers: Vec<String> = answers.into_iter().flatten().collect();
    (!answers.is_empty()).then(|| format!("[{}]", answers.join(",")))
}

pub(crate) fn notification(gw: &Arc<Gateway>, session: &Arc<Session>, msg: &Message) {
    match msg.method() {
        "notifications/cancelled" => {
            if let Some(id) = msg.params().and_then(|p| splice::get(p, "requestId")) {
                session.cancel(id);
            }
        }
        "notifications/initialized" => {}
        "notifications/roots/list_changed" => {
            // Tell every backend; they re-ask through `roots/list`, which the relay routes back.
            for m in
                gw.mounts().servers.iter().filter(|m| m.up().is_ready() && m.up().era() == Some(Era::Legacy))
            {
                let up = m.up();
                tokio::spawn(async move { up.notify("notifications/roots/list_changed", None).await });
            }
        }
        other => tracing::debug!(session = session.id, "ignored notification `{other}`"),
    }
}

/// Handle one request and build its response line.
pub async fn request(gw: &Arc<Gateway>, session: &Arc<Session>, msg: Message) -> String {
    let id = msg.id.as_deref().map_or("null", |i| i.get());
    let outcome = match check_era(session, &msg) {
        Ok(()) => handle(gw, session, &msg).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(Reply::Result(result)) => message::response(id, &result),
        Ok(Reply::BackendError(error)) => message::error_response(Some(id), &error),
        Err(e) => message::error_response(Some(id), &e.to_json()),
    }
}

/// Legacy clients open with `initialize`; modern requests must carry the modern `_meta`.
fn check_era(session: &Session, msg: &Message) -> Result<(), RpcError> {
    let method = msg.method();
    if matches!(method, "initialize" | "ping") || session.era() == Some(Era::Legacy) {
        return Ok(());
    }
    // `_meta` found once, then its two keys read in it.
    let request_meta = msg.params().and_then(|p| splice::get(p, "_meta"));
    let requested =
        request_meta.and_then(|m| splice::get(m, meta::PROTOCOL_VERSION)).and_then(splice::as_str);
    match requested {
        Some(v) if v == version::MODERN => {
            let Some(caps) = request_meta.and_then(|m| splice::get(m, meta::CLIENT_CAPABILITIES)) else {
                return Err(RpcError::new(
                    ErrorCode::InvalidParams,
                    format!("params._meta is missing the required key `{}`", meta::CLIENT_CAPABILITIES),
                ));
            };
            if session.era().is_none() {
                let caps = serde_json::value::RawValue::from_string(caps.to_owned()).ok();
                session.set_info(ClientInfo {
                    era: Some(Era::Modern),
                    version: Some(ProtocolVersion::V2026_07_28),
                    capabilities: caps,
                    log_level: None,
                });
            }
            Ok(())
        }
        Some(v) => Err(RpcError::new(
            ErrorCode::UnsupportedProtocolVersion,
            format!("unsupported protocol version `{v}`"),
        )
        .with_data(serde_json::json!({ "supported": [version::MODERN], "requested": v }))),
        None => Err(RpcError::new(
            ErrorCode::InvalidParams,
            format!(
                "`_meta[\"{}\"]` is required (or open a legacy session with `initialize`)",
                meta::PROTOCOL_VERSION
            ),
        )),
    }
}

async fn handle(gw: &Arc<Gateway>, session: &Arc<Session>, msg: &Message) -> Result<Reply, RpcError> {
    let method = msg.method();
    let params = msg.params();
    if !matches!(method, "ping" | "initialize" | "server/discover") {
        // Requests that reach backends wait (bounded) for the first mount of every server.
        gw.wait_ready(gw.opts.startup_timeout + std::time::Duration::from_secs(1)).await;
    }
    if let Some(list) = List::from_method(method) {
        let result = lists::answer(gw, session, list, params).await?;
        return Ok(Reply::Result(era::to_client_cacheable(&result, session).into_owned()));
    }
    match method {
        "initialize" => initialize(gw, session, params).await,
        "server/discover" => discover(gw, session).await,
        "ping" => Ok(Reply::Result(era::to_client("{}", session).into_owned())),
        "logging/setLevel" => set_level(gw, session, params).await,
        "tools/call" | "prompts/get" | "resources/read" | "completion/complete" => {
            route::forward(gw, session, msg.id.as_deref().map(|i| i.get()), method, params).await
        }
        "resources/subscribe" | "resources/unsubscribe" => {
            crate::subscriptions::handle(gw, session, method, params).await
        }
        m if crate::tasks::is_method(m) => {
            crate::tasks::handle(gw, session, msg.id.as_deref().map(|i| i.get()), method, params).await
        }
        "subscriptions/listen" => {
            let id = msg.id.as_deref().map_or("null", |i| i.get());
            crate::listen::serve(gw, session, id, params).await.map(Reply::Result)
        }
        m if m.starts_with("vmcp/") => crate::ext::handle(gw, session, m, params).map(Reply::Result),
        _ => Err(RpcError::new(ErrorCode::MethodNotFound, format!("method not found: {method}"))
            .with_data(serde_json::json!({ "method": method }))),
    }
}

async fn initialize(gw: &Gateway, session: &Session, params: Option<&str>) -> Result<Reply, RpcError> {
    let p = params.ok_or_else(|| RpcError::new(ErrorCode::InvalidParams, "initialize needs params"))?;
    let requested = splice::get(p, "protocolVersion").and_then(splice::as_str).unwrap_or_default();
    let version = ProtocolVersion::negotiate_legacy(&requested);
    let capabilities = splice::get(p, "capabilities")
        .and_then(|c| serde_json::value::RawValue::from_string(c.to_owned()).ok());
    session.set_info(ClientInfo {
        era: Some(Era::Legacy),
        version: Some(version),
        capabilities,
        log_level: None,
    });
    gw.wait_ready(gw.opts.startup_timeout + std::time::Duration::from_secs(1)).await;
    let mut result = format!(
        r#"{{"protocolVersion":"{}","capabilities":{},"serverInfo":{}"#,
        version.as_str(),
        gw.capabilities(),
        Gateway::server_info()
    );
    if let Some(text) = gw.instructions(&session.caller) {
        result.push_str(",\"instructions\":");
        result.push_str(&splice::quote(&text));
    }
    result.push('}');
    Ok(Reply::Result(result))
}

async fn discover(gw: &Gateway, session: &Session) -> Result<Reply, RpcError> {
    gw.wait_ready(gw.opts.startup_timeout + std::time::Duration::from_secs(1)).await;
    // ttlMs 0: the mounted set can change at any time. Private: what a caller may see is
    // decided per caller.
    let mut result = format!(
        r#"{{"supportedVersions":["{}"],"capabilities":{},"ttlMs":0,"cacheScope":"private""#,
        version::MODERN,
        gw.capabilities(),
    );
    if let Some(text) = gw.instructions(&session.caller) {
        result.push_str(",\"instructions\":");
        result.push_str(&splice::quote(&text));
    }
    result.push_str(",\"_meta\":{");
    result.push_str(&splice::quote(meta::SERVER_INFO));
    result.push(':');
    result.push_str(&Gateway::server_info());
    result.push_str("}}");
    Ok(Reply::Result(era::to_client(&result, session).into_owned()))
}

/// Remember the session's level (it goes along with its requests to modern backends) and pass
/// it to every legacy backend that logs; vMCP's own log level stays as configured.
async fn set_level(gw: &Gateway, session: &Session, params: Option<&str>) -> Result<Reply, RpcError> {
    let bad =
        || RpcError::new(ErrorCode::InvalidParams, "logging/setLevel needs a `level` (debug ... emergency)");
    let p = params.ok_or_else(bad)?;
    let level = splice::get(p, "level").and_then(LogLevel::from_json).ok_or_else(bad)?;
    session.set_log_level(level);
    let mounts = gw.mounts();
    let targets = mounts.servers.iter().filter(|m| {
        m.up().era() == Some(Era::Legacy) && m.up().handshake().is_some_and(|h| h.has("logging"))
    });
    join_all(targets.map(|m| async move {
        let timeout = std::time::Duration::from_secs_f64(m.spec.timeout_secs);
        if let Err(e) = m.up().request(m.up().next_id(), "logging/setLevel", Some(p), None, timeout).await {
            tracing::warn!(server = %m.spec.id, "logging/setLevel failed: {e}");
        }
    }))
    .await;
    Ok(Reply::Result("{}".into()))
}

/// The error for a frame that could not be read at all.
pub fn frame_error(e: &ParseError) -> String {
    message::error_response(None, &e.to_rpc().to_json())
}
