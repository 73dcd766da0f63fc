//! Personas end to end: the seed scenario, the isolation suite (routes x fronts), bad
//! credentials (401 and no secret in any log), and concurrent CLI processes.

mod support;

use serde_json::{Value, json};
use support::*;

/// The JSON-RPC answer in a body sent as JSON or as SSE.
fn answer(body: &str) -> Value {
    let data: Vec<&str> =
        body.lines().filter_map(|l| l.strip_prefix("data: ")).filter(|d| !d.is_empty()).collect();
    let text = data.last().copied().unwrap_or(body);
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON-RPC ({e}): {body}"))
}

/// One way to reach the gateway, as one persona.
trait Front {
    fn name(&self) -> &'static str;
    /// The whole JSON-RPC response to one request.
    fn call(&mut self, method: &str, params: Value) -> Value;
}

struct Stdio(Gateway);

impl Front for Stdio {
    fn name(&self) -> &'static str {
        "stdio"
    }
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.0.call(method, params)
    }
}

/// Streamable HTTP, legacy era (session) or modern era (stateless), with a bearer key.
struct Http {
    url: String,
    key: String,
    session: Option<String>,
    next: u64,
}

impl Http {
    fn legacy(url: &str, key: &str) -> Self {
        let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": { "protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } });
        let auth = format!("Bearer {key}");
        let r = post(url, &[("Authorization", &auth)], &init);
        assert_eq!(r.status, 200, "{}", r.body);
        let sid = r.session.expect("Mcp-Session-Id");
        post(
            url,
            &[("Authorization", &auth), ("Mcp-Session-Id", &sid)],
            &json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
        );
        Self { url: url.into(), key: key.into(), session: Some(sid), next: 0 }
    }

    fn modern(url: &str, key: &str) -> Self {
        Self { url: url.into(), key: key.into(), session: None, next: 0 }
    }
}

impl Front for Http {
    fn name(&self) -> &'static str {
        if self.session.is_some() { "http-legacy" } else { "http-modern" }
    }
    fn call(&mut self, method: &str, mut params: Value) -> Value {
        self.next += 1;
        let auth = format!("Bearer {}", self.key);
        let mut headers: Vec<(&str, &str)> = vec![("Authorization", &auth)];
        let name = params
            .get("name")
            .or_else(|| params.get("uri"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_default();
        match &self.session {
            Some(sid) => headers.push(("Mcp-Session-Id", sid)),
            None => {
                params.as_object_mut().unwrap().insert("_meta".into(), modern_meta());
                headers.push(("MCP-Protocol-Version", "2026-07-28"));
                headers.push(("Mcp-Method", method));
                if !name.is_empty() {
                    headers.push(("Mcp-Name", &name));
                }
            }
        }
        let r = post(
            &self.url,
            &headers,
            &json!({ "jsonrpc": "2.0", "id": self.next, "method": method, "params": params }),
        );
        // A modern client gets HTTP errors for methods its era lacks; the body still says why.
        assert!(r.status == 200 || self.session.is_none(), "{method} over {}: {}", self.name(), r.body);
        answer(&r.body)
    }
}

/// The legacy HTTP+SSE transport (2024-11-05): answers arrive on the `GET /sse` stream.
struct Sse {
    base: String,
    key: String,
    endpoint: String,
    events: std::io::BufReader<ureq::BodyReader<'static>>,
    next: u64,
}

impl Sse {
    fn connect(base: &str, key: &str) -> Self {
        let resp = agent()
            .get(format!("{base}/sse"))
            .header("Accept", "text/event-stream")
            .header("Authorization", format!("Bearer {key}"))
            .call()
            .expect("GET /sse");
        assert_eq!(resp.status().as_u16(), 200);
        let mut events = std::io::BufReader::new(resp.into_body().into_reader());
        let endpoint = next_sse_data(&mut events).expect("endpoint event");
        assert!(endpoint.starts_with("/messages?sessionId="), "{endpoint}");
        let mut sse = Self { base: base.into(), key: key.into(), endpoint, events, next: 0 };
        let init = sse.call(
            "initialize",
            json!({ "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }),
        );
        assert!(init.get("result").is_some(), "{init}");
        sse.post_as(key, &json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        sse
    }

    fn post_as(&self, key: &str, body: &Value) -> Reply {
        post(&format!("{}{}", self.base, self.endpoint), &[("Authorization", &format!("Bearer {key}"))], body)
    }
}

/// The `data` of the next SSE event.
fn next_sse_data(events: &mut impl std::io::BufRead) -> Option<String> {
    let mut line = String::new();
    loop {
        line.clear();
        if events.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(d) = line.trim_end().strip_prefix("data: ")
            && !d.is_empty()
        {
            return Some(d.to_owned());
        }
    }
}

impl Front for Sse {
    fn name(&self) -> &'static str {
        "legacy-sse"
    }
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = json!(self.next);
        let r = self
            .post_as(&self.key, &json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        assert_eq!(r.status, 202, "{method} over legacy SSE: {}", r.body);
        loop {
            let data = next_sse_data(&mut self.events).expect("the SSE stream ended");
            let v: Value = serde_json::from_str(&data).unwrap();
            if v.get("id") == Some(&id) && v.get("method").is_none() {
                return v;
            }
        }
    }
}

/// The WebSocket front: the key goes with the upgrade, then JSON-RPC messages as text frames.
struct Ws {
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    next: u64,
}

impl Ws {
    /// The upgrade's answer: the socket, or the HTTP status it was refused with.
    fn try_connect(addr: &str, key: Option<&str>) -> Result<Self, u16> {
        let mut req = tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{addr}/"))
            .expect("ws request");
        req.headers_mut().insert("Sec-WebSocket-Protocol", "mcp".parse().unwrap());
        if let Some(key) = key {
            req.headers_mut().insert("Authorization", format!("Bearer {key}").parse().unwrap());
        }
        match tungstenite::connect(req) {
            Ok((socket, _)) => Ok(Self { socket, next: 0 }),
            Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("websocket: {e}"),
        }
    }

    fn connect(addr: &str, key: &str) -> Self {
        let mut ws = Self::try_connect(addr, Some(key)).expect("upgrade with a valid key");
        let init = ws.call(
            "initialize",
            json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }),
        );
        assert!(init.get("result").is_some(), "{init}");
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        ws.socket.send(tungstenite::Message::text(note.to_string())).unwrap();
        ws
    }
}

impl Front for Ws {
    fn name(&self) -> &'static str {
        "websocket"
    }
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = json!(self.next);
        let msg = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.socket.send(tungstenite::Message::text(msg.to_string())).unwrap();
        loop {
            if let tungstenite::Message::Text(t) = self.socket.read().expect("websocket read") {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v.get("id") == Some(&id) && v.get("method").is_none() {
                    return v;
                }
            }
        }
    }
}

/// Two fixture servers: `server2` first and with bare names (so bare names resolve to it),
/// `server1` prefixed. Persona `limited` may use `server1` only. Both fixtures serve the same
/// resource URIs, and a URI goes to the first server the caller may use; so that resource
/// routes can only mean `server2`, `limited` is also denied `server1`'s resources.
fn two_servers() -> Home {
    let home = Home::new()
        .server(json!({ "id": "server2", "command": FIXTURE, "args": ["--name", "server2"], "prefix": "" }))
        .fixture("server1", &[]);
    home.write_servers();
    for args in [
        &["persona", "create", "limited"][..],
        &["persona", "limited", "enable", "server1"],
        &["persona", "limited", "deny", "--kind", "resource", "server1:fixture://*"],
    ] {
        let out = home.vmcp(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    home
}

fn new_key(home: &Home, persona: &str) -> String {
    let out = home.vmcp(&["persona", persona, "token", "create"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn error_code(resp: &Value) -> Option<i64> {
    resp.get("error").and_then(|e| e.get("code")).and_then(Value::as_i64)
}

/// The audit log once `cond` holds of it. A running gateway writes it from its own thread, so
/// a line shows up shortly after the answer it records.
fn audit_when(home: &Home, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let read = || std::fs::read_to_string(home.path().join("logs/audit.log")).unwrap_or_default();
    eventually(what, || cond(&read()));
    read()
}

/// Every route by which something of `server2` could be reached, and the code it must get.
/// New routes join here.
fn forbidden_routes() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("tool by bare name", "tools/call", json!({ "name": "echo", "arguments": { "text": "x" } })),
        ("prompt by bare name", "prompts/get", json!({ "name": "greet", "arguments": { "name": "x" } })),
        ("resource by URI", "resources/read", json!({ "uri": "fixture://static/hello" })),
        ("resource by template", "resources/read", json!({ "uri": "fixture://items/7" })),
        (
            "completion ref/prompt",
            "completion/complete",
            json!({ "ref": { "type": "ref/prompt", "name": "greet" }, "argument": { "name": "name", "value": "a" } }),
        ),
        (
            "completion ref/resource",
            "completion/complete",
            json!({ "ref": { "type": "ref/resource", "uri": "fixture://items/{id}" }, "argument": { "name": "id", "value": "1" } }),
        ),
        ("vmcp/servers/info", "vmcp/servers/info", json!({ "id": "server2" })),
    ]
}

fn check_isolation(front: &mut dyn Front) {
    let f = front.name();
    // Lists show server1's items only.
    let tools = front.call("tools/list", json!({}));
    let names: Vec<&str> =
        tools["result"]["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(!names.is_empty() && names.iter().all(|n| n.starts_with("server1__")), "{f}: {names:?}");
    for list in ["prompts/list", "resources/list", "resources/templates/list"] {
        let r = front.call(list, json!({}));
        assert!(r.get("result").is_some(), "{f} {list}: {r}");
    }
    let servers = front.call("vmcp/servers/list", json!({}));
    let ids: Vec<&str> =
        servers["result"]["servers"].as_array().unwrap().iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids, ["server1"], "{f}: vmcp/servers/list");
    // server1 works.
    let ok = front.call("tools/call", json!({ "name": "server1__echo", "arguments": { "text": "hi" } }));
    assert!(ok.get("result").is_some(), "{f}: {ok}");
    // Nothing of server2, by any route.
    for (route, method, params) in forbidden_routes() {
        let r = front.call(method, params);
        // vmcp/servers/info answers as if server2 did not exist; everything else is 3002.
        let code = error_code(&r);
        let refused = if method == "vmcp/servers/info" { code.is_some() } else { code == Some(3002) };
        assert!(refused, "{f}: {route} ({method}) must be refused: {r}");
        assert!(!r.to_string().contains("server2__"), "{f}: {route} leaks names: {r}");
    }
    if f != "http-modern" {
        // (The modern era has no resources/subscribe.)
        let sub = front.call("resources/subscribe", json!({ "uri": "fixture://static/hello" }));
        assert_eq!(error_code(&sub), Some(3002), "{f}: resources/subscribe: {sub}");
    }
    let task = front.call("tasks/get", json!({ "taskId": "server2:1" }));
    assert!(task.get("error").is_some(), "{f}: tasks are not reachable: {task}");
}

#[test]
fn seed_scenario_limited_persona_over_stdio() {
    let home = two_servers();
    let mut gw = Gateway::spawn(home.path(), &["start", "--persona", "limited"]);
    let init = gw.initialize(json!({}));
    // The servers' instructions describe what they offer: only those of servers it may use.
    let instructions = init["instructions"].as_str().unwrap_or_default();
    assert!(instructions.contains("## server1") && !instructions.contains("## server2"), "{instructions}");
    let r = gw.call("tools/call", json!({ "name": "server1__echo", "arguments": { "text": "tool1" } }));
    assert!(r.to_string().contains("tool1"), "tool1 of server1 works: {r}");
    let r = gw.call("tools/call", json!({ "name": "echo", "arguments": { "text": "tool2" } }));
    assert_eq!(error_code(&r), Some(3002), "tool2 of server2: {r}");

    let out = home.vmcp(&["persona", "create", "newbie"]);
    assert!(out.status.success());
    gw.close_stdin();
    gw.wait_exit();
    drop(gw);
    let mut fresh = Gateway::spawn(home.path(), &["start", "--persona", "newbie"]);
    let init = fresh.initialize(json!({}));
    assert!(init.get("instructions").is_none(), "a new persona sees no server's instructions: {init}");
    assert!(fresh.tool_names().is_empty(), "a new persona sees an empty catalog");
    let r = fresh.call("tools/call", json!({ "name": "server1__echo", "arguments": { "text": "x" } }));
    assert_eq!(error_code(&r), Some(3002), "{r}");
}

/// A modern client's `subscriptions/listen` naming a resource its persona may not use is refused,
/// and the audit line names the method the client sent, not the subscribe vMCP makes for it.
#[test]
fn a_refused_listen_is_audited_as_the_listen_the_client_sent() {
    let home = two_servers();
    let mut gw = Gateway::spawn(home.path(), &["start", "--persona", "limited"]);
    let params = json!({ "notifications": { "resourceSubscriptions": ["fixture://static/hello"] }, "_meta": modern_meta() });
    let r = gw.call("subscriptions/listen", params);
    assert_eq!(error_code(&r), Some(3002), "{r}");
    gw.close_stdin();
    assert!(gw.wait_exit().is_some_and(|s| s.success()), "the gateway stops cleanly");
    let audit = std::fs::read_to_string(home.path().join("logs/audit.log")).unwrap();
    let denied: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["event"] == "denied")
        .collect();
    assert_eq!(denied.len(), 1, "{audit}");
    assert_eq!(denied[0]["method"], "subscriptions/listen", "{audit}");
    assert_eq!(denied[0]["server"], "server2", "{audit}");
}

#[test]
fn isolation_over_stdio_and_streamable_http_both_eras() {
    let home = two_servers();
    let mut gw = Gateway::spawn(home.path(), &["start", "--persona", "limited"]);
    gw.initialize(json!({}));
    let mut stdio = Stdio(gw);
    check_isolation(&mut stdio);
    stdio.0.close_stdin();
    stdio.0.wait_exit();
    drop(stdio);

    let key = new_key(&home, "limited");
    let mut server = Server::start(home.path(), &["--http", "127.0.0.1:0", "--api-keys"]);
    let url = server.url();
    check_isolation(&mut Http::legacy(&url, &key));
    check_isolation(&mut Http::modern(&url, &key));

    // Batch elements are checked one by one.
    let batch = json!([
        { "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "server1__echo", "arguments": { "text": "a" } } },
        { "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "echo", "arguments": { "text": "b" } } }
    ]);
    let http = Http::legacy(&url, &key);
    let auth = format!("Bearer {key}");
    let r =
        post(&url, &[("Authorization", &auth), ("Mcp-Session-Id", http.session.as_deref().unwrap())], &batch);
    let text = r.body;
    assert!(text.contains("\"code\":3002"), "the forbidden batch element is refused: {text}");

    // Every denial is in the audit log, with persona, method and target. Stopped, the gateway
    // has written all of them: the search for the key covers the HTTP front's lines too.
    server.stop();
    let audit = std::fs::read_to_string(home.path().join("logs/audit.log")).unwrap();
    assert!(
        audit.lines().any(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["event"] == "denied"
                && v["persona"] == "limited"
                && v["server"] == "server2"
                && v["method"] == "tools/call"
                && v["caller"].as_str().is_some_and(|c| c.starts_with("127.0.0.1:"))
        }),
        "the HTTP front's denials are there: {audit}"
    );
    assert!(!audit.contains(&key), "no key in the audit log");
}

#[test]
fn bad_credentials_get_401_and_no_secret_is_logged() {
    let home = two_servers();
    let revoked = new_key(&home, "limited");
    let good = new_key(&home, "limited");
    let list = home.vmcp(&["persona", "limited", "token", "list", "--json"]);
    let tokens: Value = serde_json::from_slice(&list.stdout).unwrap();
    let first_id = tokens["tokens"][0]["id"].as_str().unwrap().to_owned();
    assert!(home.vmcp(&["persona", "limited", "token", "revoke", &first_id]).status.success());
    let mut server = Server::start(home.path(), &["--http", "127.0.0.1:0", "--api-keys"]);
    let url = server.url();
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } });
    let wrong = format!("vmcp_{}", "A".repeat(43));
    for (what, header) in [
        ("missing", None),
        ("wrong", Some(format!("Bearer {wrong}"))),
        ("revoked", Some(format!("Bearer {revoked}"))),
        ("garbage", Some("Bearer not-a-key".to_owned())),
    ] {
        let headers: Vec<(&str, &str)> =
            header.as_deref().map(|h| vec![("Authorization", h)]).unwrap_or_default();
        let r = post(&url, &headers, &init);
        assert_eq!(r.status, 401, "{what} key: {}", r.body);
        let challenge = r.www_authenticate.unwrap_or_default();
        assert!(challenge.starts_with("Bearer "), "{what}: {challenge}");
        if what != "missing" {
            assert!(challenge.contains("error=\"invalid_token\""), "{what}: {challenge}");
        }
    }
    let r = post(&url, &[("Authorization", &format!("Bearer {good}"))], &init);
    assert_eq!(r.status, 200, "the valid key works: {}", r.body);
    assert_eq!(
        agent()
            .get(&format!("http://{}/healthz", server.http.as_deref().unwrap()))
            .call()
            .unwrap()
            .status()
            .as_u16(),
        200
    );

    // Stopped, the gateway has written every audit line: a line with a key cannot still be on
    // its way when the log is searched for keys.
    server.stop();
    let log = server.stderr();
    let audit = std::fs::read_to_string(home.path().join("logs/audit.log")).unwrap();
    let failed = audit.lines().filter(|l| l.contains("\"auth_failed\"")).count();
    assert_eq!(failed, 4, "each bad credential is audited once: {audit}");
    let persona_file =
        std::fs::read_to_string(home.path().join("config/personas/persona-limited.json")).unwrap();
    for secret in [&revoked, &good, &wrong] {
        assert!(!log.contains(secret.as_str()), "a key in the gateway log");
        assert!(!audit.contains(secret.as_str()), "a key in the audit log");
        assert!(!persona_file.contains(secret.as_str()), "a key in the persona file");
    }
}

#[test]
fn an_unauthenticated_front_beyond_loopback_is_refused() {
    let home = two_servers();
    let out = home.vmcp(&["start", "--no-stdio", "--http", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(64), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without authentication"));
}

#[test]
fn concurrent_cli_processes_lose_no_change() {
    let home = Home::new();
    assert!(home.vmcp(&["persona", "create", "p"]).status.success());
    home.vmcp_concurrently(8, |i| vec!["persona".into(), "p".into(), "enable".into(), format!("s{i}")]);
    let out = home.vmcp(&["persona", "show", "p", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let enabled: Vec<&str> =
        v["enabled_servers"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(enabled.len(), 8, "every concurrent change is kept: {enabled:?}");

    // A crash mid-write leaves the old file whole: a leftover temporary file is ignored.
    let dir = home.path().join("config/personas");
    std::fs::write(dir.join(".persona-p.json.tmp.123"), "{ half a fi").unwrap();
    let out = home.vmcp(&["persona", "show", "p", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn persona_changes_apply_to_a_running_gateway() {
    let home = two_servers();
    let mut gw = Gateway::spawn(home.path(), &["start", "--persona", "limited"]);
    gw.initialize(json!({}));
    let r = gw.call("tools/call", json!({ "name": "echo", "arguments": { "text": "x" } }));
    assert_eq!(error_code(&r), Some(3002));
    assert!(home.vmcp(&["persona", "limited", "enable", "server2"]).status.success());
    gw.notification("notifications/tools/list_changed");
    let r = gw.call("tools/call", json!({ "name": "echo", "arguments": { "text": "now" } }));
    assert!(r.get("result").is_some(), "enabled without a restart: {r}");
    assert!(home.vmcp(&["persona", "limited", "deny", "server2:echo"]).status.success());
    gw.notification("notifications/tools/list_changed");
    let r = gw.call("tools/call", json!({ "name": "echo", "arguments": { "text": "x" } }));
    assert_eq!(error_code(&r), Some(3003), "denied by rule: {r}");
}

/// Regression: a legacy Streamable HTTP session (or a legacy SSE session) was not tied to the
/// credential that opened it, so any valid key plus someone else's session id acted as that
/// session's persona. Now every request authenticates, and a session answers only its owner:
/// to anyone else it does not exist (404), and the attempt is audited.
#[test]
fn a_session_answers_only_the_caller_that_opened_it() {
    let home = two_servers();
    assert!(home.vmcp(&["persona", "create", "other"]).status.success());
    assert!(home.vmcp(&["persona", "other", "enable", "server2"]).status.success());
    let (mine, second_mine, theirs) =
        (new_key(&home, "limited"), new_key(&home, "limited"), new_key(&home, "other"));
    let mut server = Server::start(home.path(), &["--http", "127.0.0.1:0", "--api-keys"]);
    let (url, base) = (server.url(), format!("http://{}", server.http.as_deref().unwrap()));
    let http = Http::legacy(&url, &mine);
    let sid = http.session.clone().unwrap();
    let call = json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": { "name": "echo", "arguments": { "text": "x" } } });
    for (who, key) in [("another persona", &theirs), ("another key of the same persona", &second_mine)] {
        let auth = format!("Bearer {key}");
        let r = post(&url, &[("Authorization", &auth), ("Mcp-Session-Id", &sid)], &call);
        assert_eq!(r.status, 404, "POST by {who}: {}", r.body);
        assert!(!r.body.contains("result"), "{}", r.body);
        let get = agent()
            .get(&url)
            .header("Accept", "text/event-stream")
            .header("Authorization", &auth)
            .header("Mcp-Session-Id", &sid)
            .call()
            .unwrap();
        assert_eq!(get.status().as_u16(), 404, "GET stream by {who}");
        let del = agent().delete(&url).header("Authorization", &auth).header("Mcp-Session-Id", &sid).call();
        assert_eq!(del.unwrap().status().as_u16(), 404, "DELETE by {who}");
    }
    // A request with no key at all is 401 before any session is looked up.
    assert_eq!(post(&url, &[("Mcp-Session-Id", &sid)], &call).status, 401);
    // The owner's session is intact and still limited to server1.
    let mut http = http;
    let r =
        http.call("tools/call", json!({ "name": "server1__echo", "arguments": { "text": "still mine" } }));
    assert!(r.to_string().contains("still mine"), "{r}");

    // Legacy SSE: the session id in the endpoint URL is not a credential either.
    let mut sse = Sse::connect(&base, &mine);
    let r = sse.post_as(&theirs, &call);
    assert_eq!(r.status, 404, "a POST to another persona's SSE session: {}", r.body);
    let r = sse.call("tools/call", json!({ "name": "server1__echo", "arguments": { "text": "sse" } }));
    assert!(r.to_string().contains("sse"), "{r}");
    let r = sse.call("tools/call", json!({ "name": "echo", "arguments": { "text": "x" } }));
    assert_eq!(error_code(&r), Some(3002), "{r}");

    let mismatches = |a: &str| a.lines().filter(|l| l.contains("session_mismatch")).count();
    // Stopped, the gateway has written every audit line before the log is searched for keys.
    server.stop();
    let audit = std::fs::read_to_string(home.path().join("logs/audit.log")).unwrap();
    assert!(mismatches(&audit) >= 7, "every refused attempt is audited: {audit}");
    for key in [&mine, &second_mine, &theirs] {
        assert!(!audit.contains(key.as_str()) && !server.stderr().contains(key.as_str()), "a key was logged");
    }
}

#[test]
fn isolation_over_legacy_sse() {
    let home = two_servers();
    let key = new_key(&home, "limited");
    let server = Server::start(home.path(), &["--http", "127.0.0.1:0", "--api-keys"]);
    let base = format!("http://{}", server.http.as_deref().unwrap());
    check_isolation(&mut Sse::connect(&base, &key));
}

/// MRTR (2026-07-28): a retry that carries `inputResponses` and `requestState` is a new request
/// and passes the policy like any other: aimed at a forbidden server it gets 3002, and a tool
/// denied since the first round gets 3003, even with the backend's genuine state.
#[test]
fn an_mrtr_retry_passes_the_policy_again() {
    let home = Home::new()
        .server(json!({ "id": "server2", "command": FIXTURE, "args": ["--name", "server2", "--era", "modern"], "prefix": "" }))
        .fixture("server1", &["--era", "modern"]);
    home.write_servers();
    assert!(home.vmcp(&["persona", "create", "limited"]).status.success());
    assert!(home.vmcp(&["persona", "limited", "enable", "server1"]).status.success());
    let mut gw = Gateway::spawn(home.path(), &["start", "--persona", "limited"]);
    let modern = |extra: Value| {
        let mut p = extra;
        p["_meta"] = json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": { "sampling": {} },
            "io.modelcontextprotocol/clientInfo": { "name": "test", "version": "1" } });
        p
    };
    let first =
        gw.ok("tools/call", modern(json!({ "name": "server1__sample", "arguments": { "prompt": "hi" } })));
    assert_eq!(first["resultType"], "input_required", "{first}");
    let (key, _) = first["inputRequests"].as_object().unwrap().iter().next().unwrap();
    let answer = json!({ key.as_str(): { "role": "assistant", "content": { "type": "text", "text": "ok" }, "model": "m" } });
    let retry = |name: &str| {
        let mut r = modern(
            json!({ "name": name, "arguments": { "prompt": "hi" }, "inputResponses": answer.clone() }),
        );
        if let Some(state) = first.get("requestState") {
            r["requestState"] = state.clone();
        }
        r
    };
    let r = gw.call("tools/call", retry("sample"));
    assert_eq!(error_code(&r), Some(3002), "a retry aimed at server2's tool: {r}");

    assert!(home.vmcp(&["persona", "limited", "deny", "server1:sample"]).status.success());
    let deadline = std::time::Instant::now() + WAIT;
    let r = loop {
        let r = gw.call("tools/call", retry("server1__sample"));
        if error_code(&r).is_some() || std::time::Instant::now() > deadline {
            break r;
        }
    };
    assert_eq!(error_code(&r), Some(3003), "a retry of a tool denied since the first round: {r}");
    audit_when(&home, "the refused retry is audited", |a| {
        a.lines().any(|l| l.contains("\"reason\":\"not_permitted\"") && l.contains("\"name\":\"sample\""))
    });
}

/// A URI that two servers serve goes to the first one the caller may use: before, it went to
/// the first mounted one, and a persona allowed only the second got 3002 for a resource it may
/// read.
#[test]
fn a_resource_two_servers_serve_is_read_from_the_one_the_persona_may_use() {
    let home = two_servers();
    for args in [&["persona", "create", "reader"][..], &["persona", "reader", "enable", "server1"]] {
        assert!(home.vmcp(args).status.success());
    }
    let mut gw = Gateway::spawn(home.path(), &["start", "--persona", "reader"]);
    gw.initialize(json!({}));
    let r = gw.ok("resources/read", json!({ "uri": "fixture://static/hello" }));
    assert!(r.to_string().contains("Hello from the fixture"), "{r}");
    let r = gw.ok("resources/read", json!({ "uri": "fixture://items/7" }));
    assert!(r.to_string().contains("item 7"), "by template: {r}");
    gw.ok("resources/subscribe", json!({ "uri": "fixture://static/hello" }));
    // Once server1 denies it, nothing else may serve it to `reader`: the refusal names the first.
    assert!(
        home.vmcp(&["persona", "reader", "deny", "--kind", "resource", "server1:fixture://*"])
            .status
            .success()
    );
    gw.notification("notifications/resources/list_changed");
    let r = gw.call("resources/read", json!({ "uri": "fixture://static/hello" }));
    assert_eq!(error_code(&r), Some(3002), "{r}");
}

#[test]
fn isolation_over_websocket() {
    let home = two_servers();
    let key = new_key(&home, "limited");
    let server = Server::start(home.path(), &["--ws", "127.0.0.1:0", "--api-keys"]);
    let addr = server.ws.clone().unwrap();
    for (what, bad) in [("no key", None), ("a wrong key", Some(format!("vmcp_{}", "B".repeat(43))))] {
        assert_eq!(Ws::try_connect(&addr, bad.as_deref()).err(), Some(401), "an upgrade with {what}");
    }
    check_isolation(&mut Ws::connect(&addr, &key));
}

/// Forward TCP connections to `target`, keeping every byte sent towards it.
fn recording_proxy(target: String) -> (String, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let (Ok(mut client), Ok(mut server)) = (client, std::net::TcpStream::connect(&target)) else {
                continue;
            };
            let (mut client_r, mut server_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let record = record.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n @ 1..) = client_r.read(&mut buf) {
                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                    if server_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = server_w.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut client);
            });
        }
    });
    (addr, seen)
}

/// The client's credential stays at the gateway: a backend reached over HTTP (here another
/// vMCP, behind a proxy that records what it is sent) sees vMCP's own requests only.
#[test]
fn backends_never_see_the_clients_credential() {
    let inner_home = Home::new().fixture("f", &[]);
    inner_home.write_servers();
    let inner = Server::start(inner_home.path(), &["--http", "127.0.0.1:0"]);
    let (proxy, seen) = recording_proxy(inner.http.clone().unwrap());
    let home = Home::new()
        .server(json!({ "id": "inner", "transport": "http", "url": format!("http://{proxy}/mcp") }));
    home.write_servers();
    assert!(home.vmcp(&["persona", "create", "limited"]).status.success());
    assert!(home.vmcp(&["persona", "limited", "enable", "inner"]).status.success());
    let key = new_key(&home, "limited");
    let outer = Server::start(home.path(), &["--http", "127.0.0.1:0", "--api-keys"]);
    let mut http = Http::legacy(&outer.url(), &key);
    let r = http
        .call("tools/call", json!({ "name": "inner__f__echo", "arguments": { "text": "relayed-marker" } }));
    assert!(r.to_string().contains("relayed-marker"), "{r}");
    let sent = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(sent.contains("relayed-marker"), "the proxy saw the call: {sent}");
    assert!(!sent.contains(&key) && !sent.contains(&key["vmcp_".len()..]), "the key reached the backend");
    assert!(
        !sent.to_ascii_lowercase().contains("authorization:"),
        "an Authorization header reached the backend"
    );
}

/// `token create --expires-in/--expires-at`: the listing shows each key's expiry, a key works
/// until then and gets 401 (`invalid_token`, audited as `expired_key`) from then on. No test
/// waits for a clock: one key is created already expired, and another's expiry is moved into
/// the past in its file while the gateway runs (the transition at the instant itself is
/// `vmcp-persona`'s `tokens::tests`, with an injected clock).
#[test]
fn an_expiring_api_key_works_until_its_expiry_and_gets_401_after() {
    let home = two_servers();
    let create = |extra: &[&str]| {
        let mut args = vec!["persona", "limited", "token", "create", "--json"];
        args.extend_from_slice(extra);
        let out = home.vmcp(&args);
        assert!(out.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let lasting = create(&["--expires-in", "30d", "--label", "ci"]);
    let expired = create(&["--expires-at", "2020-01-01T00:00:00+02:00"]);
    let forever = create(&[]);
    assert_eq!(expired["expires"], "2019-12-31T22:00:00.000Z", "stored in UTC: {expired}");
    assert_eq!(forever["expires"], Value::Null);
    let out = home.vmcp(&["persona", "limited", "token", "create", "--expires-at", "2020-01-01T00:00:00Z"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already expired"), "a warning");
    for bad in [
        &["--expires-in", "30"][..],
        &["--expires-at", "2030-01-01"],
        &["--expires-in", "1d", "--expires-at", "2030-01-01T00:00:00Z"],
    ] {
        let mut args = vec!["persona", "limited", "token", "create"];
        args.extend_from_slice(bad);
        assert_eq!(home.vmcp(&args).status.code(), Some(64), "{bad:?} is a usage error");
    }

    // The listing shows the expiry, in JSON and as text.
    let list = home.vmcp(&["persona", "limited", "token", "list", "--json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    let by_id =
        |id: &Value| list["tokens"].as_array().unwrap().iter().find(|t| t["id"] == *id).unwrap().clone();
    let (l, e, f) = (by_id(&lasting["id"]), by_id(&expired["id"]), by_id(&forever["id"]));
    assert_eq!((&l["expires"], &l["expired"]), (&lasting["expires"], &json!(false)), "{l}");
    assert_eq!((&e["expires"], &e["expired"]), (&json!("2019-12-31T22:00:00.000Z"), &json!(true)), "{e}");
    assert_eq!((&f["expires"], &f["expired"]), (&Value::Null, &json!(false)), "{f}");
    let text = String::from_utf8(home.vmcp(&["persona", "limited", "token", "list"]).stdout).unwrap();
    let line = |id: &Value| text.lines().find(|l| l.starts_with(id.as_str().unwrap())).unwrap().to_owned();
    assert!(
        line(&lasting["id"]).contains(&format!("expires {}", lasting["expires"].as_str().unwrap())),
        "{text}"
    );
    assert!(line(&expired["id"]).contains("expired 2019-12-31T22:00:00.000Z"), "{text}");
    assert!(line(&forever["id"]).contains("never expires"), "{text}");
    let show = String::from_utf8(home.vmcp(&["persona", "show", "limited"]).stdout).unwrap();
    assert!(show.contains("keys:        4 (2 expired)"), "{show}");
    let file = home.path().join("config/personas/persona-limited.json");
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let stored_forever =
        stored["tokens"].as_array().unwrap().iter().find(|t| t["id"] == forever["id"]).unwrap();
    assert!(
        stored_forever.get("expires").is_none(),
        "a key without expiry is stored as before: {stored_forever}"
    );

    let mut server = Server::start(home.path(), &["--http", "127.0.0.1:0", "--api-keys"]);
    let url = server.url();
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } });
    let call = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": { "name": "server1__echo", "arguments": { "text": "still valid" } } });
    let bearer = |k: &Value| format!("Bearer {}", k["key"].as_str().unwrap());
    let (lasting_auth, expired_auth) = (bearer(&lasting), bearer(&expired));
    let r = post(&url, &[("Authorization", &lasting_auth)], &init);
    assert_eq!(r.status, 200, "a key before its expiry works: {}", r.body);
    let sid = r.session.expect("a session");
    let r = post(&url, &[("Authorization", &lasting_auth), ("Mcp-Session-Id", &sid)], &call);
    assert!(r.body.contains("still valid"), "{}", r.body);
    assert_eq!(post(&url, &[("Authorization", &bearer(&forever))], &init).status, 200);
    let r = post(&url, &[("Authorization", &expired_auth)], &init);
    assert_eq!(r.status, 401, "an expired key: {}", r.body);
    let challenge = r.www_authenticate.unwrap_or_default();
    assert!(challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""), "{challenge}");

    // The lasting key's expiry passes (moved into the past, written atomically as the store
    // does): from the next snapshot on it is refused, also on the session it opened.
    let mut moved = stored.clone();
    for t in moved["tokens"].as_array_mut().unwrap() {
        if t["id"] == lasting["id"] {
            t["expires"] = json!("2021-06-01T00:00:00.000Z");
        }
    }
    let tmp = file.with_file_name(".persona-limited.json.tmp.test");
    std::fs::write(&tmp, serde_json::to_string_pretty(&moved).unwrap()).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    eventually("the key is refused once its expiry passed", || {
        post(&url, &[("Authorization", &lasting_auth), ("Mcp-Session-Id", &sid)], &call).status == 401
    });

    let expired_lines = |a: &str| {
        a.lines()
            .filter(|l| l.contains("\"auth_failed\"") && l.contains("\"reason\":\"expired_key\""))
            .count()
    };
    // Stopped, the gateway has written every audit line before the log is searched for keys.
    server.stop();
    let audit = std::fs::read_to_string(home.path().join("logs/audit.log")).unwrap();
    assert!(expired_lines(&audit) >= 2, "both expired keys are audited as expired_key: {audit}");
    let log = server.stderr();
    for k in [&lasting, &expired, &forever] {
        let key = k["key"].as_str().unwrap();
        assert!(!log.contains(key) && !audit.contains(key), "a key in a log");
    }
}

/// A `vmcp persona` command that changes nothing (enabling an enabled server, disabling one that
/// is not enabled, adding a rule that exists, removing one that does not) says so and leaves no
/// `changed` line in the audit log; a real change still leaves exactly one.
#[test]
fn a_persona_command_that_changes_nothing_records_nothing() {
    let home = Home::new();
    let run = |args: &[&str]| {
        let out = home.vmcp(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let changed_lines = || {
        let audit = std::fs::read_to_string(home.path().join("logs/audit.log")).unwrap_or_default();
        audit.lines().filter(|l| l.contains("\"event\":\"changed\"")).map(str::to_owned).collect::<Vec<_>>()
    };
    run(&["persona", "create", "p"]);
    run(&["persona", "p", "enable", "files"]);
    run(&["persona", "p", "deny", "files:rm_*"]);
    let before = changed_lines();
    assert_eq!(before.len(), 3, "create, enable and deny are recorded: {before:?}");
    for args in [
        &["persona", "p", "enable", "files"][..],
        &["persona", "p", "disable", "other"],
        &["persona", "p", "deny", "files:rm_*"],
        &["persona", "p", "allow", "--remove", "files:read_*"],
    ] {
        let out = run(args);
        assert!(out.contains("nothing changed"), "{args:?} says nothing changed: {out}");
    }
    assert_eq!(changed_lines(), before, "no-op commands leave no audit line");
    let out = run(&["persona", "p", "disable", "files"]);
    assert!(!out.contains("nothing changed"), "{out}");
    let after = changed_lines();
    assert_eq!(after.len(), 4, "{after:?}");
    assert!(after[3].contains("\"action\":\"disable\"") && after[3].contains("\"detail\":\"files\""));
}

/// The gateway writes the audit log from its own thread; refusals answered just before the
/// gateway shuts down are all in the file when it has exited.
#[test]
fn denials_answered_just_before_shutdown_are_in_the_audit_log() {
    let home = two_servers();
    let mut gw = Gateway::spawn(home.path(), &["start", "--persona", "limited"]);
    gw.initialize(json!({}));
    for i in 0..50 {
        let r = gw.call("tools/call", json!({ "name": "echo", "arguments": { "text": format!("late{i}") } }));
        assert_eq!(error_code(&r), Some(3002), "{r}");
    }
    gw.close_stdin();
    assert!(gw.wait_exit().is_some_and(|s| s.success()), "{}", gw.stderr());
    let audit = std::fs::read_to_string(home.path().join("logs/audit.log")).unwrap();
    let denied = audit
        .lines()
        .filter(|l| l.contains("\"event\":\"denied\"") && l.contains("\"server\":\"server2\""))
        .count();
    assert_eq!(denied, 50, "{audit}");
}
