//! The stdio front: one client on the gateway's stdin/stdout, newline-delimited JSON.
//!
//! Invariants: stdout carries protocol messages only (logs go to stderr); a malformed or
//! oversized line gets an error and the connection keeps working; stdin EOF ends the session,
//! cancelling what it had in flight.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::codec::FramedRead;
use vmcp_protocol::{Frame, LineCodec, ParseError, message};

use crate::dispatch;
use crate::gateway::Gateway;
use crate::policy::Caller;
use crate::session::Session;

/// How many requests one client may have in flight before vMCP stops reading its input.
const MAX_IN_FLIGHT: usize = 1024;

/// The process's own stdin and stdout as async streams. When they are pipes or sockets (as when
/// a client spawns vMCP: Node's child processes get socket pairs, most others pipes) they are
/// polled by the reactor like any socket. Anything else (a terminal, a file) goes through
/// tokio's `stdin()`/`stdout()`, which hand every read and write to a blocking thread: a thread
/// hop per message, about 100 µs of latency on a busy machine.
pub fn process_stdio() -> (Box<dyn AsyncRead + Unpin + Send>, Box<dyn AsyncWrite + Unpin + Send>) {
    use std::os::fd::AsFd;
    let input: Box<dyn AsyncRead + Unpin + Send> =
        match std::io::stdin().as_fd().try_clone_to_owned().ok().and_then(|fd| async_fd::reader(fd)) {
            Some(r) => r,
            None => Box::new(tokio::io::stdin()),
        };
    let output: Box<dyn AsyncWrite + Unpin + Send> =
        match std::io::stdout().as_fd().try_clone_to_owned().ok().and_then(|fd| async_fd::writer(fd)) {
            Some(w) => w,
            None => Box::new(tokio::io::stdout()),
        };
    (input, output)
}

mod async_fd {
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::fs::FileTypeExt;

    use tokio::io::{AsyncRead, AsyncWrite};
    use tokio::net::unix::pipe;

    fn kind(fd: &OwnedFd) -> Option<std::fs::FileType> {
        let file = std::fs::File::from(fd.as_fd().try_clone_to_owned().ok()?);
        file.metadata().ok().map(|m| m.file_type())
    }

    /// A socket, made non-blocking for the reactor.
    fn socket(fd: OwnedFd) -> Option<tokio::net::UnixStream> {
        let std = std::os::unix::net::UnixStream::from(fd);
        std.set_nonblocking(true).ok()?;
        tokio::net::UnixStream::from_std(std).ok()
    }

    pub fn reader(fd: OwnedFd) -> Option<Box<dyn AsyncRead + Unpin + Send>> {
        let t = kind(&fd)?;
        if t.is_fifo() {
            pipe::Receiver::from_owned_fd(fd).ok().map(|r| Box::new(r) as _)
        } else if t.is_socket() {
            socket(fd).map(|s| Box::new(s) as _)
        } else {
            None
        }
    }

    pub fn writer(fd: OwnedFd) -> Option<Box<dyn AsyncWrite + Unpin + Send>> {
        let t = kind(&fd)?;
        if t.is_fifo() {
            pipe::Sender::from_owned_fd(fd).ok().map(|w| Box::new(w) as _)
        } else if t.is_socket() {
            socket(fd).map(|s| Box::new(s) as _)
        } else {
            None
        }
    }
}

/// Serve one client over the given streams until its input ends. Dropping the future (a signal
/// stopping `vmcp start`) closes the session at once: its requests are cancelled, its
/// subscriptions released.
///
/// The session runs as a task of the runtime rather than in the caller's future: `vmcp start`
/// awaits this from `block_on`, i.e. on the main thread, where every line cost two cross-thread
/// wake-ups (the worker's reactor waking the main thread to read the line, the main thread waking
/// the worker for the request it spawned).
pub async fn serve<R, W>(gw: Arc<Gateway>, caller: Caller, input: R, output: W)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut session = AbortOnDrop(tokio::spawn(run(gw, caller, input, output)));
    if let Err(e) = (&mut session.0).await
        && e.is_panic()
    {
        tracing::error!("the stdio session failed: {e}");
    }
}

/// A client's session, closed (in-flight requests cancelled, subscriptions released) when this
/// is dropped: at the end of `run`, or when its task is aborted.
struct Open {
    gw: Arc<Gateway>,
    session: Arc<Session>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.gw.close_session(&self.session);
    }
}

/// A task that ends when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run<R, W>(gw: Arc<Gateway>, caller: Caller, input: R, output: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<String>(1024);
    let open = Open { session: gw.open_session(caller, tx), gw: gw.clone() };
    let session = &open.session;
    let writer = tokio::spawn(write_loop(output, rx));
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let max = gw.cfg.max_message_size;
    let mut frames = FramedRead::with_capacity(input, LineCodec::new(max), 64 * 1024);
    while let Some(frame) = frames.next().await {
        let Ok(permit) = limit.clone().acquire_owned().await else { break };
        match frame {
            Ok(Frame::Line(line)) => dispatch::accept(&gw, session, &line, permit),
            Ok(Frame::TooLarge { len, head }) => {
                tracing::warn!(
                    session = session.id,
                    "client sent a message of {len} bytes, over the limit of {max}"
                );
                // Answer under the request's own id when its head shows it, so the client's
                // call fails at once instead of waiting.
                let e = ParseError::TooLarge { len, max }.to_rpc().to_json();
                session.send(message::error_response(message::peek_id(&head), &e)).await;
            }
            Err(e) => {
                tracing::warn!(session = session.id, "reading stdin failed: {e}");
                break;
            }
        }
    }
    tracing::debug!(session = session.id, "client closed its input");
    // Its output is still open: the requests it sent before closing its input (a script's
    // `printf ... | vmcp start`) are answered, within the shutdown grace; then the rest are
    // cancelled. Its listens, which would run until vMCP stops, end now with their result.
    session.close_input();
    let grace = Duration::from_secs_f64(gw.cfg.shutdown_grace_secs);
    if tokio::time::timeout(grace, limit.acquire_many(MAX_IN_FLIGHT as u32)).await.is_err() {
        tracing::warn!(
            session = session.id,
            "requests still running {grace:?} after the client closed its input; cancelling them"
        );
    }
    drop(open);
    let _ = writer.await;
}

async fn write_loop<W: AsyncWrite + Unpin>(output: W, mut rx: mpsc::Receiver<String>) {
    let mut out = BufWriter::with_capacity(64 * 1024, output);
    while let Some(line) = rx.recv().await {
        if write_line(&mut out, &line).await.is_err() {
            return;
        }
        crate::upstream::after_ready_tasks().await;
        while let Ok(more) = rx.try_recv() {
            if write_line(&mut out, &more).await.is_err() {
                return;
            }
        }
        if out.flush().await.is_err() {
            return;
        }
    }
}

async fn write_line<W: AsyncWrite + Unpin>(out: &mut W, line: &str) -> std::io::Result<()> {
    out.write_all(line.as_bytes()).await?;
    out.write_all(b"\n").await
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    use tokio::io::AsyncWrite;
    use tokio::sync::mpsc;

    /// An output that records the size of every write that reaches it.
    struct Recorder(Arc<Mutex<Vec<usize>>>);

    impl AsyncWrite for Recorder {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
            self.0.lock().unwrap().push(buf.len());
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A session whose `serve` is dropped (a signal stopping `vmcp start`) is closed, as one
    /// whose input ended: its requests in flight are cancelled and it leaves the gateway's table.
    /// Here a modern `subscriptions/listen`, which runs until cancelled, keeps the session alive
    /// unless the session is closed.
    #[tokio::test]
    async fn a_session_whose_serve_is_dropped_is_closed() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

        let gw = crate::gateway::Gateway::start(vmcp_config::GatewayConfig::default(), Vec::new());
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (input, output) = tokio::io::split(server);
        let serving =
            tokio::spawn(super::serve(gw.clone(), crate::policy::Caller::local_user(), input, output));
        let (from_gateway, mut to_gateway) = tokio::io::split(client);
        let meta = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
        let listen = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{{"notifications":{{}},"_meta":{meta}}}}}"#
        );
        to_gateway.write_all(format!("{listen}\n").as_bytes()).await.unwrap();
        let mut lines = BufReader::new(from_gateway).lines();
        let first = lines.next_line().await.unwrap().expect("the gateway answers");
        assert!(first.contains("notifications/subscriptions/acknowledged"), "{first}");
        assert_eq!(gw.sessions().len(), 1, "the listen holds the session open");

        serving.abort();
        assert!(serving.await.unwrap_err().is_cancelled());
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !gw.sessions().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "the session was never closed");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// While `initialize` waits for the servers to start, the client's input is still read: its
    /// answer to a request vMCP sent it (a backend asking for roots while it starts, say) is
    /// delivered at once instead of after `initialize` (which could wait for that very backend).
    /// The backend here never answers its own handshake, so `initialize` waits its full startup
    /// timeout (15 s); the answer must not.
    #[tokio::test]
    async fn the_clients_answers_are_read_while_initialize_waits_for_the_servers() {
        use tokio::io::AsyncWriteExt;

        let servers =
            serde_json::json!({ "servers": [{ "id": "mute", "command": "sleep", "args": ["600"] }] });
        let spec =
            vmcp_config::ServersFile::parse(std::path::Path::new("servers.json"), &servers.to_string())
                .unwrap()
                .servers
                .remove(0);
        let gw = crate::gateway::Gateway::start(vmcp_config::GatewayConfig::default(), vec![spec]);
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (input, output) = tokio::io::split(server);
        let serving =
            tokio::spawn(super::serve(gw.clone(), crate::policy::Caller::local_user(), input, output));
        let (_from_gateway, mut to_gateway) = tokio::io::split(client);
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{}},"clientInfo":{"name":"t","version":"1"}}}"#;
        to_gateway.write_all(format!("{init}\n").as_bytes()).await.unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let session = loop {
            if let Some(s) = gw.sessions().pop() {
                break s;
            }
            assert!(tokio::time::Instant::now() < deadline, "no session");
            tokio::task::yield_now().await;
        };
        let (asked, answer) = session.begin_outgoing();
        let reply = format!(r#"{{"jsonrpc":"2.0","id":{asked},"result":{{"roots":[]}}}}"#);
        to_gateway.write_all(format!("{reply}\n").as_bytes()).await.unwrap();
        let got = tokio::time::timeout_at(deadline, answer).await;
        assert!(got.is_ok_and(|m| m.is_ok()), "the answer was not read while initialize waited");
        serving.abort();
        gw.shutdown().await;
    }

    /// Answers that become ready together (a backend's batch completing many requests) reach the
    /// client in one write, i.e. one wake-up of the client, not one per answer. The runtime is
    /// `vmcp start`'s: one worker, where a task that wakes the writer would otherwise have it run
    /// right after itself (tokio's LIFO slot), with one line to write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_burst_of_answers_goes_out_in_one_write() {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>(64);
        let writer = tokio::spawn(super::write_loop(Recorder(writes.clone()), rx));
        let answers = tokio::spawn(async move {
            let sent: Vec<_> = (0..8)
                .map(|i| {
                    let tx = tx.clone();
                    tokio::spawn(async move { tx.send(format!(r#"{{"id":{i}}}"#)).await.unwrap() })
                })
                .collect();
            for s in sent {
                s.await.unwrap();
            }
        });
        answers.await.unwrap();
        writer.await.unwrap();
        let writes = writes.lock().unwrap().clone();
        assert_eq!(writes.iter().sum::<usize>(), 8 * 9, "every answer was written");
        assert_eq!(writes.len(), 1, "one write for the burst, not {writes:?}");
    }
}
