//! `serve-http`: a fast Streamable HTTP MCP backend (legacy era, JSON replies) for the HTTP
//! benchmarks, the network twin of `vmcp-fixture` over stdio.
//!
//! It answers `initialize` (with an `Mcp-Session-Id`), `ping`, `tools/list` (an `echo` tool plus
//! `--tools N` generated ones) and `tools/call` of `echo` (the `text` argument comes back as the
//! text content, copied verbatim); any other method gets -32601, so vMCP's `server/discover`
//! probe marks it legacy. Notifications and responses get 202, GET 405 (no server stream),
//! DELETE 200. Session ids are handed out but not checked: the backend keeps no per-session
//! state, so it costs the same whichever path the request came by.
//!
//! Invariant: one thread, no per-request allocation beyond the response text; it prints
//! `listening on http://ADDR/mcp` as its first stdout line once it accepts connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use vmcp_protocol::{Message, message, splice};

struct Backend {
    tools_list: String,
    sessions: AtomicU64,
}

/// Serve until killed (or stdin closes, so a parent that dies takes it along).
pub fn serve(listen: SocketAddr, tools: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Backend { tools_list: tools_list(tools), sessions: AtomicU64::new(0) });
        let app = Router::new()
            .route(
                "/mcp",
                post(handle).get(|| async { StatusCode::METHOD_NOT_ALLOWED }).delete(|| async { "" }),
            )
            .with_state(state);
        println!("listening on http://{addr}/mcp");
        use std::io::Write as _;
        std::io::stdout().flush()?;
        let stdin_closed = async {
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
        };
        axum::serve(listener, app).with_graceful_shutdown(stdin_closed).await?;
        Ok(())
    })
}

async fn handle(State(st): State<Arc<Backend>>, body: Bytes) -> Response {
    let Ok(msg) = Message::parse(&body) else {
        let err = message::error_response(None, r#"{"code":-32700,"message":"parse error"}"#);
        return json(StatusCode::BAD_REQUEST, err);
    };
    let (Some(id), Some(method)) = (msg.id.as_deref(), msg.method.as_deref()) else {
        return StatusCode::ACCEPTED.into_response();
    };
    let id = id.get();
    let params = msg.params().unwrap_or("{}");
    match method {
        "tools/call" => match splice::get(params, "name").and_then(splice::as_str).as_deref() {
            Some("echo") => {
                let text = splice::get_path(params, &["arguments", "text"]).unwrap_or(r#""""#);
                let result = format!(r#"{{"content":[{{"type":"text","text":{text}}}]}}"#);
                json(StatusCode::OK, message::response(id, &result))
            }
            _ => rpc_error(id, -32602, "unknown tool"),
        },
        "tools/list" => json(StatusCode::OK, message::response(id, &st.tools_list)),
        "ping" => json(StatusCode::OK, message::response(id, "{}")),
        "initialize" => {
            let version = splice::get(params, "protocolVersion").unwrap_or(r#""2025-11-25""#);
            let result = format!(
                r#"{{"protocolVersion":{version},"capabilities":{{"tools":{{}}}},"serverInfo":{{"name":"vmcp-bench-http","version":"{}"}}}}"#,
                env!("CARGO_PKG_VERSION")
            );
            let mut resp = json(StatusCode::OK, message::response(id, &result));
            let sid = format!("bench-{}", st.sessions.fetch_add(1, Ordering::Relaxed));
            if let Ok(v) = HeaderValue::from_str(&sid) {
                resp.headers_mut().insert("mcp-session-id", v);
            }
            resp
        }
        _ => rpc_error(id, -32601, "method not found"),
    }
}

fn rpc_error(id: &str, code: i32, why: &str) -> Response {
    let err = format!(r#"{{"code":{code},"message":{}}}"#, splice::quote(why));
    json(StatusCode::OK, message::error_response(Some(id), &err))
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The `tools/list` result: `echo` and `extra` generated tools with schemas of a realistic size.
fn tools_list(extra: usize) -> String {
    let mut tools = vec![
        r#"{"name":"echo","description":"Returns its text argument.","inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}}"#.to_owned(),
    ];
    for i in 0..extra {
        tools.push(format!(
            r#"{{"name":"gen_{i:04}","description":"Generated tool number {i} for list benchmarks.","inputSchema":{{"type":"object","properties":{{"query":{{"type":"string","description":"What to look for"}},"limit":{{"type":"integer","minimum":1,"maximum":100}}}},"required":["query"]}}}}"#
        ));
    }
    format!(r#"{{"tools":[{}]}}"#, tools.join(","))
}
