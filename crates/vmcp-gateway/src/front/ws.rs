//! The WebSocket front: subprotocol `mcp`, one JSON-RPC message per text frame, as the
//! TypeScript SDK's `WebSocketClientTransport` speaks it. WebSocket is not a transport of the
//! MCP specification (SEP-1288); this is the convention in use.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use vmcp_config::WebSocketFront;

use super::http::limits::Limited;
use crate::dispatch;
use crate::gateway::Gateway;

/// Requests one WebSocket client may have in flight.
const IN_FLIGHT: usize = 1024;

pub async fn serve(
    gw: Arc<Gateway>,
    cfg: WebSocketFront,
    listener: TcpListener,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    tracing::info!("WebSocket front on ws://{local}/");
    let (listener, drain) = Limited::new(listener, cfg.max_connections, "the WebSocket front");
    let listener = axum::serve::ListenerExt::tap_io(listener, |_| {});
    let app = Router::new()
        .route("/", any(upgrade))
        .route("/{*rest}", any(upgrade))
        .layer(axum::middleware::from_fn_with_state(gw.clone(), super::http::auth::layer))
        .with_state((gw, cfg, local, stop.clone()));
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(stop.clone().cancelled_owned())
        .await?;
    // Upgraded connections outlive `serve`: each session ends its own on `stop` (see `session`).
    drain.wait().await;
    Ok(())
}

type WsState = (Arc<Gateway>, WebSocketFront, SocketAddr, CancellationToken);

async fn upgrade(
    State((gw, _cfg, local, stop)): State<WsState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    if local.ip().is_loopback() && !matches!(name, "localhost" | "127.0.0.1" | "[::1]") {
        return (StatusCode::FORBIDDEN, "forbidden: Host not allowed").into_response();
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).unwrap_or("");
        let oname = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
        if !matches!(oname, "localhost" | "127.0.0.1" | "[::1]") {
            return (StatusCode::FORBIDDEN, "forbidden: Origin not allowed").into_response();
        }
    }
    let max = gw.cfg.max_message_size;
    ws.protocols(["mcp"]).max_message_size(max).on_upgrade({
        // Taken now: the session runs in a task of its own, outside the auth layer's scope.
        let caller = super::http::auth::caller(peer);
        move |socket| super::http::auth::with_caller(caller, session(gw, peer, socket, stop))
    })
}

async fn session(gw: Arc<Gateway>, peer: SocketAddr, socket: WebSocket, stop: CancellationToken) {
    let (mut sink, mut frames) = socket.split();
    let (tx, mut rx) = mpsc::channel::<String>(1024);
    let session = gw.open_session(super::http::auth::caller(peer), tx);
    let mut writer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            if sink.send(WsMessage::Text(line.into())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let limit = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(frame) = tokio::select! {
        frame = frames.next() => frame,
        () = stop.cancelled() => None,
    } {
        let data = match frame {
            Ok(WsMessage::Text(t)) => t.as_str().as_bytes().to_vec(),
            Ok(WsMessage::Binary(b)) => b.to_vec(),
            Ok(WsMessage::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        let Ok(permit) = limit.clone().acquire_owned().await else { break };
        dispatch::accept(&gw, &session, &data, permit);
    }
    if stop.is_cancelled() {
        // Draining: take no new request, let those in flight answer (the caller's grace period
        // bounds this), then close the socket.
        let _ = limit.acquire_many(IN_FLIGHT as u32).await;
        gw.close_session(&session);
        drop(session);
        if tokio::time::timeout(Duration::from_secs(1), &mut writer).await.is_err() {
            writer.abort();
        }
        return;
    }
    gw.close_session(&session);
    drop(session);
    writer.abort();
}
