//! The audit log, `logs/audit.log`: one JSON object per line for every denied request, every
//! failed authentication and every change to personas or keys.
//!
//! Each line is written with a single `write` on a file opened with `O_APPEND`, so lines from
//! concurrent writers (the gateway and CLI processes) never interleave. The command line writes
//! its line at once ([`AuditLog::record`]); the gateway hands lines to a writer thread
//! ([`AuditWriter`]) so that a flood of refusals never becomes file IO on the async runtime.
//! Invariant: no secret is ever written: a key appears only as its public id, a bearer token or
//! JWT never.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;
use vmcp_config::Home;

use crate::error::IoContext;
use crate::rules::Denied;
use crate::{PersonaError, timestamp};

/// What one audit line records. Every variant gets `time` (RFC 3339 UTC) and `event`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditEvent<'a> {
    /// A request refused by policy (3002 / 3003).
    Denied {
        /// Who called: `local`, a peer address, or `token:<id>` / `jwt:<sub>`.
        caller: &'a str,
        persona: &'a str,
        /// The JSON-RPC method, e.g. `tools/call`.
        method: &'a str,
        server: &'a str,
        /// The tool or prompt name, resource URI or template; empty for server-level methods.
        name: &'a str,
        decision: Decision,
        reason: Reason,
    },
    /// A request refused before any persona was known (401).
    AuthFailed {
        caller: &'a str,
        /// `missing`, `unknown_key`, `expired_key`, `unknown_persona`, `jwt_expired`, ... never
        /// the credential.
        reason: &'a str,
    },
    /// A persona or one of its keys changed.
    Changed {
        /// Who made the change: `cli` for the command line.
        who: &'a str,
        persona: &'a str,
        /// `create`, `delete`, `enable`, `disable`, `allow`, `deny`, `token_create`, ...
        action: &'a str,
        /// What changed, e.g. `files:read_* (tool)` or a key id; never a key.
        detail: &'a str,
    },
    /// Lines the gateway could not write because its writer fell behind (more than
    /// [`QUEUE_BYTES`] waiting) or the file refused them (a full disk): written once the writer
    /// has caught up and can write again.
    Dropped { count: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    ServerNotAllowed,
    NotPermitted,
}

impl From<Denied> for Reason {
    fn from(d: Denied) -> Self {
        match d {
            Denied::ServerNotAllowed => Reason::ServerNotAllowed,
            Denied::NotPermitted => Reason::NotPermitted,
        }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    #[serde(flatten)]
    event: &'a AuditEvent<'a>,
}

/// One audit line for `event`, stamped with the current time, newline included.
fn line(event: &AuditEvent<'_>) -> serde_json::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(&Line { time: timestamp::now(), event })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// An open audit log, written at once: what the command line uses. The gateway wraps it in an
/// [`AuditWriter`].
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
}

impl AuditLog {
    /// Open (creating `logs/` and the file, mode 0600) `logs/audit.log` of `home` for appending.
    pub fn open(home: &Home) -> Result<Self, PersonaError> {
        Self::open_at(&home.logs_dir().join("audit.log"))
    }

    pub fn open_at(path: &Path) -> Result<Self, PersonaError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).at(path)?;
        Ok(Self { path: path.to_owned(), file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one line for `event`, stamped with the current time.
    pub fn record(&self, event: &AuditEvent<'_>) -> Result<(), PersonaError> {
        let bytes = line(event).map_err(|e| PersonaError::io(&self.path, e.into()))?;
        self.append(&bytes)
    }

    /// Append whole lines with one `write`: with O_APPEND the kernel places the whole buffer at
    /// the end at once.
    fn append(&self, bytes: &[u8]) -> Result<(), PersonaError> {
        let written = self.write_once(bytes).at(&self.path)?;
        if written != bytes.len() {
            return Err(PersonaError::io(&self.path, std::io::Error::other("short write to the audit log")));
        }
        Ok(())
    }

    /// One `write` of `bytes` at the end of the file: how many bytes it took (fewer than given
    /// only if the disk filled up or the file reached its size limit mid-write).
    fn write_once(&self, bytes: &[u8]) -> std::io::Result<usize> {
        (&self.file).write(bytes)
    }
}

/// How many bytes of lines may wait for the writer thread. Past it a line is not queued but
/// counted, and an [`AuditEvent::Dropped`] line with the count is written once the writer has
/// caught up: memory stays bounded when the disk is slower than a flood of refusals, and the
/// loss is never silent.
pub const QUEUE_BYTES: usize = 4 << 20;

/// What the writer thread writes per `write` at most (a line longer than this goes alone).
const BATCH_BYTES: usize = 256 << 10;

/// How long [`AuditWriter::flush`] waits when it is dropped.
const DROP_FLUSH: Duration = Duration::from_secs(2);

enum Msg {
    Line(Vec<u8>),
    /// Answered once every line sent before it has been written.
    Flush(mpsc::SyncSender<()>),
}

/// The gateway's audit log: [`AuditWriter::record`] serializes the line on the caller's thread
/// and queues it (bounded: [`QUEUE_BYTES`]); one dedicated thread appends what is queued, in
/// order, a batch of whole lines per `write`. [`AuditWriter::flush`] (also run when it is
/// dropped) waits until everything queued is in the file.
pub struct AuditWriter {
    path: PathBuf,
    tx: mpsc::Sender<Msg>,
    queued: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    budget: usize,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter").field("path", &self.path).finish_non_exhaustive()
    }
}

impl AuditWriter {
    /// Start the writer thread for `log`.
    pub fn start(log: AuditLog) -> std::io::Result<Self> {
        let path = log.path.clone();
        Self::spawn(path, QUEUE_BYTES, move |bytes| log.write_once(bytes))
    }

    /// A writer thread that hands each batch to `sink` (one `write`: how many bytes it took), with
    /// at most `budget` bytes queued.
    fn spawn(
        path: PathBuf,
        budget: usize,
        sink: impl FnMut(&[u8]) -> std::io::Result<usize> + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let (q, d) = (queued.clone(), dropped.clone());
        let at = path.clone();
        std::thread::Builder::new()
            .name("vmcp-audit".into())
            .spawn(move || write_queued(&at, &rx, &q, &d, sink))?;
        Ok(Self { path, tx, queued, dropped, budget })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queue one line for `event`, stamped with the current time. Never waits for the disk; a
    /// line that does not fit in the queue is counted and reported (see [`QUEUE_BYTES`]). Fails
    /// only if the line cannot be serialized or the writer thread is gone.
    pub fn record(&self, event: &AuditEvent<'_>) -> Result<(), PersonaError> {
        let bytes = line(event).map_err(|e| PersonaError::io(&self.path, e.into()))?;
        let len = bytes.len();
        if self.queued.fetch_add(len, Ordering::AcqRel) + len > self.budget {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        self.tx.send(Msg::Line(bytes)).map_err(|_| {
            PersonaError::io(&self.path, std::io::Error::other("the audit log's writer thread has stopped"))
        })
    }

    /// Wait (at most `within`) until every line queued before this call is in the file; false
    /// (and a warning) if that did not happen in time.
    pub fn flush(&self, within: Duration) -> bool {
        let (ack, done) = mpsc::sync_channel(1);
        let flushed = self.tx.send(Msg::Flush(ack)).is_ok() && done.recv_timeout(within).is_ok();
        if !flushed {
            tracing::warn!("the audit log's last lines may be missing: its writer did not finish in time");
        }
        flushed
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        self.flush(DROP_FLUSH);
    }
}

/// The writer thread: take what is queued, a batch at a time, and append it; runs until every
/// [`AuditWriter`] handle is gone.
fn write_queued(
    path: &Path,
    rx: &mpsc::Receiver<Msg>,
    queued: &AtomicUsize,
    dropped: &AtomicU64,
    mut sink: impl FnMut(&[u8]) -> std::io::Result<usize>,
) {
    let mut batch = Vec::new();
    let mut acks = Vec::new();
    let mut failing = false;
    // A write cut short left part of a line at the end of the file: the next one ends it first.
    let mut torn = false;
    while let Ok(first) = rx.recv() {
        // The lines in `batch`, counting those an `AuditEvent::Dropped` line in it stands for.
        let mut count = 0u64;
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Line(l) => {
                    queued.fetch_sub(l.len(), Ordering::AcqRel);
                    batch.extend_from_slice(&l);
                    count += 1;
                }
                Msg::Flush(ack) => acks.push(ack),
            }
            next = if batch.len() < BATCH_BYTES { rx.try_recv().ok() } else { None };
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            if !failing {
                tracing::warn!("the audit log fell behind: {lost} line(s) were not written");
            }
            batch.extend(line(&AuditEvent::Dropped { count: lost }).unwrap_or_default());
            count += lost;
        }
        if !batch.is_empty() {
            let newline = usize::from(torn);
            if torn {
                batch.insert(0, b'\n');
            }
            let written = sink(&batch).and_then(|n| {
                // What reached the file beyond the newline is a line of its own, maybe partial.
                if n > newline {
                    torn = n < batch.len();
                } else if n == newline {
                    torn = false;
                }
                if n == batch.len() { Ok(()) } else { Err(std::io::Error::other("short write")) }
            });
            match written {
                Ok(()) => failing = false,
                Err(e) => {
                    // Not silent either: the next `dropped` line counts them.
                    dropped.fetch_add(count, Ordering::Relaxed);
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!("cannot write the audit log {}: {e}", path.display());
                    }
                }
            }
            batch.clear();
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

#[cfg(test)]
#[path = "audit/tests.rs"]
mod tests;
