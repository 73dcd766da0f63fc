//! The first subscribe to a URI at a replica, and the sessions that join it while it is out.
//!
//! The backend is an in-process legacy WebSocket server that holds the first
//! `resources/subscribe` until the test opens a gate, then refuses it; later ones take. The
//! sessions' `acquire`s are futures the test polls itself, so the interleaving is exact: a
//! session that joined the first subscribe is woken by its failure but not run before the next
//! session subscribes.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

use super::*;

const URI: &str = "test://r";
const WAIT: Duration = Duration::from_secs(10);

/// What the backend got and the gate on its first subscribe.
struct Backend {
    url: String,
    /// `resources/subscribe` and `resources/unsubscribe` requests, in order.
    seen: Arc<Mutex<Vec<String>>>,
    /// Sent when the first subscribe has arrived (and is held).
    first_in: mpsc::Receiver<()>,
    /// Opening it lets the backend refuse the first subscribe.
    gate: Option<oneshot::Sender<()>>,
}

impl Backend {
    async fn start() -> Self {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", tcp.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (first_tx, first_in) = mpsc::channel(1);
        let (gate, gate_rx) = oneshot::channel();
        let log = seen.clone();
        tokio::spawn(async move {
            let (tcp, _) = tcp.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_hdr_async(tcp, mcp).await.unwrap();
            let mut gate = Some((first_tx, gate_rx));
            while let Some(Ok(frame)) = ws.next().await {
                let Frame::Text(text) = frame else { continue };
                let msg: Value = serde_json::from_str(&text).unwrap();
                let (Some(id), Some(method)) = (msg.get("id"), msg["method"].as_str()) else { continue };
                let answer = match method {
                    "initialize" => json!({ "result": {
                        "protocolVersion": msg["params"]["protocolVersion"],
                        "capabilities": { "resources": { "subscribe": true } },
                        "serverInfo": { "name": "backend", "version": "0" } } }),
                    "resources/list" => json!({ "result": { "resources": [] } }),
                    "resources/templates/list" => json!({ "result": { "resourceTemplates": [] } }),
                    "resources/subscribe" | "resources/unsubscribe" => {
                        log.lock().unwrap().push(format!("{method} {}", msg["params"]["uri"]));
                        match gate.take() {
                            Some((first_in, open)) if method == "resources/subscribe" => {
                                first_in.send(()).await.unwrap();
                                let _ = open.await;
                                json!({ "error": { "code": -32603, "message": "not now" } })
                            }
                            held => {
                                gate = gate.or(held);
                                json!({ "result": {} })
                            }
                        }
                    }
                    _ => json!({ "result": {} }),
                };
                let mut answer = answer;
                answer["jsonrpc"] = json!("2.0");
                answer["id"] = id.clone();
                if ws.send(Frame::text(answer.to_string())).await.is_err() {
                    break;
                }
            }
        });
        Backend { url, seen, first_in, gate: Some(gate) }
    }

    fn subscribes(&self) -> usize {
        self.seen.lock().unwrap().iter().filter(|m| m.starts_with("resources/subscribe")).count()
    }

    /// Wait (with a deadline) until the backend holds the first subscribe.
    async fn first_subscribe_held(&mut self) {
        tokio::time::timeout(WAIT, self.first_in.recv()).await.expect("the first subscribe never came");
    }

    fn open_gate(&mut self) {
        self.gate.take().unwrap().send(()).unwrap();
    }
}

/// The handshake answer names the subprotocol vMCP asks for.
#[allow(clippy::result_large_err)] // tungstenite's `Callback` signature
fn mcp(_: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    resp.headers_mut().insert("sec-websocket-protocol", "mcp".parse().unwrap());
    Ok(resp)
}

/// A gateway with `s` mounted (the backend, one replica), ready.
async fn gateway(backend: &Backend) -> (Arc<Gateway>, Arc<Mounted>) {
    let servers =
        json!({ "servers": [{ "id": "s", "transport": "websocket", "url": backend.url, "era": "legacy" }] });
    let spec = vmcp_config::ServersFile::parse(std::path::Path::new("servers.json"), &servers.to_string())
        .unwrap()
        .servers
        .remove(0);
    let gw = Gateway::start(vmcp_config::GatewayConfig::default(), vec![spec]);
    gw.wait_ready(WAIT).await;
    let m = gw.mounts().get("s").cloned().expect("s is mounted");
    assert!(m.up().is_ready(), "the backend is ready");
    (gw, m)
}

/// Poll `f` once.
async fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
    let mut f = Some(f);
    std::future::poll_fn(|cx| Poll::Ready(f.take().unwrap().poll(cx))).await
}

/// (session, replica) of every session counted on `URI` at `s`, and the counts per replica.
type Table = (Vec<(u64, usize)>, Vec<(usize, usize)>);

fn table(gw: &Gateway) -> Table {
    let held = held(gw);
    let mut sessions: Vec<_> = held.by_session.iter().map(|((s, _, _), r)| (*s, *r)).collect();
    let mut counts: Vec<_> = held.counts.iter().map(|((_, r, _), n)| (*r, *n)).collect();
    sessions.sort();
    counts.sort();
    (sessions, counts)
}

/// A and B subscribe; A's subscribe at the backend is the first and is out when B joins it. The
/// backend refuses it. Before B runs again, C subscribes: C must not be counted on the failed
/// subscription (told it is subscribed although nothing was made): it makes its own.
#[tokio::test]
async fn a_session_subscribing_after_the_first_subscribe_failed_is_not_counted_on_it() {
    let mut backend = Backend::start().await;
    let (gw, m) = gateway(&backend).await;
    let mut a = pin!(acquire(&gw, 1, &m, URI));
    let mut b = pin!(acquire(&gw, 2, &m, URI));
    assert!(poll_once(a.as_mut()).await.is_pending());
    backend.first_subscribe_held().await;
    assert!(poll_once(b.as_mut()).await.is_pending(), "B joins A's subscribe");
    assert_eq!(table(&gw).1, [(0, 2)]);

    backend.open_gate();
    let a = a.await;
    assert!(a.as_ref().is_err_and(|e| e.message.contains("refused")), "{:?}", a.err());
    // B is woken but has not run: C subscribes now.
    let c = acquire(&gw, 3, &m, URI).await;
    assert!(c.is_ok(), "{:?}", c.err());
    assert_eq!(backend.subscribes(), 2, "C's subscription was made at the backend");
    let b = b.await;
    assert!(b.as_ref().is_err_and(|e| e.message.contains("refused")), "B shares A's failure: {:?}", b.ok());
    assert_eq!(table(&gw), (vec![(3, 0)], vec![(0, 1)]), "only C counts");

    // C's is the live one: its release ends it at the backend.
    release(&gw, 3, &m, URI);
    assert_eq!(table(&gw), (vec![], vec![]));
    let deadline = Instant::now() + WAIT;
    while !backend.seen.lock().unwrap().iter().any(|m| m.starts_with("resources/unsubscribe")) {
        assert!(Instant::now() < deadline, "no unsubscribe at the backend");
        tokio::task::yield_now().await;
    }
}

/// The first session's request is cancelled (its future dropped) while its subscribe is out and
/// a second session has joined it: the second gets the error, and a third subscribes afresh
/// instead of waiting on (or being refused by) a subscribe no one is making any more.
#[tokio::test]
async fn a_cancelled_first_subscribe_leaves_nothing_behind() {
    let mut backend = Backend::start().await;
    let (gw, m) = gateway(&backend).await;
    let mut a = Box::pin(acquire(&gw, 1, &m, URI));
    let mut b = pin!(acquire(&gw, 2, &m, URI));
    assert!(poll_once(a.as_mut()).await.is_pending());
    backend.first_subscribe_held().await;
    assert!(poll_once(b.as_mut()).await.is_pending(), "B joins A's subscribe");
    drop(a);
    assert_eq!(table(&gw), (vec![], vec![]), "a cancelled first subscribe leaves no count behind");
    let b = b.await;
    assert!(b.is_err(), "B shares A's fate: {:?}", b.ok());

    backend.open_gate();
    let c = acquire(&gw, 3, &m, URI).await;
    assert!(c.is_ok(), "{:?}", c.err());
    assert_eq!(backend.subscribes(), 2, "C's subscription was made at the backend");
    assert_eq!(table(&gw), (vec![(3, 0)], vec![(0, 1)]));
}
