//! The network benchmarks: `http-compare` (tools/call over Streamable HTTP, straight to the fast
//! HTTP backend and through vMCP's HTTP front with that backend mounted over HTTP), `sessions`
//! (many legacy sessions at once through vMCP) and `idle-memory` (the gateway's resident memory
//! with two backends mounted).
//!
//! Every run starts its own backend (`vmcp-bench serve-http`, a child of this process) and its
//! own `vmcp start` with a throwaway `VMCP_HOME`, and stops them at the end.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::compare::{Comparison, measure, vmcp_start};
use crate::envelope::Kind;
use crate::http_load::{self, HttpError, Session};
use crate::procs::{self, Proc, Stream};
use crate::report::Summary;
use crate::server::{Servers, Spawn};
use crate::workload::Workload;

/// What every network run needs.
pub struct Setup<'a> {
    pub vmcp: &'a Path,
    pub home: &'a Path,
    pub startup_timeout: Duration,
}

/// The HTTP backend, on a free loopback port; returns it and its URL.
pub async fn start_backend(tools: usize, timeout: Duration) -> anyhow::Result<(Proc, String)> {
    let me = std::env::current_exe().context("cannot locate vmcp-bench itself")?;
    let argv = [me.display().to_string(), "serve-http".into(), "--tools".into(), tools.to_string()];
    Proc::start("http backend", &argv, &[], Stream::Stdout, "listening on", timeout).await
}

/// `vmcp start --http 127.0.0.1:0 --no-stdio` on `home`; returns it and its MCP URL.
async fn start_gateway(setup: &Setup<'_>) -> anyhow::Result<(Proc, String)> {
    let (argv, env) = vmcp_start(setup.vmcp, setup.home, &["--http", "127.0.0.1:0", "--no-stdio"]);
    Proc::start("vMCP", &argv, &env, Stream::Stderr, "Streamable HTTP front on", setup.startup_timeout).await
}

/// `registry/servers.json` (and `config/vmcp.toml` when given) in `home`.
pub fn write_home(home: &Path, servers: Value, toml: Option<&str>) -> anyhow::Result<()> {
    let registry = json!({ "version": "1.0.0", "servers": servers });
    for (rel, text) in [
        ("registry/servers.json", Some(serde_json::to_string_pretty(&registry)?)),
        ("config/vmcp.toml", toml.map(str::to_owned)),
    ] {
        let Some(text) = text else { continue };
        let path = home.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn http_server(id: &str, url: &str) -> Value {
    json!({ "id": id, "transport": "http", "url": url, "prefix": "", "era": "legacy" })
}

/// tools/call over Streamable HTTP, direct and through vMCP, `concurrency` sessions per side.
pub async fn compare(work: &Workload, setup: &Setup<'_>, rounds: u32) -> anyhow::Result<Comparison> {
    let (backend, backend_url) = start_backend(0, setup.startup_timeout).await?;
    write_home(setup.home, json!([http_server("bench", &backend_url)]), None)?;
    let (gateway, gateway_url) = start_gateway(setup).await?;
    let pids = (gateway.pid(), backend.pid());
    let result = compare_on(work, &backend_url, &gateway_url, rounds, pids).await;
    gateway.stop().await;
    backend.stop().await;
    result
}

async fn compare_on(
    work: &Workload,
    direct_url: &str,
    vmcp_url: &str,
    rounds: u32,
    (gateway, backend): (Option<u32>, Option<u32>),
) -> anyhow::Result<Comparison> {
    let direct = http_load::open_all(direct_url, work.concurrency, work.timeout).await?;
    let through = http_load::open_all(vmcp_url, work.concurrency, work.timeout).await?;
    eprintln!("vmcp-bench: {} sessions open on each side", work.concurrency);
    let sides = [("direct", &direct), ("vMCP", &through)];
    for (label, sessions) in sides {
        http_load::drive(label, &sessions[..1], work, 1, None)
            .await
            .with_context(|| format!("the first `{}` request to `{label}` failed", work.method()))?;
        http_load::drive(label, sessions, work, work.warmup, None).await?;
    }
    // One backend serves both sides.
    measure(work.requests, rounds, gateway, [backend, backend], async |side, slice, hist| {
        let (label, sessions) = sides[side];
        http_load::drive(label, sessions, work, slice, Some(hist)).await
    })
    .await
}

/// The outcome of the many-sessions run.
pub struct SessionsOutcome {
    pub asked: usize,
    pub opened: usize,
    pub open_failures: Vec<String>,
    pub open_secs: f64,
    pub calls: Summary,
    pub call_errors: u64,
    pub first_call_error: Option<String>,
    /// What one session past `max_sessions` got.
    pub past_limit: String,
}

/// Open `sessions` legacy sessions through vMCP at once (its `max_sessions` set to exactly that),
/// then make `calls` tools/call through every one of them concurrently; finally try one more.
pub async fn sessions(
    work: &Workload,
    setup: &Setup<'_>,
    sessions: usize,
    calls: u64,
) -> anyhow::Result<SessionsOutcome> {
    let (backend, backend_url) = start_backend(0, setup.startup_timeout).await?;
    let toml = format!("[gateway.transports.http]\nmax_sessions = {sessions}\n");
    write_home(setup.home, json!([http_server("bench", &backend_url)]), Some(&toml))?;
    let (gateway, url) = start_gateway(setup).await?;
    let result = sessions_on(work, &url, sessions, calls).await;
    gateway.stop().await;
    backend.stop().await;
    result
}

async fn sessions_on(work: &Workload, url: &str, n: usize, calls: u64) -> anyhow::Result<SessionsOutcome> {
    let started = Instant::now();
    let opened = http_load::open_each(url, n, work.timeout).await;
    let open_secs = started.elapsed().as_secs_f64();
    let mut open_failures = Vec::new();
    let mut live = Vec::new();
    for o in opened {
        match o {
            Ok(s) => live.push(s),
            Err(e) => open_failures.push(e.to_string()),
        }
    }
    // Every session makes `calls` calls (its own count), all sessions at once; a failed call is
    // counted and the first one's reason kept, and the session goes on.
    let summary = RefCell::new(Summary::new());
    let (call_errors, first_call_error) = (Cell::new(0), RefCell::new(None));
    let started = Instant::now();
    let per_session = live.iter().map(|s| {
        let (summary, call_errors, first_call_error) = (&summary, &call_errors, &first_call_error);
        async move {
            let next = Cell::new(0);
            http_load::closed_loop(s, work, &next, calls, |outcome, sent| {
                match outcome {
                    Ok(Kind::Result) => crate::report::record(&mut summary.borrow_mut().hist, sent),
                    failed => {
                        call_errors.set(call_errors.get() + 1);
                        first_call_error.borrow_mut().get_or_insert_with(|| match failed {
                            Err(e) => e.to_string(),
                            Ok(kind) => format!("answered with {kind:?}"),
                        });
                    }
                }
                Ok(())
            })
            .await
        }
    });
    futures_util::future::try_join_all(per_session).await?;
    let (mut summary, call_errors) = (summary.into_inner(), call_errors.get());
    let first_call_error = first_call_error.into_inner();
    summary.completed = summary.hist.len();
    summary.errors = call_errors;
    summary.elapsed = started.elapsed();
    let past_limit = match Session::open(url, work.timeout).await {
        Ok(_) => "accepted (no limit reached)".to_owned(),
        Err(HttpError::Status { status, body }) => format!("HTTP {status} {}", body.trim()),
        Err(e) => format!("failed: {e}"),
    };
    Ok(SessionsOutcome {
        asked: n,
        opened: live.len(),
        open_failures,
        open_secs,
        calls: summary,
        call_errors,
        first_call_error,
        past_limit,
    })
}

/// The many-sessions table.
pub fn sessions_table(o: &SessionsOutcome, calls: u64) -> String {
    let mut out = String::from(
        "| sessions opened | open time s | calls ok | p50 µs | p90 µs | p99 µs | max µs | calls/s | one session past max_sessions |\n\
         |--:|--:|--:|--:|--:|--:|--:|--:|---|\n",
    );
    let asked_calls = o.opened as u64 * calls;
    let _ = writeln!(
        out,
        "| {}/{} | {:.2} | {}/{} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {} |",
        o.opened,
        o.asked,
        o.open_secs,
        o.calls.completed,
        asked_calls,
        o.calls.us(0.5),
        o.calls.us(0.9),
        o.calls.us(0.99),
        o.calls.max_us(),
        o.calls.throughput(),
        o.past_limit.replace('|', "\\|"),
    );
    if let Some(first) = o.open_failures.first() {
        let _ =
            writeln!(out, "\nwarning: {} sessions failed to open; the first: {first}", o.open_failures.len());
    }
    if o.call_errors > 0 {
        let first = o.first_call_error.as_deref().unwrap_or("?");
        let _ = writeln!(out, "\nwarning: {} calls failed; the first: {first}", o.call_errors);
    }
    out
}

/// Resident memory of an idle `vmcp start` (stdio and HTTP fronts) with two backends mounted:
/// `fixture` over stdio and the fast HTTP backend over HTTP.
pub async fn idle_memory(
    work: &Workload,
    setup: &Setup<'_>,
    fixture: &[String],
    settle: Duration,
    servers: &mut Servers,
) -> anyhow::Result<String> {
    procs::require_proc()?;
    let (backend, backend_url) = start_backend(0, setup.startup_timeout).await?;
    let fixture = crate::compare::resolve_command(fixture)?;
    let (program, args) = fixture.split_first().context("no fixture command given")?;
    let stdio = json!({ "id": "fixture", "command": program, "args": args, "prefix": "" });
    write_home(setup.home, json!([stdio, http_server("http", &backend_url)]), None)?;
    let (command, env) = vmcp_start(setup.vmcp, setup.home, &["--http", "127.0.0.1:0"]);
    let index =
        servers.spawn(&Spawn { label: "vMCP".into(), command, env, show_stderr: work.show_stderr })?;
    let gw = servers.get(index);
    gw.handshake(setup.startup_timeout).await?;
    // Both backends must be mounted: `tools/list` names the tool of each (the fixture's `echo`
    // and the backend's `echo` collide, so the second is `http__echo`).
    let list = gw.call("tools/list", None, work.timeout).await?;
    anyhow::ensure!(list.contains("\"http__echo\""), "the HTTP backend is not mounted: {list:.300}");
    anyhow::ensure!(list.contains("\"whoami\""), "the stdio fixture is not mounted: {list:.300}");
    tokio::time::sleep(settle).await;
    let pid = gw.pid().context("vMCP exited")?;
    let mut out = String::from("| process | VmRSS MiB | VmHWM MiB |\n|---|--:|--:|\n");
    let (rss, hwm) = procs::rss_kib(pid)?;
    let mib = |k: u64| k as f64 / 1024.0;
    let _ = writeln!(out, "| vmcp (gateway, idle) | {:.1} | {:.1} |", mib(rss), mib(hwm));
    for child in procs::children(pid) {
        let (rss, hwm) = procs::rss_kib(child)?;
        let _ = writeln!(out, "| child: {} | {:.1} | {:.1} |", procs::cmdline(child), mib(rss), mib(hwm));
    }
    if let Some(bpid) = backend.pid() {
        let (rss, hwm) = procs::rss_kib(bpid)?;
        let _ = writeln!(out, "| (not vMCP's) HTTP backend | {:.1} | {:.1} |", mib(rss), mib(hwm));
    }
    backend.stop().await;
    Ok(out)
}
