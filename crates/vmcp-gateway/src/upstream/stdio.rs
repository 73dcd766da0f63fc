//! The stdio transport toward a backend: a child process, a writer task that owns its stdin, a
//! reader task for its stdout, a task that logs its stderr, and a supervisor that owns the child.
//!
//! Invariants: stdout carries protocol only (a non-JSON line is logged and skipped); each stderr
//! line goes to the gateway log tagged with the server id; when the process goes, every request
//! in flight fails at once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::process::{ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;
use vmcp_config::Transport;
use vmcp_protocol::{ErrorCode, Frame, LineCodec, Message, RpcError, message};

use super::child::{self, ChildSpec};
use super::{Options, Status, Upstream};

/// Spawn the process and its tasks. Errors are reasons for `Status::Failed`.
pub(super) fn connect(up: &Arc<Upstream>, rx: mpsc::Receiver<String>, opts: &Options) -> Result<(), String> {
    let Transport::Stdio { command, args, cwd } = &up.spec.transport else {
        return Err("not a stdio server".into());
    };
    let env = child::child_env(&up.spec.environment, vmcp_config::secrets::lookup)?;
    let limits = child::Limits::from_resilience(up.spec.resilience.as_ref())?;
    let spec = ChildSpec { command: command.clone(), args: args.clone(), cwd: cwd.clone(), env, limits };
    let mut process = child::spawn(&spec).map_err(|e| format!("cannot run `{command}`: {e}"))?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (process.stdin.take(), process.stdout.take(), process.stderr.take())
    else {
        return Err("child has no piped stdio".into());
    };
    tracing::debug!(server = %up.spec.id, pid = process.id(), "spawned");
    up.pid.store(process.id().unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
    tokio::spawn(write_loop(up.clone(), stdin, rx));
    tokio::spawn(log_stderr(up.clone(), stderr));
    let (done_tx, done_rx) = oneshot::channel();
    tokio::spawn(read_loop(up.clone(), stdout, opts.max_message_size, opts.clone(), done_tx));
    tokio::spawn(supervise(up.clone(), process, done_rx, opts.clone()));
    Ok(())
}

async fn write_loop(up: Arc<Upstream>, stdin: ChildStdin, mut rx: mpsc::Receiver<String>) {
    let mut out = BufWriter::with_capacity(64 * 1024, stdin);
    loop {
        let line = tokio::select! {
            line = rx.recv() => line,
            _ = up.stop.cancelled() => None,
        };
        let Some(line) = line else { break };
        if out.write_all(line.as_bytes()).await.is_err() {
            break;
        }
        // Coalesce whatever else is queued into the same flush, once the tasks that are ready
        // to run (other requests to this server) have queued their lines too.
        crate::upstream::after_ready_tasks().await;
        while let Ok(more) = rx.try_recv() {
            if out.write_all(more.as_bytes()).await.is_err() {
                return;
            }
        }
        if out.flush().await.is_err() {
            break;
        }
    }
    // Dropping stdin closes it: the first step of an orderly stop.
}

async fn read_loop(
    up: Arc<Upstream>,
    stdout: ChildStdout,
    max: usize,
    opts: Options,
    done: oneshot::Sender<()>,
) {
    let mut frames = FramedRead::with_capacity(stdout, LineCodec::new(max), 64 * 1024);
    while let Some(frame) = frames.next().await {
        match frame {
            Ok(Frame::Line(line)) => match Message::parse(&line) {
                Ok(msg) => super::deliver(&up, msg, &opts),
                Err(e) => tracing::warn!(
                    server = %up.spec.id,
                    "server wrote a line that is not JSON-RPC to stdout ({e}): {}",
                    preview(&line)
                ),
            },
            Ok(Frame::TooLarge { len, head }) => {
                tracing::warn!(server = %up.spec.id, "server sent a message of {len} bytes, over the limit of {max}; dropped");
                // An answer that was dropped still ends its request, at once and with the reason.
                if let Some(id) = message::peek_id(&head) {
                    let e = RpcError::new(
                        ErrorCode::InternalError,
                        format!("the server's answer of {len} bytes is over max_message_size ({max} bytes)"),
                    );
                    if let Ok(msg) =
                        Message::parse(message::error_response(Some(id), &e.to_json()).as_bytes())
                    {
                        super::deliver(&up, msg, &opts);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(server = %up.spec.id, "reading stdout failed: {e}");
                break;
            }
        }
    }
    let _ = done.send(());
}

async fn log_stderr(up: Arc<Upstream>, stderr: ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "vmcp::server", server = %up.spec.id, "{line}");
        if !line.trim().is_empty() {
            *up.last_stderr.lock().unwrap_or_else(|p| p.into_inner()) = Some(preview(line.as_bytes()));
        }
    }
}

async fn supervise(
    up: Arc<Upstream>,
    mut process: tokio::process::Child,
    reader_done: oneshot::Receiver<()>,
    opts: Options,
) {
    let pgid = process.id();
    let exit = tokio::select! {
        status = process.wait() => Some(status),
        _ = up.stop.cancelled() => None,
    };
    let status = match exit {
        Some(status) => {
            // Let the reader drain what the process wrote before it died (bounded: a grandchild
            // may keep stdout open).
            let _ = tokio::time::timeout(Duration::from_secs(1), reader_done).await;
            let code = match status {
                Ok(s) => s.to_string(),
                Err(e) => format!("wait failed: {e}"),
            };
            let reason = match up.last_stderr() {
                Some(last) => format!("process exited ({code}); last stderr line: {last}"),
                None => format!("process exited ({code})"),
            };
            if let Some(pgid) = pgid {
                child::signal_group(pgid, libc::SIGKILL);
                super::reaper::untrack(pgid);
            }
            match up.status() {
                Status::Starting => Status::Failed(reason),
                _ => Status::Exited(reason),
            }
        }
        None => {
            child::stop(process, opts.shutdown_grace).await;
            match up.status() {
                Status::Failed(r) => Status::Failed(r),
                _ => Status::Stopped,
            }
        }
    };
    up.pending.fail_all();
    // End the writer too: it holds the child's stdin and a reference to this upstream, and
    // would otherwise wait forever on a queue nobody writes to (one leaked pipe per restart).
    up.stop.cancel();
    if let Status::Exited(reason) | Status::Failed(reason) = &status
        && !matches!(up.status(), Status::Failed(_))
    {
        tracing::warn!(server = %up.spec.id, "{reason}");
    }
    up.set_status(status, &opts);
    up.gone.send_replace(true);
}

fn preview(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}
