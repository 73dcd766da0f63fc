//! The HTTP fronts on one listener: Streamable HTTP at the configured path (both eras), the
//! legacy HTTP+SSE transport (`GET /sse`, `POST /messages`), and liveness/readiness endpoints.
//!
//! Invariants:
//! - every request first passes `guard`: a `Host` that is not this gateway's (DNS rebinding) and
//!   an `Origin` that is not allowed get 403;
//! - bodies are capped at `max_message_size` (413);
//! - fronts frame and answer; routing and policy stay in `dispatch`.

pub mod auth;
mod legacy_sse;
pub(crate) mod limits;
mod registry;
mod streamable;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_layer::Layer;
use vmcp_config::HttpFront;

use crate::gateway::Gateway;
pub use registry::Registry;

/// Shared by every HTTP handler.
pub(crate) struct HttpState {
    pub gw: Arc<Gateway>,
    pub cfg: HttpFront,
    /// Sessions of both kinds: Streamable HTTP and legacy HTTP+SSE (`registry.rs`).
    pub sessions: Registry,
    /// The address actually bound (for Host checks).
    pub local: SocketAddr,
    /// Fires when the gateway shuts down.
    stop: CancellationToken,
}

/// Serve until `stop` fires, then drain in-flight requests (bounded by the caller).
pub async fn serve(
    gw: Arc<Gateway>,
    cfg: HttpFront,
    listener: TcpListener,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let max = gw.cfg.max_message_size;
    let idle = Duration::from_secs_f64(cfg.session_idle_timeout_secs);
    let state = Arc::new(HttpState {
        gw: gw.clone(),
        stop: stop.clone(),
        sessions: Registry::new(cfg.max_sessions),
        cfg: cfg.clone(),
        local,
    });
    tokio::spawn(registry::reap(state.clone(), idle, stop.clone()));
    let mut app = Router::new()
        .route(&cfg.path, get(streamable::get).post(streamable::post).delete(streamable::delete))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready));
    if cfg.legacy_sse {
        app = app
            .route("/sse", get(legacy_sse::connect))
            .route("/messages", axum::routing::post(legacy_sse::message));
    }
    // One middleware outside the router (rather than a layer per concern on every route, which
    // axum clones per request): checks, authentication, then the handler.
    let app = app.with_state(state.clone());
    let app = middleware::from_fn_with_state(state, front).layer(app);
    let app = DefaultBodyLimit::max(max).layer(app);
    tracing::info!("Streamable HTTP front on http://{local}{}", cfg.path);
    let (listener, drain) = limits::Limited::new(listener, cfg.max_connections, "the HTTP front");
    // `tap_io` gives the listener `ConnectInfo<SocketAddr>`.
    let listener = axum::serve::ListenerExt::tap_io(listener, |_| {});
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app),
    )
    .with_graceful_shutdown(async move { stop.cancelled().await })
    .await?;
    drain.wait().await;
    Ok(())
}

async fn ready(State(st): State<Arc<HttpState>>) -> Response {
    let mounts = st.gw.mounts();
    let ready = mounts.servers.iter().filter(|m| m.up().is_ready()).count();
    let body = format!(
        r#"{{"ready":{},"servers":{},"ready_servers":{ready}}}"#,
        ready > 0 || mounts.servers.is_empty(),
        mounts.servers.len()
    );
    let status =
        if ready > 0 || mounts.servers.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Every request: DNS-rebinding and cross-origin protection, then authentication, then the
/// handler.
async fn front(
    State(st): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let headers = req.headers();
    if !host_allowed(headers, &st.cfg, st.local) {
        tracing::warn!(%peer, host = ?headers.get(header::HOST), "rejected request with a foreign Host header");
        return (StatusCode::FORBIDDEN, "forbidden: Host not allowed").into_response();
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok())
        && !origin_allowed(origin, &st.cfg)
    {
        tracing::warn!(%peer, origin, "rejected request from a foreign Origin");
        return (StatusCode::FORBIDDEN, "forbidden: Origin not allowed").into_response();
    }
    let get_stream = req.method() == Method::GET && req.uri().path() == st.cfg.path;
    let resp = auth::then(&st.gw, peer, req, next).await;
    if get_stream { limits::end_get_stream_on_stop(resp, &st.stop) } else { resp }
}

fn is_loopback_name(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1") || host.starts_with("127.")
}

/// Strip the port from a `Host` value (`[::1]:3000`, `localhost:3000`, `example.com`).
fn host_name(value: &str) -> &str {
    if value.starts_with('[') {
        return value.find(']').map_or(value, |i| &value[..=i]);
    }
    value.rsplit_once(':').map_or(value, |(h, _)| h)
}

fn host_allowed(headers: &HeaderMap, cfg: &HttpFront, local: SocketAddr) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let name = host_name(host).to_ascii_lowercase();
    if cfg.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(&name) || h.eq_ignore_ascii_case(host)) {
        return true;
    }
    if local.ip().is_loopback() {
        return is_loopback_name(&name);
    }
    // Bound beyond loopback without an allow-list: the operator chose to accept any name.
    cfg.allowed_hosts.is_empty()
}

fn origin_allowed(origin: &str, cfg: &HttpFront) -> bool {
    if cfg.allowed_origins.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    rest.is_some_and(|r| is_loopback_name(&host_name(r).to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(hosts: &[&str], origins: &[&str]) -> HttpFront {
        HttpFront {
            enabled: true,
            host: "127.0.0.1".into(),
            port: 0,
            path: "/mcp".into(),
            allowed_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            max_sessions: 10,
            session_idle_timeout_secs: 60.0,
            legacy_sse: true,
            max_connections: 8,
        }
    }

    #[test]
    fn hosts_and_origins() {
        let loopback: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:3000".parse().unwrap();
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, v.parse().unwrap());
            m
        };
        let cases = [
            (h("localhost:3000"), cfg(&[], &[]), loopback, true),
            (h("127.0.0.1:3000"), cfg(&[], &[]), loopback, true),
            (h("[::1]:3000"), cfg(&[], &[]), loopback, true),
            (h("evil.example.com"), cfg(&[], &[]), loopback, false),
            (h("evil.example.com:3000"), cfg(&[], &[]), loopback, false),
            (h("mcp.internal:3000"), cfg(&["mcp.internal"], &[]), loopback, true),
            (h("evil.example.com"), cfg(&["mcp.internal"], &[]), any, false),
            (h("anything"), cfg(&[], &[]), any, true),
        ];
        for (headers, c, local, want) in cases {
            assert_eq!(host_allowed(&headers, &c, local), want, "{headers:?}");
        }
        assert!(!host_allowed(&HeaderMap::new(), &cfg(&[], &[]), loopback));
        assert!(origin_allowed("http://localhost:5173", &cfg(&[], &[])));
        assert!(origin_allowed("http://127.0.0.1", &cfg(&[], &[])));
        assert!(!origin_allowed("https://evil.example.com", &cfg(&[], &[])));
        assert!(origin_allowed("https://app.example.com", &cfg(&[], &["https://app.example.com"])));
        assert!(!origin_allowed("null", &cfg(&[], &[])));
    }
}
