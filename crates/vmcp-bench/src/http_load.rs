//! The HTTP side of the load tool: legacy Streamable HTTP sessions (`initialize`, then
//! `Mcp-Session-Id` on every POST) over keep-alive connections, and the closed-loop load that
//! keeps one request in flight per session.
//!
//! All of it runs on the caller's (single-threaded) runtime; the client's cost per request is the
//! same on both paths of a comparison, so it cancels out of the overhead.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use hdrhistogram::Histogram;
use tokio::time::Instant;
use vmcp_protocol::message;

use crate::envelope::{self, Kind};
use crate::report::record;
use crate::server::Stretch;
use crate::workload::Workload;

const VERSION: &str = "2025-11-25";

/// A keep-alive HTTP client: each session has its own, so it holds exactly one connection (one
/// request in flight at a time), like an independent MCP client would.
fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(300))
        .build()
        .context("cannot build an HTTP client")
}

/// What went wrong with one HTTP exchange.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
    #[error("no answer to request {0} in the reply")]
    NoAnswer(u64),
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
}

/// One legacy session on an MCP endpoint, with its own keep-alive connection.
pub struct Session<'a> {
    client: reqwest::Client,
    url: &'a str,
    id: String,
}

impl<'a> Session<'a> {
    /// `initialize` (legacy), then `notifications/initialized`.
    pub async fn open(url: &'a str, timeout: Duration) -> Result<Self, HttpError> {
        let client = client(timeout).map_err(|e| HttpError::Client(format!("{e:#}")))?;
        let params = format!(
            r#"{{"protocolVersion":"{VERSION}","capabilities":{{}},"clientInfo":{{"name":"vmcp-bench","version":"{}"}}}}"#,
            env!("CARGO_PKG_VERSION")
        );
        let resp = post(&client, url, None, message::request("0", "initialize", Some(&params))).await?;
        let id = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_default();
        let session = Self { client, url, id };
        answer(resp, 0).await?;
        let note = message::notification("notifications/initialized", None);
        let resp = post(&session.client, url, Some(&session.id), note).await?;
        let _ = resp.bytes().await;
        Ok(session)
    }

    /// Send one request line (with id `id`) and return the kind of the answer.
    pub async fn request(&self, id: u64, line: String) -> Result<Kind, HttpError> {
        let resp = post(&self.client, self.url, Some(&self.id), line).await?;
        answer(resp, id).await
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    body: String,
) -> Result<reqwest::Response, HttpError> {
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", VERSION);
    if let Some(s) = session.filter(|s| !s.is_empty()) {
        req = req.header("mcp-session-id", s);
    }
    let resp = req.body(body).send().await?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        let body = resp.text().await.unwrap_or_default();
        return Err(HttpError::Status { status, body: body.chars().take(300).collect() });
    }
    Ok(resp)
}

/// The kind of the answer to `id` in a JSON or SSE reply body.
async fn answer(resp: reqwest::Response, id: u64) -> Result<Kind, HttpError> {
    let sse = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"));
    let body = resp.bytes().await?;
    let lines: Box<dyn Iterator<Item = &[u8]>> = if sse {
        Box::new(body.split(|&b| b == b'\n').filter_map(|l| l.strip_prefix(b"data:")))
    } else {
        Box::new(std::iter::once(&body[..]))
    };
    for line in lines {
        let env = envelope::scan(line.trim_ascii());
        if matches!(env.kind, Kind::Result | Kind::Error) && env.id == Some(id) {
            return Ok(env.kind);
        }
    }
    Err(HttpError::NoAnswer(id))
}

/// Open `n` sessions at once; how each attempt went.
pub async fn open_each(url: &str, n: usize, timeout: Duration) -> Vec<Result<Session<'_>, HttpError>> {
    futures_util::future::join_all((0..n).map(|_| Session::open(url, timeout))).await
}

/// Open `n` sessions at once; fails on the first that cannot be opened.
pub async fn open_all(url: &str, n: usize, timeout: Duration) -> anyhow::Result<Vec<Session<'_>>> {
    open_each(url, n, timeout)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot open a session on {url}"))
}

/// The closed loop of one session: request numbers are taken from `next` until `count` are
/// taken, one request in flight at a time; `each` gets every call's outcome and when it was sent,
/// and ends the loop by returning an error.
pub async fn closed_loop(
    session: &Session<'_>,
    work: &Workload,
    next: &Cell<u64>,
    count: u64,
    mut each: impl FnMut(Result<Kind, HttpError>, Instant) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    loop {
        let n = next.get();
        if n >= count {
            return Ok(());
        }
        next.set(n + 1);
        let id = n + 1;
        let sent = Instant::now();
        each(session.request(id, work.line(id)).await, sent)?;
    }
}

/// Run `count` requests of the workload, one in flight per session, recording each latency
/// (nanoseconds) into `hist` when given. `label` names the path in errors.
pub async fn drive(
    label: &str,
    sessions: &[Session<'_>],
    work: &Workload,
    count: u64,
    hist: Option<&mut Histogram<u64>>,
) -> anyhow::Result<Stretch> {
    let next = Cell::new(0u64);
    let hist = RefCell::new(hist);
    let stretch = RefCell::new(Stretch::default());
    let started = Instant::now();
    let workers = sessions.iter().map(|s| {
        let (hist, stretch) = (&hist, &stretch);
        closed_loop(s, work, &next, count, move |outcome, sent| {
            let kind = outcome.map_err(|e| anyhow!("{label}: {e}"))?;
            if let Some(h) = hist.borrow_mut().as_deref_mut() {
                record(h, sent);
            }
            let mut st = stretch.borrow_mut();
            st.completed += 1;
            if kind == Kind::Error {
                st.errors += 1;
                if !work.allow_errors {
                    bail!("{label} answered a `{}` request with an error", work.method());
                }
            }
            Ok(())
        })
    });
    futures_util::future::try_join_all(workers).await?;
    let mut stretch = stretch.into_inner();
    stretch.elapsed = started.elapsed();
    Ok(stretch)
}
