//! Tasks through vMCP (io.modelcontextprotocol/tasks, SEP-2663): a task a backend creates is
//! named `{server}.{replica}.{original}` toward the client, and `tasks/*` with that id reach the
//! backend with its own id restored. The backend is the conformance fixture
//! (`tests/conformance/fixture_server.py`, Python SDK 2.x from `.ci/install-tools.sh`), mounted
//! over stdio; the client speaks the modern era on vMCP's stdio front.

mod support;

use std::path::PathBuf;

use serde_json::{Value, json};
use support::*;

const EXT: &str = "io.modelcontextprotocol/tasks";

/// The Python that has the MCP SDK, or `None` when the test tools are not installed
/// (`scripts/test --rust`).
fn python() -> Option<String> {
    if let Ok(py) = std::env::var("VMCP_PY") {
        return Some(py);
    }
    let default = repo().join(".tools/py/bin/python");
    default.exists().then(|| default.to_string_lossy().into_owned())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A gateway with the conformance fixture mounted as `fx` (no name prefix).
fn gateway(extra: &[&[&str]], args: &[&str]) -> Option<(Home, Gateway)> {
    let Some(py) = python() else {
        eprintln!("skipped: no VMCP_PY (run .ci/install-tools.sh, or scripts/test)");
        return None;
    };
    let fixture = repo().join("tests/conformance/fixture_server.py");
    let home = Home::new().server(json!({
        "id": "fx",
        "command": py,
        "args": [fixture.to_string_lossy(), "stdio"],
        "prefix": "",
        "timeout": 60,
    }));
    home.write_servers();
    for a in extra {
        let out = home.vmcp(a);
        assert!(out.status.success(), "{a:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let gw = Gateway::spawn(home.path(), args);
    Some((home, gw))
}

/// Modern params: `_meta` with the version and client capabilities (with or without the tasks
/// extension) added to `params`.
fn modern(mut params: Value, with_tasks: bool) -> Value {
    let caps = if with_tasks { json!({ "extensions": { EXT: {} } }) } else { json!({}) };
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": caps,
    });
    params
}

fn code(resp: &Value) -> Option<i64> {
    resp.get("error").and_then(|e| e.get("code")).and_then(Value::as_i64)
}

/// `tasks/get` until the task's status is one of `statuses` (the backend's own pace; bounded by
/// `WAIT`).
fn until_status(gw: &mut Gateway, task: &str, statuses: &[&str]) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let got = gw.ok("tasks/get", modern(json!({ "taskId": task }), true));
        assert_eq!(got["taskId"], task, "tasks/get names the task as the client knows it: {got}");
        if got["status"].as_str().is_some_and(|s| statuses.contains(&s)) {
            return got;
        }
        assert!(std::time::Instant::now() < deadline, "task {task} never reached {statuses:?}: {got}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `tasks/get` until the task is terminal.
fn until_terminal(gw: &mut Gateway, task: &str) -> Value {
    until_status(gw, task, &["completed", "failed", "cancelled"])
}

#[test]
fn a_task_is_created_polled_and_cancelled_through_vmcp() {
    let Some((_home, mut gw)) = gateway(&[], &["start"]) else { return };
    let created = gw.ok(
        "tools/call",
        modern(json!({ "name": "slow_compute", "arguments": { "seconds": 0.2, "label": "x" } }), true),
    );
    assert_eq!(created["resultType"], "task", "{created}");
    let id = created["taskId"].as_str().expect("taskId").to_owned();
    let original =
        id.strip_prefix("fx.0.").unwrap_or_else(|| panic!("namespaced by server and replica: {id}"));
    assert!(original.starts_with("task-"), "the backend's own id follows: {id}");
    let done = until_terminal(&mut gw, &id);
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["content"][0]["text"], "Computed x", "{done}");

    // Cancel a long one: an empty ack, then the task settles as cancelled.
    let long =
        gw.ok("tools/call", modern(json!({ "name": "slow_compute", "arguments": { "seconds": 60 } }), true));
    let long_id = long["taskId"].as_str().unwrap().to_owned();
    let ack = gw.ok("tasks/cancel", modern(json!({ "taskId": long_id }), true));
    assert_eq!(ack["resultType"], "complete", "{ack}");
    assert!(["taskId", "status", "result"].iter().all(|k| ack.get(k).is_none()), "an empty ack: {ack}");
    assert_eq!(until_terminal(&mut gw, &long_id)["status"], "cancelled");

    // Input on a task: tasks/get shows the requests, tasks/update answers them.
    let ask = gw.ok(
        "tools/call",
        modern(json!({ "name": "confirm_delete", "arguments": { "filename": "f" } }), true),
    );
    let ask_id = ask["taskId"].as_str().unwrap().to_owned();
    let pending = until_status(&mut gw, &ask_id, &["input_required"]);
    let key = pending["inputRequests"].as_object().unwrap().keys().next().unwrap().clone();
    let answer = json!({ key: { "action": "accept", "content": { "confirm": true } } });
    gw.ok("tasks/update", modern(json!({ "taskId": ask_id, "inputResponses": answer }), true));
    assert_eq!(until_terminal(&mut gw, &ask_id)["result"]["content"][0]["text"], "Deleted f");
}

#[test]
fn task_requests_that_name_no_task_or_lack_the_extension_are_refused() {
    let Some((_home, mut gw)) = gateway(&[], &["start"]) else { return };
    // Not declared on this request: -32021, before the id is even looked at.
    for method in ["tasks/get", "tasks/update", "tasks/cancel"] {
        let r = gw.call(method, modern(json!({ "taskId": "fx.0.x", "inputResponses": {} }), false));
        assert_eq!(code(&r), Some(-32021), "{method}: {r}");
    }
    // Ids vMCP did not hand out, or that name no mounted server, or that the backend does not know.
    for id in ["gate-test", "nobody.0.task-1", "fx.7.task-1", "fx.0.no-such-task"] {
        let r = gw.call("tasks/get", modern(json!({ "taskId": id }), true));
        assert_eq!(code(&r), Some(-32602), "{id}: {r}");
    }
    // SEP-2663 removed these from the modern era.
    for method in ["tasks/list", "tasks/result"] {
        let r = gw.call(method, modern(json!({ "taskId": "fx.0.x" }), true));
        assert_eq!(code(&r), Some(-32601), "{method}: {r}");
    }
    // Without the extension a task-supporting tool runs synchronously: no task id to rewrite.
    let sync =
        gw.ok("tools/call", modern(json!({ "name": "slow_compute", "arguments": { "seconds": 0 } }), false));
    assert!(sync.get("taskId").is_none() && sync["content"].is_array(), "{sync}");
}

#[test]
fn a_persona_that_may_not_use_the_server_cannot_reach_its_tasks() {
    let personas: &[&[&str]] = &[&["persona", "create", "nobody"]];
    let Some((_home, mut gw)) = gateway(personas, &["start", "--persona", "nobody"]) else { return };
    for method in ["tasks/get", "tasks/cancel"] {
        let r = gw.call(method, modern(json!({ "taskId": "fx.0.task-1" }), true));
        assert_eq!(code(&r), Some(3002), "{method}: {r}");
    }
}
