//! Live traffic through vMCP in the legacy era: progress, cancellation, server-to-client
//! requests, list_changed, subscriptions and logs.

mod support;

use serde_json::{Value, json};
use support::*;

#[test]
fn progress_arrives_with_the_clients_own_token() {
    let home = Home::new().fixture("f", &[]);
    let mut gw = home.start();
    gw.initialize(json!({}));
    gw.send(&json!({ "jsonrpc": "2.0", "id": "call-1", "method": "tools/call",
        "params": { "name": "f__slow", "arguments": { "ms": 60 }, "_meta": { "progressToken": "my-token" } } }));
    let progress = gw.notification("notifications/progress");
    assert_eq!(progress["params"]["progressToken"], "my-token");
    let done = gw.response(&json!("call-1"));
    assert!(done.get("result").is_some(), "{done}");
    // A request without a token gets no progress.
    gw.ok("tools/call", json!({ "name": "f__slow", "arguments": { "ms": 30 } }));
    gw.ok("ping", json!({}));
    assert!(
        gw.drain_notifications("notifications/progress")
            .iter()
            .all(|p| p["params"]["progressToken"] == "my-token")
    );
}

#[test]
fn a_cancelled_call_stops_at_the_backend() {
    let home = Home::new().fixture("f", &[]);
    let mut gw = home.start();
    gw.initialize(json!({}));
    gw.send(&json!({ "jsonrpc": "2.0", "id": 41, "method": "tools/call",
        "params": { "name": "f__slow", "arguments": { "ms": 60000 } } }));
    // Wait until the backend is working on it (the gateway shows it in flight).
    eventually_in_flight(&mut gw, "f", 1);
    gw.send(&json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 41, "reason": "user" } }));
    eventually_in_flight(&mut gw, "f", 0);
    let cancelled: Value = serde_json::from_str(&gw.call_text("f__cancelled_requests", json!({}))).unwrap();
    assert_eq!(cancelled.as_array().map(Vec::len), Some(1), "backend saw the cancellation: {cancelled}");
    assert!(gw.stderr().contains("fixture: cancelled request"));
}

fn eventually_in_flight(gw: &mut Gateway, server: &str, n: u64) {
    for _ in 0..500 {
        let m = gw.ok("vmcp/metrics", json!({}));
        let s = m["servers"].as_array().unwrap().iter().find(|s| s["id"] == server).unwrap().clone();
        if s["in_flight"] == n {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("server {server} never had {n} requests in flight");
}

#[test]
fn sampling_elicitation_and_roots_reach_the_client_and_the_answer_comes_back() {
    let home = Home::new().fixture("f", &[]);
    let mut gw = home.start();
    gw.initialize(json!({ "sampling": {}, "elicitation": {}, "roots": { "listChanged": true } }));

    gw.send(&json!({ "jsonrpc": "2.0", "id": "s1", "method": "tools/call", "params": { "name": "f__sample", "arguments": { "prompt": "hi" } } }));
    let req = gw.incoming_request("sampling/createMessage");
    gw.send(&json!({ "jsonrpc": "2.0", "id": req["id"], "result": {
        "role": "assistant", "content": { "type": "text", "text": "sampled answer" }, "model": "test-model" } }));
    let done = gw.response(&json!("s1"));
    assert!(done["result"].to_string().contains("sampled answer"), "{done}");

    gw.send(&json!({ "jsonrpc": "2.0", "id": "e1", "method": "tools/call", "params": { "name": "f__elicit", "arguments": { "message": "name?" } } }));
    let req = gw.incoming_request("elicitation/create");
    gw.send(&json!({ "jsonrpc": "2.0", "id": req["id"], "result": { "action": "accept", "content": { "name": "Ada" } } }));
    assert!(gw.response(&json!("e1"))["result"].to_string().contains("Ada"));

    gw.send(&json!({ "jsonrpc": "2.0", "id": "r1", "method": "tools/call", "params": { "name": "f__roots", "arguments": {} } }));
    let req = gw.incoming_request("roots/list");
    gw.send(&json!({ "jsonrpc": "2.0", "id": req["id"], "result": { "roots": [{ "uri": "file:///work", "name": "work" }] } }));
    assert!(gw.response(&json!("r1"))["result"].to_string().contains("file:///work"));

    gw.send(&json!({ "jsonrpc": "2.0", "id": "p1", "method": "tools/call", "params": { "name": "f__ping_client", "arguments": {} } }));
    let req = gw.incoming_request("ping");
    gw.send(&json!({ "jsonrpc": "2.0", "id": req["id"], "result": {} }));
    assert!(gw.response(&json!("p1")).get("result").is_some());
}

#[test]
fn a_client_without_sampling_gets_a_clear_error_through_the_tool() {
    let home = Home::new().fixture("f", &[]);
    let mut gw = home.start();
    gw.initialize(json!({}));
    let r = gw.call("tools/call", json!({ "name": "f__sample", "arguments": { "prompt": "hi" } }));
    assert!(r.to_string().contains("does not support sampling"), "{r}");
}

#[test]
fn list_changed_reaches_the_client_and_the_new_tool_is_routable() {
    let home = Home::new().fixture("f", &[]).fixture("g", &[]);
    let mut gw = home.start();
    gw.initialize(json!({}));
    gw.ok("tools/call", json!({ "name": "f__add_tool", "arguments": { "name": "fresh" } }));
    gw.notification("notifications/tools/list_changed");
    assert!(gw.tool_names().contains(&"f__fresh".to_owned()));
    let r = gw.ok("tools/call", json!({ "name": "f__fresh", "arguments": {} }));
    assert!(r.get("content").is_some(), "{r}");
}

#[test]
fn resource_updates_reach_subscribers_only_and_logs_are_passed_on() {
    let home = Home::new().fixture("f", &[]);
    let mut gw = home.start();
    gw.initialize(json!({}));
    gw.ok("resources/subscribe", json!({ "uri": "fixture://static/hello" }));
    gw.ok(
        "tools/call",
        json!({ "name": "f__touch", "arguments": { "uri": "fixture://items/unsubscribed" } }),
    );
    gw.ok("tools/call", json!({ "name": "f__touch", "arguments": { "uri": "fixture://static/hello" } }));
    let updated = gw.notification("notifications/resources/updated");
    assert_eq!(updated["params"]["uri"], "fixture://static/hello");
    gw.ok("ping", json!({}));
    assert!(
        gw.drain_notifications("notifications/resources/updated").is_empty(),
        "an unsubscribed URI leaked"
    );

    gw.ok(
        "tools/call",
        json!({ "name": "f__log", "arguments": { "level": "warning", "message": "disk almost full" } }),
    );
    let log = gw.notification("notifications/message");
    assert!(log.to_string().contains("disk almost full"));
}

/// A script that writes its requests and closes its input at once (`printf ... | vmcp start`):
/// `initialize` is handled before the lines after it (the call is not refused for want of a
/// session), and every request sent before the input closed is answered, the slow one too,
/// before the gateway exits on its own.
#[test]
fn a_client_that_closes_its_input_right_after_its_requests_gets_every_answer() {
    let home = Home::new().fixture("f", &[]);
    let mut gw = home.start();
    let init = json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "script", "version": "1" } });
    gw.send(&json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init }));
    gw.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
    gw.send(&json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": { "name": "f__slow", "arguments": { "ms": 300 } } }));
    gw.send(&json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/list" }));
    gw.close_stdin();
    for id in 1..=3 {
        let answer = gw.response(&json!(id));
        assert!(answer.get("result").is_some(), "request {id}: {answer}");
    }
    let exit = gw.wait_exit().expect("the gateway exits once its client is done");
    assert!(exit.success(), "{exit:?}\n{}", gw.stderr());
}

/// A modern client that closes its input while a `subscriptions/listen` is open gets the
/// listen's final result, and the gateway stops at once: the listen is not left to be cut off
/// (unanswered) at the end of the shutdown grace.
#[test]
fn a_listen_open_when_the_input_closes_ends_with_its_result() {
    let home = Home::new().fixture("f", &[]);
    let mut gw = home.start();
    let meta = modern_meta();
    gw.send(&json!({ "jsonrpc": "2.0", "id": 7, "method": "subscriptions/listen",
        "params": { "notifications": { "toolsListChanged": true }, "_meta": meta } }));
    gw.notification("notifications/subscriptions/acknowledged");
    gw.close_stdin();
    let end = gw.response(&json!(7));
    assert_eq!(end["result"]["resultType"], "complete", "{end}");
    let exit = gw.wait_exit().expect("the gateway exits once its client is done");
    assert!(exit.success(), "{exit:?}");
    assert!(!gw.stderr().contains("requests still running"), "{}", gw.stderr());
}
