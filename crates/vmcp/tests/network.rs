//! The network fronts (Streamable HTTP in both eras, legacy SSE, WebSocket) and the network
//! upstreams, exercised over real sockets on 127.0.0.1.

mod support;

use std::io::{BufRead, BufReader, Read};

use serde_json::{Value, json};
use support::*;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

struct Reply {
    status: u16,
    session: Option<String>,
    content_type: String,
    body: String,
}

fn post(url: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    let mut req = agent()
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send(body.to_string()).expect("POST");
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (session, content_type) = (header("mcp-session-id"), header("content-type").unwrap_or_default());
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    Reply { status, session, content_type, body }
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

fn modern_meta() -> Value {
    json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} })
}

#[test]
fn streamable_http_sessions_security_and_errors() {
    let home = Home::new().fixture("f", &[]);
    home.write_servers();
    let server = Server::start(home.path(), &["--http", "127.0.0.1:0"]);
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
}

#[test]
fn progress_switches_the_answer_to_sse() {
    let home = Home::new().fixture("f", &[]);
    home.write_servers();
    let server = Server::start(home.path(), &["--http", "127.0.0.1:0"]);
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
    let home = Home::new().fixture("f", &[]);
    home.write_servers();
    let server = Server::start(home.path(), &["--http", "127.0.0.1:0"]);
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
    let inner_home = Home::new().fixture("f", &[]);
    inner_home.write_servers();
    let inner = Server::start(inner_home.path(), &["--http", "127.0.0.1:0", "--ws", "127.0.0.1:0"]);
    let http = inner.url();
    let sse = format!("http://{}/sse", inner.http.as_deref().unwrap());
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
    let inner_home = Home::new().fixture("f", &[]);
    inner_home.write_servers();
    let mut inner = Server::start(inner_home.path(), &["--http", &addr]);
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

    inner.kill();
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
    let home = Home::new().fixture("f", &[]);
    home.write_servers();
    let server = Server::start(home.path(), &["--http", "127.0.0.1:0"]);
    let base = format!("http://{}", server.http.as_deref().unwrap());
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
