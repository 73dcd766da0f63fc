//! WebSocket toward a backend: subprotocol `mcp`, one JSON-RPC message per text frame (the
//! TypeScript SDK's convention; not a transport of the MCP specification).

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use vmcp_config::Transport;
use vmcp_protocol::Message;

use super::{Options, Upstream, configured_headers, deliver, transport_ended};

pub(super) fn connect(up: &Arc<Upstream>, rx: mpsc::Receiver<String>, opts: &Options) -> Result<(), String> {
    let Transport::WebSocket { url } = &up.spec.transport else {
        return Err("not a WebSocket server".into());
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut request =
        url.as_str().into_client_request().map_err(|e| format!("bad WebSocket url `{url}`: {e}"))?;
    request.headers_mut().insert("sec-websocket-protocol", "mcp".parse().map_err(|_| "header")?);
    for (name, value) in &configured_headers(up)? {
        request.headers_mut().insert(name, value.clone());
    }
    tokio::spawn(run(up.clone(), request, rx, opts.clone()));
    Ok(())
}

async fn run(
    up: Arc<Upstream>,
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
    mut rx: mpsc::Receiver<String>,
    opts: Options,
) {
    let url = request.uri().to_string();
    let socket = match tokio_tungstenite::connect_async(request).await {
        Ok((s, _)) => s,
        Err(e) => return transport_ended(&up, Some(format!("cannot connect to {url}: {e}")), &opts),
    };
    let (mut sink, mut frames) = socket.split();
    let reason = loop {
        tokio::select! {
            line = rx.recv() => {
                let Some(line) = line else { break None };
                if let Err(e) = sink.send(Frame::Text(line.trim_end().to_owned().into())).await {
                    break Some(format!("sending failed: {e}"));
                }
            }
            frame = frames.next() => match frame {
                Some(Ok(Frame::Text(t))) => match Message::parse(t.as_bytes()) {
                    Ok(msg) => deliver(&up, msg, &opts),
                    Err(e) => tracing::warn!(server = %up.spec.id, "frame is not JSON-RPC: {e}"),
                },
                Some(Ok(Frame::Close(_))) | None => break Some("the server closed the WebSocket".to_owned()),
                Some(Err(e)) => break Some(format!("WebSocket error: {e}")),
                Some(Ok(_)) => {}
            },
            _ = up.stop.cancelled() => {
                let _ = sink.close().await;
                break None;
            }
        }
    };
    transport_ended(&up, reason, &opts);
}
