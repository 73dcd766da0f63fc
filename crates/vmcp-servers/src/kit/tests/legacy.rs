//! The kit in the legacy era (and legacy requests to a dual-era server).

use serde_json::{Value, json};

use super::harness::{Client, test_server};
use crate::kit::{Era, Server, Shutdown, Verdict};

async fn initialized(era: Era) -> Client {
    let mut c = Client::start(test_server(era).page_size(Some(2)));
    let r = c
        .request(json!(0), "initialize", json!({ "protocolVersion": "2025-06-18", "capabilities": {} }))
        .await;
    assert_eq!(r["result"]["protocolVersion"], "2025-06-18");
    c.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await;
    c
}

#[tokio::test]
async fn initialize_negotiates_and_declares_capabilities() {
    for (era, asked, answered) in [
        (Era::Legacy, "2024-11-05", "2024-11-05"),
        (Era::Legacy, "2099-01-01", "2025-11-25"),
        (Era::Dual, "2025-03-26", "2025-03-26"),
    ] {
        let mut c = Client::start(test_server(era));
        let r = c.request(json!("init"), "initialize", json!({ "protocolVersion": asked })).await;
        let result = &r["result"];
        assert_eq!(result["protocolVersion"], answered, "{era:?} {asked}");
        assert_eq!(result["serverInfo"], json!({ "name": "kit-test", "version": "1.0.0" }));
        let caps = &result["capabilities"];
        for key in ["tools", "prompts", "resources", "completions", "logging"] {
            assert!(caps.get(key).is_some(), "{key} missing from {caps}");
        }
        assert_eq!(caps["resources"]["subscribe"], true);
        assert!(result.get("resultType").is_none(), "legacy results carry no resultType");
    }
}

#[tokio::test]
async fn legacy_server_treats_modern_methods_as_unknown() {
    let mut c = initialized(Era::Legacy).await;
    for method in ["server/discover", "subscriptions/listen", "no/such"] {
        let r = c.request(json!(method), method, super::harness::modern(json!({}))).await;
        assert_eq!(r["error"]["code"], -32601, "{method}: {r}");
    }
    assert_eq!(c.request(json!(9), "ping", Value::Null).await["result"], json!({}));
}

#[tokio::test]
async fn malformed_lines_get_errors_and_the_server_goes_on() {
    let mut c = Client::start(test_server(Era::Legacy));
    for line in ["{not json", "[1,2]", r#"{"jsonrpc":"2.0","id":4,"method":7}"#] {
        c.send_line(line).await;
        let r = c.recv().await;
        assert!(r["error"]["code"] == -32700 || r["error"]["code"] == -32600, "{line}: {r}");
        let want_id = if line.contains("\"id\":4") { json!(4) } else { Value::Null };
        assert_eq!(r["id"], want_id, "{line}");
    }
    assert_eq!(c.request(json!(1), "ping", Value::Null).await["result"], json!({}));
}

#[tokio::test]
async fn lists_page_through_everything() {
    let mut c = initialized(Era::Legacy).await;
    let mut names = Vec::new();
    let mut cursor = Value::Null;
    for page in 0.. {
        let r = c.request(json!(page + 10), "tools/list", json!({ "cursor": cursor })).await;
        let tools = r["result"]["tools"].as_array().unwrap().clone();
        assert!(tools.len() <= 2, "page size 2");
        names.extend(tools.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
        match r["result"].get("nextCursor") {
            Some(next) => cursor = next.clone(),
            None => break,
        }
    }
    assert_eq!(names, ["echo", "steps", "wait", "ask", "fail", "panic", "log", "grow", "t5"]);
    let bad = c.request(json!(99), "tools/list", json!({ "cursor": "bogus" })).await;
    assert_eq!(bad["error"]["code"], -32602);
    let templates = c.request(json!(100), "resources/templates/list", json!({})).await;
    assert_eq!(templates["result"]["resourceTemplates"][0]["uriTemplate"], "kit://items/{id}");
}

#[tokio::test]
async fn progress_only_when_asked() {
    let mut c = initialized(Era::Legacy).await;
    let params = json!({ "name": "steps", "_meta": { "progressToken": "p1" } });
    c.start_request(json!(1), "tools/call", params).await;
    let (r, before) = c.response(&json!(1)).await;
    assert_eq!(r["result"]["content"][0]["text"], "done");
    let progress: Vec<_> = before
        .iter()
        .map(|n| (n["params"]["progressToken"].clone(), n["params"]["progress"].clone()))
        .collect();
    assert_eq!(progress, [(json!("p1"), json!(1)), (json!("p1"), json!(2)), (json!("p1"), json!(3))]);
    assert_eq!(before[2]["params"]["total"], 3);
    assert_eq!(before[2]["params"]["message"], "step 3");
    c.start_request(json!(2), "tools/call", json!({ "name": "steps" })).await;
    let (_, before) = c.response(&json!(2)).await;
    assert!(before.is_empty(), "no token, no progress: {before:?}");
}

#[tokio::test]
async fn cancelled_requests_get_no_response() {
    let mut c = initialized(Era::Legacy).await;
    c.start_request(json!("w"), "tools/call", json!({ "name": "wait" })).await;
    c.send(json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": "w" } }))
        .await;
    let saw = c.recv().await;
    assert_eq!(saw["method"], "test/saw_cancel");
    assert_eq!(c.request(json!(5), "ping", Value::Null).await["result"], json!({}));
    let (rest, end) = c.finish().await;
    assert!(rest.iter().all(|m| m.get("id") != Some(&json!("w"))), "cancelled request answered: {rest:?}");
    assert_eq!(end, Shutdown::Eof);
}

#[tokio::test]
async fn server_to_client_request_round_trip() {
    let mut c = initialized(Era::Legacy).await;
    c.start_request(json!(1), "tools/call", json!({ "name": "ask" })).await;
    let ask = c.recv().await;
    assert_eq!(ask["method"], "sampling/createMessage");
    assert_eq!(ask["params"]["maxTokens"], 5);
    let reply = json!({ "role": "assistant", "content": { "type": "text", "text": "42" }, "model": "m" });
    c.send(json!({ "jsonrpc": "2.0", "id": ask["id"], "result": reply })).await;
    let (r, _) = c.response(&json!(1)).await;
    assert_eq!(r["result"]["content"][0]["text"], "42");
    c.start_request(json!(2), "tools/call", json!({ "name": "ask" })).await;
    let ask = c.recv().await;
    c.send(json!({ "jsonrpc": "2.0", "id": ask["id"], "error": { "code": -1, "message": "no" } })).await;
    let (r, _) = c.response(&json!(2)).await;
    assert_eq!(r["result"]["isError"], true, "{r}");
}

#[tokio::test]
async fn tools_prompts_resources_and_completion() {
    let mut c = initialized(Era::Legacy).await;
    let cases = [
        (
            "tools/call",
            json!({ "name": "echo", "arguments": { "text": "hi" } }),
            "/result/content/0/text",
            json!("hi"),
        ),
        ("tools/call", json!({ "name": "fail" }), "/result/isError", json!(true)),
        ("tools/call", json!({ "name": "nope" }), "/error/code", json!(-32602)),
        ("tools/call", json!({ "name": "panic" }), "/error/code", json!(-32603)),
        (
            "prompts/get",
            json!({ "name": "greet", "arguments": { "name": "bo" } }),
            "/result/messages/0/content/text",
            json!("hi bo"),
        ),
        ("resources/read", json!({ "uri": "kit://a" }), "/result/contents/0/text", json!("A")),
        ("resources/read", json!({ "uri": "kit://items/7" }), "/result/contents/0/text", json!("item 7")),
        ("resources/read", json!({ "uri": "kit://zzz" }), "/error/code", json!(-32002)),
        (
            "completion/complete",
            json!({ "ref": { "type": "ref/prompt", "name": "greet" }, "argument": { "name": "name", "value": "al" } }),
            "/result/completion/values",
            json!(["alice", "albert"]),
        ),
        ("logging/setLevel", json!({ "level": "loud" }), "/error/code", json!(-32602)),
    ];
    for (i, (method, params, pointer, want)) in cases.into_iter().enumerate() {
        let r = c.request(json!(i), method, params.clone()).await;
        assert_eq!(r.pointer(pointer), Some(&want), "{method} {params}: {r}");
    }
}

#[tokio::test]
async fn notifications_follow_subscriptions_and_log_level() {
    let mut c = initialized(Era::Legacy).await;
    c.start_request(json!(1), "tools/call", json!({ "name": "grow" })).await;
    let (_, before) = c.response(&json!(1)).await;
    let methods: Vec<_> = before.iter().map(|n| n["method"].clone()).collect();
    assert_eq!(methods, [json!("notifications/tools/list_changed")], "not subscribed to kit://a yet");
    c.request(json!(2), "resources/subscribe", json!({ "uri": "kit://a" })).await;
    c.start_request(json!(3), "tools/call", json!({ "name": "grow" })).await;
    let (_, before) = c.response(&json!(3)).await;
    assert_eq!(
        before[1],
        json!({ "jsonrpc": "2.0", "method": "notifications/resources/updated", "params": { "uri": "kit://a" } })
    );
    c.start_request(json!(4), "tools/call", json!({ "name": "log" })).await;
    assert_eq!(c.response(&json!(4)).await.1.len(), 2, "all levels before setLevel");
    c.request(json!(5), "logging/setLevel", json!({ "level": "info" })).await;
    c.start_request(json!(6), "tools/call", json!({ "name": "log" })).await;
    let (_, before) = c.response(&json!(6)).await;
    assert_eq!(before.len(), 1);
    assert_eq!(before[0]["params"], json!({ "level": "warning", "data": "warning", "logger": "t" }));
    assert_eq!(
        c.request(json!(7), "tools/call", json!({ "name": "new" })).await["result"]["content"][0]["text"],
        "new"
    );
}

#[tokio::test]
async fn intercepts_can_ignore_or_exit() {
    let server = Server::new("x", "1").intercept(|req| match req.method.as_str() {
        "ping" => Verdict::Ignore,
        "tools/list" => Verdict::Exit(3),
        _ => Verdict::Answer,
    });
    let mut c = Client::start(server);
    c.start_request(json!(1), "ping", Value::Null).await;
    let r = c.request(json!(2), "initialize", json!({})).await;
    assert!(r.get("result").is_some());
    c.start_request(json!(3), "initialize", json!({})).await;
    c.start_request(json!(4), "tools/list", json!({})).await;
    let (rest, end) = c.finish().await;
    let ids: Vec<_> = rest.iter().map(|m| m["id"].clone()).collect();
    assert_eq!(ids, [json!(3)], "requests before the exit are answered, the rest are not");
    assert_eq!(end, Shutdown::Exit(3));
}
