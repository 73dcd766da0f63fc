//! Background processes of the network benchmarks: the HTTP backend and `vmcp start` serving
//! HTTP. Each announces its URL in a log line; the bench waits for that line (with a deadline),
//! keeps draining the stream so the process never blocks on a full pipe, and stops it in order
//! (SIGTERM, then SIGKILL after a grace period). A `Proc` dropped without `stop` is killed.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};

const TAIL: usize = 8;
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
    tail: Arc<Mutex<VecDeque<String>>>,
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
        let (program, args) = argv.split_first().ok_or_else(|| anyhow!("no command given"))?;
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(if matches!(stream, Stream::Stdout) { Stdio::piped() } else { Stdio::null() })
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot run `{program}` ({label})"))?;
        let stdin = child.stdin.take();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (found_tx, found_rx) = tokio::sync::oneshot::channel();
        let stderr = child.stderr.take().context("no piped stderr")?;
        match stream {
            Stream::Stderr => {
                tokio::spawn(drain(stderr, tail.clone(), Some((marker.to_owned(), found_tx))));
            }
            Stream::Stdout => {
                let stdout = child.stdout.take().context("no piped stdout")?;
                tokio::spawn(drain(stdout, Arc::new(Mutex::default()), Some((marker.to_owned(), found_tx))));
                tokio::spawn(drain(stderr, tail.clone(), None));
            }
        }
        let mut proc = Self { label: label.to_owned(), child, _stdin: stdin, tail };
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
        let status = match tokio::time::timeout(Duration::from_secs(1), self.child.wait()).await {
            Ok(Ok(s)) => format!(" (it exited: {s})"),
            _ => String::new(),
        };
        let tail: Vec<String> = self.tail.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
        anyhow!("`{}` {what}{status}; its last stderr lines:\n    {}", self.label, tail.join("\n    "))
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

/// Read lines until EOF, keeping the last ones; the first line that contains the marker sends
/// the `http://...` URL it holds.
async fn drain(
    stream: impl AsyncRead + Unpin,
    tail: Arc<Mutex<VecDeque<String>>>,
    mut wanted: Option<(String, tokio::sync::oneshot::Sender<String>)>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some((marker, _)) = &wanted
            && line.contains(marker.as_str())
            && let Some(url) = url_in(&line)
            && let Some((_, tx)) = wanted.take()
        {
            let _ = tx.send(url);
        }
        let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() == TAIL {
            t.pop_front();
        }
        t.push_back(line);
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
