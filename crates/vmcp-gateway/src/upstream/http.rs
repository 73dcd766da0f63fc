//! Streamable HTTP toward a backend, both eras.
//!
//! Each outgoing line becomes a POST (pooled keep-alive connections, no per-request setup). The
//! answer is read as JSON or as an SSE stream, whose messages (progress, server-to-client
//! requests, the response) are delivered like a stdio backend's. Legacy: the session id from
//! `initialize` rides on every request, a GET stream carries messages not tied to a request, and
//! a 404 (the server lost the session, e.g. it restarted) re-initializes transparently and
//! retries the request once. Modern: stateless POSTs with `MCP-Protocol-Version`, `Mcp-Method`
//! and `Mcp-Name`; cancelling drops the response stream.
//!
//! Invariant: only the headers configured for this server are sent; a client's credentials
//! never reach a backend.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::http::header::{HeaderMap, HeaderValue};
use axum::http::{Method, Request, Response, Uri};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{Semaphore, mpsc};
use vmcp_config::Transport;
use vmcp_protocol::{Message, message, meta, splice, sse, version};

use super::{Known, Options, ParamHeaders, Upstream, configured_headers, deliver, transport_ended};

const SESSION: &str = "mcp-session-id";
const MAX_CONCURRENT_POSTS: usize = 128;

/// The HTTP side of one backend.
pub(super) struct Link {
    /// The upstream this link serves (weak: the upstream owns the link).
    up: Weak<Upstream>,
    opts: Options,
    /// Bounds the POSTs in flight toward this server.
    limit: Arc<Semaphore>,
    client: Route,
    /// Parsed once.
    url: Uri,
    headers: HeaderMap,
    /// Legacy session id, and how many times it was (re)established. Kept as a header value:
    /// every request carries it.
    session: Mutex<(Option<HeaderValue>, u64)>,
    /// Negotiated legacy version, for the `MCP-Protocol-Version` header.
    version: Mutex<Option<HeaderValue>>,
    /// The `initialize` line, to re-initialize after the server lost the session.
    init: Mutex<Option<Bytes>>,
    reinit: tokio::sync::Mutex<()>,
    /// Modern requests in flight: cancelling aborts the POST, which closes its stream.
    inflight: Mutex<HashMap<u64, tokio::task::AbortHandle>>,
}

/// What vMCP needs to know about an outgoing line.
#[derive(Default)]
struct Peek {
    id: Option<u64>,
    method: Option<String>,
    modern: bool,
    name: Option<String>,
    /// `notifications/cancelled`: the request it cancels.
    cancels: Option<u64>,
}

/// The member of a request's params that its `Mcp-Name` header shows, by method.
fn named_by(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    }
}

impl Peek {
    /// What a request (`id` set) or notification with this method and params needs.
    fn of(id: Option<u64>, method: &str, params: Option<&str>) -> Peek {
        let modern = meta::request_version(params).as_deref() == Some(version::MODERN);
        let name = named_by(method)
            .and_then(|key| splice::get(params?, key))
            .and_then(splice::as_str)
            .map(|n| n.into_owned());
        let cancels = match method {
            "notifications/cancelled" => {
                params.and_then(|p| splice::get(p, "requestId")).and_then(|i| i.parse::<u64>().ok())
            }
            _ => None,
        };
        Peek { id, method: Some(method.to_owned()), modern, name, cancels }
    }
}

/// Read an outgoing line that did not come with its parts (notifications, responses).
fn peek(line: &str) -> Peek {
    let Ok(msg) = Message::parse(line.trim_end().as_bytes()) else { return Peek::default() };
    match msg.method.as_deref() {
        Some(method) => Peek::of(msg.id_u64(), method, msg.params()),
        None => Peek::default(),
    }
}

pub(super) fn connect(
    up: &Arc<Upstream>,
    rx: mpsc::Receiver<String>,
    opts: &Options,
) -> Result<Arc<Link>, String> {
    let Transport::StreamableHttp { url } = &up.spec.transport else {
        return Err("not an HTTP server".into());
    };
    // The headers every POST carries, built once; configured ones win.
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("accept", HeaderValue::from_static("application/json, text/event-stream"));
    for (name, value) in &configured_headers(up)? {
        headers.insert(name, value.clone());
    }
    let uri = parse_url(url)?;
    let link = Arc::new(Link {
        up: Arc::downgrade(up),
        opts: opts.clone(),
        limit: Arc::new(Semaphore::new(MAX_CONCURRENT_POSTS)),
        client: Route::to(&uri, up)?,
        url: uri,
        headers,
        session: Mutex::new((None, 0)),
        version: Mutex::new(None),
        init: Mutex::new(None),
        reinit: tokio::sync::Mutex::new(()),
        inflight: Mutex::default(),
    });
    tokio::spawn(run(up.clone(), link.clone(), rx, opts.clone()));
    Ok(link)
}

impl Link {
    /// POST a request straight from the caller: no hop through the link's channel, no
    /// re-reading of the line, and none of its params when routing already read them.
    pub(super) fn spawn_request(
        self: &Arc<Self>,
        id: u64,
        method: &str,
        params: Option<&str>,
        line: String,
        known: Option<Known>,
    ) {
        let (p, headers) = match known {
            Some(k) => {
                let name = named_by(method).map(|_| k.name);
                let p = Peek {
                    id: Some(id),
                    method: Some(method.to_owned()),
                    modern: k.modern,
                    name,
                    cancels: None,
                };
                (p, k.headers)
            }
            None => (Peek::of(Some(id), method, params), Vec::new()),
        };
        self.spawn_exchange(Bytes::from(line), p, headers);
    }

    /// Run one exchange as a task of its own (a deep poll chain from the client's connection
    /// down to the backend's costs more than the spawn). A modern request's task is listed, so
    /// that its `notifications/cancelled` aborts it, which closes its stream.
    fn spawn_exchange(self: &Arc<Self>, line: Bytes, p: Peek, headers: ParamHeaders) {
        let Some(up) = self.up.upgrade() else { return };
        let listed = p.id.filter(|_| p.modern);
        let link = self.clone();
        let task = tokio::spawn(async move {
            let Ok(_permit) = link.limit.acquire().await else { return };
            exchange(&up, &link, line, p, headers, &link.opts, true).await;
            if let Some(id) = listed {
                link.inflight.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            }
        });
        if let Some(id) = listed {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            inflight.insert(id, task.abort_handle());
            // Finished before it was listed: it could not unlist itself.
            if task.is_finished() {
                inflight.remove(&id);
            }
        }
    }
}

/// The HTTP client toward Streamable HTTP servers: hyper's pooled keep-alive client over
/// rustls (the platform's roots), HTTP/1.1. reqwest (still used for legacy SSE upstreams and for
/// servers behind a proxy, see `Route`) cost ~10% of the gateway's CPU per request in its own
/// layers (redirects, URL conversion, its request and response wrappers); a direct hop needs
/// none of them.
type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How a link reaches its server: straight, or through the proxy the environment names for its
/// URL (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, as curl reads them), which
/// reqwest's proxy support handles (plain forwarding and `CONNECT` tunnels, with credentials).
#[allow(clippy::large_enum_variant)] // one per upstream link, never moved on the hot path
enum Route {
    Direct(HttpClient),
    Proxied(reqwest::Client, reqwest::Url),
}

impl Route {
    fn to(url: &Uri, up: &Upstream) -> Result<Route, String> {
        if hyper_util::client::proxy::matcher::Matcher::from_system().intercept(url).is_none() {
            return Ok(Route::Direct(client()?));
        }
        tracing::info!(server = %up.spec.id, "reaching {url} through the proxy named in the environment");
        let url = reqwest::Url::parse(&url.to_string()).map_err(|e| format!("invalid URL `{url}`: {e}"))?;
        // No redirects, as on the direct route: a redirected POST must not be re-sent
        // elsewhere behind vMCP's back.
        Ok(Route::Proxied(super::http_client(reqwest::redirect::Policy::none())?, url))
    }
}

/// A response body from either route.
pub(super) enum Body {
    Direct(Incoming),
    Proxied(reqwest::Body),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Body::Direct(b) => std::pin::Pin::new(b).poll_frame(cx).map_err(Into::into),
            Body::Proxied(b) => std::pin::Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }
}

fn client() -> Result<HttpClient, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    use rustls_platform_verifier::ConfigVerifierExt;
    let tls = rustls::ClientConfig::with_platform_verifier()
        .map_err(|e| format!("cannot set up TLS (platform certificate roots): {e}"))?;
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(Duration::from_secs(10)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(https))
}

fn parse_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|e| format!("invalid URL `{url}`: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(uri),
        _ => Err(format!("invalid URL `{url}`: an http:// or https:// URL is needed")),
    }
}

/// An error with its causes (hyper's own message names only the outermost one).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Link {
    async fn send(&self, method: Method, headers: HeaderMap, body: Bytes) -> Result<Response<Body>, String> {
        match &self.client {
            Route::Direct(client) => {
                let mut req = Request::new(Full::new(body));
                *req.method_mut() = method;
                *req.uri_mut() = self.url.clone();
                *req.headers_mut() = headers;
                Ok(client.request(req).await.map_err(|e| chain(&e))?.map(Body::Direct))
            }
            Route::Proxied(client, url) => {
                let sent = client.request(method, url.clone()).headers(headers).body(body).send().await;
                let resp: Response<reqwest::Body> = sent.map_err(|e| chain(&e))?.into();
                Ok(resp.map(Body::Proxied))
            }
        }
    }
}

async fn run(up: Arc<Upstream>, link: Arc<Link>, mut rx: mpsc::Receiver<String>, opts: Options) {
    loop {
        let line = tokio::select! {
            line = rx.recv() => line,
            _ = up.stop.cancelled() => None,
        };
        let Some(line) = line else { break };
        let p = peek(&line);
        if p.method.as_deref() == Some("notifications/cancelled")
            && up.era() == Some(vmcp_protocol::Era::Modern)
        {
            // Modern HTTP: closing the stream is the cancellation.
            if let Some(task) =
                p.cancels.and_then(|id| link.inflight.lock().unwrap_or_else(|p| p.into_inner()).remove(&id))
            {
                task.abort();
            }
            continue;
        }
        link.spawn_exchange(Bytes::from(line), p, Vec::new());
    }
    let session = link.session.lock().unwrap_or_else(|p| p.into_inner()).0.clone();
    if let Some(sid) = session {
        let mut headers = link.headers.clone();
        headers.insert(SESSION, sid);
        let _ = link.send(Method::DELETE, headers, Bytes::new()).await;
    }
    transport_ended(&up, None, &opts);
}

fn request_headers(link: &Link, p: &Peek) -> HeaderMap {
    let mut h = link.headers.clone();
    if p.modern {
        h.insert("mcp-protocol-version", HeaderValue::from_static(version::MODERN));
        if let Some(v) = p.method.as_deref().and_then(|m| HeaderValue::from_str(m).ok()) {
            h.insert("mcp-method", v);
        }
        if let Some(v) = p.name.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
            h.insert("mcp-name", v);
        }
        return h;
    }
    if let Some(v) = link.version.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        h.insert("mcp-protocol-version", v);
    }
    if let Some(v) = link.session.lock().unwrap_or_else(|p| p.into_inner()).0.clone() {
        h.insert(SESSION, v);
    }
    h
}

/// POST one line and deliver whatever comes back. `retry`: re-initialize and retry once on 404.
async fn exchange(
    up: &Arc<Upstream>,
    link: &Arc<Link>,
    line: Bytes,
    p: Peek,
    param_headers: ParamHeaders,
    opts: &Options,
    retry: bool,
) {
    let is_init = p.method.as_deref() == Some("initialize");
    if is_init {
        *link.init.lock().unwrap_or_else(|p| p.into_inner()) = Some(line.clone());
    }
    let generation = link.session.lock().unwrap_or_else(|p| p.into_inner()).1;
    let mut headers = request_headers(link, &p);
    if p.modern && p.method.as_deref() == Some("tools/call") {
        headers.extend(param_headers.iter().cloned());
    }
    // `Bytes` clones share the line: the retry below re-sends it without a copy.
    let sent = link.send(Method::POST, headers, line.clone()).await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return fail(up, p.id, 1001, &format!("cannot reach {}: {e}", link.url), opts),
    };
    let status = resp.status();
    if status.as_u16() == 404
        && retry
        && !is_init
        && !p.modern
        && link.session.lock().unwrap_or_else(|p| p.into_inner()).0.is_some()
    {
        tracing::info!(server = %up.spec.id, "the server lost the session; initializing again");
        if reinitialize(up, link, generation).await {
            return Box::pin(exchange(up, link, line, p, param_headers, opts, false)).await;
        }
        return fail(up, p.id, 1003, "the server lost the session and initializing again failed", opts);
    }
    if is_init && let Some(sid) = session_of(&resp) {
        let mut s = link.session.lock().unwrap_or_else(|p| p.into_inner());
        *s = (Some(sid), s.1 + 1);
    }
    if status.as_u16() == 202 {
        return;
    }
    let is_sse = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"));
    let answered = if is_sse {
        read_sse(up, link, resp, p.id, opts).await
    } else {
        match resp.into_body().collect().await {
            Ok(body) => deliver_body(up, link, &body.to_bytes(), p.id, is_init, opts),
            Err(e) => return fail(up, p.id, 1003, &format!("reading the answer failed: {e}"), opts),
        }
    };
    if !answered && p.id.is_some() {
        let why = if status.is_success() {
            "the server closed the stream without answering".to_owned()
        } else {
            format!("HTTP {status}")
        };
        fail(up, p.id, 5001, &why, opts);
    }
    if is_init && status.is_success() {
        spawn_get_stream(up.clone(), link.clone(), opts.clone());
    }
}

/// The session id a response established, if it is a usable header value.
fn session_of(resp: &Response<Body>) -> Option<HeaderValue> {
    resp.headers().get(SESSION).filter(|v| v.to_str().is_ok()).cloned()
}

/// Deliver a JSON body (one message or a batch). Returns whether it answered `id`.
fn deliver_body(
    up: &Arc<Upstream>,
    link: &Link,
    body: &[u8],
    id: Option<u64>,
    is_init: bool,
    opts: &Options,
) -> bool {
    let items: Vec<Box<serde_json::value::RawValue>> = if message::is_batch(body) {
        message::split_batch(body).unwrap_or_default()
    } else {
        serde_json::from_slice::<Box<serde_json::value::RawValue>>(body).map(|v| vec![v]).unwrap_or_default()
    };
    let mut answered = false;
    for raw in items {
        let Ok(msg) = Message::parse(raw.get().as_bytes()) else { continue };
        if msg.method.is_none() && msg.id_u64() == id {
            answered = true;
            if is_init {
                let v = msg
                    .result
                    .as_deref()
                    .and_then(|r| splice::get(r.get(), "protocolVersion"))
                    .and_then(splice::as_str);
                *link.version.lock().unwrap_or_else(|p| p.into_inner()) =
                    v.and_then(|v| HeaderValue::from_str(&v).ok());
            }
        }
        deliver(up, msg, opts);
    }
    answered
}

async fn read_sse(
    up: &Arc<Upstream>,
    link: &Link,
    resp: Response<Body>,
    id: Option<u64>,
    opts: &Options,
) -> bool {
    let mut parser = sse::Parser::default();
    let mut body = resp.into_body();
    let mut answered = false;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Ok(chunk) = frame.into_data() else { continue };
        for event in parser.feed(&chunk) {
            if event.data.trim().is_empty() {
                continue; // priming event
            }
            answered |= deliver_body(up, link, event.data.as_bytes(), id, false, opts);
        }
        if answered {
            break;
        }
    }
    answered
}

/// Re-run `initialize` + `notifications/initialized` unless another task already did.
async fn reinitialize(up: &Arc<Upstream>, link: &Arc<Link>, seen_generation: u64) -> bool {
    let _guard = link.reinit.lock().await;
    if link.session.lock().unwrap_or_else(|p| p.into_inner()).1 != seen_generation {
        return true;
    }
    link.session.lock().unwrap_or_else(|p| p.into_inner()).0 = None;
    let Some(init) = link.init.lock().unwrap_or_else(|p| p.into_inner()).clone() else { return false };
    let p = Peek { method: Some("initialize".into()), ..Peek::default() };
    let resp = match link.send(Method::POST, request_headers(link, &p), init).await {
        Ok(r) if r.status().is_success() => r,
        _ => return false,
    };
    let Some(sid) = session_of(&resp) else { return false };
    {
        let mut s = link.session.lock().unwrap_or_else(|p| p.into_inner());
        *s = (Some(sid), s.1 + 1);
    }
    let _ = resp.into_body().collect().await;
    let note = message::notification("notifications/initialized", None);
    let p = Peek { method: Some("notifications/initialized".into()), ..Peek::default() };
    let ok = link.send(Method::POST, request_headers(link, &p), Bytes::from(note)).await.is_ok();
    tracing::info!(server = %up.spec.id, "session re-established");
    ok
}

/// The GET stream of a legacy session: messages the server sends on its own.
fn spawn_get_stream(up: Arc<Upstream>, link: Arc<Link>, opts: Options) {
    tokio::spawn(async move {
        let generation = link.session.lock().unwrap_or_else(|p| p.into_inner()).1;
        loop {
            if up.stop.is_cancelled()
                || link.session.lock().unwrap_or_else(|p| p.into_inner()).1 != generation
            {
                return;
            }
            let p = Peek::default();
            let mut h = request_headers(&link, &p);
            h.insert("accept", HeaderValue::from_static("text/event-stream"));
            h.remove("content-type");
            let resp = tokio::select! {
                r = link.send(Method::GET, h, Bytes::new()) => r,
                _ = up.stop.cancelled() => return,
            };
            match resp {
                Ok(r) if r.status().is_success() => {
                    tokio::select! {
                        _ = read_sse(&up, &link, r, None, &opts) => {}
                        _ = up.stop.cancelled() => return,
                    }
                }
                // 405: the server offers no GET stream.
                Ok(r) if r.status().as_u16() == 405 => return,
                _ => {}
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// Answer request `id` with an error vMCP made (the backend could not be asked).
fn fail(up: &Arc<Upstream>, id: Option<u64>, code: i32, why: &str, opts: &Options) {
    let Some(id) = id else {
        tracing::warn!(server = %up.spec.id, "{why}");
        return;
    };
    tracing::warn!(server = %up.spec.id, "request {id}: {why}");
    let line = message::error_response(
        Some(&id.to_string()),
        &format!(
            r#"{{"code":{code},"message":{}}}"#,
            splice::quote(&format!("server `{}`: {why}", up.spec.id))
        ),
    );
    if let Ok(msg) = Message::parse(line.as_bytes()) {
        deliver(up, msg, opts);
    }
}

#[cfg(test)]
mod tests {
    use super::peek;

    #[test]
    fn peek_reads_what_the_post_needs() {
        let call = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        let p = peek(&format!("{call}\n"));
        assert_eq!((p.id, p.method.as_deref(), p.modern), (Some(7), Some("tools/call"), true));
        assert_eq!((p.name.as_deref(), p.cancels), (Some("echo"), None));

        let cancel =
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,"reason":"x"}}"#;
        let p = peek(cancel);
        assert_eq!((p.id, p.cancels, p.modern), (None, Some(7), false));
    }
}
