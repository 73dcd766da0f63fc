//! Helpers for integration tests: a temporary vMCP home, the real `vmcp` binary on stdio, and
//! fixture servers as its children. Every process a test starts is killed by its guard (never
//! by name).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const VMCP: &str = env!("CARGO_BIN_EXE_vmcp");
pub const FIXTURE: &str = env!("CARGO_BIN_EXE_vmcp-fixture");

/// How long a test waits for a message it expects before failing (not a timing goal).
pub const WAIT: Duration = Duration::from_secs(20);

/// `program ARGS` as the CLI tests run `vmcp` (or a wrapper that runs it) on the home `home`:
/// stdin closed, and `VMCP_LOG` unset so that stderr holds only what the command says.
pub fn cli(program: &str, home: &Path, args: &[impl AsRef<OsStr>]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).env("VMCP_HOME", home).env_remove("VMCP_LOG").stdin(Stdio::null());
    cmd
}

/// [`cli`] for the repository tests: plain-HTTP downloads from 127.0.0.1 allowed, where their
/// package fixtures serve.
pub fn repository_cli(program: &str, home: &Path, args: &[&str]) -> Command {
    let mut cmd = cli(program, home, args);
    cmd.env("VMCP_ALLOW_INSECURE_LOCALHOST", "1");
    cmd
}

/// The stdout of `vmcp ARGS`, which must have succeeded.
pub fn succeeded(args: &[&str], out: Output) -> String {
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "vmcp {args:?} failed ({}):\n{stderr}\n{stdout}", out.status);
    stdout.into_owned()
}

/// Run the command (and arguments) of a servers.json entry; what it prints, trimmed.
pub fn run_entry(entry: &Value) -> String {
    let command = entry["command"].as_str().unwrap_or_else(|| panic!("no command in {entry}"));
    let args: Vec<&str> =
        entry["args"].as_array().map(|a| a.iter().map(|v| v.as_str().unwrap()).collect()).unwrap_or_default();
    let out = Command::new(command).args(args).output().unwrap_or_else(|e| panic!("{command}: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A `ureq` agent that hands back 4xx and 5xx answers instead of failing on them.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// An HTTP answer: status, the headers tests look at, and the body.
pub struct Reply {
    pub status: u16,
    pub session: Option<String>,
    pub content_type: String,
    pub www_authenticate: Option<String>,
    pub body: String,
}

/// POST a JSON-RPC message to a Streamable HTTP endpoint, with extra headers.
pub fn post(url: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    let mut req = agent()
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send(body.to_string()).expect("POST");
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (session, content_type) = (header("mcp-session-id"), header("content-type").unwrap_or_default());
    let www_authenticate = header("www-authenticate");
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    Reply { status, session, content_type, www_authenticate, body }
}

/// A temporary `VMCP_HOME` with a registry.
pub struct Home {
    pub dir: tempfile::TempDir,
    servers: Vec<Value>,
}

impl Home {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir"), servers: Vec::new() }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Mount the fixture under `id` with extra flags.
    pub fn fixture(mut self, id: &str, flags: &[&str]) -> Self {
        let mut args = vec!["--name".to_owned(), id.to_owned()];
        args.extend(flags.iter().map(|s| s.to_string()));
        self.servers.push(json!({ "id": id, "command": FIXTURE, "args": args }));
        self
    }

    /// Mount any server entry (raw servers.json object).
    pub fn server(mut self, entry: Value) -> Self {
        self.servers.push(entry);
        self
    }

    pub fn write_servers(&self) {
        let path = self.path().join("registry/servers.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, serde_json::to_vec_pretty(&json!({ "servers": self.servers })).unwrap())
            .unwrap();
    }

    pub fn write_config(&self, toml: &str) {
        let path = self.path().join("config/vmcp.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, toml).unwrap();
    }

    /// Start `vmcp start` on this home (writes the registry first if servers were added).
    pub fn start(&self) -> Gateway {
        if !self.servers.is_empty() {
            self.write_servers();
        }
        Gateway::spawn(self.path(), &["start"])
    }

    pub fn vmcp(&self, args: &[&str]) -> Output {
        cli(VMCP, self.path(), args).output().expect("run vmcp")
    }

    /// Run `n` `vmcp` processes on this home at once, the i-th with `args(i)` (stdout
    /// discarded), and check that every one succeeds: for tests of concurrent changes.
    pub fn vmcp_concurrently(&self, n: usize, args: impl Fn(usize) -> Vec<String>) {
        let children: Vec<Child> = (0..n)
            .map(|i| cli(VMCP, self.path(), &args(i)).stdout(Stdio::null()).spawn().expect("run vmcp"))
            .collect();
        for mut c in children {
            assert!(c.wait().expect("wait for vmcp").success());
        }
    }
}

/// `vmcp ARGS` as a gateway under test: on `home`, logging at debug level to a new file
/// `stderr_path`.
fn logged(home: &Path, args: &[&str], stderr_path: &Path) -> Command {
    let stderr = std::fs::File::create(stderr_path).unwrap();
    let mut cmd = Command::new(VMCP);
    cmd.args(args).env("VMCP_HOME", home).env("VMCP_LOG", "debug").stderr(stderr);
    cmd
}

/// A running `vmcp start`, spoken to over its stdio.
pub struct Gateway {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Messages read while waiting for something else.
    backlog: Vec<Value>,
    next_id: u64,
    pub stderr_path: PathBuf,
}

impl Gateway {
    pub fn spawn(home: &Path, args: &[&str]) -> Self {
        let stderr_path = home.join("gateway.stderr");
        let mut cmd = logged(home, args, &stderr_path);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut g = Self::from_command(cmd);
        g.stderr_path = stderr_path;
        g
    }

    /// Start a prepared command (stdin and stdout must be piped).
    pub fn from_command(mut cmd: Command) -> Self {
        let stderr_path = PathBuf::from("/dev/null");
        let mut child = cmd.spawn().expect("spawn vmcp");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Gateway { child, stdin, lines: rx, backlog: Vec::new(), next_id: 0, stderr_path }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Write one raw line.
    pub fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    pub fn send(&mut self, msg: &Value) {
        self.send_raw(&msg.to_string());
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next raw line, or `None` after `WAIT`.
    pub fn recv_raw(&mut self) -> Option<String> {
        match self.lines.recv_timeout(WAIT) {
            Ok(l) => Some(l),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Read until `pred` matches a message; others are kept in the backlog.
    pub fn recv_until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let Ok(line) = self.lines.recv_timeout(deadline - Instant::now()) else { break };
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("gateway wrote non-JSON {line:?}: {e}"));
            if pred(&v) {
                return v;
            }
            self.backlog.push(v);
        }
        panic!("timed out waiting for {what}; backlog: {:?}\nstderr:\n{}", self.backlog, self.stderr());
    }

    /// The response to request `id`.
    pub fn response(&mut self, id: &Value) -> Value {
        let id = id.clone();
        self.recv_until(&format!("response {id}"), move |v| {
            v.get("id") == Some(&id) && v.get("method").is_none()
        })
    }

    /// Send a request and wait for its response (the whole envelope).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = json!(self.next_id);
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        self.response(&id)
    }

    /// Send a request and return its `result`, failing the test on an error.
    pub fn ok(&mut self, method: &str, params: Value) -> Value {
        let resp = self.call(method, params);
        match resp.get("result") {
            Some(r) => r.clone(),
            None => panic!("{method} failed: {resp}\nstderr:\n{}", self.stderr()),
        }
    }

    /// A notification with this method.
    pub fn notification(&mut self, method: &str) -> Value {
        let m = method.to_owned();
        self.recv_until(method, move |v| {
            v.get("method").and_then(Value::as_str) == Some(&m) && v.get("id").is_none()
        })
    }

    /// Every already-received notification with this method (taken out of the backlog), after
    /// reading whatever is queued.
    pub fn drain_notifications(&mut self, method: &str) -> Vec<Value> {
        while let Ok(line) = self.lines.try_recv() {
            self.backlog.push(serde_json::from_str(&line).unwrap());
        }
        let (hit, keep): (Vec<Value>, Vec<Value>) = self
            .backlog
            .drain(..)
            .partition(|v| v.get("method").and_then(Value::as_str) == Some(method) && v.get("id").is_none());
        self.backlog = keep;
        hit
    }

    /// A request from the gateway to us (server-to-client).
    pub fn incoming_request(&mut self, method: &str) -> Value {
        let m = method.to_owned();
        self.recv_until(method, move |v| {
            v.get("method").and_then(Value::as_str) == Some(&m) && v.get("id").is_some()
        })
    }

    /// Legacy handshake with the given client capabilities.
    pub fn initialize(&mut self, capabilities: Value) -> Value {
        let r = self.ok(
            "initialize",
            json!({ "protocolVersion": "2025-11-25", "capabilities": capabilities, "clientInfo": { "name": "test", "version": "1" } }),
        );
        self.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        r
    }

    pub fn tool_names(&mut self) -> Vec<String> {
        let r = self.ok("tools/list", json!({}));
        r["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    }

    /// Call a tool and return the first text content.
    pub fn call_text(&mut self, tool: &str, args: Value) -> String {
        let r = self.ok("tools/call", json!({ "name": tool, "arguments": args }));
        r["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text in {r}")).to_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the process to exit on its own.
    pub fn wait_exit(&mut self) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send signal `sig` (`libc::SIGKILL`, `libc::SIGTERM`, ...) to `pid`, a process the test
/// started or a child of one; fails the test if there is no such process.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) touches no memory of ours.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", std::io::Error::last_os_error());
}

/// Is a process with this pid still alive (and not a zombie)?
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// Children of `pid`, from every one of its threads (tokio spawns from worker threads).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        if let Ok(children) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
    }
    out
}

/// All descendants of `pid`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for c in children_of(p) {
            if !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

/// Poll until `cond` holds or `WAIT` passes.
pub fn eventually(what: &str, cond: impl Fn() -> bool) {
    eventually_within(what, WAIT, cond);
}

/// Poll until `cond` holds or `limit` passes.
pub fn eventually_within(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting until {what}");
}

/// A gateway serving network fronts only (`--no-stdio`), killed on drop.
pub struct Server {
    pub child: Child,
    pub stderr_path: PathBuf,
    pub http: Option<String>,
    pub ws: Option<String>,
}

impl Server {
    /// `vmcp start --no-stdio` with the given front flags (e.g. `--http 127.0.0.1:0`); waits
    /// until each requested front logs its address.
    pub fn start(home: &Path, fronts: &[&str]) -> Self {
        let stderr_path = home.join(format!("server-{}.stderr", std::process::id() ^ rand_u32()));
        let args: Vec<&str> = ["start", "--no-stdio"].iter().chain(fronts).copied().collect();
        let child = logged(home, &args, &stderr_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn vmcp");
        let mut s = Server { child, stderr_path, http: None, ws: None };
        let want_http = fronts.contains(&"--http");
        let want_ws = fronts.contains(&"--ws");
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let log = s.stderr();
            if s.http.is_none() && want_http {
                s.http = after(&log, "Streamable HTTP front on http://")
                    .map(|a| a.split('/').next().unwrap().to_owned());
            }
            if s.ws.is_none() && want_ws {
                s.ws = after(&log, "WebSocket front on ws://").map(|a| a.trim_end_matches('/').to_owned());
            }
            if (s.http.is_some() || !want_http)
                && (s.ws.is_some() || !want_ws)
                && log.contains("servers ready")
            {
                return s;
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("vmcp exited early ({status}):\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("vmcp did not come up:\n{}", s.stderr());
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.http.as_deref().expect("http front"))
    }

    /// The HTTP front's origin (`http://ADDR`), for its other paths (`/sse`, `/messages`).
    pub fn base(&self) -> String {
        format!("http://{}", self.http.as_deref().expect("http front"))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stop it as an operator would (SIGTERM) and wait until it has exited, successfully: its
    /// logs are complete then (the audit log's writer thread is flushed on shutdown).
    pub fn stop(&mut self) {
        signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for vmcp") {
                break status;
            }
            assert!(Instant::now() < deadline, "vmcp did not stop on SIGTERM:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "vmcp stopped with {status}:\n{}", self.stderr());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let i = text.find(marker)? + marker.len();
    text[i..].split_whitespace().next()
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now()) as u32
}

/// The `_meta` every modern (2026-07-28) request carries: the version and empty capabilities.
pub fn modern_meta() -> Value {
    json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} })
}
