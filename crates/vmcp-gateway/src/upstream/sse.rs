//! The legacy HTTP+SSE transport (2024-11-05) toward a backend: a GET stream whose first event
//! names the URL to POST messages to; every answer arrives on the stream.

use std::sync::Arc;

use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue};
use tokio::sync::{mpsc, oneshot};
use vmcp_config::Transport;
use vmcp_protocol::{Message, sse};

use super::{Options, Upstream, configured_headers, deliver, http_client, transport_ended};

pub(super) fn connect(up: &Arc<Upstream>, rx: mpsc::Receiver<String>, opts: &Options) -> Result<(), String> {
    let Transport::Sse { url } = &up.spec.transport else {
        return Err("not an SSE server".into());
    };
    let headers = configured_headers(up)?;
    tokio::spawn(run(
        up.clone(),
        http_client(reqwest::redirect::Policy::default())?,
        url.clone(),
        headers,
        rx,
        opts.clone(),
    ));
    Ok(())
}

async fn run(
    up: Arc<Upstream>,
    client: reqwest::Client,
    url: String,
    headers: HeaderMap,
    mut rx: mpsc::Receiver<String>,
    opts: Options,
) {
    let get = client.get(&url).header("accept", "text/event-stream").headers(headers.clone());
    let resp = match get.send().await {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => return transport_ended(&up, Some(format!("GET {url} answered HTTP {}", r.status())), &opts),
        Err(e) => return transport_ended(&up, Some(format!("cannot reach {url}: {e}")), &opts),
    };
    let base = resp.url().clone();
    let (endpoint_tx, endpoint_rx) = oneshot::channel::<String>();
    let reader_up = up.clone();
    let reader_opts = opts.clone();
    let reader = tokio::spawn(async move {
        let mut endpoint_tx = Some(endpoint_tx);
        let mut parser = sse::Parser::default();
        let mut body = resp.bytes_stream();
        while let Some(Ok(chunk)) = body.next().await {
            for event in parser.feed(&chunk) {
                match event.event.as_deref() {
                    Some("endpoint") => {
                        if let Some(tx) = endpoint_tx.take() {
                            let _ = tx.send(event.data);
                        }
                    }
                    _ => match Message::parse(event.data.as_bytes()) {
                        Ok(msg) => deliver(&reader_up, msg, &reader_opts),
                        Err(e) => {
                            tracing::warn!(server = %reader_up.spec.id, "SSE event is not JSON-RPC: {e}")
                        }
                    },
                }
            }
        }
    });
    let endpoint = match tokio::time::timeout(opts.startup_timeout, endpoint_rx).await {
        Ok(Ok(e)) => e,
        _ => {
            reader.abort();
            return transport_ended(&up, Some("the SSE stream sent no endpoint event".into()), &opts);
        }
    };
    let post_url = match base.join(&endpoint) {
        Ok(u) => u,
        Err(e) => return transport_ended(&up, Some(format!("bad endpoint `{endpoint}`: {e}")), &opts),
    };
    // What every POST carries, built once; configured headers win.
    let mut post_headers = HeaderMap::new();
    post_headers.insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in &headers {
        post_headers.insert(name, value.clone());
    }
    let mut reader = reader;
    let reason = loop {
        tokio::select! {
            line = rx.recv() => {
                let Some(line) = line else { break None };
                let post = client.post(post_url.clone()).headers(post_headers.clone()).body(line);
                if let Err(e) = post.send().await {
                    tracing::warn!(server = %up.spec.id, "POST failed: {e}");
                }
            }
            _ = &mut reader => break Some("the SSE stream closed".to_owned()),
            _ = up.stop.cancelled() => break None,
        }
    };
    reader.abort();
    transport_ended(&up, reason, &opts);
}
