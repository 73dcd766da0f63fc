//! One MCP server under test, spoken to over its stdin/stdout: spawn, handshake, the pipelined
//! load loop, and shutdown.
//!
//! Everything happens on the caller's task: one loop writes queued request lines and reads
//! response lines from the same pipe pair, so keeping C requests outstanding costs no
//! cross-thread hand-off on the client side.
//!
//! Invariants: a request that outlives the timeout, a server that closes its stdout or stops
//! reading its stdin, ends the run with an error that names the server and quotes its last
//! stderr lines; every child is killed when its `Server` is dropped (and `Servers::shutdown`
//! first gives it a chance to exit cleanly on stdin EOF).

use std::collections::BTreeMap;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::time::Instant;
use vmcp_protocol::{Message, message};

use crate::child::{self, StderrTail};
use crate::envelope::{self, Kind};
use crate::workload::Workload;

/// How long a server may take to exit after its stdin closes before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);
const READ_CHUNK: usize = 64 * 1024;

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Spawn {
    /// Name used in tables and errors (`direct`, `vMCP`).
    pub label: String,
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub show_stderr: bool,
}

/// A running server and the client's side of its pipes.
pub struct Server {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    stderr: StderrTail,
    /// Bytes read and not yet taken as lines start at `rstart`.
    rbuf: Vec<u8>,
    rstart: usize,
    /// Where the newline search resumes.
    scanned: usize,
    /// Bytes queued for stdin; `wpos` of them are written.
    wbuf: Vec<u8>,
    wpos: usize,
    next_id: u64,
}

/// The outcome of one measured (or warm-up) stretch of the load loop.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stretch {
    pub completed: u64,
    /// Answers that were JSON-RPC errors.
    pub errors: u64,
    pub elapsed: Duration,
}

enum Pumped {
    Progress,
    TimedOut,
}

impl Server {
    pub fn spawn(spec: &Spawn) -> anyhow::Result<Self> {
        let mut child = child::spawn(&spec.label, &spec.command, &spec.env, Stdio::piped())?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            bail!("`{}` has no piped stdio", spec.label);
        };
        let echo = spec.show_stderr.then(|| spec.label.clone());
        let stderr = StderrTail::watch(stderr, move |line| {
            if let Some(label) = &echo {
                eprintln!("[{label}] {line}");
            }
        });
        Ok(Self {
            label: spec.label.clone(),
            child,
            stdin: Some(stdin),
            stdout,
            stderr,
            rbuf: Vec::with_capacity(READ_CHUNK),
            rstart: 0,
            scanned: 0,
            wbuf: Vec::with_capacity(4096),
            wpos: 0,
            next_id: 0,
        })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Ready the connection for `work`: the legacy handshake, or nothing for a modern workload
    /// (each request carries its version). Returns the protocol version in use.
    pub async fn open(&mut self, work: &Workload) -> anyhow::Result<String> {
        if work.modern {
            return Ok(format!("{}, modern: no handshake", vmcp_protocol::version::MODERN));
        }
        self.handshake(work.startup_timeout).await
    }

    /// The legacy handshake: `initialize`, then `notifications/initialized`. Returns the
    /// protocol version the server chose.
    pub async fn handshake(&mut self, timeout: Duration) -> anyhow::Result<String> {
        let params = format!(
            r#"{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"vmcp-bench","version":"{}"}}}}"#,
            env!("CARGO_PKG_VERSION")
        );
        let result = self.call("initialize", Some(&params), timeout).await.context("initialize failed")?;
        let version = vmcp_protocol::splice::get(&result, "protocolVersion")
            .and_then(vmcp_protocol::splice::as_str)
            .map(|v| v.into_owned())
            .unwrap_or_default();
        let mut line = message::notification("notifications/initialized", None);
        line.push('\n');
        self.wbuf.extend_from_slice(line.as_bytes());
        Ok(version)
    }

    /// Send one request of the workload and check that it succeeds, so that a run never measures
    /// a stream of errors (an unknown tool, a server not ready).
    pub async fn probe(&mut self, work: &Workload) -> anyhow::Result<()> {
        let id = self.take_id();
        let line = work.line(id);
        self.call_line(id, &line, work.timeout)
            .await
            .map(drop)
            .with_context(|| format!("the first `{}` request to `{}` failed", work.method(), self.label))
    }

    /// One request, waited for; returns the raw result text or the error object as an error.
    pub async fn call(
        &mut self,
        method: &str,
        params: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let id = self.take_id();
        let mut line = message::request(&id.to_string(), method, params);
        line.push('\n');
        self.call_line(id, &line, timeout).await
    }

    async fn call_line(&mut self, id: u64, line: &str, timeout: Duration) -> anyhow::Result<String> {
        self.wbuf.extend_from_slice(line.as_bytes());
        let deadline = Instant::now() + timeout;
        loop {
            if let Pumped::TimedOut = self.pump(Some(deadline)).await? {
                return Err(self.failure(format!("gave no answer within {timeout:?}")).await);
            }
            while let Some(range) = self.take_line() {
                let line = &self.rbuf[range];
                let env = envelope::scan(line);
                match env.kind {
                    Kind::Result | Kind::Error if env.id == Some(id) => {
                        let msg = Message::parse(line).map_err(|e| anyhow!("unreadable answer: {e}"))?;
                        return match (msg.result, msg.error) {
                            (Some(r), _) => Ok(r.get().to_owned()),
                            (None, Some(e)) => Err(anyhow!("the server answered with an error: {}", e.get())),
                            _ => Err(anyhow!("empty answer")),
                        };
                    }
                    Kind::Request => answer_server_request(line, &mut self.wbuf),
                    _ => {}
                }
            }
        }
    }

    /// Run `count` requests of the workload with `work.concurrency` of them outstanding at once,
    /// recording each latency (nanoseconds) into `hist` when given.
    pub async fn drive(
        &mut self,
        work: &Workload,
        count: u64,
        mut hist: Option<&mut Histogram<u64>>,
    ) -> anyhow::Result<Stretch> {
        // Request id -> when it was queued; ids grow, so the first entry is the oldest.
        let mut outstanding: BTreeMap<u64, Instant> = BTreeMap::new();
        let mut stretch = Stretch::default();
        let mut sent = 0u64;
        let started = Instant::now();
        while stretch.completed < count {
            while sent < count && outstanding.len() < work.concurrency {
                let id = self.take_id();
                self.wbuf.extend_from_slice(work.line(id).as_bytes());
                outstanding.insert(id, Instant::now());
                sent += 1;
            }
            let deadline = outstanding.first_key_value().map(|(_, t)| *t + work.timeout);
            if let Pumped::TimedOut = self.pump(deadline).await? {
                let id = outstanding.first_key_value().map_or(0, |(id, _)| *id);
                let why = format!("request {id} got no answer within {:?}", work.timeout);
                return Err(self.failure(why).await);
            }
            while let Some(range) = self.take_line() {
                let line = &self.rbuf[range];
                let env = envelope::scan(line);
                match env.kind {
                    Kind::Result | Kind::Error => {
                        let Some(queued) = env.id.and_then(|id| outstanding.remove(&id)) else { continue };
                        if let Some(h) = hist.as_deref_mut() {
                            crate::report::record(h, queued);
                        }
                        stretch.completed += 1;
                        if env.kind == Kind::Error {
                            stretch.errors += 1;
                            if !work.allow_errors {
                                bail!(
                                    "server `{}` answered a `{}` request with an error (pass --allow-errors to count them instead): {}",
                                    self.label,
                                    work.method(),
                                    preview(line)
                                );
                            }
                        }
                    }
                    Kind::Request => answer_server_request(line, &mut self.wbuf),
                    Kind::Notification | Kind::Unreadable => {}
                }
            }
        }
        stretch.elapsed = started.elapsed();
        Ok(stretch)
    }

    fn take_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Wait until some IO happens: queued bytes written, or bytes read. Fails when the server
    /// closes its stdout or stdin.
    async fn pump(&mut self, deadline: Option<Instant>) -> anyhow::Result<Pumped> {
        if self.rstart > 0 {
            self.rbuf.drain(..self.rstart);
            self.scanned -= self.rstart;
            self.rstart = 0;
        }
        self.rbuf.reserve(READ_CHUNK);
        let Some(stdin) = self.stdin.as_mut() else { bail!("`{}` is shut down", self.label) };
        let pending = &self.wbuf[self.wpos..];
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            read = self.stdout.read_buf(&mut self.rbuf) => match read {
                Ok(0) => Err(self.failure("closed its stdout".into()).await),
                Ok(_) => Ok(Pumped::Progress),
                Err(e) => Err(self.failure(format!("reading its stdout failed: {e}")).await),
            },
            written = stdin.write(pending), if !pending.is_empty() => match written {
                Ok(n) if n > 0 => {
                    self.wpos += n;
                    if self.wpos == self.wbuf.len() {
                        self.wbuf.clear();
                        self.wpos = 0;
                    }
                    Ok(Pumped::Progress)
                }
                Ok(_) => Err(self.failure("closed its stdin".into()).await),
                Err(e) => Err(self.failure(format!("writing to its stdin failed: {e}")).await),
            },
            () = sleep => Ok(Pumped::TimedOut),
        }
    }

    /// The next complete line in the read buffer, without its newline.
    fn take_line(&mut self) -> Option<std::ops::Range<usize>> {
        loop {
            let nl = self.rbuf[self.scanned..].iter().position(|&b| b == b'\n')? + self.scanned;
            let start = self.rstart;
            self.rstart = nl + 1;
            self.scanned = nl + 1;
            let end = if nl > start && self.rbuf[nl - 1] == b'\r' { nl - 1 } else { nl };
            if end > start {
                return Some(start..end);
            }
        }
    }

    /// An error naming this server, with how it ended (if it did) and its last stderr lines.
    async fn failure(&mut self, what: String) -> anyhow::Error {
        let ending = self.stderr.ending(&mut self.child).await;
        anyhow!("server `{}` {what}{ending}", self.label)
    }

    /// Close stdin (an MCP server's cue to exit), wait a little, then kill.
    pub async fn shutdown(mut self) -> Option<ExitStatus> {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = tokio::time::timeout(Duration::from_millis(200), stdin.shutdown()).await;
        }
        match tokio::time::timeout(EXIT_GRACE, self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = self.child.start_kill();
                self.child.wait().await.ok()
            }
        }
    }
}

/// The start of a line, for error messages.
fn preview(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(300)]);
    if line.len() > 300 { format!("{text}…") } else { text.into_owned() }
}

/// Answer a request from the server: `ping` gets `{}`, anything else "method not found" (the
/// bench declares no client capabilities).
fn answer_server_request(line: &[u8], out: &mut Vec<u8>) {
    let Ok(msg) = Message::parse(line) else { return };
    let Some(id) = msg.id.as_deref().map(|i| i.get()) else { return };
    let reply = match msg.method() {
        "ping" => message::response(id, "{}"),
        other => message::error_response(
            Some(id),
            &format!(r#"{{"code":-32601,"message":"vmcp-bench does not handle `{other}`"}}"#),
        ),
    };
    out.extend_from_slice(reply.as_bytes());
    out.push(b'\n');
}

/// The owner of every server a run starts: it outlives the run (even one cut short by Ctrl-C or
/// an error), so each child is stopped in order.
#[derive(Default)]
pub struct Servers {
    servers: Vec<Server>,
    /// Directories the servers read while they run (vMCP's home), removed after shutdown.
    dirs: Vec<tempfile::TempDir>,
}

impl Servers {
    /// Keep a directory until every server is stopped; returns its path.
    pub fn keep_dir(&mut self, dir: tempfile::TempDir) -> std::path::PathBuf {
        let path = dir.path().to_owned();
        self.dirs.push(dir);
        path
    }

    /// Spawn a server and keep it; returns its index.
    pub fn spawn(&mut self, spec: &Spawn) -> anyhow::Result<usize> {
        self.servers.push(Server::spawn(spec)?);
        Ok(self.servers.len() - 1)
    }

    pub fn get(&mut self, i: usize) -> &mut Server {
        &mut self.servers[i]
    }

    /// Stop every server; with `report`, say which ones exited unsuccessfully.
    pub async fn shutdown(self, report: bool) {
        for server in self.servers {
            let label = server.label.clone();
            if let Some(status) = server.shutdown().await
                && report
                && !status.success()
                && status.code().is_some()
            {
                eprintln!("vmcp-bench: server `{label}` exited with {status}");
            }
        }
    }
}
