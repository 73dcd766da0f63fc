//! The kit in the modern era (2026-07-28), and modern requests to a dual-era server.

use serde_json::{Value, json};

use super::harness::{Client, modern, modern_with, test_server};
use crate::kit::Era;
use crate::kit::subscriptions::META_SUBSCRIPTION_ID;

#[tokio::test]
async fn discover_describes_the_server() {
    for (era, versions) in [(Era::Modern, 1), (Era::Dual, 5)] {
        let mut c = Client::start(test_server(era));
        let r = c.request(json!(1), "server/discover", modern(json!({}))).await;
        let result = &r["result"];
        assert_eq!(result["resultType"], "complete", "{r}");
        assert_eq!(result["supportedVersions"][0], "2026-07-28");
        assert_eq!(result["supportedVersions"].as_array().unwrap().len(), versions);
        assert_eq!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "kit-test");
        assert!(result["capabilities"].get("tools").is_some());
        assert!(result["capabilities"].get("logging").is_none(), "logging is legacy");
        assert!(result["ttlMs"].is_u64() && result["cacheScope"] == "public", "{result}");
    }
}

#[tokio::test]
async fn modern_server_refuses_legacy_requests() {
    let mut c = Client::start(test_server(Era::Modern));
    let cases = [
        ("initialize", json!({ "protocolVersion": "2025-06-18" }), -32022),
        ("tools/list", json!({}), -32602),
        (
            "tools/list",
            json!({ "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28" } }),
            -32602,
        ),
        (
            "tools/list",
            json!({ "_meta": { "io.modelcontextprotocol/protocolVersion": "2024-01-01" } }),
            -32022,
        ),
        ("ping", modern(json!({})), -32601),
        ("logging/setLevel", modern(json!({ "level": "info" })), -32601),
    ];
    for (i, (method, params, code)) in cases.into_iter().enumerate() {
        let r = c.request(json!(i), method, params.clone()).await;
        assert_eq!(r["error"]["code"], code, "{method} {params}: {r}");
    }
    let r = c.request(json!("i"), "initialize", json!({ "protocolVersion": "2025-06-18" })).await;
    assert_eq!(r["error"]["data"], json!({ "supported": ["2026-07-28"], "requested": "2025-06-18" }));
}

#[tokio::test]
async fn dual_server_answers_each_request_in_its_era() {
    let mut c = Client::start(test_server(Era::Dual));
    let legacy = c.request(json!(1), "tools/list", json!({})).await;
    assert!(legacy["result"].get("resultType").is_none());
    let r = c.request(json!(2), "tools/list", modern(json!({}))).await;
    assert_eq!(r["result"]["resultType"], "complete");
    assert!(r["result"].get("ttlMs").is_some());
    let call = c
        .request(json!(3), "tools/call", modern(json!({ "name": "echo", "arguments": { "text": "x" } })))
        .await;
    assert_eq!(call["result"]["resultType"], "complete");
    assert!(call["result"].get("ttlMs").is_none(), "tools/call results are not cacheable");
    let bare = c.request(json!(4), "server/discover", json!({})).await;
    assert_eq!(bare["error"]["code"], -32602);
}

#[tokio::test]
async fn input_required_round_trip() {
    let mut c = Client::start(test_server(Era::Modern));
    let sampling = json!({ "sampling": {} });
    let undeclared = c.request(json!(0), "tools/call", modern(json!({ "name": "ask" }))).await;
    assert_eq!(undeclared["error"]["code"], -32021, "{undeclared}");
    assert_eq!(undeclared["error"]["data"], json!({ "requiredCapabilities": { "sampling": {} } }));
    let first =
        c.request(json!(1), "tools/call", modern_with(json!({ "name": "ask" }), sampling.clone())).await;
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    assert_eq!(result["inputRequests"]["s"]["method"], "sampling/createMessage");
    assert_eq!(result["inputRequests"]["s"]["params"]["maxTokens"], 5);
    let state = result["requestState"].clone();
    assert!(state.is_string());
    let answer = json!({ "role": "assistant", "content": { "type": "text", "text": "42" }, "model": "m" });
    let retry = modern_with(
        json!({ "name": "ask", "inputResponses": { "s": answer }, "requestState": state }),
        sampling,
    );
    let done = c.request(json!(2), "tools/call", retry).await;
    assert_eq!(done["result"]["resultType"], "complete");
    assert_eq!(done["result"]["content"][0]["text"], "42");
    assert_eq!(done["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "kit-test");
    let stateless = modern(json!({ "name": "ask", "inputResponses": { "s": answer } }));
    assert_eq!(c.request(json!(3), "tools/call", stateless).await["error"]["code"], -32602);
    let wrong = modern(json!({ "name": "echo", "inputResponses": { "s": answer }, "requestState": state }));
    assert_eq!(c.request(json!(4), "tools/call", wrong).await["error"]["code"], -32602);
}

#[tokio::test]
async fn listen_streams_changes_until_cancelled() {
    let mut c = Client::start(test_server(Era::Modern));
    let filter =
        json!({ "toolsListChanged": true, "promptsListChanged": true, "resourceSubscriptions": ["kit://a"] });
    c.start_request(json!("L"), "subscriptions/listen", modern(json!({ "notifications": filter }))).await;
    let ack = c.recv().await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["notifications"], filter);
    assert_eq!(ack["params"]["_meta"][META_SUBSCRIPTION_ID], "L");
    c.start_request(json!(1), "tools/call", modern(json!({ "name": "grow" }))).await;
    let (_, before) = c.response(&json!(1)).await;
    let got: Vec<_> = before
        .iter()
        .map(|n| (n["method"].clone(), n["params"]["_meta"][META_SUBSCRIPTION_ID].clone()))
        .collect();
    assert_eq!(
        got,
        [
            (json!("notifications/tools/list_changed"), json!("L")),
            (json!("notifications/resources/updated"), json!("L"))
        ]
    );
    c.send(json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": "L" } }))
        .await;
    c.start_request(json!(2), "tools/call", modern(json!({ "name": "grow" }))).await;
    let (_, before) = c.response(&json!(2)).await;
    assert!(before.is_empty(), "stream closed: {before:?}");
    let (rest, _) = c.finish().await;
    assert!(rest.iter().all(|m| m.get("id") != Some(&json!("L"))), "{rest:?}");
}

#[tokio::test]
async fn modern_logging_follows_the_request_level() {
    let mut c = Client::start(test_server(Era::Modern));
    let mut params = modern(json!({ "name": "log" }));
    c.start_request(json!(1), "tools/call", params.clone()).await;
    assert!(c.response(&json!(1)).await.1.is_empty(), "no level, no log");
    params["_meta"]["io.modelcontextprotocol/logLevel"] = json!("warning");
    c.start_request(json!(2), "tools/call", params).await;
    let (_, before) = c.response(&json!(2)).await;
    let levels: Vec<&Value> = before.iter().map(|n| &n["params"]["level"]).collect();
    assert_eq!(levels, [&json!("warning")]);
}
