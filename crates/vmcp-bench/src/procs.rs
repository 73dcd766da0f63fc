//! Background processes of the network benchmarks: the HTTP backend and `vmcp start` serving
//! HTTP. Each announces its URL in a log line; the bench waits for that line (with a deadline),
//! keeps draining the stream so the process never blocks on a full pipe, and stops it in order
//! (SIGTERM, then SIGKILL after a grace period). A `Proc` dropped without `stop` is killed.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::process::{Child, ChildStdin};
use tokio::sync::oneshot;

use crate::child::{self, StderrTail};

const GRACE: Duration = Duration::from_secs(5);

/// Which of the child's streams carries the announcement.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A running background process.
pub struct Proc {
    pub label: String,
    child: Child,
    /// Kept open: a backend exits when it closes.
    _stdin: Option<ChildStdin>,
    stderr: StderrTail,
}

impl Proc {
    /// Start `argv` and wait until a line of `stream` contains `marker`; returns the process and
    /// the URL that follows the marker's `http://` (the marker's own tail included).
    pub async fn start(
        label: &str,
        argv: &[String],
        env: &[(String, String)],
        stream: Stream,
        marker: &str,
        timeout: Duration,
    ) -> anyhow::Result<(Self, String)> {
        let stdout = if matches!(stream, Stream::Stdout) { Stdio::piped() } else { Stdio::null() };
        let mut child = child::spawn(label, argv, env, stdout)?;
        let stdin = child.stdin.take();
        let (found_tx, found_rx) = oneshot::channel();
        let announced = announcement(marker, found_tx);
        let stderr = child.stderr.take().context("no piped stderr")?;
        let stderr = match stream {
            Stream::Stderr => StderrTail::watch(stderr, announced),
            Stream::Stdout => {
                let stdout = child.stdout.take().context("no piped stdout")?;
                let mut announced = announced;
                tokio::spawn(child::each_line(stdout, move |line| announced(&line)));
                StderrTail::watch(stderr, |_| {})
            }
        };
        let mut proc = Self { label: label.to_owned(), child, _stdin: stdin, stderr };
        match tokio::time::timeout(timeout, found_rx).await {
            Ok(Ok(url)) => Ok((proc, url)),
            Ok(Err(_)) => Err(proc.failure(&format!("ended before saying `{marker}`")).await),
            Err(_) => Err(proc.failure(&format!("did not say `{marker}` within {timeout:?}")).await),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    async fn failure(&mut self, what: &str) -> anyhow::Error {
        let ending = self.stderr.ending(&mut self.child).await;
        anyhow!("`{}` {what}{ending}", self.label)
    }

    /// SIGTERM, then SIGKILL if it has not exited after the grace period.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        if tokio::time::timeout(GRACE, self.child.wait()).await.is_err() {
            eprintln!("vmcp-bench: `{}` ignored SIGTERM for {GRACE:?}; killing it", self.label);
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}

/// A line watcher that sends the `http://...` URL of the first line holding `marker`.
fn announcement(marker: &str, tx: oneshot::Sender<String>) -> impl FnMut(&str) + Send + 'static {
    let marker = marker.to_owned();
    let mut tx = Some(tx);
    move |line| {
        if tx.is_some()
            && line.contains(marker.as_str())
            && let Some(url) = url_in(line)
            && let Some(tx) = tx.take()
        {
            let _ = tx.send(url);
        }
    }
}

/// The first `http://...` in a log line, up to whitespace or a terminal escape.
fn url_in(line: &str) -> Option<String> {
    let start = line.find("http://")?;
    let url: String = line[start..].chars().take_while(|c| !c.is_whitespace() && *c != '\x1b').collect();
    Some(url)
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat`, in seconds.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at `state`, field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let (utime, stime): (u64, u64) = (fields.next()?.parse().ok()?, fields.next()?.parse().ok()?);
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (utime + stime) as f64 / ticks as f64)
}

/// Resident memory of a process from `/proc/PID/status`: (VmRSS, VmHWM) in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line =
            status.lines().find(|l| l.starts_with(name)).with_context(|| format!("no {name} for {pid}"))?;
        line.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("bad line `{line}`"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// The command line of a process, for tables.
pub fn cmdline(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let first = words.first().map(|w| w.rsplit('/').next().unwrap_or(w).to_owned()).unwrap_or_default();
    std::iter::once(first).chain(words.into_iter().skip(1)).collect::<Vec<_>>().join(" ")
}

/// Direct children of `pid` (from every thread: tokio spawns from worker threads).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(list.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Fail unless `/proc` is there (Linux).
pub fn require_proc() -> anyhow::Result<()> {
    if !std::path::Path::new("/proc/self/status").exists() {
        bail!("this measurement reads /proc (Linux only)");
    }
    Ok(())
}
