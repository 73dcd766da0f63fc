//! The first subscribe to a URI at a replica, and what happens while it is out: sessions that
//! join it, the last session leaving, the request being cancelled.
//!
//! The backend is an in-process WebSocket server (legacy or modern) that holds the first
//! `resources/subscribe` until the test opens a gate, then refuses it or takes it (as the test
//! says); later ones take. Like a backend behind HTTP, it keeps reading while it holds it, so a
//! request sent meanwhile (an unsubscribe) is handled first. A modern backend holds every
//! `subscriptions/listen` open without acknowledging it. The sessions' `acquire`s are futures
//! the test polls itself, so the interleaving is exact: a session that joined the first
//! subscribe is woken by its failure but not run before the next session subscribes.

use std::collections::BTreeSet;
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

/// How the backend answers the first `resources/subscribe`, once the gate opens; or
/// (`Unsubscribe`) that every subscribe takes at once and the first `resources/unsubscribe` is
/// the one held until the gate opens.
#[derive(Clone, Copy, PartialEq)]
enum First {
    Refuse,
    Take,
    Unsubscribe,
}

/// What the backend got and the gate on its first subscribe.
struct Backend {
    url: String,
    /// The requests and notifications it got, in order: `method detail` (a subscribe's URI, a
    /// listen's id, the id a `notifications/cancelled` names).
    seen: Arc<Mutex<Vec<String>>>,
    /// The URIs it holds a legacy subscription to now: a subscribe counts once answered, an
    /// unsubscribe as it arrives.
    subscribed: Arc<Mutex<BTreeSet<String>>>,
    /// Sent when the first subscribe (or listen, or unsubscribe) has arrived and is held.
    first_in: mpsc::Receiver<()>,
    /// Opening it lets the backend answer the first subscribe.
    gate: Option<oneshot::Sender<()>>,
}

impl Backend {
    /// A legacy backend that refuses the first subscribe.
    async fn start() -> Self {
        Self::with("legacy", First::Refuse).await
    }

    async fn with(era: &'static str, first: First) -> Self {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", tcp.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscribed = Arc::new(Mutex::new(BTreeSet::new()));
        let (first_tx, first_in) = mpsc::channel(1);
        let (gate, gate_rx) = oneshot::channel();
        let (log, subs) = (seen.clone(), subscribed.clone());
        tokio::spawn(async move {
            let (tcp, _) = tcp.accept().await.unwrap();
            let ws = tokio_tungstenite::accept_hdr_async(tcp, mcp).await.unwrap();
            let (mut sink, mut frames) = ws.split();
            let (out, mut outgoing) = mpsc::unbounded_channel::<Value>();
            tokio::spawn(async move {
                while let Some(v) = outgoing.recv().await {
                    if sink.send(Frame::text(v.to_string())).await.is_err() {
                        break;
                    }
                }
            });
            let answer = |id: &Value, mut v: Value| {
                v["jsonrpc"] = json!("2.0");
                v["id"] = id.clone();
                let _ = out.send(v);
            };
            let mut gate = Some((first_tx, gate_rx));
            while let Some(Ok(frame)) = frames.next().await {
                let Frame::Text(text) = frame else { continue };
                let msg: Value = serde_json::from_str(&text).unwrap();
                let Some(method) = msg["method"].as_str() else { continue };
                let params = &msg["params"];
                let Some(id) = msg.get("id") else {
                    if method == "notifications/cancelled" {
                        log.lock().unwrap().push(format!("{method} {}", params["requestId"]));
                    }
                    continue;
                };
                let reply = match method {
                    "initialize" => json!({ "result": {
                        "protocolVersion": params["protocolVersion"],
                        "capabilities": { "resources": { "subscribe": true } },
                        "serverInfo": { "name": "backend", "version": "0" } } }),
                    "server/discover" if era == "modern" => json!({ "result": {
                        "resultType": "complete",
                        "supportedVersions": ["2026-07-28"],
                        "capabilities": { "resources": { "subscribe": true } },
                        "serverInfo": { "name": "backend", "version": "0" } } }),
                    "server/discover" => json!({ "error": { "code": -32601, "message": "no such method" } }),
                    "resources/list" => json!({ "result": { "resources": [{ "uri": URI, "name": "r" }] } }),
                    "resources/templates/list" => json!({ "result": { "resourceTemplates": [] } }),
                    "subscriptions/listen" => {
                        // Held open, never acknowledged.
                        log.lock().unwrap().push(format!("{method} {id}"));
                        if let Some((first_in, _)) = gate.take() {
                            first_in.send(()).await.unwrap();
                        }
                        continue;
                    }
                    "resources/subscribe" => {
                        let uri = params["uri"].as_str().unwrap_or_default().to_owned();
                        log.lock().unwrap().push(format!("{method} {uri}"));
                        let held = gate.take_if(|_| first != First::Unsubscribe);
                        let Some((first_in, open)) = held else {
                            subs.lock().unwrap().insert(uri);
                            answer(id, json!({ "result": {} }));
                            continue;
                        };
                        first_in.send(()).await.unwrap();
                        // Answered later; meanwhile the loop reads on.
                        let (id, subs, out) = (id.clone(), subs.clone(), out.clone());
                        tokio::spawn(async move {
                            let _ = open.await;
                            let mut v = match first {
                                First::Refuse => json!({ "error": { "code": -32603, "message": "not now" } }),
                                First::Take | First::Unsubscribe => {
                                    subs.lock().unwrap().insert(uri);
                                    json!({ "result": {} })
                                }
                            };
                            v["jsonrpc"] = json!("2.0");
                            v["id"] = id;
                            let _ = out.send(v);
                        });
                        continue;
                    }
                    "resources/unsubscribe" => {
                        let uri = params["uri"].as_str().unwrap_or_default().to_owned();
                        log.lock().unwrap().push(format!("{method} {uri}"));
                        let Some((first_in, open)) = gate.take_if(|_| first == First::Unsubscribe) else {
                            subs.lock().unwrap().remove(&uri);
                            answer(id, json!({ "result": {} }));
                            continue;
                        };
                        first_in.send(()).await.unwrap();
                        // Applied and answered once the gate opens; meanwhile the loop reads on.
                        let (id, subs, out, log) = (id.clone(), subs.clone(), out.clone(), log.clone());
                        tokio::spawn(async move {
                            let _ = open.await;
                            subs.lock().unwrap().remove(&uri);
                            log.lock().unwrap().push(format!("answered resources/unsubscribe {uri}"));
                            let _ = out.send(json!({ "jsonrpc": "2.0", "id": id, "result": {} }));
                        });
                        continue;
                    }
                    _ => json!({ "result": {} }),
                };
                answer(id, reply);
            }
        });
        Backend { url, seen, subscribed, first_in, gate: Some(gate) }
    }

    fn subscribes(&self) -> usize {
        self.count("resources/subscribe")
    }

    /// How many of what it got start with `what`.
    fn count(&self, what: &str) -> usize {
        self.seen.lock().unwrap().iter().filter(|m| m.starts_with(what)).count()
    }

    /// Wait (with a deadline) until it got something starting with `what`.
    async fn got(&self, what: &str) {
        let deadline = Instant::now() + WAIT;
        while self.count(what) == 0 {
            assert!(
                Instant::now() < deadline,
                "the backend never got `{what}`: {:?}",
                self.seen.lock().unwrap()
            );
            tokio::task::yield_now().await;
        }
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

/// A gateway with `s` mounted (the legacy backend, one replica), ready.
async fn gateway(backend: &Backend) -> (Arc<Gateway>, Arc<Mounted>) {
    gateway_in(backend, "legacy").await
}

async fn gateway_in(backend: &Backend, era: &str) -> (Arc<Gateway>, Arc<Mounted>) {
    gateway_with(backend, json!({ "era": era })).await
}

/// A gateway with `s` mounted (the backend, one replica; more of its spec in `fields`), ready.
async fn gateway_with(backend: &Backend, fields: Value) -> (Arc<Gateway>, Arc<Mounted>) {
    let mut server = json!({ "id": "s", "transport": "websocket", "url": backend.url });
    server.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    let servers = json!({ "servers": [server] });
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

/// `first` (a session's first subscribe) polled until its subscribe or listen is held at the
/// backend: returned still out.
async fn held_out<F: Future>(backend: &mut Backend, first: F) -> Pin<Box<F>> {
    let mut first = Box::pin(first);
    assert!(poll_once(first.as_mut()).await.is_pending());
    backend.first_subscribe_held().await;
    first
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
    let mut sessions: Vec<_> = held.by_session.iter().map(|((s, _, _), c)| (*s, c.replica)).collect();
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
    let a = held_out(&mut backend, acquire(&gw, 1, 0, &m, URI)).await;
    let mut b = pin!(acquire(&gw, 2, 0, &m, URI));
    assert!(poll_once(b.as_mut()).await.is_pending(), "B joins A's subscribe");
    assert_eq!(table(&gw).1, [(0, 2)]);

    backend.open_gate();
    let a = a.await;
    assert!(a.as_ref().is_err_and(|e| e.message.contains("refused")), "{:?}", a.err());
    // B is woken but has not run: C subscribes now.
    let c = acquire(&gw, 3, 0, &m, URI).await;
    assert!(c.is_ok(), "{:?}", c.err());
    assert_eq!(backend.subscribes(), 2, "C's subscription was made at the backend");
    let b = b.await;
    assert!(b.as_ref().is_err_and(|e| e.message.contains("refused")), "B shares A's failure: {:?}", b.ok());
    assert_eq!(table(&gw), (vec![(3, 0)], vec![(0, 1)]), "only C counts");

    // C's is the live one: its release ends it at the backend.
    release(&gw, 3, &m, URI);
    assert_eq!(table(&gw), (vec![], vec![]));
    backend.got("resources/unsubscribe").await;
}

/// The first session's request is cancelled (its future dropped) while its subscribe is out and
/// a second session has joined it: the second gets the error, and a third subscribes afresh
/// instead of waiting on (or being refused by) a subscribe no one is making any more.
#[tokio::test]
async fn a_cancelled_first_subscribe_leaves_nothing_behind() {
    let mut backend = Backend::start().await;
    let (gw, m) = gateway(&backend).await;
    let a = held_out(&mut backend, acquire(&gw, 1, 0, &m, URI)).await;
    let mut b = pin!(acquire(&gw, 2, 0, &m, URI));
    assert!(poll_once(b.as_mut()).await.is_pending(), "B joins A's subscribe");
    drop(a);
    assert_eq!(table(&gw), (vec![], vec![]), "a cancelled first subscribe leaves no count behind");
    let b = b.await;
    assert!(b.is_err(), "B shares A's fate: {:?}", b.ok());

    backend.open_gate();
    let c = acquire(&gw, 3, 0, &m, URI).await;
    assert!(c.is_ok(), "{:?}", c.err());
    assert_eq!(backend.subscribes(), 2, "C's subscription was made at the backend");
    assert_eq!(table(&gw), (vec![(3, 0)], vec![(0, 1)]));
}

/// A modern backend: the first session's request is cancelled (its future dropped) while the
/// listen is out and not yet acknowledged. The listen ends at the backend (its request is
/// cancelled: over HTTP its stream closes) and nothing waits for its acknowledgement.
#[tokio::test]
async fn a_listen_cancelled_mid_setup_is_ended_at_the_backend() {
    let mut backend = Backend::with("modern", First::Take).await;
    let (gw, m) = gateway_in(&backend, "modern").await;
    assert_eq!(m.up().era(), Some(Era::Modern));
    let a = held_out(&mut backend, acquire(&gw, 1, 0, &m, URI)).await;
    let listen = backend
        .seen
        .lock()
        .unwrap()
        .iter()
        .find_map(|m| m.strip_prefix("subscriptions/listen ").map(str::to_owned));
    let listen = listen.expect("the backend got the listen");
    assert_eq!(held(&gw).acks.len(), 1, "the listen waits for its acknowledgement");

    drop(a);
    assert!(held(&gw).acks.is_empty(), "nothing waits for the acknowledgement of an abandoned listen");
    assert_eq!(table(&gw), (vec![], vec![]));
    backend.got(&format!("notifications/cancelled {listen}")).await;
    assert!(held(&gw).listens.is_empty() && held(&gw).pending.is_empty());
}

/// A legacy backend whose requests may be handled out of order (HTTP): the only session
/// unsubscribes while the first subscribe is still out. The unsubscribe must not overtake it:
/// the backend ends with no subscription, whether the subscribe then takes or not, and a session
/// subscribing in between is kept.
#[tokio::test]
async fn the_last_session_leaving_while_the_first_subscribe_is_out_leaves_no_subscription() {
    let mut backend = Backend::with("legacy", First::Take).await;
    let (gw, m) = gateway(&backend).await;
    let a = held_out(&mut backend, acquire(&gw, 1, 0, &m, URI)).await;

    release(&gw, 1, &m, URI);
    assert_eq!(table(&gw), (vec![], vec![]), "A no longer counts");
    // An unsubscribe would be sent by a task `release` spawned: let it run (this runtime has one
    // thread), then a round trip on the same connection shows whether it went out (the backend
    // reads on while it holds the subscribe, and handles what it reads in order).
    tokio::task::yield_now().await;
    let probe = m.up().request(m.up().next_id(), "ping", None, None, WAIT).await;
    assert!(probe.is_ok(), "{:?}", probe.err());
    assert_eq!(backend.count("resources/unsubscribe"), 0, "no unsubscribe before the subscribe is answered");

    backend.open_gate();
    let a = a.await;
    assert!(a.is_ok(), "A's subscribe took: {:?}", a.err());
    backend.got("resources/unsubscribe").await;
    assert!(backend.subscribed.lock().unwrap().is_empty(), "the backend holds no subscription");
    assert_eq!(table(&gw), (vec![], vec![]));
    assert!(held(&gw).pending.is_empty());
}

/// As above, but a second session subscribes after the first left and before the subscribe is
/// answered: it joins that subscribe (instead of making another that an unsubscribe could
/// race), is counted on it, and the backend keeps it.
#[tokio::test]
async fn a_session_subscribing_after_the_last_one_left_joins_the_subscribe_still_out() {
    let mut backend = Backend::with("legacy", First::Take).await;
    let (gw, m) = gateway(&backend).await;
    let a = held_out(&mut backend, acquire(&gw, 1, 0, &m, URI)).await;
    release(&gw, 1, &m, URI);
    let mut b = pin!(acquire(&gw, 2, 0, &m, URI));
    assert!(poll_once(b.as_mut()).await.is_pending(), "B joins the subscribe still out");

    backend.open_gate();
    assert!(a.await.is_ok());
    let b = b.await;
    assert!(b.is_ok(), "{:?}", b.err());
    assert_eq!(table(&gw), (vec![(2, 0)], vec![(0, 1)]), "only B counts");
    assert_eq!(backend.subscribes(), 1);
    assert_eq!(backend.count("resources/unsubscribe"), 0);
    assert_eq!(*backend.subscribed.lock().unwrap(), BTreeSet::from([URI.to_owned()]));

    release(&gw, 2, &m, URI);
    backend.got("resources/unsubscribe").await;
    assert!(backend.subscribed.lock().unwrap().is_empty());
}

/// A legacy backend applies a subscribe whose request vMCP cancelled (cancellation is only
/// advisory; behind HTTP the POST may already be handled): the only session's request is
/// cancelled while the first subscribe is out, then the backend takes it. vMCP awaits its answer
/// and ends it, so the backend holds no subscription that nothing counts.
#[tokio::test]
async fn a_cancelled_first_subscribe_the_backend_takes_anyway_is_ended() {
    let mut backend = Backend::with("legacy", First::Take).await;
    let (gw, m) = gateway(&backend).await;
    let a = held_out(&mut backend, acquire(&gw, 1, 0, &m, URI)).await;
    drop(a);
    assert_eq!(table(&gw), (vec![], vec![]), "a cancelled first subscribe leaves no count behind");

    backend.open_gate();
    backend.got("resources/unsubscribe").await;
    assert!(backend.subscribed.lock().unwrap().is_empty(), "the backend holds no subscription");
    assert_eq!(backend.subscribes(), 1);
    assert!(held(&gw).pending.is_empty());
}

/// As above, but a second session subscribes (and is answered) while the cancelled subscribe
/// is still out: when that one is answered, the subscription is counted, so it is kept.
#[tokio::test]
async fn a_cancelled_first_subscribe_answered_after_another_session_subscribed_is_kept() {
    let mut backend = Backend::with("legacy", First::Take).await;
    let (gw, m) = gateway(&backend).await;
    let up = m.up();
    let idle = Arc::strong_count(&up);
    let a = held_out(&mut backend, acquire(&gw, 1, 0, &m, URI)).await;
    drop(a);
    let b = acquire(&gw, 2, 0, &m, URI).await;
    assert!(b.is_ok(), "{:?}", b.err());

    backend.open_gate();
    // The task awaiting the cancelled subscribe's answer holds the connection until it is done.
    let deadline = Instant::now() + WAIT;
    while Arc::strong_count(&up) > idle {
        assert!(Instant::now() < deadline, "the cancelled subscribe is never done with");
        tokio::task::yield_now().await;
    }
    assert_eq!(backend.subscribes(), 2);
    assert_eq!(backend.count("resources/unsubscribe"), 0, "B counts on it");
    assert_eq!(*backend.subscribed.lock().unwrap(), BTreeSet::from([URI.to_owned()]));
    assert_eq!(table(&gw), (vec![(2, 0)], vec![(0, 1)]));

    release(&gw, 2, &m, URI);
    backend.got("resources/unsubscribe").await;
    assert!(backend.subscribed.lock().unwrap().is_empty());
}

/// A client's `resources/subscribe` through `handle`, as a session's request.
fn subscribe<'a>(
    gw: &'a Arc<Gateway>,
    session: &'a Arc<Session>,
) -> impl Future<Output = Result<Reply, RpcError>> + 'a {
    handle(gw, session, "resources/subscribe", Some(r#"{"uri":"test://r"}"#))
}

fn open_session(gw: &Gateway) -> Arc<Session> {
    gw.open_session(crate::policy::Caller::local_user(), mpsc::channel(16).0)
}

/// A session's subscribe request is cancelled (its future dropped) while its first subscribe is
/// out. The session must not go on listing the URI: when it subscribes again, that subscribe is
/// made at the backend and the session is counted on it (not told at once it is subscribed).
#[tokio::test]
async fn a_session_whose_subscribe_was_cancelled_subscribes_again_at_the_backend() {
    let mut backend = Backend::start().await;
    let (gw, _) = gateway(&backend).await;
    let session = open_session(&gw);
    let a = held_out(&mut backend, subscribe(&gw, &session)).await;
    drop(a);
    assert!(!session.is_subscribed(URI), "a cancelled subscribe leaves the session unsubscribed");
    assert_eq!(table(&gw), (vec![], vec![]));

    let again = subscribe(&gw, &session).await;
    assert!(again.is_ok(), "{:?}", again.err());
    assert_eq!(backend.subscribes(), 2, "the second subscribe was made at the backend");
    assert!(session.is_subscribed(URI));
    assert_eq!(table(&gw), (vec![(session.id, 0)], vec![(0, 1)]), "the session is counted on it");

    // Its end goes to the backend when the session closes.
    backend.open_gate();
    gw.close_session(&session);
    assert_eq!(table(&gw), (vec![], vec![]));
    backend.got("resources/unsubscribe").await;
}

/// A session's subscribe request joins another session's first subscribe and is cancelled while
/// that is out: the session is neither listed nor counted on it, and when the first one takes
/// and its session leaves, the backend subscription is ended (no count is left on it).
#[tokio::test]
async fn a_cancelled_subscribe_that_joined_the_first_leaves_no_count_behind() {
    // Not a session id the gateway hands out here.
    const A: u64 = 1000;
    let mut backend = Backend::with("legacy", First::Take).await;
    let (gw, m) = gateway(&backend).await;
    let a = held_out(&mut backend, acquire(&gw, A, 0, &m, URI)).await;
    let session = open_session(&gw);
    let mut b = Box::pin(subscribe(&gw, &session));
    assert!(poll_once(b.as_mut()).await.is_pending(), "B joins A's subscribe");
    assert_eq!(table(&gw).1, [(0, 2)]);
    drop(b);
    assert!(!session.is_subscribed(URI));
    assert_eq!(table(&gw), (vec![(A, 0)], vec![(0, 1)]), "only A counts");

    backend.open_gate();
    let a = a.await;
    assert!(a.is_ok(), "{:?}", a.err());
    assert_eq!(table(&gw), (vec![(A, 0)], vec![(0, 1)]));
    release(&gw, A, &m, URI);
    assert_eq!(table(&gw), (vec![], vec![]));
    backend.got("resources/unsubscribe").await;
    assert!(backend.subscribed.lock().unwrap().is_empty(), "the backend holds no subscription");
}

/// A client's `resources/unsubscribe` through `handle`, as a session's request.
async fn unsubscribe(gw: &Arc<Gateway>, session: &Arc<Session>) {
    let done = handle(gw, session, "resources/unsubscribe", Some(r#"{"uri":"test://r"}"#)).await;
    assert!(done.is_ok(), "{:?}", done.err());
}

/// A client pipelines subscribe (1), unsubscribe (2), subscribe (3). Its subscribe 1 joined
/// another session's first subscribe, which the backend refuses; 1 is woken but runs only after 2
/// and 3 are done (3 made its own subscription at the backend). 1's failure must undo 1 alone:
/// the session stays subscribed and counted through 3, and the backend subscription is kept.
#[tokio::test]
async fn a_late_failed_subscribe_does_not_undo_a_newer_one() {
    a_late_subscribe_undoes_only_itself(Late::Fails).await;
}

/// As above, but the client cancels 1 (its future is dropped) after 3 is done.
#[tokio::test]
async fn a_late_cancelled_subscribe_does_not_undo_a_newer_one() {
    a_late_subscribe_undoes_only_itself(Late::Cancelled).await;
}

/// How subscribe 1 ends in `a_late_subscribe_undoes_only_itself`.
enum Late {
    Fails,
    Cancelled,
}

async fn a_late_subscribe_undoes_only_itself(late: Late) {
    const X: u64 = 1000;
    let mut backend = Backend::start().await;
    let (gw, m) = gateway(&backend).await;
    let x = held_out(&mut backend, acquire(&gw, X, 0, &m, URI)).await;
    let session = open_session(&gw);
    let mut first = Box::pin(subscribe(&gw, &session));
    assert!(poll_once(first.as_mut()).await.is_pending(), "1 joins X's subscribe");

    backend.open_gate();
    assert!(x.await.is_err(), "the backend refused X's subscribe");
    unsubscribe(&gw, &session).await;
    let third = subscribe(&gw, &session).await;
    assert!(third.is_ok(), "{:?}", third.err());
    assert_eq!(backend.subscribes(), 2, "3 made its own subscription");

    match late {
        Late::Fails => assert!(first.await.is_err(), "1 shares X's refusal"),
        Late::Cancelled => drop(first),
    }
    assert!(session.is_subscribed(URI), "3 still holds the session's subscription");
    assert_eq!(table(&gw), (vec![(session.id, 0)], vec![(0, 1)]), "the session is counted through 3");
    // An unsubscribe would be sent by a task: let it run, then a round trip on the connection
    // shows whether it went out.
    tokio::task::yield_now().await;
    let probe = m.up().request(m.up().next_id(), "ping", None, None, WAIT).await;
    assert!(probe.is_ok(), "{:?}", probe.err());
    assert_eq!(backend.count("resources/unsubscribe"), 0, "the backend subscription is kept");
}

/// A legacy backend whose requests may be handled out of order (HTTP): the only session leaves,
/// and while the backend still holds that unsubscribe another session subscribes afresh. Its
/// subscribe must not overtake the unsubscribe (the backend would end unsubscribed while vMCP
/// counts the new session): it goes out once the unsubscribe is answered.
#[tokio::test]
async fn a_fresh_subscribe_waits_for_the_unsubscribe_before_it() {
    let mut backend = Backend::with("legacy", First::Unsubscribe).await;
    let (gw, m) = gateway(&backend).await;
    let a = acquire(&gw, 1, 0, &m, URI).await;
    assert!(a.is_ok(), "{:?}", a.err());
    release(&gw, 1, &m, URI);
    backend.first_subscribe_held().await;

    let mut b = pin!(acquire(&gw, 2, 0, &m, URI));
    assert!(poll_once(b.as_mut()).await.is_pending(), "B waits for the unsubscribe");
    let probe = m.up().request(m.up().next_id(), "ping", None, None, WAIT).await;
    assert!(probe.is_ok(), "{:?}", probe.err());
    assert_eq!(backend.subscribes(), 1, "B's subscribe is not sent while the unsubscribe is out");

    backend.open_gate();
    backend.got("answered resources/unsubscribe").await;
    let b = b.await;
    assert!(b.is_ok(), "{:?}", b.err());
    assert_eq!(backend.subscribes(), 2);
    assert_eq!(
        *backend.subscribed.lock().unwrap(),
        BTreeSet::from([URI.to_owned()]),
        "B's subscription holds"
    );
    assert_eq!(table(&gw), (vec![(2, 0)], vec![(0, 1)]));
}

/// A server configured with its own timeout for `resources/subscribe` (`timeouts`), shorter than
/// its general one: a subscribe the backend never answers fails after that timeout, as any routed
/// request with its own timeout does, instead of the general one (30 s by default).
#[tokio::test]
async fn a_subscribe_gives_up_after_the_servers_own_timeout_for_it() {
    let mut backend = Backend::with("legacy", First::Take).await;
    let fields = json!({ "era": "legacy", "timeouts": { "resources/subscribe": 0.2 } });
    let (gw, m) = gateway_with(&backend, fields).await;
    assert_eq!(m.spec.timeout_secs, 30.0);
    let a = held_out(&mut backend, acquire(&gw, 1, 0, &m, URI)).await;
    let a = tokio::time::timeout(WAIT, a).await.expect("the subscribe timed out within its own timeout");
    let code = a.expect_err("the backend never answered").code;
    assert_eq!(code, vmcp_protocol::ErrorCode::ConnectionTimeout as i32);
    assert_eq!(table(&gw), (vec![], vec![]));
}

/// The unsubscribe a fresh subscribe waits behind (above) is a request like any other: with the
/// server's own timeout for `resources/unsubscribe` (`timeouts`), a backend that never answers it
/// holds the next subscribe only that long (0.2 s here, where the general timeout is 30 s), and
/// the subscribe then goes out and takes.
#[tokio::test]
async fn a_fresh_subscribe_waits_behind_a_hung_unsubscribe_only_for_its_timeout() {
    let mut backend = Backend::with("legacy", First::Unsubscribe).await;
    let fields = json!({ "era": "legacy", "timeouts": { "resources/unsubscribe": 0.2 } });
    let (gw, m) = gateway_with(&backend, fields).await;
    let a = acquire(&gw, 1, 0, &m, URI).await;
    assert!(a.is_ok(), "{:?}", a.err());
    release(&gw, 1, &m, URI);
    backend.first_subscribe_held().await;

    // Well under the general 30 s and under any fixed fallback of seconds; far over 0.2 s.
    let b = tokio::time::timeout(Duration::from_secs(3), acquire(&gw, 2, 0, &m, URI)).await;
    let b = b.expect("the subscribe went out once the unsubscribe's own timeout passed");
    assert!(b.is_ok(), "{:?}", b.err());
    assert_eq!(backend.subscribes(), 2);
    assert_eq!(table(&gw), (vec![(2, 0)], vec![(0, 1)]));
}

/// `remount` places each session's subscriptions at the successor's replica a fresh subscribe of
/// that session would choose. With none ready to choose, it must be the one the session's
/// affinity points to once they are (the balancer's rule), so that the subscription is where the
/// session's stateful requests go, not at a replica some other rule picked.
#[tokio::test]
async fn with_no_replica_ready_a_session_is_placed_at_its_affinity_replica() {
    // Three replicas at a port that refuses connections: none gets ready.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", closed.local_addr().unwrap());
    drop(closed);
    let servers = json!({ "servers": [{
        "id": "s", "transport": "websocket", "urls": [url, url, url], "era": "legacy" }] });
    let spec = vmcp_config::ServersFile::parse(std::path::Path::new("servers.json"), &servers.to_string())
        .unwrap()
        .servers
        .remove(0);
    let gw = Gateway::start(vmcp_config::GatewayConfig::default(), vec![spec]);
    gw.wait_ready(WAIT).await;
    let m = gw.mounts().get("s").cloned().expect("s is mounted");
    assert_eq!(m.replicas.len(), 3);
    assert!(m.replicas.iter().all(|r| !r.up().is_ready()), "no replica is ready");

    let all_up = crate::resilience::Balancer::new(crate::resilience::Strategy::RoundRobin, &[1, 1, 1]);
    let all = |_| Some(crate::resilience::ReplicaLoad::default());
    for session in 1..=64 {
        let affine = all_up.pick_affine(crate::resilience::affinity_key(session), all);
        assert_eq!(Some(remount::choose(&m, session)), affine, "session {session}");
    }
}
