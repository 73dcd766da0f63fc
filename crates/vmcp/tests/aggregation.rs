//! Aggregation and routing through the stdio front: merged lists, names, routing to the owner,
//! passthrough of what vMCP does not have to change.

mod support;

use serde_json::{Value, json};
use support::*;

#[test]
fn merges_lists_of_all_servers_and_routes_each_call_to_its_owner() {
    let home = Home::new().fixture("alpha", &[]).fixture("beta", &[]);
    let mut gw = home.start();
    let init = gw.initialize(json!({}));
    assert_eq!(init["protocolVersion"], "2025-11-25");
    assert_eq!(init["serverInfo"]["name"], "vmcp");
    assert!(init["capabilities"]["tools"].is_object(), "{init}");

    let names = gw.tool_names();
    assert!(
        names.contains(&"alpha__echo".to_owned()) && names.contains(&"beta__echo".to_owned()),
        "{names:?}"
    );
    let alpha_at = names.iter().position(|n| n == "alpha__echo").unwrap();
    let beta_at = names.iter().position(|n| n == "beta__echo").unwrap();
    assert!(alpha_at < beta_at, "servers must be merged in file order: {names:?}");

    for server in ["alpha", "beta"] {
        let who: Value =
            serde_json::from_str(&gw.call_text(&format!("{server}__whoami"), json!({}))).unwrap();
        assert_eq!(who["name"], server, "call reached the wrong server");
    }
    assert_eq!(gw.call_text("alpha__echo", json!({ "text": "hi" })), "hi");

    let prompts = gw.ok("prompts/list", json!({}));
    let prompt_names: Vec<&str> =
        prompts["prompts"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(prompt_names, ["alpha__greet", "beta__greet"]);
    let got = gw.ok("prompts/get", json!({ "name": "beta__greet", "arguments": { "name": "Ada" } }));
    assert!(got["messages"].to_string().contains("Ada"), "{got}");

    let resources = gw.ok("resources/list", json!({}));
    assert!(resources["resources"].as_array().unwrap().iter().any(|r| r["uri"] == "fixture://static/hello"));
    let read = gw.ok("resources/read", json!({ "uri": "fixture://items/42" }));
    assert!(read["contents"][0]["uri"] == "fixture://items/42", "{read}");
    let templates = gw.ok("resources/templates/list", json!({}));
    assert!(!templates["resourceTemplates"].as_array().unwrap().is_empty());

    let completion = gw.ok(
        "completion/complete",
        json!({ "ref": { "type": "ref/prompt", "name": "alpha__greet" }, "argument": { "name": "name", "value": "" } }),
    );
    assert!(completion["completion"]["values"].is_array(), "{completion}");
}

#[test]
fn composite_cursors_never_lose_a_backends_next_page() {
    let home = Home::new().fixture("a", &["--page-size", "2"]).fixture("b", &["--page-size", "3"]);
    let mut gw = home.start();
    gw.initialize(json!({}));
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let page = gw.ok("tools/list", params);
        all.extend(page["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()));
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let a = all.iter().filter(|n| n.starts_with("a__")).count();
    let b = all.iter().filter(|n| n.starts_with("b__")).count();
    assert!(a > 4 && a == b, "every tool of both servers, once: {all:?}");
    let mut dedup = all.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), all.len(), "no tool twice");
    let bad = gw.call("tools/list", json!({ "cursor": "not-ours" }));
    assert_eq!(bad["error"]["code"], -32602);
}

#[test]
fn unknown_fields_reach_the_client_unchanged() {
    let home = Home::new().fixture("v", &["--unknown-fields"]);
    let mut gw = home.start();
    let init = gw.initialize(json!({}));
    assert!(
        init["capabilities"].to_string().contains("x-fixture"),
        "capabilities lost vendor fields: {init}"
    );

    gw.send_raw(r#"{"jsonrpc":"2.0","id":"raw-1","method":"tools/list"}"#);
    let through = raw_response(&mut gw, "\"raw-1\"");
    let mut direct = Direct::spawn(&["--name", "v", "--unknown-fields"]);
    let straight = direct.request(r#"{"jsonrpc":"2.0","id":"raw-1","method":"tools/list"}"#);
    // The result is byte-for-byte what the server wrote, apart from the qualified names.
    let (through, straight) = (raw_result(&through), raw_result(&straight));
    assert_eq!(through.replace("\"name\":\"v__", "\"name\":\""), straight);
    assert!(straight.contains("12345678901234567890") && straight.contains("1.50"));

    let call = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"v__echo","arguments":{"text":"x"}}}"#;
    gw.send_raw(call);
    let through = raw_response(&mut gw, "7");
    let straight = direct.request(&call.replace("v__echo", "echo"));
    assert_eq!(raw_result(&through), raw_result(&straight));
}

#[test]
fn names_stay_the_same_across_restarts_and_new_servers() {
    let home = Home::new().fixture("one", &[]).fixture("two", &[]);
    let mut gw = home.start();
    gw.initialize(json!({}));
    let before = gw.tool_names();
    drop(gw);

    let home2 = Home::new().fixture("zero", &[]).fixture("one", &[]).fixture("two", &[]);
    let mut gw = home2.start();
    gw.initialize(json!({}));
    let after = gw.tool_names();
    for name in &before {
        assert!(after.contains(name), "`{name}` was renamed after adding a server: {after:?}");
    }
    // Same tool name on two servers: both reachable, never the wrong one.
    for server in ["one", "two", "zero"] {
        let who: Value =
            serde_json::from_str(&gw.call_text(&format!("{server}__whoami"), json!({}))).unwrap();
        assert_eq!(who["name"], server);
    }
    let ambiguous = gw.call("tools/call", json!({ "name": "echo", "arguments": { "text": "x" } }));
    assert_eq!(ambiguous["error"]["code"], -32602);
    assert!(ambiguous["error"]["message"].as_str().unwrap().contains("one__echo"), "{ambiguous}");
}

#[test]
fn names_stay_the_same_when_a_backend_restarts_or_a_server_is_mounted_live() {
    let home = Home::new().fixture("one", &[]).fixture("two", &[]);
    let mut gw = home.start();
    gw.initialize(json!({}));
    let before = gw.tool_names();

    // `two` dies; its supervisor starts it again; the catalog comes back under the same names.
    let who: Value = serde_json::from_str(&gw.call_text("two__whoami", json!({}))).unwrap();
    let old_pid = who["pid"].as_u64().unwrap() as u32;
    signal(old_pid, libc::SIGKILL);
    eventually("`two` runs again under a new pid", || !alive(old_pid));
    let mut restarted = false;
    for _ in 0..200 {
        let r = gw.call("tools/call", json!({ "name": "two__whoami", "arguments": {} }));
        if let Some(text) = r["result"]["content"][0]["text"].as_str() {
            let who: Value = serde_json::from_str(text).unwrap();
            restarted = who["pid"].as_u64() != Some(u64::from(old_pid));
            break;
        }
        std::thread::park_timeout(std::time::Duration::from_millis(50));
    }
    assert!(restarted, "`two` came back");
    assert_eq!(gw.tool_names(), before, "a restart renamed tools");

    // A third server mounted into the running gateway (it watches servers.json).
    let out = home.vmcp(&["mount", "zero", "--", FIXTURE, "--name", "zero"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    gw.notification("notifications/tools/list_changed");
    let after = gw.tool_names();
    assert!(after.iter().any(|n| n.starts_with("zero__")), "{after:?}");
    for name in &before {
        assert!(after.contains(name), "`{name}` was renamed after mounting a server: {after:?}");
    }
}

#[test]
fn bare_names_collide_by_file_order() {
    let home = Home::new()
        .server(json!({ "id": "first", "command": FIXTURE, "args": ["--name", "first"], "prefix": "" }))
        .server(json!({ "id": "second", "command": FIXTURE, "args": ["--name", "second"], "prefix": "" }));
    let mut gw = home.start();
    gw.initialize(json!({}));
    let names = gw.tool_names();
    assert!(
        names.contains(&"whoami".to_owned()) && names.contains(&"second__whoami".to_owned()),
        "{names:?}"
    );
    let who: Value = serde_json::from_str(&gw.call_text("whoami", json!({}))).unwrap();
    assert_eq!(who["name"], "first");
    let who: Value = serde_json::from_str(&gw.call_text("second__whoami", json!({}))).unwrap();
    assert_eq!(who["name"], "second");
}

/// The `result` member exactly as written on the wire.
fn raw_result(line: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        result: Box<serde_json::value::RawValue>,
    }
    let e: Envelope = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    e.result.get().to_owned()
}

/// Read raw lines until the response with this raw id.
fn raw_response(gw: &mut Gateway, id: &str) -> String {
    let needle = format!("\"id\":{id}");
    for _ in 0..100 {
        let line = gw.recv_raw().expect("response");
        if line.contains(&needle) && !line.contains("\"method\"") {
            return line;
        }
    }
    panic!("no response {id}");
}

/// The fixture run directly, for wire comparisons.
struct Direct {
    child: std::process::Child,
    out: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Direct {
    fn spawn(args: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(FIXTURE)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut d = Direct { child, out };
        d.request(r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#);
        d.write(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        d
    }

    fn write(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    fn request(&mut self, line: &str) -> String {
        self.write(line);
        self.out.next().unwrap().unwrap()
    }
}

impl Drop for Direct {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
