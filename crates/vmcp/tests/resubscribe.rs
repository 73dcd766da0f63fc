//! Resource subscriptions across a backend restart (issue 4, supervision): clients subscribed
//! through vMCP keep getting `notifications/resources/updated` after the replica holding the
//! subscription crashes and the supervisor restarts it, with one backend subscription per URI
//! however many sessions share it, and none left once the last session has gone.
//!
//! The same across a live remount (issue 4, reload): a `servers.json` change to a running
//! server's spec starts new processes, which hold the subscriptions before they take the old
//! ones' place; unmounting the server drops them, and its sessions may subscribe again when it
//! comes back.
//!
//! Each client is its own session on the WebSocket front; the backend is the fault fixture
//! (`--faults`: `crash`; `touch` says whether the process has a subscriber for a URI). Waits
//! poll with deadlines.

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

const URI: &str = "fixture://static/hello";

/// A legacy client session over the WebSocket front.
struct Client {
    ws: tungstenite::WebSocket<TcpStream>,
    next_id: u64,
    /// Notifications read while waiting for answers.
    notes: Vec<Value>,
}

impl Client {
    fn connect(addr: &str) -> Self {
        let mut req =
            tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{addr}")).unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", "mcp".parse().unwrap());
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let (ws, _) = tungstenite::client(req, stream).expect("websocket");
        let mut c = Client { ws, next_id: 0, notes: Vec::new() };
        let init = c.call(
            "initialize",
            json!({ "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": { "name": "resubscribe-test", "version": "0" } }),
        );
        assert!(init.get("result").is_some(), "{init}");
        c.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        c
    }

    fn send(&mut self, v: Value) {
        self.ws.send(tungstenite::Message::text(v.to_string())).unwrap();
    }

    /// Send a request and read until its answer, keeping the notifications read meanwhile.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let tungstenite::Message::Text(t) = self.ws.read().expect("websocket read") else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v.get("method").is_none() && v["id"] == id {
                return v;
            }
            if v.get("id").is_none() {
                self.notes.push(v);
            }
        }
    }

    fn ok(&mut self, method: &str, params: Value) -> Value {
        let r = self.call(method, params);
        assert!(r.get("result").is_some(), "{method}: {r}");
        r["result"].clone()
    }

    /// What the fixture's `touch` says: "notified subscribers" or "not subscribed".
    fn touch(&mut self) -> String {
        let r = self.ok("tools/call", json!({ "name": "s__touch", "arguments": { "uri": URI } }));
        r["content"][0]["text"].as_str().unwrap().to_owned()
    }

    /// The updates of `URI` this session got so far. The backend sends an update before it
    /// answers the `touch` that caused it, so after that answer a ping's round trip has them.
    fn updates(&mut self) -> usize {
        self.ok("ping", json!({}));
        let n = self
            .notes
            .iter()
            .filter(|n| n["method"] == "notifications/resources/updated" && n["params"]["uri"] == URI)
            .count();
        self.notes.clear();
        n
    }

    fn pid(&mut self) -> (String, Option<u64>) {
        let h = self.ok("vmcp/servers/health", json!({}));
        let s = h["servers"].as_array().unwrap().iter().find(|s| s["id"] == "s").cloned().unwrap();
        (s["replicas"][0]["status"].as_str().unwrap_or("").to_owned(), s["replicas"][0]["pid"].as_u64())
    }

    /// Crash the backend and wait until the supervisor has a new process ready in its place.
    fn crash_and_wait_restart(&mut self, server: &Server) {
        let (_, old) = self.pid();
        let r = self.call("tools/call", json!({ "name": "s__crash", "arguments": {} }));
        assert!(r.get("error").is_some(), "a crash answers the call in flight with an error: {r}");
        let deadline = Instant::now() + WAIT;
        loop {
            let (status, pid) = self.pid();
            if status == "ready" && pid.is_some() && pid != old {
                return;
            }
            assert!(Instant::now() < deadline, "never restarted ({status}, {pid:?}):\n{}", server.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Client {
    /// Whether `s` is mounted, as `vmcp/servers/health` lists it.
    fn mounted(&mut self) -> bool {
        let h = self.ok("vmcp/servers/health", json!({}));
        h["servers"].as_array().unwrap().iter().any(|s| s["id"] == "s")
    }

    /// Wait until `s` is mounted with a ready process other than `old`.
    fn wait_new_process(&mut self, server: &Server, old: Option<u64>) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.mounted() {
                let (status, pid) = self.pid();
                if status == "ready" && pid.is_some() && pid != old {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "no new process of `s`:\n{}", server.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Replace the registry as `vmcp mount`/`unmount` do: write aside, rename into place.
fn write_servers(home: &Home, servers: Value) {
    let path = home.path().join("registry/servers.json");
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&json!({ "servers": servers })).unwrap()).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

fn remounted_log_lines(server: &Server) -> usize {
    server.stderr().matches("remounted: 1 resource subscription(s) made at the new server").count()
}

fn restored_log_lines(server: &Server) -> usize {
    server.stderr().matches("re-established 1 resource subscription(s)").count()
}

/// The fault fixture's arguments as server `s`, with `flags`.
fn fixture_args<'a>(flags: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--name", "s", "--faults"];
    args.extend_from_slice(flags);
    args
}

/// Start vMCP over `home` and subscribe two sessions to `URI`: each gets one update.
fn start_with_two_subscribed(home: &Home) -> (Server, Client, Client) {
    home.write_servers();
    let server = Server::start(home.path(), &["--ws", "127.0.0.1:0"]);
    let addr = server.ws.clone().unwrap();
    let (mut a, mut b) = (Client::connect(&addr), Client::connect(&addr));
    a.ok("resources/subscribe", json!({ "uri": URI }));
    b.ok("resources/subscribe", json!({ "uri": URI }));
    assert_eq!(a.touch(), "notified subscribers");
    assert_eq!((a.updates(), b.updates()), (1, 1), "one update each before the restart or remount");
    (server, a, b)
}

/// Subscribe two sessions, restart the backend, check updates; then leave one by one.
fn survive_a_restart(flags: &[&str]) {
    let home = Home::new().server(json!({ "id": "s", "command": FIXTURE, "args": fixture_args(flags) }));
    let (server, mut a, mut b) = start_with_two_subscribed(&home);

    a.crash_and_wait_restart(&server);
    // Ready means in rotation, and the replica enters it with its subscriptions in place.
    assert_eq!(a.touch(), "notified subscribers", "the new process holds the subscription");
    assert_eq!(
        (a.updates(), b.updates()),
        (1, 1),
        "each session gets the update once after the restart (one backend subscription, not two)"
    );
    assert_eq!(restored_log_lines(&server), 1, "one URI re-established once:\n{}", server.stderr());

    // The first session leaves: the backend subscription stays for the other.
    a.ok("resources/unsubscribe", json!({ "uri": URI }));
    assert_eq!(a.touch(), "notified subscribers");
    assert_eq!((a.updates(), b.updates()), (0, 1));
    // The last session closes: the backend subscription ends.
    drop(b);
    let deadline = Instant::now() + WAIT;
    while a.touch() != "not subscribed" {
        assert!(Instant::now() < deadline, "the backend subscription outlived its last session");
    }
    // And a later restart does not bring it back.
    a.crash_and_wait_restart(&server);
    assert_eq!(a.touch(), "not subscribed");
    assert_eq!(a.updates(), 0);
    assert_eq!(restored_log_lines(&server), 1, "nothing re-established the second time");
}

#[test]
fn a_legacy_backends_subscription_survives_its_restart() {
    survive_a_restart(&[]);
}

#[test]
fn a_modern_backends_subscription_listen_survives_its_restart() {
    survive_a_restart(&["--era", "modern"]);
}

/// Subscribe two sessions; change the server's spec in `servers.json` (its environment: same
/// resources, new processes) and check updates; unmount it, mount it again: nothing is
/// subscribed there, and a session can subscribe again.
fn survive_a_remount(flags: &[&str]) {
    let args = fixture_args(flags);
    let entry = |environment: Value| json!({ "id": "s", "command": FIXTURE, "args": args, "environment": environment });
    let home = Home::new().server(entry(json!({})));
    let (server, mut a, mut b) = start_with_two_subscribed(&home);

    let (_, old) = a.pid();
    write_servers(&home, json!([entry(json!({ "VMCP_TEST_SPEC": "2" }))]));
    a.wait_new_process(&server, old);
    // The new server takes the old one's place with the subscription in place.
    assert_eq!(a.touch(), "notified subscribers", "the new process holds the subscription");
    assert_eq!(
        (a.updates(), b.updates()),
        (1, 1),
        "each session gets the update once after the remount (one backend subscription, not two)"
    );
    assert_eq!(remounted_log_lines(&server), 1, "one URI made again once:\n{}", server.stderr());

    // Unmount: the table drops both sessions' subscriptions.
    write_servers(&home, json!([]));
    let deadline = Instant::now() + WAIT;
    while a.mounted() {
        assert!(Instant::now() < deadline, "`s` was never unmounted:\n{}", server.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Mounted again: nothing held over from before is made there...
    write_servers(&home, json!([entry(json!({}))]));
    a.wait_new_process(&server, None);
    assert_eq!(a.touch(), "not subscribed", "no subscription outlived the unmount");
    assert_eq!((a.updates(), b.updates()), (0, 0));
    assert_eq!(remounted_log_lines(&server), 1, "nothing made again at the new mount");
    // ...and a session is no longer subscribed through vMCP either: subscribing again takes.
    a.ok("resources/subscribe", json!({ "uri": URI }));
    assert_eq!(a.touch(), "notified subscribers", "subscribing again after the unmount takes");
    assert_eq!((a.updates(), b.updates()), (1, 0));
    // The log says so too.
    assert!(
        server.stderr().contains("unmounted: dropped 2 session subscription(s) to its resources"),
        "{}",
        server.stderr()
    );
}

#[test]
fn a_legacy_backends_subscription_survives_a_remount() {
    survive_a_remount(&[]);
}

#[test]
fn a_modern_backends_subscription_listen_survives_a_remount() {
    survive_a_remount(&["--era", "modern"]);
}
