//! Both protocol eras on both sides of the gateway: legacy and modern (2026-07-28) clients on the
//! stdio front, legacy, modern and dual-era backends behind it, and the bridges between them.

mod support;

use serde_json::{Value, json};
use support::*;

const MODERN: &str = "2026-07-28";

fn meta() -> Value {
    json!({ "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": { "elicitation": {}, "sampling": {} },
            "io.modelcontextprotocol/clientInfo": { "name": "test", "version": "1" } })
}

/// A modern request's params: `extra` plus the required `_meta`.
fn modern(extra: Value) -> Value {
    let mut p = extra;
    p["_meta"] = meta();
    p
}

#[test]
fn a_modern_client_discovers_and_uses_the_gateway_without_initialize() {
    let home = Home::new().fixture("leg", &[]).fixture("mod", &["--era", "modern"]);
    let mut gw = home.start();
    let d = gw.ok("server/discover", modern(json!({})));
    assert_eq!(d["supportedVersions"], json!([MODERN]));
    assert_eq!(d["resultType"], "complete");
    assert!(d["capabilities"]["tools"].is_object());
    assert_eq!(d["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "vmcp");
    assert!(d.get("ttlMs").is_some() && d.get("cacheScope").is_some(), "{d}");

    let tools = gw.ok("tools/list", modern(json!({})));
    assert_eq!(tools["resultType"], "complete");
    assert!(tools.get("ttlMs").is_some() && tools["cacheScope"] == "private");
    let names: Vec<&str> =
        tools["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"leg__echo") && names.contains(&"mod__echo"), "{names:?}");

    for server in ["leg", "mod"] {
        let r = gw.ok(
            "tools/call",
            modern(json!({ "name": format!("{server}__echo"), "arguments": { "text": server } })),
        );
        assert_eq!(r["resultType"], "complete", "{r}");
        assert_eq!(r["content"][0]["text"], server);
    }

    let missing = gw.call("tools/list", json!({}));
    assert_eq!(missing["error"]["code"], -32602);
    let no_caps =
        gw.call("tools/list", json!({ "_meta": { "io.modelcontextprotocol/protocolVersion": MODERN } }));
    assert_eq!(no_caps["error"]["code"], -32602);
    let future = gw.call(
        "tools/list",
        json!({ "_meta": { "io.modelcontextprotocol/protocolVersion": "2099-01-01",
        "io.modelcontextprotocol/clientCapabilities": {} } }),
    );
    assert_eq!(future["error"]["code"], -32022);
    assert_eq!(future["error"]["data"]["supported"], json!([MODERN]));
}

#[test]
fn backends_are_spoken_to_in_their_own_era() {
    let home = Home::new()
        .fixture("leg", &[])
        .fixture("mod", &["--era", "modern"])
        .fixture("dual", &["--era", "dual"]);
    let mut gw = home.start();
    gw.initialize(json!({}));
    let servers = gw.ok("vmcp/servers/list", json!({}));
    let era = |id: &str| {
        servers["servers"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap()["era"].clone()
    };
    assert_eq!(era("leg"), "legacy");
    assert_eq!(era("mod"), "modern");
    assert_eq!(era("dual"), "modern", "a dual-era server answers the probe");
    for server in ["leg", "mod", "dual"] {
        assert_eq!(gw.call_text(&format!("{server}__echo"), json!({ "text": server })), server);
    }
}

#[test]
fn a_legacy_client_behind_a_modern_backend_gets_input_requests_as_ordinary_requests() {
    let home = Home::new().fixture("mod", &["--era", "modern"]);
    let mut gw = home.start();
    gw.initialize(json!({ "sampling": {}, "elicitation": {} }));
    gw.send(&json!({ "jsonrpc": "2.0", "id": "b1", "method": "tools/call", "params": { "name": "mod__sample", "arguments": { "prompt": "hi" } } }));
    let req = gw.incoming_request("sampling/createMessage");
    gw.send(&json!({ "jsonrpc": "2.0", "id": req["id"], "result": {
        "role": "assistant", "content": { "type": "text", "text": "bridged answer" }, "model": "m" } }));
    let done = gw.response(&json!("b1"));
    assert!(done["result"].to_string().contains("bridged answer"), "{done}");

    gw.send(&json!({ "jsonrpc": "2.0", "id": "b2", "method": "tools/call", "params": { "name": "mod__elicit", "arguments": { "message": "name?" } } }));
    let req = gw.incoming_request("elicitation/create");
    gw.send(&json!({ "jsonrpc": "2.0", "id": req["id"], "result": { "action": "accept", "content": { "name": "Grace" } } }));
    assert!(gw.response(&json!("b2"))["result"].to_string().contains("Grace"));
}

#[test]
fn input_required_passes_through_to_a_modern_client_and_the_retry_reaches_the_same_backend() {
    let home = Home::new().fixture("a", &["--era", "modern"]).fixture("b", &["--era", "modern"]);
    let mut gw = home.start();
    let first = gw.ok("tools/call", modern(json!({ "name": "b__sample", "arguments": { "prompt": "hi" } })));
    assert_eq!(first["resultType"], "input_required", "{first}");
    let requests = first["inputRequests"].as_object().unwrap();
    let (key, req) = requests.iter().next().unwrap();
    assert_eq!(req["method"], "sampling/createMessage");
    let mut retry = modern(json!({ "name": "b__sample", "arguments": { "prompt": "hi" },
        "inputResponses": { key: { "role": "assistant", "content": { "type": "text", "text": "from the client" }, "model": "m" } } }));
    if let Some(state) = first.get("requestState") {
        retry["requestState"] = state.clone();
    }
    let done = gw.ok("tools/call", retry);
    assert_eq!(done["resultType"], "complete");
    assert!(done.to_string().contains("from the client"), "{done}");
}

#[test]
fn subscriptions_listen_delivers_tagged_list_changes_from_both_eras() {
    let home = Home::new().fixture("leg", &[]).fixture("mod", &["--era", "modern"]);
    let mut gw = home.start();
    gw.send(&json!({ "jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen",
        "params": modern(json!({ "notifications": { "toolsListChanged": true } })) }));
    let ack = gw.notification("notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "listen-1");
    assert_eq!(ack["params"]["notifications"]["toolsListChanged"], true);

    for server in ["leg", "mod"] {
        gw.ok("tools/call", modern(json!({ "name": format!("{server}__add_tool"), "arguments": { "name": format!("new_{server}") } })));
        let changed = gw.notification("notifications/tools/list_changed");
        assert_eq!(changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "listen-1");
        let names: Vec<String> = gw.ok("tools/list", modern(json!({})))["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        assert!(names.contains(&format!("{server}__new_{server}")), "{names:?}");
    }
    gw.send(&json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": "listen-1" } }));
    gw.ok("tools/call", modern(json!({ "name": "leg__add_tool", "arguments": { "name": "after" } })));
    gw.ok("tools/list", modern(json!({})));
    assert!(
        gw.drain_notifications("notifications/tools/list_changed").is_empty(),
        "a cancelled listen got notifications"
    );
}

#[test]
fn a_legacy_client_gets_list_changes_from_a_modern_backend() {
    let home = Home::new().fixture("mod", &["--era", "modern"]);
    let mut gw = home.start();
    gw.initialize(json!({}));
    gw.ok("tools/call", json!({ "name": "mod__add_tool", "arguments": { "name": "fresh" } }));
    gw.notification("notifications/tools/list_changed");
    assert!(gw.tool_names().contains(&"mod__fresh".to_owned()));
}

/// A modern client asks for logs per request (`_meta` logLevel): a backend's log lines for that
/// request reach it at or above that level, and none for requests that did not ask. The key is
/// the same key when spelled with escapes (the gateway's quick check must not miss it).
#[test]
fn a_modern_clients_log_level_is_read_from_each_request() {
    let home = Home::new().fixture("leg", &[]);
    let mut gw = home.start();
    let log = |level: &str, message: &str, asked: Option<&str>| {
        let mut p =
            modern(json!({ "name": "leg__log", "arguments": { "level": level, "message": message } }));
        if let Some(asked) = asked {
            p["_meta"]["io.modelcontextprotocol/logLevel"] = json!(asked);
        }
        p
    };
    gw.ok("tools/call", log("error", "not asked", None));
    gw.ok("tools/call", log("info", "below", Some("warning")));
    gw.ok("tools/call", log("error", "above", Some("warning")));
    assert_eq!(gw.notification("notifications/message")["params"]["data"], "above");

    let request = json!({ "jsonrpc": "2.0", "id": "escaped", "method": "tools/call",
        "params": log("critical", "escaped", Some("error")) });
    let raw = request.to_string().replace("modelcontextprotocol/logLevel", r"modelcontextprotocol\/logLevel");
    assert!(raw.contains(r"\/logLevel"), "{raw}");
    gw.send_raw(&raw);
    assert!(gw.response(&json!("escaped")).get("result").is_some());
    let logs = gw.drain_notifications("notifications/message");
    let data: Vec<&Value> = logs.iter().map(|l| &l["params"]["data"]).collect();
    assert_eq!(data, [&json!("escaped")]);
}
