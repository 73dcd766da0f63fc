//! Bad input and misbehaving backends: each gets a clear error or log line, and the gateway goes
//! on serving the other backends. No child outlives the gateway.

mod support;

use serde_json::{Value, json};
use support::*;

/// A gateway in front of one fixture `ok`, with a 4 KiB `max_message_size`, initialized.
fn small_messages() -> (Home, Gateway) {
    let home = Home::new().fixture("ok", &[]);
    home.write_config("[gateway]\nmax_message_size = \"4KiB\"\n");
    let mut gw = home.start();
    gw.initialize(json!({}));
    (home, gw)
}

#[test]
fn malformed_oversized_and_unknown_requests_get_errors_and_the_connection_survives() {
    let (_home, mut gw) = small_messages();

    gw.send_raw("{this is not json");
    let err = gw.recv_until("parse error", |v| v["id"].is_null() && v.get("error").is_some());
    assert_eq!(err["error"]["code"], -32700);

    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":"big","method":"tools/call","params":{{"name":"ok__echo","arguments":{{"text":"{}"}}}}}}"#,
        "x".repeat(10_000)
    );
    gw.send_raw(&huge);
    let err = gw.recv_until("oversized error", |v| {
        v.get("error").is_some() && v["error"]["message"].as_str().unwrap_or("").contains("exceeds")
    });
    assert_eq!(err["error"]["code"], -32600);
    assert_eq!(err["id"], "big", "the error names the request it answers: {err}");

    let unknown = gw.call("no/such/method", json!({}));
    assert_eq!(unknown["error"]["code"], -32601);
    let tool = gw.call("tools/call", json!({ "name": "ok__nope", "arguments": {} }));
    assert_eq!(tool["error"]["code"], -32602);
    assert!(tool["error"]["message"].as_str().unwrap().contains("ok__nope"));

    assert_eq!(gw.call_text("ok__echo", json!({ "text": "still here" })), "still here");
}

#[test]
fn an_oversized_answer_from_a_backend_fails_its_request_at_once() {
    let (_home, mut gw) = small_messages();
    // The request is small, the backend's answer is not: it is dropped, and the call fails with
    // the reason instead of waiting for the timeout.
    let big =
        gw.call("tools/call", json!({ "name": "ok__echo", "arguments": { "text": "x", "repeat": 10_000 } }));
    assert_eq!(big["error"]["code"], -32603, "{big}");
    assert!(big["error"]["message"].as_str().unwrap().contains("max_message_size"), "{big}");
    assert_eq!(gw.call_text("ok__echo", json!({ "text": "still here" })), "still here");
}

#[test]
fn broken_backends_are_reported_and_the_others_keep_working() {
    let home = Home::new()
        .fixture("good", &[])
        .fixture("dies", &["--exit-at-startup", "3"])
        .fixture("noisy", &["--garbage-stdout"])
        .fixture("mute", &["--hang"])
        .fixture("stuck", &["--hang-on", "tools/call"])
        .server(json!({ "id": "missing", "command": "/nonexistent/server" }));
    home.write_config("[gateway]\nstartup_timeout = 3\n");
    let mut home = home;
    home = home.server(json!({ "id": "slowpoke", "command": FIXTURE, "args": ["--name", "slowpoke", "--hang-on", "tools/call"], "timeout": 1 }));
    let mut gw = home.start();
    gw.initialize(json!({}));

    let names = gw.tool_names();
    assert!(
        names.contains(&"good__echo".to_owned()) && names.contains(&"noisy__echo".to_owned()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with("dies__") || n.starts_with("mute__")));
    assert_eq!(gw.call_text("good__echo", json!({ "text": "a" })), "a");
    assert_eq!(gw.call_text("noisy__echo", json!({ "text": "b" })), "b");

    let servers = gw.ok("vmcp/servers/list", json!({}));
    let status = |id: &str| {
        servers["servers"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap()["status"].clone()
    };
    assert_eq!(status("good"), "ready");
    assert_eq!(status("dies"), "failed");
    assert_eq!(status("mute"), "failed");
    assert_eq!(status("missing"), "failed");
    let info = gw.ok("vmcp/servers/info", json!({ "id": "dies" }));
    assert!(info["reason"].as_str().unwrap().contains("exit"), "{info}");

    // A call that never gets an answer ends at the server's timeout with the seed's code.
    let timed_out = gw.call("tools/call", json!({ "name": "slowpoke__echo", "arguments": { "text": "x" } }));
    assert_eq!(timed_out["error"]["code"], 1002, "{timed_out}");
    assert_eq!(gw.call_text("good__echo", json!({ "text": "after" })), "after");

    let stderr = gw.stderr();
    assert!(stderr.contains("not JSON-RPC"), "garbage on stdout is logged");
    assert!(stderr.contains("server=dies") || stderr.contains("dies"), "exit at startup is logged");
    assert!(stderr.contains("/nonexistent/server"), "{stderr}");
}

#[test]
fn a_backend_that_crashes_mid_call_fails_that_call_at_once() {
    let home = Home::new().fixture("crashy", &["--crash-after", "6"]).fixture("fine", &[]);
    let mut gw = home.start();
    gw.initialize(json!({}));
    let mut codes = Vec::new();
    for i in 0..4 {
        let r =
            gw.call("tools/call", json!({ "name": "crashy__echo", "arguments": { "text": i.to_string() } }));
        codes.push(r.get("error").map(|e| e["code"].clone()));
    }
    assert!(codes.iter().any(Option::is_some), "the crash must surface as an error: {codes:?}");
    for c in codes.iter().flatten() {
        assert!([1003, 2001].contains(&c.as_i64().unwrap()), "{codes:?}");
    }
    assert_eq!(gw.call_text("fine__echo", json!({ "text": "ok" })), "ok");
}

#[test]
fn no_child_outlives_the_gateway_even_after_sigkill() {
    // `w` is started through a wrapper, as npx or uvx start servers: the shell's other child
    // (`sleep`) is a grandchild of the gateway, out of reach of PR_SET_PDEATHSIG.
    let wrapped = format!("sleep 300 & exec {FIXTURE} --name w");
    let home = Home::new()
        .fixture("a", &[])
        .fixture("b", &[])
        .fixture("c", &["--hang-on", "tools/call"])
        .server(json!({ "id": "w", "command": "sh", "args": ["-c", wrapped] }));
    let mut gw = home.start();
    gw.initialize(json!({}));
    let pids: Vec<u32> = ["a", "b", "w"]
        .iter()
        .map(|s| {
            let who: Value = serde_json::from_str(&gw.call_text(&format!("{s}__whoami"), json!({}))).unwrap();
            who["pid"].as_u64().unwrap() as u32
        })
        .collect();
    let all = descendants(gw.pid());
    for p in &pids {
        assert!(all.contains(p), "fixture {p} is not a descendant of the gateway");
    }
    let comm = |p: &u32| std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
    assert!(all.iter().any(|p| comm(p).trim() == "sleep"), "the wrapper's grandchild runs: {all:?}");
    // Leave a request hanging, then kill the gateway without warning.
    gw.send(&json!({ "jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": { "name": "c__echo", "arguments": {} } }));
    signal(gw.pid(), libc::SIGKILL);
    let _ = gw.child.wait();
    eventually("every child and grandchild is gone", || all.iter().all(|p| !alive(*p)));
}

#[test]
fn closing_stdin_stops_the_gateway_and_its_children_in_order() {
    let home = Home::new().fixture("a", &[]);
    let mut gw = home.start();
    gw.initialize(json!({}));
    let who: Value = serde_json::from_str(&gw.call_text("a__whoami", json!({}))).unwrap();
    let pid = who["pid"].as_u64().unwrap() as u32;
    gw.close_stdin();
    let status = gw.wait_exit().expect("gateway exits after stdin closes");
    assert!(status.success(), "{status:?}");
    assert!(!alive(pid));
}
