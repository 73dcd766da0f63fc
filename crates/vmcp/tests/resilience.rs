//! Resilience through the real binary, with the fault fixture (`--faults`) as replicas: killed
//! replicas, hung backends and breakers, balancing strategies, failover, memory limits, crash
//! loops, fail-open lists. Waits poll with deadlines; timing checks are about behaviour
//! ("ends before the timeout plus a margin"), never goals.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

fn replicated(id: &str, replicas: u32, resilience: Value) -> Value {
    json!({ "id": id, "command": FIXTURE, "args": ["--name", id, "--faults"], "replicas": replicas,
            "resilience": resilience })
}

fn start(entries: &[Value]) -> (Home, Gateway) {
    let mut home = Home::new();
    for e in entries {
        home = home.server(e.clone());
    }
    let mut gw = home.start();
    gw.initialize(json!({}));
    (home, gw)
}

/// The pid in a `work`/`set_mode` result.
fn pid_of(resp: &Value) -> Option<u64> {
    let text = resp["result"]["content"][0]["text"].as_str()?;
    serde_json::from_str::<Value>(text).ok()?["pid"].as_u64()
}

fn health_of(gw: &mut Gateway, server: &str) -> Value {
    let h = gw.ok("vmcp/servers/health", json!({}));
    h["servers"].as_array().unwrap().iter().find(|s| s["id"] == server).cloned().unwrap()
}

fn replica_pid(gw: &mut Gateway, server: &str, i: usize) -> Option<u64> {
    health_of(gw, server)["replicas"][i]["pid"].as_u64()
}

/// Poll the gateway until `cond` holds on the server's health entry.
fn wait_health(gw: &mut Gateway, server: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let h = health_of(gw, server);
        if cond(&h) {
            return h;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}: {h}\n{}", gw.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn request(id: u64, tool: &str, args: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": tool, "arguments": args } })
}

fn any_response(gw: &mut Gateway) -> Value {
    gw.recv_until("a response", |v| v.get("id").is_some() && v.get("method").is_none())
}

/// Run `n` calls of `tool` with up to `window` in flight; returns the responses by id.
fn load(
    gw: &mut Gateway,
    first_id: u64,
    n: u64,
    window: u64,
    tool: &str,
    args: Value,
) -> HashMap<u64, Value> {
    let mut out = HashMap::new();
    let mut sent = 0;
    while out.len() < n as usize {
        while sent < n && sent - (out.len() as u64) < window {
            gw.send(&request(first_id + sent, tool, args.clone()));
            sent += 1;
        }
        let r = any_response(gw);
        let id = r["id"].as_u64().unwrap();
        assert!(out.insert(id, r).is_none(), "two responses for request {id}");
    }
    out
}

/// Wait until `pool`'s replica 0 is ready in a process not `killed`: its pid.
fn replica_0_back(gw: &mut Gateway, killed: &[u64]) -> u64 {
    let h = wait_health(gw, "pool", "replica 0 is back", |h| {
        h["replicas"][0]["status"] == "ready"
            && !killed.contains(&h["replicas"][0]["pid"].as_u64().unwrap_or(0))
    });
    h["replicas"][0]["pid"].as_u64().unwrap()
}

#[test]
fn killed_replicas_fail_only_their_in_flight_requests_and_return_to_rotation() {
    let (_home, mut gw) = start(&[replicated("pool", 3, json!({ "strategy": "round_robin" }))]);
    let mut killed = Vec::new();
    let mut responses: HashMap<u64, Value> = HashMap::new();
    let (total, window, per_round) = (360u64, 6u64, 120u64);
    let mut next_id = 1000;
    while (responses.len() as u64) < total {
        // Steady load; one replica is killed at the start of each round.
        let pid = replica_0_back(&mut gw, &killed);
        let mut sent = 0;
        let mut round = 0;
        while round < per_round {
            while sent < per_round && sent - round < window {
                gw.send(&request(next_id + sent, "pool__work", json!({ "ms": 20 })));
                sent += 1;
                if sent == window {
                    signal(pid as u32, libc::SIGKILL);
                    killed.push(pid);
                }
            }
            let r = any_response(&mut gw);
            let id = r["id"].as_u64().unwrap();
            assert!(responses.insert(id, r).is_none(), "two responses for request {id}");
            round += 1;
        }
        next_id += per_round;
    }
    // Nothing extra arrives after the last answer.
    let pong = gw.call("ping", json!({}));
    assert!(pong.get("result").is_some());
    assert_eq!(responses.len() as u64, total, "every request got exactly one response");

    let failed: Vec<&Value> = responses.values().filter(|r| r.get("error").is_some()).collect();
    assert!(!failed.is_empty(), "killing a replica under load fails its in-flight requests");
    assert!(failed.len() as u64 <= window * 3, "only requests in flight can fail: {}", failed.len());
    for r in &failed {
        let code = r["error"]["code"].as_i64().unwrap();
        assert!([1003, 2001].contains(&code), "{r}");
        assert_eq!(r["error"]["data"]["replica"], 0, "only the killed replica's requests fail: {r}");
    }
    // Back in rotation: the restarted replica 0 serves its share again.
    let new_pid = replica_0_back(&mut gw, &killed);
    let after = load(&mut gw, 90_000, 30, 3, "pool__work", json!({}));
    let on_new = after.values().filter(|r| pid_of(r) == Some(new_pid)).count();
    assert!(on_new >= 5, "restarted replica serves again: {on_new} of 30");
    assert!(after.values().all(|r| r.get("result").is_some()));
    assert!(health_of(&mut gw, "pool")["replicas"][0]["restarts"].as_u64().unwrap() >= 3);
}

#[test]
fn a_hung_backend_times_out_opens_the_breaker_fails_fast_and_a_probe_closes_it() {
    let entry = json!({ "id": "hung", "command": FIXTURE, "args": ["--name", "hung", "--faults"],
        "timeout": 30, "timeouts": { "tools/call": 1 },
        "resilience": { "breaker": { "failure_threshold": 2, "open_seconds": 1 } } });
    let (_home, mut gw) = start(&[entry]);
    gw.ok("tools/call", json!({ "name": "hung__set_mode", "arguments": { "mode": "hang", "count": 2 } }));
    for _ in 0..2 {
        let t = Instant::now();
        let r = gw.call("tools/call", json!({ "name": "hung__echo", "arguments": { "text": "x" } }));
        assert_eq!(r["error"]["code"], 1002, "{r}");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "the per-method timeout (1 s) ends the call: {:?}",
            t.elapsed()
        );
    }
    let h = health_of(&mut gw, "hung");
    assert_eq!(h["replicas"][0]["breaker"], "open", "{h}");
    let t = Instant::now();
    let r = gw.call("tools/call", json!({ "name": "hung__echo", "arguments": { "text": "x" } }));
    assert_eq!(r["error"]["code"], 2001, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("circuit breaker"), "{r}");
    assert!(t.elapsed() < Duration::from_secs(1), "an open breaker fails fast, not at the timeout");
    // After open_seconds, one probe goes through; the backend is fine again, so it closes.
    let deadline = Instant::now() + WAIT;
    loop {
        let r = gw.call("tools/call", json!({ "name": "hung__echo", "arguments": { "text": "back" } }));
        if r.get("result").is_some() {
            break;
        }
        assert_eq!(r["error"]["code"], 2001, "{r}");
        assert!(Instant::now() < deadline, "the breaker never closed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(health_of(&mut gw, "hung")["replicas"][0]["breaker"], "closed");
    // Both timed-out calls were cancelled at the backend.
    let cancelled: Value =
        serde_json::from_str(&gw.call_text("hung__cancelled_requests", json!({}))).unwrap();
    assert_eq!(cancelled.as_array().unwrap().len(), 2, "{cancelled}");
}

#[test]
fn a_client_cancel_cancels_the_backend_request() {
    let (_home, mut gw) = start(&[replicated("c", 1, json!({}))]);
    gw.send(&request(500_007, "c__slow", json!({ "ms": 20000 })));
    eventually_in_flight(&mut gw, "c", 1);
    gw.send(
        &json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 500_007 } }),
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let seen: Value = serde_json::from_str(&gw.call_text("c__cancelled_requests", json!({}))).unwrap();
        if seen.as_array().unwrap().len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the backend never saw the cancellation");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn eventually_in_flight(gw: &mut Gateway, server: &str, n: u64) {
    wait_health(gw, server, &format!("{n} requests in flight"), |h| {
        h["replicas"].as_array().unwrap().iter().map(|r| r["in_flight"].as_u64().unwrap()).sum::<u64>() == n
    });
}

fn counts(responses: &HashMap<u64, Value>) -> HashMap<u64, usize> {
    let mut c = HashMap::new();
    for r in responses.values() {
        *c.entry(pid_of(r).unwrap_or_else(|| panic!("no pid in {r}"))).or_default() += 1;
    }
    c
}

#[test]
fn round_robin_and_weighted_spread_calls_within_tolerance() {
    let (_home, mut gw) = start(&[
        replicated("rr", 3, json!({ "strategy": "round_robin" })),
        replicated("w", 3, json!({ "strategy": "weighted", "weights": [1, 2, 7] })),
    ]);
    let rr = counts(&load(&mut gw, 600_000, 300, 8, "rr__work", json!({})));
    assert_eq!(rr.len(), 3, "{rr:?}");
    assert!(rr.values().all(|&c| (85..=115).contains(&c)), "round robin: {rr:?}");
    let pids: Vec<u64> = (0..3).map(|i| replica_pid(&mut gw, "w", i).unwrap()).collect();
    let w = counts(&load(&mut gw, 10_000, 500, 8, "w__work", json!({})));
    let share: Vec<usize> = pids.iter().map(|p| w.get(p).copied().unwrap_or(0)).collect();
    for (got, want) in share.iter().zip([50, 100, 350]) {
        assert!(got.abs_diff(want) <= 25, "weighted 1:2:7 over 500 calls: {share:?}");
    }
}

#[test]
fn least_connections_avoids_the_replica_holding_slow_calls() {
    let (_home, mut gw) = start(&[replicated("lc", 3, json!({ "strategy": "least_connections" }))]);
    gw.send(&request(500_001, "lc__work", json!({ "ms": 4000 })));
    gw.send(&request(500_002, "lc__work", json!({ "ms": 4000 })));
    eventually_in_flight(&mut gw, "lc", 2);
    let mut quick = Vec::new();
    for i in 0..30 {
        let r = gw.call("tools/call", json!({ "name": "lc__work", "arguments": { "i": i } }));
        quick.push(pid_of(&r).unwrap());
    }
    let slow: Vec<u64> =
        [500_001, 500_002].iter().map(|id| pid_of(&gw.response(&json!(id))).unwrap()).collect();
    assert_ne!(slow[0], slow[1], "the two slow calls went to two replicas");
    assert!(
        quick.iter().all(|p| !slow.contains(p)),
        "quick calls avoided the busy replicas: {quick:?} vs {slow:?}"
    );
}

#[test]
fn adaptive_shifts_load_away_from_a_slow_replica() {
    let (_home, mut gw) = start(&[replicated("ad", 3, json!({ "strategy": "adaptive" }))]);
    let slow_pid = pid_of(&gw.ok_call("ad__set_mode", json!({ "mode": "slow", "ms": 150 }))).unwrap();
    let c = counts(&load(&mut gw, 600_000, 240, 3, "ad__work", json!({})));
    let on_slow = c.get(&slow_pid).copied().unwrap_or(0);
    assert!(on_slow < 240 / 8, "the slow replica got {on_slow} of 240 (round robin would give 80): {c:?}");
    assert_eq!(c.len(), 3, "the slow replica is still sampled: {c:?}");
}

#[test]
fn failover_retries_an_allowed_tool_call_on_another_replica_and_lists_fail_open() {
    let (_home, mut gw) = start(&[
        replicated("fo", 2, json!({ "retry_tools": ["work"] })),
        json!({ "id": "stuck", "command": FIXTURE, "args": ["--name", "stuck", "--hang-on", "tools/list"], "timeout": 1 }),
    ]);
    let victim = replica_pid(&mut gw, "fo", 0).unwrap();
    gw.send(&request(500_001, "fo__work", json!({ "ms": 3000 })));
    gw.send(&request(500_002, "fo__work", json!({ "ms": 3000 })));
    eventually_in_flight(&mut gw, "fo", 2);
    signal(victim as u32, libc::SIGKILL);
    for id in [500_001, 500_002] {
        let r = gw.response(&json!(id));
        assert!(r.get("result").is_some(), "retry-safe call survived the kill: {r}");
        assert_ne!(pid_of(&r), Some(victim));
    }
    let m = gw.ok("vmcp/metrics", json!({}));
    let fo = m["servers"].as_array().unwrap().iter().find(|s| s["id"] == "fo").unwrap().clone();
    assert!(fo["stats"]["failovers"].as_u64().unwrap() >= 1, "{fo}");
    // A server whose tools/list hangs is left out; the others are listed.
    let names = gw.tool_names();
    assert!(names.contains(&"fo__work".to_owned()) && !names.iter().any(|n| n.starts_with("stuck__")));
    let m = gw.ok("vmcp/metrics", json!({}));
    let stuck = m["servers"].as_array().unwrap().iter().find(|s| s["id"] == "stuck").unwrap().clone();
    assert!(stuck["stats"]["list_omissions"].as_u64().unwrap() >= 1, "{stuck}");
    assert!(gw.stderr().contains("left out of the merged list"));
}

#[test]
fn a_child_over_its_memory_limit_is_restarted_and_the_gateway_survives() {
    let (_home, mut gw) = start(&[replicated("mem", 1, json!({ "limits": { "memory_mb": 96 } }))]);
    let before = replica_pid(&mut gw, "mem", 0).unwrap();
    assert!(pid_of(&gw.ok_call("mem__alloc", json!({ "mb": 8 }))).is_some(), "under the limit is fine");
    let r = gw.call("tools/call", json!({ "name": "mem__alloc", "arguments": { "mb": 512 } }));
    assert!([1003, 2001].contains(&r["error"]["code"].as_i64().unwrap_or(0)), "{r}");
    assert!(!alive(before as u32));
    let h = wait_health(&mut gw, "mem", "the replica restarted", |h| {
        h["replicas"][0]["status"] == "ready" && h["replicas"][0]["pid"].as_u64() != Some(before)
    });
    assert_eq!(h["replicas"][0]["restarts"], 1);
    assert_eq!(gw.call_text("mem__echo", json!({ "text": "alive" })), "alive");
}

#[test]
fn a_crash_loop_is_reported_and_replicas_all_down_give_2003() {
    let crashing = |id: &str, replicas: u32| {
        json!({ "id": id, "command": FIXTURE, "args": ["--exit-at-startup", "3"], "replicas": replicas,
                "resilience": { "restart": { "base_ms": 10, "max_ms": 50, "crash_loop_restarts": 3 } } })
    };
    let pair = json!({ "id": "pair", "command": FIXTURE, "args": ["--name", "pair", "--faults"], "replicas": 2,
        "resilience": { "restart": { "base_ms": 20000, "max_ms": 20000 } } });
    let (_home, mut gw) = start(&[crashing("loop", 1), pair, replicated("ok", 1, json!({}))]);
    let h = wait_health(&mut gw, "loop", "a crash loop is reported", |h| h["crash_loop"] == true);
    assert_eq!(h["status"], "unhealthy");
    let list = gw.ok("vmcp/servers/list", json!({}));
    let entry = list["servers"].as_array().unwrap().iter().find(|s| s["id"] == "loop").unwrap().clone();
    assert_eq!((entry["crash_loop"].clone(), entry["health"].clone()), (json!(true), json!("unhealthy")));
    assert!(gw.stderr().contains("crash loop"), "logged as such");
    let all = gw.ok("vmcp/servers/health", json!({}));
    assert_eq!(all["status"], "degraded", "one healthy server among unhealthy ones: {all}");
    // Both replicas of `pair` crash (their restarts are 10-20 s away): 2003, at once.
    for _ in 0..2 {
        let r = gw.call("tools/call", json!({ "name": "pair__crash", "arguments": {} }));
        assert!([1003, 2001].contains(&r["error"]["code"].as_i64().unwrap_or(0)), "{r}");
    }
    let r = gw.call("tools/call", json!({ "name": "pair__echo", "arguments": { "text": "x" } }));
    assert_eq!(r["error"]["code"], 2003, "{r}");
    assert_eq!(gw.call_text("ok__echo", json!({ "text": "fine" })), "fine");
}

trait OkCall {
    fn ok_call(&mut self, tool: &str, args: Value) -> Value;
}

impl OkCall for Gateway {
    fn ok_call(&mut self, tool: &str, args: Value) -> Value {
        let r = self.call("tools/call", json!({ "name": tool, "arguments": args }));
        assert!(r.get("result").is_some(), "{tool} failed: {r}");
        r
    }
}

#[test]
fn a_client_disconnect_cancels_the_backend_request() {
    let (_home, mut gw) = start(&[replicated("d", 1, json!({}))]);
    gw.send(&request(500_009, "d__slow", json!({ "ms": 20000 })));
    eventually_in_flight(&mut gw, "d", 1);
    let before = gw.stderr().matches("fixture: cancelled request").count();
    assert_eq!(before, 0);
    gw.close_stdin();
    // The client is gone: vMCP cancels the call at the backend before it stops the backend,
    // and exits well before the call would have ended.
    let t = Instant::now();
    assert!(gw.wait_exit().is_some(), "vMCP exits when its stdio client leaves");
    assert!(t.elapsed() < Duration::from_secs(15), "the slow call did not hold vMCP up");
    assert!(gw.stderr().contains("fixture: cancelled request"), "{}", gw.stderr());
}

#[test]
fn an_http_client_closing_its_answer_stream_cancels_the_backend_request() {
    use std::io::{BufRead, BufReader, Write};
    let home = Home::new().server(replicated("h", 1, json!({})));
    home.write_servers();
    let server = Server::start(home.path(), &["--http", "127.0.0.1:0"]);
    let addr = server.http.clone().unwrap();
    let body = json!({ "jsonrpc": "2.0", "id": "slow", "method": "tools/call",
        "params": { "name": "h__slow", "arguments": { "ms": 20000 }, "_meta": { "progressToken": 1,
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {} } } })
    .to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n\
         Mcp-Method: tools/call\r\nMcp-Name: h__slow\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // A progress event proves the call is running at the backend; then the client goes away.
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    while !line.contains("notifications/progress") {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the answer stream ended early");
    }
    drop(reader);
    let deadline = Instant::now() + WAIT;
    while !server.stderr().contains("fixture: cancelled request") {
        assert!(Instant::now() < deadline, "the backend never saw the cancellation:\n{}", server.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_subscription_stays_on_the_sessions_replica_and_its_unsubscribe_goes_there_too() {
    // Replica 0 takes no balanced traffic (weight 0), so the session's replica is 1 or 2: a
    // subscription parked on "the first ready replica" would never be seen by the `touch` calls.
    let (_home, mut gw) = start(&[replicated("sub", 3, json!({ "weights": [0, 1, 1] }))]);
    let uri = "fixture://static/hello";
    // Which replicas hold the subscription: `touch` on each, through balanced calls.
    let holders = |gw: &mut Gateway| {
        let mut seen = HashMap::new();
        for _ in 0..12 {
            let r = gw.ok_call("sub__touch", json!({ "uri": uri }));
            *seen.entry(r["result"]["content"][0]["text"].as_str().unwrap().to_owned()).or_insert(0) += 1;
        }
        seen
    };
    gw.ok("resources/subscribe", json!({ "uri": uri }));
    let seen = holders(&mut gw);
    let notified = seen.get("notified subscribers").copied().unwrap_or(0);
    assert!(notified >= 1, "the subscription is held by a replica that serves the session: {seen:?}");
    assert!(seen.get("not subscribed").copied().unwrap_or(0) >= 1, "and by one replica only: {seen:?}");
    // Every touch on the holding replica reached the client.
    let updates = gw.drain_notifications("notifications/resources/updated");
    assert_eq!(updates.len(), notified, "{updates:?}");
    assert!(updates.iter().all(|u| u["params"]["uri"] == uri));
    // Unsubscribe reaches the same replica: nobody is subscribed any more.
    gw.ok("resources/unsubscribe", json!({ "uri": uri }));
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = holders(&mut gw);
        if !seen.contains_key("notified subscribers") {
            break;
        }
        assert!(Instant::now() < deadline, "the holding replica never got the unsubscribe: {seen:?}");
    }
}

#[test]
fn a_hung_replica_turns_unhealthy_after_the_probe_threshold_and_healthy_after_it_recovers() {
    let health = json!({ "interval": 0.1, "timeout": 0.2, "unhealthy_threshold": 2, "healthy_threshold": 2 });
    let (_home, mut gw) =
        start(&[replicated("hp", 1, json!({ "health": health, "breaker": { "failure_threshold": 100 } }))]);
    wait_health(&mut gw, "hp", "healthy at first", |h| h["status"] == "healthy");
    // A wedged process for 3 s (an unhealthy replica gets no `set_mode normal` through vMCP).
    gw.ok_call("hp__set_mode", json!({ "mode": "hang", "ms": 3000 }));
    let h = wait_health(&mut gw, "hp", "the hung replica is unhealthy", |h| h["status"] == "unhealthy");
    assert_eq!(h["replicas"][0]["health"], "unhealthy", "{h}");
    assert_eq!(h["replicas"][0]["breaker"], "closed", "the probes, not the breaker, found it: {h}");
    assert!(gw.stderr().contains("health: unhealthy"), "logged");
    // No request reaches an unhealthy replica: this single server fails fast with 2001.
    let r = gw.call("tools/call", json!({ "name": "hp__echo", "arguments": { "text": "x" } }));
    assert_eq!(r["error"]["code"], 2001, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("unhealthy"), "{r}");
    // The hang ends: healthy_threshold good probes make it healthy and it serves again.
    wait_health(&mut gw, "hp", "healthy again", |h| h["status"] == "healthy");
    assert_eq!(gw.call_text("hp__echo", json!({ "text": "back" })), "back");
    assert!(gw.stderr().contains("healthy again"));
}
