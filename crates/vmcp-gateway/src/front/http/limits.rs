//! Connection limits and drain for the network listeners (HTTP and WebSocket).
//!
//! `Limited` wraps a `TcpListener`: each accepted connection holds a permit for as long as it is
//! open (an upgraded WebSocket included). Past `max_connections`, a new connection is answered
//! `503 Service Unavailable` with `Retry-After` and closed, never queued. On shutdown the permits
//! tell when every connection is gone (`Drain::wait`), and streams that belong to no request
//! (the Streamable HTTP GET stream) end at once so they do not hold the drain to its deadline.
//!
//! Invariants: the number of open connections never exceeds the limit; refusing costs a bounded
//! number of short-lived tasks (at most `MAX_REFUSING`, each bounded by `REFUSE_TIMEOUT`).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Refusals in progress at once; past it an excess connection is dropped without an answer.
const MAX_REFUSING: usize = 64;
/// How long a refusal may take (read the request head, write the 503, wait for the close).
const REFUSE_TIMEOUT: Duration = Duration::from_secs(2);
const REFUSAL_BODY: &str = "too many connections; retry in a moment\n";

fn refusal() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
         retry-after: 1\r\nconnection: close\r\n\r\n{REFUSAL_BODY}",
        REFUSAL_BODY.len()
    )
}

/// A listener that serves at most `max` connections at once.
pub(crate) struct Limited {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    front: &'static str,
    max: usize,
    last_warning: Option<Instant>,
}

impl Limited {
    pub(crate) fn new(listener: TcpListener, max: usize, front: &'static str) -> (Self, Drain) {
        let permits = Arc::new(Semaphore::new(max));
        let drain = Drain { permits: permits.clone(), max };
        let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
        (Self { listener, permits, refusing, front, max, last_warning: None }, drain)
    }

    fn refuse(&mut self, io: TcpStream, peer: SocketAddr) {
        if self.last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            self.last_warning = Some(Instant::now());
            tracing::warn!(%peer, "{}: {} connections open, the limit; refusing new ones with 503", self.front, self.max);
        }
        let Ok(permit) = self.refusing.clone().try_acquire_owned() else { return };
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REFUSE_TIMEOUT, answer_503(io)).await;
            drop(permit);
        });
    }
}

/// Read the request head (so closing does not reset the connection), answer 503, close.
async fn answer_503(mut io: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(500), io.read(&mut buf)).await;
    io.write_all(refusal().as_bytes()).await?;
    io.shutdown().await?;
    while io.read(&mut buf).await? > 0 {}
    Ok(())
}

impl axum::serve::Listener for Limited {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Counted, SocketAddr) {
        loop {
            let (io, peer) = match self.listener.accept().await {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!("{}: accept failed: {e}", self.front);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    let _ = io.set_nodelay(true);
                    return (Counted { io, _permit: permit }, peer);
                }
                Err(_) => self.refuse(io, peer),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Waits until every connection of a `Limited` listener is closed.
pub(crate) struct Drain {
    permits: Arc<Semaphore>,
    max: usize,
}

impl Drain {
    /// Returns once no connection is open (the caller bounds it with its grace period).
    pub(crate) async fn wait(&self) {
        let _ = self.permits.acquire_many(self.max as u32).await;
    }
}

/// A connection that counts against the limit until it is dropped.
pub(crate) struct Counted {
    io: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The Streamable HTTP GET stream (it answers no request) ends when `stop` fires, so a draining
/// gateway is not held until its deadline by idle listeners; the client resumes elsewhere with
/// `Last-Event-ID`. Streams answering a POST run until their request is done, and so does the
/// legacy `/sse` stream, which carries the answers of its POSTs.
pub(crate) fn end_get_stream_on_stop(resp: Response, stop: &CancellationToken) -> Response {
    let is_stream = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !is_stream {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let stream = body.into_data_stream().take_until(stop.clone().cancelled_owned());
    Response::from_parts(parts, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;

    #[tokio::test]
    async fn past_the_limit_a_connection_gets_503_and_a_freed_slot_is_reused() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let (mut limited, drain) = Limited::new(tcp, 1, "test");
        let first = TcpStream::connect(addr).await.unwrap();
        let (held, _) = limited.accept().await;

        let mut second = TcpStream::connect(addr).await.unwrap();
        let accepting = tokio::spawn(async move {
            let conn = limited.accept().await;
            (limited, conn)
        });
        second.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        second.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(answer.contains("retry-after: 1"), "{answer}");
        assert!(
            answer.ends_with(&format!(
                "content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{REFUSAL_BODY}",
                REFUSAL_BODY.len()
            )),
            "{answer}"
        );

        drop((first, held)); // frees the slot
        let _third = TcpStream::connect(addr).await.unwrap();
        let (_limited, (_conn, _)) = accepting.await.unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(50), drain.wait()).await.is_err(), "one is open");
    }
}
