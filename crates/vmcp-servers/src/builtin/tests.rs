//! The built-ins served in-process over a duplex, the way vmcp mounts them.

use serde_json::{Value, json};

use super::notes::{self, Store};
use super::{BUILTIN_NAMES, server};
use crate::kit::tests::harness::{Client, modern};

async fn call(c: &mut Client, id: u64, tool: &str, args: Value) -> Value {
    c.request(json!(id), "tools/call", json!({ "name": tool, "arguments": args })).await["result"].clone()
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn every_builtin_speaks_both_eras() {
    for name in BUILTIN_NAMES {
        let dir = std::env::temp_dir().join(format!("vmcp-builtin-eras-{}", std::process::id()));
        let s = if *name == "notes" {
            notes::server_with(Store::open(dir).unwrap())
        } else {
            server(name).unwrap()
        };
        let mut c = Client::start(s);
        let d = c.request(json!(1), "server/discover", modern(json!({}))).await;
        assert_eq!(d["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], *name);
        let i = c.request(json!(2), "initialize", json!({ "protocolVersion": "2025-06-18" })).await;
        assert_eq!(i["result"]["protocolVersion"], "2025-06-18", "{name}");
        let tools = c.request(json!(3), "tools/list", json!({})).await;
        assert!(!tools["result"]["tools"].as_array().unwrap().is_empty(), "{name}");
    }
    assert_eq!(server("nope").err().map(|e| e.kind()), Some(std::io::ErrorKind::NotFound));
}

#[tokio::test]
async fn utils_tools() {
    let mut c = Client::start(server("utils").unwrap());
    let cases = [
        ("echo", json!({ "text": "hi" }), "hi"),
        (
            "sha256",
            json!({ "text": "abc" }),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        ("base64_encode", json!({ "text": "hello" }), "aGVsbG8="),
        ("base64_decode", json!({ "data": "aGVsbG8=" }), "hello"),
        ("calculate", json!({ "expression": "(1 + 2) * 3.5" }), "10.5"),
        ("calculate", json!({ "expression": "1 / 0" }), "division by zero"),
    ];
    for (i, (tool, args, want)) in cases.into_iter().enumerate() {
        let r = call(&mut c, i as u64, tool, args).await;
        assert_eq!(text(&r), want, "{tool}");
    }
    let tools = c.request(json!(10), "tools/list", json!({})).await;
    let echo = &tools["result"]["tools"][0];
    assert_eq!(echo["annotations"], json!({ "readOnlyHint": true, "idempotentHint": true }));
    let complete = json!({ "ref": { "type": "ref/prompt", "name": "use_tool" }, "argument": { "name": "tool", "value": "base" } });
    let r = c.request(json!(11), "completion/complete", complete).await;
    assert_eq!(r["result"]["completion"]["values"], json!(["base64_encode", "base64_decode"]));
}

#[tokio::test]
async fn notes_store_notify_and_persist() {
    let dir = std::env::temp_dir().join(format!("vmcp-builtin-notes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = Client::start(notes::server_with(Store::open(dir.clone()).unwrap()));
    c.request(json!(0), "initialize", json!({ "protocolVersion": "2025-11-25" })).await;
    c.request(json!(1), "resources/subscribe", json!({ "uri": "note://todo" })).await;
    let add = json!({ "name": "add_note", "arguments": { "name": "todo", "text": "milk" } });
    c.start_request(json!(2), "tools/call", add).await;
    let (r, before) = c.response(&json!(2)).await;
    assert_eq!(text(&r["result"]), "added note `todo`");
    let methods: Vec<_> = before.iter().map(|n| n["method"].as_str().unwrap_or_default()).collect();
    assert_eq!(methods, ["notifications/resources/list_changed", "notifications/resources/updated"]);
    let list = c.request(json!(3), "resources/list", json!({})).await;
    assert_eq!(list["result"]["resources"][0]["uri"], "note://todo");
    let read = c.request(json!(4), "resources/read", json!({ "uri": "note://todo" })).await;
    assert_eq!(read["result"]["contents"][0]["text"], "milk");
    let missing = c.request(json!(5), "resources/read", json!({ "uri": "note://nope" })).await;
    assert_eq!(missing["error"]["code"], -32002);
    let bad = call(&mut c, 6, "add_note", json!({ "name": "a/b", "text": "x" })).await;
    assert_eq!(bad["isError"], true);
    let p = c.request(json!(7), "prompts/get", json!({ "name": "summarize_notes" })).await;
    assert!(p["result"]["messages"][0]["content"]["text"].as_str().unwrap().contains("## todo\nmilk"));
    drop(c);
    let reopened = Store::open(dir.clone()).unwrap();
    assert_eq!(reopened.get("todo").map(|n| n.text.as_str()), Some("milk"));
    let mut c = Client::start(notes::server_with(reopened));
    let list = c.request(json!(1), "resources/list", json!({})).await;
    assert_eq!(list["result"]["resources"][0]["uri"], "note://todo", "listed after restart");
    let del = call(&mut c, 2, "delete_note", json!({ "name": "todo" })).await;
    assert_eq!(text(&del), "deleted note `todo`");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn clock_answers_in_both_eras() {
    let mut c = Client::start(server("clock").unwrap());
    let args = json!({ "time": "2026-03-01T14:05:00+02:00", "to": "-05:00" });
    let r =
        c.request(json!(1), "tools/call", modern(json!({ "name": "convert_time", "arguments": args }))).await;
    assert_eq!(r["result"]["resultType"], "complete");
    assert_eq!(r["result"]["structuredContent"]["time"], "2026-03-01T07:05:00-05:00");
    assert_eq!(r["result"]["structuredContent"]["weekday"], "Sunday");
}
