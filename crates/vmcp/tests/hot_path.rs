//! What the hot path's shortcuts must leave as it was. Routing hands the HTTP upstream what it
//! already read, so a call forwarded to a modern Streamable HTTP backend must still carry
//! `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` (the backend's own name, not the one vMCP
//! shows) and the SEP-2243 `Mcp-Param-*` headers (the backend here records every request's
//! headers). Routing reads a retry's `requestState` once, so a modern client's retry of a call
//! vMCP parked for a legacy backend's sampling request must still resume it.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use support::*;

/// One POST the backend received: the JSON-RPC method and the request's headers (lowercase).
type Seen = Arc<Mutex<Vec<(String, HashMap<String, String>)>>>;

/// A minimal modern (2026-07-28) Streamable HTTP server on threads, with one tool `lookup` whose
/// `region` argument is mirrored in `Mcp-Param-Region`. Returns its URL and what it saw.
fn modern_backend() -> (String, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let seen = Seen::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let record = record.clone();
            std::thread::spawn(move || serve(conn, &record));
        }
    });
    (url, seen)
}

fn serve(mut conn: TcpStream, seen: &Seen) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        let verb = line.split_whitespace().next().unwrap_or("").to_owned();
        let mut headers = HashMap::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end().is_empty() {
                break;
            }
            if let Some((k, v)) = line.trim_end().split_once(':') {
                headers.insert(k.to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let msg: Value = serde_json::from_slice(&body).unwrap_or_default();
        let method = msg["method"].as_str().unwrap_or_default().to_owned();
        seen.lock().unwrap().push((method.clone(), headers));
        let (status, reply) = match (verb.as_str(), msg.get("id")) {
            ("POST", Some(id)) => {
                (200, json!({ "jsonrpc": "2.0", "id": id, "result": answer(&method) }).to_string())
            }
            ("POST", None) => (202, String::new()),
            _ => (405, String::new()),
        };
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

fn answer(method: &str) -> Value {
    match method {
        "server/discover" => json!({ "resultType": "complete", "supportedVersions": ["2026-07-28"],
            "capabilities": { "tools": {} }, "serverInfo": { "name": "modern-recorder", "version": "1" } }),
        "tools/list" => json!({ "resultType": "complete", "tools": [{ "name": "lookup", "inputSchema": {
            "type": "object",
            "properties": { "region": { "type": "string", "x-mcp-header": "Region" }, "q": { "type": "string" } } } }] }),
        _ => json!({ "resultType": "complete", "content": [{ "type": "text", "text": "found" }] }),
    }
}

#[test]
fn a_call_to_a_modern_http_backend_carries_its_method_name_and_param_headers() {
    let (url, seen) = modern_backend();
    let home = Home::new().server(json!({ "id": "h", "transport": "http", "url": url }));
    let mut gw = home.start();
    gw.initialize(json!({}));
    assert_eq!(gw.call_text("h__lookup", json!({ "region": "eu-west", "q": "x" })), "found");

    let calls: Vec<_> =
        seen.lock().unwrap().iter().filter(|(m, _)| m == "tools/call").map(|(_, h)| h.clone()).collect();
    assert_eq!(calls.len(), 1, "one call reached the backend");
    let h = &calls[0];
    let header = |name: &str| h.get(name).map(String::as_str);
    assert_eq!(header("mcp-protocol-version"), Some("2026-07-28"));
    assert_eq!(header("mcp-method"), Some("tools/call"));
    assert_eq!(header("mcp-name"), Some("lookup"), "the backend's own name: {h:?}");
    assert_eq!(header("mcp-param-region"), Some("eu-west"), "{h:?}");
    assert_eq!(header("mcp-session-id"), None, "a modern request has no session");
}

#[test]
fn a_modern_clients_retry_resumes_the_call_parked_for_a_legacy_backends_request() {
    let home = Home::new().fixture("l", &["--era", "legacy"]);
    let mut gw = home.start();
    let modern = |extra: Value| {
        let mut p = extra;
        p["_meta"] = json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": { "sampling": {} },
            "io.modelcontextprotocol/clientInfo": { "name": "test", "version": "1" } });
        p
    };
    let first = gw.ok("tools/call", modern(json!({ "name": "l__sample", "arguments": { "prompt": "hi" } })));
    assert_eq!(first["resultType"], "input_required", "{first}");
    let (key, req) = first["inputRequests"].as_object().unwrap().iter().next().unwrap();
    assert_eq!(req["method"], "sampling/createMessage");
    let retry = modern(json!({ "name": "l__sample", "arguments": { "prompt": "hi" },
        "requestState": first["requestState"],
        "inputResponses": { key.as_str(): { "role": "assistant", "content": { "type": "text", "text": "from the client" }, "model": "m" } } }));
    let done = gw.ok("tools/call", retry);
    assert_eq!(done["resultType"], "complete", "{done}");
    assert!(done.to_string().contains("from the client"), "{done}");
}
