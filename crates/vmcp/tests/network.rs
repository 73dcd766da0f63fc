//! The network fronts (Streamable HTTP in both eras, legacy SSE, WebSocket) and the network
//! upstreams, exercised over real sockets on 127.0.0.1.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use serde_json::{Value, json};
use support::*;

/// A gateway serving `fronts` (`--no-stdio`) with the fixture `f` mounted and `config` as its
/// `vmcp.toml` when given. The home comes back too: it must live as long as the server.
fn fixture_server(config: Option<&str>, fronts: &[&str]) -> (Home, Server) {
    let home = Home::new().fixture("f", &[]);
    home.write_servers();
    if let Some(config) = config {
        home.write_config(config);
    }
    let server = Server::start(home.path(), fronts);
    (home, server)
}

/// The JSON-RPC messages of a reply, whether it came as JSON or as SSE.
fn messages(r: &Reply) -> Vec<Value> {
    if r.content_type.starts_with("text/event-stream") {
        r.body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter(|d| !d.is_empty())
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    } else {
        vec![serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{}: {e}", r.body))]
    }
}

fn init_body(version: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": { "protocolVersion": version, "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } })
}

fn legacy_session(url: &str, version: &str) -> String {
    let r = post(url, &[], &init_body(version));
    assert_eq!(r.status, 200, "{}", r.body);
    let sid = r.session.expect("Mcp-Session-Id");
    post(
        url,
        &[("Mcp-Session-Id", &sid)],
        &json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
    );
    sid
}

fn modern_headers<'a>(method: &'a str, name: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", method)];
    if let Some(n) = name {
        h.push(("Mcp-Name", n));
    }
    h
}

#[test]
fn streamable_http_sessions_security_and_errors() {
    let (_home, server) = fixture_server(None, &["--http", "127.0.0.1:0"]);
    let url = server.url();

    let forged = post(&url, &[("Host", "evil.example.com")], &init_body("2025-11-25"));
    assert_eq!(forged.status, 403, "DNS rebinding: a forged Host must be refused");
    let cross = post(&url, &[("Origin", "https://evil.example.com")], &init_body("2025-11-25"));
    assert_eq!(cross.status, 403);
    let mut no_accept = agent()
        .post(&url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .send(init_body("2025-11-25").to_string())
        .unwrap();
    assert_eq!(no_accept.status().as_u16(), 406, "{}", no_accept.body_mut().read_to_string().unwrap());

    let sid = legacy_session(&url, "2025-11-25");
    let list = post(
        &url,
        &[("Mcp-Session-Id", &sid), ("MCP-Protocol-Version", "2025-11-25")],
        &json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }),
    );
    assert!(messages(&list)[0]["result"]["tools"].as_array().unwrap().iter().any(|t| t["name"] == "f__echo"));
    let bad_version = post(
        &url,
        &[("Mcp-Session-Id", &sid), ("MCP-Protocol-Version", "1999-01-01")],
        &json!({ "jsonrpc": "2.0", "id": 3, "method": "ping" }),
    );
    assert_eq!(bad_version.status, 400);
    let batch =
        post(&url, &[("Mcp-Session-Id", &sid)], &json!([{ "jsonrpc": "2.0", "id": 4, "method": "ping" }]));
    assert_eq!(batch.status, 400, "batches belong to 2025-03-26 only");

    let deleted = agent().delete(&url).header("Mcp-Session-Id", &sid).call().unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let gone =
        post(&url, &[("Mcp-Session-Id", &sid)], &json!({ "jsonrpc": "2.0", "id": 5, "method": "ping" }));
    assert_eq!(gone.status, 404, "a deleted session is unknown");
    assert_eq!(
        post(
            &url,
            &[("Mcp-Session-Id", "no-such-session")],
            &json!({ "jsonrpc": "2.0", "id": 6, "method": "ping" })
        )
        .status,
        404
    );

    let old = legacy_session(&url, "2025-03-26");
    let batch = post(
        &url,
        &[("Mcp-Session-Id", &old)],
        &json!([
            { "jsonrpc": "2.0", "id": 7, "method": "ping" },
            { "jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": { "name": "f__echo", "arguments": { "text": "in a batch" } } }
        ]),
    );
    let answers: Vec<Value> = serde_json::from_str(&batch.body).unwrap();
    assert_eq!(answers.len(), 2);
    assert!(batch.body.contains("in a batch"));

    // Modern: stateless, headers must agree with the body.
    let tools = post(
        &url,
        &modern_headers("tools/list", None),
        &json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": { "_meta": modern_meta() } }),
    );
    assert_eq!(tools.status, 200, "{}", tools.body);
    assert_eq!(messages(&tools)[0]["result"]["resultType"], "complete");
    let call = json!({ "jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": { "name": "f__echo", "arguments": { "text": "m" }, "_meta": modern_meta() } });
    assert_eq!(post(&url, &modern_headers("tools/call", Some("f__echo")), &call).status, 200);
    let mismatch = post(&url, &modern_headers("tools/call", Some("other")), &call);
    assert_eq!(mismatch.status, 400);
    assert_eq!(messages(&mismatch)[0]["error"]["code"], -32020);
    let wrong_method = post(&url, &modern_headers("tools/list", None), &call);
    assert_eq!(messages(&wrong_method)[0]["error"]["code"], -32020);
    let unknown = post(
        &url,
        &modern_headers("no/such", None),
        &json!({ "jsonrpc": "2.0", "id": 11, "method": "no/such", "params": { "_meta": modern_meta() } }),
    );
    assert_eq!(unknown.status, 404);
    let get = agent().get(&url).header("Accept", "text/event-stream").call().unwrap();
    assert_eq!(get.status().as_u16(), 405, "modern clients have no GET stream");
    // SEP-2575: the methods 2026-07-28 removed are unknown to a modern request, even `initialize`.
    for method in ["initialize", "ping", "logging/setLevel", "resources/subscribe"] {
        let r = post(
            &url,
            &modern_headers(method, None),
            &json!({ "jsonrpc": "2.0", "id": 12, "method": method, "params": {} }),
        );
        assert_eq!(r.status, 404, "{method}: {}", r.body);
        assert_eq!(messages(&r)[0]["error"]["code"], -32601, "{method}");
        assert!(r.session.is_none(), "{method} opened no session");
    }
}

#[test]
fn progress_switches_the_answer_to_sse() {
    let (_home, server) = fixture_server(None, &["--http", "127.0.0.1:0"]);
    let url = server.url();
    let sid = legacy_session(&url, "2025-11-25");
    let r = post(
        &url,
        &[("Mcp-Session-Id", &sid)],
        &json!({ "jsonrpc": "2.0", "id": "p", "method": "tools/call",
        "params": { "name": "f__slow", "arguments": { "ms": 50 }, "_meta": { "progressToken": "tok" } } }),
    );
    assert!(r.content_type.starts_with("text/event-stream"), "{}", r.content_type);
    let msgs = messages(&r);
    assert!(
        msgs.iter().any(|m| m["method"] == "notifications/progress" && m["params"]["progressToken"] == "tok"),
        "{msgs:?}"
    );
    assert_eq!(msgs.last().unwrap()["id"], "p");
    assert!(
        r.body.contains("id: ") && r.body.contains("retry: "),
        "events carry ids and a priming event: {}",
        r.body
    );

    // Modern: the same, without a session.
    let r = post(
        &url,
        &modern_headers("tools/call", Some("f__slow")),
        &json!({ "jsonrpc": "2.0", "id": "q", "method": "tools/call",
        "params": { "name": "f__slow", "arguments": { "ms": 50 }, "_meta": { "progressToken": 7,
            "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} } } }),
    );
    let msgs = messages(&r);
    assert!(
        msgs.iter().any(|m| m["method"] == "notifications/progress" && m["params"]["progressToken"] == 7),
        "{msgs:?}"
    );
    assert_eq!(msgs.last().unwrap()["result"]["resultType"], "complete");
}

/// Read SSE events from a GET stream until `n` JSON-RPC messages arrived; returns (id, message).
fn read_events(reader: &mut impl BufRead, n: usize) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut id = String::new();
    let mut line = String::new();
    while out.len() < n {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let l = line.trim_end();
        if let Some(v) = l.strip_prefix("id: ") {
            id = v.to_owned();
        } else if let Some(d) = l.strip_prefix("data: ")
            && !d.is_empty()
        {
            out.push((id.clone(), serde_json::from_str(d).unwrap()));
        }
    }
    out
}

#[test]
fn a_resumed_get_stream_replays_the_events_it_missed() {
    let (_home, server) = fixture_server(None, &["--http", "127.0.0.1:0"]);
    let url = server.url();
    let sid = legacy_session(&url, "2025-11-25");
    let call = |name: &str| {
        post(
            &url,
            &[("Mcp-Session-Id", &sid)],
            &json!({ "jsonrpc": "2.0", "id": name, "method": "tools/call",
            "params": { "name": "f__add_tool", "arguments": { "name": name } } }),
        )
    };

    let mut get = agent()
        .get(&url)
        .header("Accept", "text/event-stream")
        .header("Mcp-Session-Id", &sid)
        .call()
        .unwrap();
    assert_eq!(get.status().as_u16(), 200);
    let mut reader = BufReader::new(get.body_mut().as_reader());
    call("one");
    let first = read_events(&mut reader, 1);
    assert_eq!(first[0].1["method"], "notifications/tools/list_changed");
    let seen = first[0].0.clone();
    drop(reader);
    drop(get);

    call("two"); // happens while no GET stream is connected
    let mut again = agent()
        .get(&url)
        .header("Accept", "text/event-stream")
        .header("Mcp-Session-Id", &sid)
        .header("Last-Event-ID", &seen)
        .call()
        .unwrap();
    let mut reader = BufReader::new(again.body_mut().as_reader());
    let missed = read_events(&mut reader, 1);
    assert_eq!(missed[0].1["method"], "notifications/tools/list_changed", "the missed event is replayed");
    assert_ne!(missed[0].0, seen);
}

#[test]
fn gateways_chain_over_http_sse_and_websocket() {
    let (_inner_home, inner) = fixture_server(None, &["--http", "127.0.0.1:0", "--ws", "127.0.0.1:0"]);
    let http = inner.url();
    let sse = format!("{}/sse", inner.base());
    let ws = format!("ws://{}", inner.ws.as_deref().unwrap());

    let outer = Home::new()
        .server(json!({ "id": "h", "transport": "http", "url": http }))
        .server(json!({ "id": "s", "transport": "sse", "url": sse }))
        .server(json!({ "id": "w", "transport": "websocket", "url": ws }));
    let mut gw = outer.start();
    gw.initialize(json!({ "sampling": {} }));
    let servers = gw.ok("vmcp/servers/list", json!({}));
    for s in servers["servers"].as_array().unwrap() {
        assert_eq!(s["status"], "ready", "{servers}");
    }
    for prefix in ["h", "s", "w"] {
        assert_eq!(gw.call_text(&format!("{prefix}__f__echo"), json!({ "text": prefix })), prefix);
    }
    // Progress and a server-to-client request cross two gateways over HTTP.
    gw.send(&json!({ "jsonrpc": "2.0", "id": "pp", "method": "tools/call",
        "params": { "name": "h__f__slow", "arguments": { "ms": 50 }, "_meta": { "progressToken": "outer" } } }));
    assert_eq!(gw.notification("notifications/progress")["params"]["progressToken"], "outer");
    assert!(gw.response(&json!("pp")).get("result").is_some());
}

#[test]
fn an_http_upstream_that_restarts_loses_at_most_the_call_in_flight() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let (inner_home, mut inner) = fixture_server(None, &["--http", &addr]);
    // `m` is probed and spoken to in the modern era (stateless); `l` is forced to legacy, so it
    // holds a session that the restart destroys.
    let outer = Home::new()
        .server(json!({ "id": "m", "transport": "http", "url": inner.url(), "timeout": 5 }))
        .server(json!({ "id": "l", "transport": "http", "url": inner.url(), "timeout": 5, "era": "legacy" }));
    let mut gw = outer.start();
    gw.initialize(json!({}));
    let servers = gw.ok("vmcp/servers/list", json!({}));
    assert_eq!(servers["servers"][0]["era"], "modern");
    assert_eq!(servers["servers"][1]["era"], "legacy");
    for s in ["m", "l"] {
        assert_eq!(gw.call_text(&format!("{s}__f__echo"), json!({ "text": "before" })), "before");
    }

    // A call in flight on each when the server dies: it fails (it is the one request lost).
    for s in ["m", "l"] {
        gw.send(&json!({ "jsonrpc": "2.0", "id": format!("slow-{s}"), "method": "tools/call",
            "params": { "name": format!("{s}__f__slow"), "arguments": { "ms": 10000 }, "_meta": { "progressToken": s } } }));
        let token = json!(s);
        gw.recv_until("progress of the slow call", move |v| {
            v["method"] == "notifications/progress" && v["params"]["progressToken"] == token
        });
    }
    inner.kill();
    for s in ["m", "l"] {
        let lost = gw.response(&json!(format!("slow-{s}")));
        assert!(lost.get("error").is_some(), "the call in flight fails, it does not hang: {lost}");
    }
    let mut inner = Server::start(inner_home.path(), &["--http", &addr]);
    // The restarted server does not know the old session: vMCP initializes again by itself, and
    // the next call of each succeeds.
    for s in ["m", "l"] {
        assert_eq!(gw.call_text(&format!("{s}__f__echo"), json!({ "text": "after" })), "after");
    }
    assert!(gw.stderr().contains("initializing again"), "the legacy session was re-established");
    inner.kill();
}

#[test]
fn legacy_sse_and_websocket_fronts_serve_clients() {
    let (_home, server) = fixture_server(None, &["--http", "127.0.0.1:0"]);
    let base = server.base();
    let mut get = agent().get(format!("{base}/sse")).header("Accept", "text/event-stream").call().unwrap();
    let mut reader = BufReader::new(get.body_mut().as_reader());
    let mut endpoint = String::new();
    let mut line = String::new();
    while endpoint.is_empty() {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0);
        if let Some(d) = line.trim_end().strip_prefix("data: ") {
            endpoint = d.to_owned();
        }
    }
    assert!(endpoint.starts_with("/messages?sessionId="), "{endpoint}");
    let r = post(&format!("{base}{endpoint}"), &[], &init_body("2024-11-05"));
    assert_eq!(r.status, 202);
    let answer = read_events(&mut reader, 1);
    assert_eq!(answer[0].1["result"]["protocolVersion"], "2024-11-05");
    post(
        &format!("{base}{endpoint}"),
        &[],
        &json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "f__echo", "arguments": { "text": "over sse" } } }),
    );
    let answer = read_events(&mut reader, 1);
    assert_eq!(answer[0].1["result"]["content"][0]["text"], "over sse");
    let mut body = String::new();
    let _ = reader.get_mut().take(0).read_to_string(&mut body);
}

// ---------------------------------------------------------------- limits and drain ----

/// One raw HTTP/1.1 exchange on a fresh connection that the server closes after answering.
fn raw_exchange(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn health_request(addr: &str) -> String {
    format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
}

fn upgrade_request(addr: &str) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: mcp\r\n\r\n"
    )
}

#[test]
fn connection_limits_answer_503_past_the_maximum_and_recover() {
    let (_home, server) = fixture_server(
        Some(
            "[gateway.transports.http]\nmax_connections = 2\n[gateway.transports.websocket]\nmax_connections = 1\n",
        ),
        &["--http", "127.0.0.1:0", "--ws", "127.0.0.1:0"],
    );
    let (http, ws) = (server.http.clone().unwrap(), server.ws.clone().unwrap());

    // Idle connections count: two take both HTTP slots (accepted in connect order).
    let first = TcpStream::connect(&http).unwrap();
    let _second = TcpStream::connect(&http).unwrap();
    let refused = raw_exchange(&http, &health_request(&http));
    assert!(refused.starts_with("HTTP/1.1 503"), "past the limit: {refused}");
    assert!(refused.to_ascii_lowercase().contains("retry-after:"), "{refused}");
    drop(first);
    eventually("a closed connection frees its slot", || {
        raw_exchange(&http, &health_request(&http)).starts_with("HTTP/1.1 200")
    });

    let held = TcpStream::connect(&ws).unwrap();
    let refused = raw_exchange(&ws, &upgrade_request(&ws));
    assert!(refused.starts_with("HTTP/1.1 503"), "WebSocket past the limit: {refused}");
    drop(held);
    eventually("the WebSocket slot is free again", || {
        let mut s = TcpStream::connect(&ws).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(upgrade_request(&ws).as_bytes()).unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 101")
    });
    assert!(server.stderr().contains("connections open, the limit"), "the refusal is logged");
}

#[test]
fn http_limits_on_body_size_and_session_count() {
    let (_home, server) = fixture_server(
        Some("[gateway]\nmax_message_size = \"16KiB\"\n[gateway.transports.http]\nmax_sessions = 2\n"),
        &["--http", "127.0.0.1:0"],
    );
    let url = server.url();

    let sid = legacy_session(&url, "2025-11-25");
    let big = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": { "name": "f__echo", "arguments": { "text": "x".repeat(32 * 1024) } } });
    assert_eq!(post(&url, &[("Mcp-Session-Id", &sid)], &big).status, 413, "a body over max_message_size");
    let small = json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": { "name": "f__echo", "arguments": { "text": "fits" } } });
    assert!(post(&url, &[("Mcp-Session-Id", &sid)], &small).body.contains("fits"));

    let _second = legacy_session(&url, "2025-11-25");
    let third = post(&url, &[], &init_body("2025-11-25"));
    assert_eq!(third.status, 503, "max_sessions reached: {}", third.body);
    assert!(third.body.contains("too many sessions"), "{}", third.body);
    assert_eq!(agent().delete(&url).header("Mcp-Session-Id", &sid).call().unwrap().status().as_u16(), 204);
    assert_eq!(post(&url, &[], &init_body("2025-11-25")).status, 200, "a deleted session frees its place");
}

#[test]
fn an_idle_session_expires_and_then_gets_404() {
    let (_home, server) = fixture_server(
        Some("[gateway.transports.http]\nsession_idle_timeout = 0.3\n"),
        &["--http", "127.0.0.1:0"],
    );
    let url = server.url();
    let sid = legacy_session(&url, "2025-11-25");
    // Poll the log, not the session: a request would keep it alive.
    eventually("the idle session is closed", || server.stderr().contains("closing idle session"));
    let gone =
        post(&url, &[("Mcp-Session-Id", &sid)], &json!({ "jsonrpc": "2.0", "id": 2, "method": "ping" }));
    assert_eq!(gone.status, 404, "an expired session is unknown: {}", gone.body);
    assert_eq!(post(&url, &[], &init_body("2025-11-25")).status, 200, "the client initializes again");
}

/// An agent whose exchanges, bodies included, end within `WAIT`: a stream that should end but
/// does not fails the test instead of hanging it.
fn deadline_agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(WAIT)).build().into()
}

/// A legacy HTTP+SSE stream (`GET /sse`), read with `deadline_agent`.
struct SseStream {
    reader: BufReader<ureq::BodyReader<'static>>,
    /// The `endpoint` event's URL (`/messages?sessionId=...`).
    endpoint: String,
}

/// `GET /sse`: the open stream, or the refusal (status and body).
fn open_sse(base: &str) -> Result<SseStream, (u16, String)> {
    let resp =
        deadline_agent().get(format!("{base}/sse")).header("Accept", "text/event-stream").call().unwrap();
    let status = resp.status().as_u16();
    let mut body = resp.into_body().into_reader();
    if status != 200 {
        let mut text = String::new();
        body.read_to_string(&mut text).unwrap();
        return Err((status, text));
    }
    let mut reader = BufReader::new(body);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the SSE stream ended before its endpoint");
        if let Some(endpoint) = line.trim_end().strip_prefix("data: ") {
            return Ok(SseStream { endpoint: endpoint.to_owned(), reader });
        }
    }
}

#[test]
fn legacy_sse_sessions_count_against_max_sessions_with_streamable_ones() {
    let (_home, server) =
        fixture_server(Some("[gateway.transports.http]\nmax_sessions = 2\n"), &["--http", "127.0.0.1:0"]);
    let (url, base) = (server.url(), server.base());

    let first = open_sse(&base).expect("first SSE session");
    let second = open_sse(&base).expect("second SSE session");
    let Err((status, sse_refusal)) = open_sse(&base).map(|s| s.endpoint) else {
        panic!("a third SSE session past max_sessions = 2 was opened")
    };
    assert_eq!(status, 503, "{sse_refusal}");
    let refusal: Value = serde_json::from_str(&sse_refusal).unwrap();
    assert_eq!(refusal["error"]["code"], 5000, "{refusal}");
    assert_eq!(refusal["error"]["message"], "too many sessions", "{refusal}");
    let streamable = post(&url, &[], &init_body("2025-11-25"));
    assert_eq!(streamable.status, 503, "the SSE sessions fill the cap for Streamable HTTP too");
    assert_eq!(streamable.body, sse_refusal, "both kinds refuse with the same body");

    // The sessions still open work.
    let r = post(&format!("{base}{}", second.endpoint), &[], &init_body("2024-11-05"));
    assert_eq!(r.status, 202, "{}", r.body);

    drop(first);
    eventually("a closed SSE stream frees its place", || {
        post(&url, &[], &init_body("2025-11-25")).status == 200
    });
    assert_eq!(open_sse(&base).err().map(|e| e.0), Some(503), "the freed place was taken again");
    drop(second);
    eventually("a second freed place takes an SSE session", || open_sse(&base).is_ok());
}

#[test]
fn an_idle_legacy_sse_session_is_closed_and_its_endpoint_then_gets_404() {
    let (_home, server) = fixture_server(
        Some("[gateway.transports.http]\nsession_idle_timeout = 0.3\n"),
        &["--http", "127.0.0.1:0"],
    );
    let base = server.base();

    let mut silent = open_sse(&base).expect("SSE session");
    let mut rest = String::new();
    silent.reader.read_to_string(&mut rest).expect("the stream of an idle session ends");
    eventually("the reaper logs the close", || server.stderr().contains("closing idle session"));
    let gone = post(&format!("{base}{}", silent.endpoint), &[], &init_body("2024-11-05"));
    assert_eq!(gone.status, 404, "an expired SSE session is unknown: {}", gone.body);
    assert!(open_sse(&base).is_ok(), "the client connects again");
}

#[test]
fn a_deleted_or_expired_streamable_session_ends_its_get_stream() {
    let (_home, server) = fixture_server(
        Some("[gateway.transports.http]\nsession_idle_timeout = 0.5\n"),
        &["--http", "127.0.0.1:0"],
    );
    let url = server.url();
    let get_stream = |sid: &str| {
        let get = deadline_agent()
            .get(&url)
            .header("Accept", "text/event-stream")
            .header("Mcp-Session-Id", sid)
            .call();
        let get = get.unwrap();
        assert_eq!(get.status().as_u16(), 200);
        get.into_body().into_reader()
    };
    let mut rest = String::new();

    let deleted = legacy_session(&url, "2025-11-25");
    let mut stream = get_stream(&deleted);
    assert_eq!(
        agent().delete(&url).header("Mcp-Session-Id", &deleted).call().unwrap().status().as_u16(),
        204
    );
    stream.read_to_string(&mut rest).expect("a deleted session's GET stream ends");

    let idle = legacy_session(&url, "2025-11-25");
    let mut stream = get_stream(&idle);
    stream.read_to_string(&mut rest).expect("an expired session's GET stream ends");
    eventually("the reaper logs the close", || server.stderr().contains("closing idle session"));
    let gone =
        post(&url, &[("Mcp-Session-Id", &idle)], &json!({ "jsonrpc": "2.0", "id": 2, "method": "ping" }));
    assert_eq!(gone.status, 404, "{}", gone.body);
}

/// Read from `r` until `needle` has been seen; returns everything read.
fn read_until_contains(r: &mut impl Read, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = r.read(&mut buf).expect("read");
        assert!(n > 0, "stream ended before `{needle}`: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn sigterm_drains_requests_in_flight_over_http_and_websocket_then_exits() {
    // A long grace: the gateway must not need it (GET streams end at once, nothing hangs).
    let (_home, mut server) = fixture_server(
        Some("[gateway]\nshutdown_grace = 60\n"),
        &["--http", "127.0.0.1:0", "--ws", "127.0.0.1:0"],
    );
    let (http, url) = (server.http.clone().unwrap(), server.url());
    let sid = legacy_session(&url, "2025-11-25");

    // An idle GET stream, which answers no request.
    let mut get = TcpStream::connect(&http).unwrap();
    get.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        get,
        "GET /mcp HTTP/1.1\r\nHost: {http}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {sid}\r\n\r\n"
    )
    .unwrap();
    read_until_contains(&mut get, "200 OK");

    // A slow call over HTTP, answered as SSE: its first progress event proves it is in flight.
    let body = json!({ "jsonrpc": "2.0", "id": "slow-http", "method": "tools/call",
        "params": { "name": "f__slow", "arguments": { "ms": 1500 }, "_meta": { "progressToken": "h" } } })
    .to_string();
    let mut call = TcpStream::connect(&http).unwrap();
    call.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        call,
        "POST /mcp HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMcp-Session-Id: {sid}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    read_until_contains(&mut call, "notifications/progress");

    // The same over WebSocket.
    let mut req = tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{}",
        server.ws.as_deref().unwrap()
    ))
    .unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", "mcp".parse().unwrap());
    let stream = TcpStream::connect(server.ws.as_deref().unwrap()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let (mut ws, _) = tungstenite::client(req, stream).expect("websocket");
    let mut ws_send = |v: Value| ws.send(tungstenite::Message::text(v.to_string())).unwrap();
    ws_send(init_body("2025-11-25"));
    ws_send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
    ws_send(json!({ "jsonrpc": "2.0", "id": "slow-ws", "method": "tools/call",
        "params": { "name": "f__slow", "arguments": { "ms": 1500 }, "_meta": { "progressToken": "w" } } }));
    let mut ws_read_until = |needle: &str| loop {
        match ws.read().expect("websocket read") {
            tungstenite::Message::Text(t) if t.contains(needle) => break t.to_string(),
            _ => {}
        }
    };
    ws_read_until("notifications/progress");

    signal(server.child.id(), libc::SIGTERM);
    let rest = read_until_contains(&mut call, "\"id\":\"slow-http\"");
    assert!(rest.contains("\"result\""), "the HTTP call in flight completes: {rest}");
    let answer = ws_read_until("\"id\":\"slow-ws\"");
    assert!(answer.contains("\"result\""), "the WebSocket call in flight completes: {answer}");
    let mut tail = Vec::new();
    let _ = get.read_to_end(&mut tail); // the GET stream ends instead of holding the drain
    eventually("new connections are refused", || TcpStream::connect(&http).is_err());
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the gateway did not exit: {}", server.stderr());
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status}: {}", server.stderr());
    let log = server.stderr();
    assert!(log.contains("SIGTERM; shutting down"), "{log}");
    assert!(!log.contains("still running after"), "nothing needed the grace period: {log}");
}

// ------------------------------------------------------------- upstream credentials ----

/// A minimal legacy Streamable HTTP server on threads: its tool `whoami` answers with the
/// `Authorization` header the request carried, `target` with the request line's target (the
/// absolute URL when it was reached as a forward proxy). Returns its URL.
fn recording_backend() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve_recorded(conn));
        }
    });
    url
}

fn serve_recorded(mut conn: TcpStream) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        let method = line.split_whitespace().next().unwrap_or("").to_owned();
        let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let (mut auth, mut len) = (String::new(), 0);
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end().is_empty() {
                break;
            }
            if let Some((k, v)) = line.trim_end().split_once(':') {
                match k.to_ascii_lowercase().as_str() {
                    "authorization" => auth = v.trim().to_owned(),
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, reply) =
            if method == "POST" { recorded_answer(&body, &auth, &target) } else { (405, String::new()) };
        let head = format!(
            "HTTP/1.1 {status} -\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            reply.len()
        );
        if conn.write_all(format!("{head}{reply}").as_bytes()).is_err() {
            return;
        }
        line.clear();
    }
}

fn recorded_answer(body: &[u8], auth: &str, target: &str) -> (u16, String) {
    let msg: Value = serde_json::from_slice(body).unwrap_or_default();
    let Some(id) = msg.get("id") else { return (202, String::new()) };
    let result = match msg["method"].as_str() {
        Some("initialize") => json!({ "protocolVersion": "2025-06-18", "capabilities": { "tools": {} },
            "serverInfo": { "name": "recorder", "version": "1" } }),
        Some("tools/list") => json!({ "tools": [{ "name": "whoami", "inputSchema": { "type": "object" } },
            { "name": "target", "inputSchema": { "type": "object" } }] }),
        Some("tools/call") => {
            let text = match msg["params"]["name"].as_str() {
                Some("target") => format!("target=[{target}]"),
                _ => format!("auth=[{auth}]"),
            };
            json!({ "content": [{ "type": "text", "text": text }] })
        }
        _ => {
            return (
                200,
                json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32601, "message": "no" } })
                    .to_string(),
            );
        }
    };
    (200, json!({ "jsonrpc": "2.0", "id": id, "result": result }).to_string())
}

fn write_secrets(home: &Home, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let path = home.path().join("config/secrets.env");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn upstream_credentials_come_from_the_secrets_file_and_the_clients_token_stays_out() {
    const SECRET: &str = "s3cret-upstream-token-7f3a";
    const CLIENT_TOKEN: &str = "client-own-token-91c2";
    let backend = recording_backend();
    let home = Home::new().server(json!({ "id": "r", "transport": "http", "url": backend, "era": "legacy",
        "headers": { "Authorization": "Bearer ${R_TOKEN}" } }));
    home.write_servers();
    write_secrets(&home, &format!("# for server r\nR_TOKEN={SECRET}\n"), 0o600);
    let server = Server::start(home.path(), &["--http", "127.0.0.1:0"]);
    let url = server.url();
    let bearer = format!("Bearer {CLIENT_TOKEN}");

    let init = post(&url, &[("Authorization", &bearer)], &init_body("2025-11-25"));
    let sid = init.session.expect("a session");
    let call = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "r__whoami", "arguments": {} } });
    let legacy = post(&url, &[("Mcp-Session-Id", &sid), ("Authorization", &bearer)], &call);
    let text = &messages(&legacy)[0]["result"]["content"][0]["text"];
    assert_eq!(
        text,
        &json!(format!("auth=[Bearer {SECRET}]")),
        "the configured credential, not the client's"
    );

    let mut modern = call.clone();
    modern["params"]["_meta"] = modern_meta();
    let mut headers = modern_headers("tools/call", Some("r__whoami"));
    headers.push(("Authorization", &bearer));
    let reply = post(&url, &headers, &modern);
    assert_eq!(messages(&reply)[0]["result"]["content"][0]["text"], json!(format!("auth=[Bearer {SECRET}]")));

    let log = server.stderr();
    assert!(log.contains("servers ready") && log.contains("DEBUG"), "the log runs at debug: {log}");
    assert!(!log.contains(SECRET), "the secret leaked into the log:\n{log}");
    assert!(!log.contains(CLIENT_TOKEN), "the client's token leaked into the log:\n{log}");
}

#[test]
fn an_http_upstream_is_reached_through_the_proxy_the_environment_names() {
    // The recording backend stands in for the proxy: the server's own host does not resolve, so
    // a call only succeeds if vMCP sends it to HTTP_PROXY, which gets the absolute URL.
    let proxy = recording_backend();
    let proxy = proxy.trim_end_matches("/mcp");
    let upstream = "http://mcp.upstream.invalid:8123/mcp";
    let home =
        Home::new().server(json!({ "id": "p", "transport": "http", "url": upstream, "era": "legacy" }));
    home.write_servers();
    let gateway = |proxy: Option<&str>| {
        let mut cmd = std::process::Command::new(VMCP);
        let log = home.path().join(if proxy.is_some() { "proxied.log" } else { "direct.log" });
        cmd.arg("start").env("VMCP_HOME", home.path()).stderr(std::fs::File::create(&log).unwrap());
        for var in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
            cmd.env_remove(var);
        }
        cmd.env_remove("NO_PROXY").env_remove("no_proxy");
        if let Some(proxy) = proxy {
            cmd.env("HTTP_PROXY", proxy);
        }
        cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
        let mut gw = Gateway::from_command(cmd);
        gw.stderr_path = log;
        gw.initialize(json!({}));
        gw
    };
    let mut proxied = gateway(Some(proxy));
    assert_eq!(proxied.call_text("p__target", json!({})), format!("target=[{upstream}]"));

    drop(proxied);

    // Without the variable the same server is unreachable: the proxy really carried the calls.
    let mut direct = gateway(None);
    let servers = direct.ok("vmcp/servers/list", json!({}));
    assert_ne!(servers["servers"][0]["status"], "ready", "{servers}");
}

#[test]
fn a_secrets_file_other_users_can_read_is_refused() {
    let home = Home::new().fixture("f", &[]);
    home.write_servers();
    write_secrets(&home, "R_TOKEN=do-not-print-me\n", 0o644);
    let mut child = std::process::Command::new(VMCP)
        .args(["start", "--no-stdio", "--http", "127.0.0.1:0"])
        .env("VMCP_HOME", home.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("vmcp started with a world-readable secrets file");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "a config error: {stderr}");
    assert!(stderr.contains("secrets.env") && stderr.contains("chmod 600"), "{stderr}");
    assert!(!stderr.contains("do-not-print-me"), "{stderr}");
}

#[test]
fn stdio_and_network_fronts_serve_at_the_same_time() {
    let home = Home::new().fixture("f", &[]);
    home.write_servers();
    let mut gw = Gateway::spawn(home.path(), &["start", "--http", "127.0.0.1:0", "--ws", "127.0.0.1:0"]);
    gw.initialize(json!({}));
    let stderr_path = gw.stderr_path.clone();
    let log_has = |what: &str| std::fs::read_to_string(&stderr_path).unwrap_or_default().contains(what);
    eventually("both network fronts listen", || {
        log_has("Streamable HTTP front on ") && log_has("WebSocket front on ws://")
    });
    let log = gw.stderr();
    let http = log.split("Streamable HTTP front on ").nth(1).and_then(|r| r.split_whitespace().next());
    let url = http.expect("the HTTP front runs beside stdio").to_owned();

    let sid = legacy_session(&url, "2025-11-25");
    let over_http = post(
        &url,
        &[("Mcp-Session-Id", &sid)],
        &json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "f__echo", "arguments": { "text": "http" } } }),
    );
    assert_eq!(messages(&over_http)[0]["result"]["content"][0]["text"], "http");
    assert_eq!(gw.call_text("f__echo", json!({ "text": "stdio" })), "stdio");
}
