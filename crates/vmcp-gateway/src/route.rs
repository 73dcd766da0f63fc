//! Requests that belong to one server: find the owner, check policy, adapt, forward, answer.
//!
//! `tools/call` and `prompts/get` route by name, `resources/read`, `resources/subscribe` and
//! `resources/unsubscribe` by URI, `completion/complete` by its `ref`. The request reaches the
//! backend with only what must change rewritten: the name (when vMCP qualified it), the progress
//! token (so progress finds its way back), and the era's `_meta`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use vmcp_protocol::splice::{self, Op};
use vmcp_protocol::{Era, ErrorCode, RpcError};

use crate::catalog::Miss;
use crate::era;
use crate::gateway::{Gateway, Mounted};
use crate::input_bridge::{Call, Outcome};
use crate::policy::{Kind, Policy, Subject};
use crate::session::Session;
use crate::upstream::{Known, Origin, ParamHeaders, UpstreamError};

/// A backend's answer, or vMCP's own error.
pub enum Reply {
    /// Raw `result` text, already adapted to the client's era.
    Result(String),
    /// Raw `error` object from the backend, passed through unchanged.
    BackendError(String),
}

/// A member path to rewrite and the backend's own name to put there.
type Rename = (&'static [&'static str], String);

/// The owner of a request and the params to send it.
pub(crate) struct Routed<'a> {
    pub mounted: Arc<Mounted>,
    pub params: Cow<'a, str>,
    /// What the request names, as the backend knows it: its own tool or prompt name, or the URI.
    pub name: String,
}

pub async fn forward(
    gw: &Gateway,
    session: &Arc<Session>,
    request: Option<&str>,
    method: &str,
    params: Option<&str>,
) -> Result<Reply, RpcError> {
    let routed = resolve(gw, session, method, method, params)?;
    let m = &routed.mounted;
    let shape = Shape::of(&routed.params);
    // A modern client's retry of a call vMCP parked for input: resume that very call.
    if shape.request_state
        && let Some(resumed) = gw.parked.resume(&session.caller, &m.spec.id, &routed.params)
    {
        let (call, inputs) = resumed?;
        let timeout = m.spec.timeout_for(method);
        return match gw.parked.wait(call, inputs, &session.caller, &m.spec.id, timeout).await {
            Outcome::InputRequired(result) => Ok(Reply::Result(result)),
            Outcome::Done(Ok(msg)) => Ok(answer(method, session, msg)),
            Outcome::Done(Err(e)) => {
                Err(upstream_error(&e).with_data(serde_json::json!({ "server": m.spec.id })))
            }
        };
    }
    // Stateful traffic stays on the session's replica; the rest is balanced per request.
    // An MRTR retry carries the state a backend handed out: it must reach the replica that holds it.
    let stateful = shape.request_state || shape.input_responses;
    let affinity = stateful.then(|| crate::resilience::affinity_key(session.id));
    let mut tried = 0u64;
    let mut lease = m.choose(affinity, tried)?;
    loop {
        let index = lease.index;
        match attempt(gw, session, request, method, &routed, shape.meta, lease).await {
            Ok(reply) => return reply,
            Err(e) => {
                let err = upstream_error(&e)
                    .with_data(serde_json::json!({ "server": m.spec.id, "replica": index }));
                let gone = matches!(e, UpstreamError::Closed(_) | UpstreamError::Unavailable(..));
                tried |= 1 << index.min(63);
                if !gone || !retry_safe(m, method, &routed.name) {
                    return Err(err);
                }
                match m.choose(affinity, tried) {
                    Ok(next) => {
                        tracing::info!(server = %m.spec.id, replica = index, to = next.index, "{method}: failing over ({e})");
                        m.stats.failover();
                        lease = next;
                    }
                    Err(_) => return Err(err),
                }
            }
        }
    }
}

/// What routing reads from a request's top-level params, in one pass over them: whether it is
/// an MRTR retry (`requestState`, `inputResponses`), and its `_meta`.
#[derive(Debug, Default, PartialEq)]
struct Shape<'a> {
    request_state: bool,
    input_responses: bool,
    meta: Option<&'a str>,
}

impl<'a> Shape<'a> {
    fn of(params: &'a str) -> Shape<'a> {
        let mut shape = Shape::default();
        let _ = splice::scan_members(params, |m| {
            match m.key.as_ref() {
                "requestState" => shape.request_state = true,
                "inputResponses" => shape.input_responses = true,
                // The first one, as `splice::get` reads it.
                "_meta" if shape.meta.is_none() => shape.meta = Some(m.value),
                _ => {}
            }
            true
        });
        shape
    }
}

/// Whether a request whose replica went away may be sent to another one: reads, and tool calls
/// (`name`: the backend's own) the backend annotates idempotent or the operator allows
/// (`resilience.retry_tools`).
fn retry_safe(m: &Mounted, method: &str, name: &str) -> bool {
    match method {
        "resources/read" | "prompts/get" | "completion/complete" => true,
        "tools/call" => {
            m.resilience.retry_tools.allows(name)
                || m.items
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .idempotent_tools
                    .iter()
                    .any(|t| t == name)
        }
        _ => false,
    }
}

/// Send the request to one leased replica. `Err` is a transport failure of that replica (the
/// caller may fail over); `Ok` is the answer to give the client.
async fn attempt(
    gw: &Gateway,
    session: &Arc<Session>,
    request: Option<&str>,
    method: &str,
    routed: &Routed<'_>,
    meta: Option<&str>,
    lease: crate::mounted::Lease<'_>,
) -> Result<Result<Reply, RpcError>, UpstreamError> {
    let (m, params) = (&routed.mounted, &*routed.params);
    let (up, replica) = (lease.up.clone(), lease.index);
    let backend_era = up.era();
    let id = up.next_id();
    // Progress: the backend sees vMCP's request id as the token and gives it back in its
    // notifications, which `relay` maps to this client's own token.
    let progress_token = meta.and_then(|m| splice::get(m, "progressToken")).map(str::to_owned);
    let params = match &progress_token {
        Some(_) => Cow::Owned(
            splice::edit_path(params, &["_meta", "progressToken"], Op::Replace(&id.to_string()))
                .unwrap_or_else(|| params.to_owned()),
        ),
        None => Cow::Borrowed(params),
    };
    // The progress token edit above leaves the version and capabilities where `meta` found them.
    let params = era::to_backend_meta(Some(&params), Some(meta), &up, Some(session));
    // A modern client cannot take a legacy backend's server-to-client requests: they come back
    // to this call as input requests (`input_bridge`).
    let bridged = session.era() == Some(Era::Modern) && backend_era == Some(Era::Legacy);
    let (inputs, asked) = if bridged {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let origin = Origin {
        session: session.id,
        request: request.map(Arc::from),
        progress_token: progress_token.and_then(|t| serde_json::value::RawValue::from_string(t).ok()),
        inputs,
    };
    let timeout = m.spec.timeout_for(method);
    let started = Instant::now();
    let reply = match asked {
        None => {
            let modern = backend_era == Some(Era::Modern);
            let headers = if modern {
                param_headers(m, &up.spec.transport, method, &routed.name, params.as_deref())
            } else {
                Vec::new()
            };
            let known = Known { modern, name: routed.name.clone(), headers };
            up.request_known(id, method, params.as_deref(), Some(origin), timeout, known).await
        }
        Some(asked) => {
            let call: Call = {
                let (up, method) = (up.clone(), method.to_owned());
                let params = params.as_deref().map(str::to_owned);
                Box::pin(
                    async move { up.request(id, &method, params.as_deref(), Some(origin), timeout).await },
                )
            };
            match gw.parked.wait(call, asked, &session.caller, &m.spec.id, timeout).await {
                Outcome::Done(reply) => reply,
                Outcome::InputRequired(result) => {
                    lease.answered();
                    return Ok(Ok(Reply::Result(result)));
                }
            }
        }
    };
    m.stats.record(started.elapsed(), matches!(&reply, Ok(r) if r.result.is_some()));
    let msg = match reply {
        Ok(msg) => {
            lease.answered();
            msg
        }
        // A replica that timed out counts against its breaker; one whose process died is the
        // supervisor's business (its restart is a new connection), so that counts as neither.
        Err(e) => {
            if matches!(e, UpstreamError::Timeout(..)) {
                lease.failed();
            }
            return Err(e);
        }
    };
    // Only a modern backend asks for input in its result.
    if backend_era == Some(Era::Modern)
        && let Some(result) = msg.result.as_deref()
    {
        let result = result.get();
        if crate::relay::needs_bridge(result, session) {
            return Ok(crate::relay::bridge_input_required(
                gw,
                session,
                request,
                &up,
                method,
                params.as_deref(),
                result,
            )
            .await);
        }
    }
    // A task the backend created is named so that `tasks/*` find their way back (`tasks.rs`).
    Ok(Ok(crate::tasks::on_answer(method, &m.spec.id, replica, answer(method, session, msg))))
}

/// A backend's answer as the client gets it.
fn answer(method: &str, session: &Session, msg: vmcp_protocol::Message) -> Reply {
    if let Some(result) = msg.result.as_deref() {
        let result = result.get();
        let adapted = match method {
            "resources/read" => era::to_client_cacheable(result, session),
            _ => era::to_client(result, session),
        };
        return Reply::Result(adapted.into_owned());
    }
    Reply::BackendError(msg.error.as_deref().map_or_else(|| "{}".to_owned(), |e| e.get().to_owned()))
}

/// SEP-2243: the `Mcp-Param-*` headers a modern HTTP backend expects on a call of its own tool
/// `name` (`params` as sent to it). Empty, without allocating, for everything else.
fn param_headers(
    m: &Mounted,
    transport: &vmcp_config::Transport,
    method: &str,
    name: &str,
    params: Option<&str>,
) -> ParamHeaders {
    if method != "tools/call" || !matches!(transport, vmcp_config::Transport::StreamableHttp { .. }) {
        return Vec::new();
    }
    let Some(p) = params else { return Vec::new() };
    let spec = m.items.lock().unwrap_or_else(|p| p.into_inner()).param_headers.get(name).cloned();
    spec.map(|s| crate::param_headers::headers_for(&s, splice::get(p, "arguments"))).unwrap_or_default()
}

/// The server that owns a request's target, once the policy lets the caller use it (a refusal is
/// audited under `asked`, the method the client sent: `method` itself, except for the
/// `resources/subscribe` a modern `subscriptions/listen` makes), and its params in the backend's
/// own names.
pub(crate) fn resolve<'a>(
    gw: &Gateway,
    session: &Session,
    method: &str,
    asked: &str,
    params: Option<&'a str>,
) -> Result<Routed<'a>, RpcError> {
    let mounts = gw.mounts();
    let p = params.ok_or_else(|| invalid(format!("{method} needs params")))?;
    let (server, kind, name, rename): (usize, Kind, String, Option<Rename>) = match method {
        "tools/call" | "prompts/get" => {
            let name = str_at(p, &["name"]).ok_or_else(|| invalid(format!("{method} needs a `name`")))?;
            let (kind, what, found) = if method == "tools/call" {
                (Kind::Tool, "tool", mounts.catalog.tool(&name))
            } else {
                (Kind::Prompt, "prompt", mounts.catalog.prompt(&name))
            };
            let t = found.map_err(|miss| unknown(what, &name, only_visible(&mounts, session, kind, miss)))?;
            let rename = (t.name != name).then(|| (&["name"][..], t.name.to_owned()));
            (t.server, kind, t.name.to_owned(), rename)
        }
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            let uri = str_at(p, &["uri"]).ok_or_else(|| invalid(format!("{method} needs a `uri`")))?;
            let s = resource_owner(&mounts, session, &uri)?;
            (s, Kind::Resource, uri, None)
        }
        "completion/complete" => {
            let ty = str_at(p, &["ref", "type"]).unwrap_or_default();
            match ty.as_str() {
                "ref/prompt" => {
                    let name = str_at(p, &["ref", "name"])
                        .ok_or_else(|| invalid("ref/prompt needs a `name`".into()))?;
                    let t = mounts.catalog.prompt(&name).map_err(|miss| {
                        unknown("prompt", &name, only_visible(&mounts, session, Kind::Prompt, miss))
                    })?;
                    let rename = (t.name != name).then(|| (&["ref", "name"][..], t.name.to_owned()));
                    (t.server, Kind::Prompt, t.name.to_owned(), rename)
                }
                "ref/resource" => {
                    let uri = str_at(p, &["ref", "uri"])
                        .ok_or_else(|| invalid("ref/resource needs a `uri`".into()))?;
                    let s = resource_owner(&mounts, session, &uri)?;
                    (s, Kind::Resource, uri, None)
                }
                other => return Err(invalid(format!("unknown completion ref type `{other}`"))),
            }
        }
        _ => return Err(RpcError::new(ErrorCode::MethodNotFound, format!("method not found: {method}"))),
    };
    let mounted = mounts.servers[server].clone();
    Policy::check(&session.caller, Subject { server: &mounted.spec.id, kind, name: &name })
        .map_err(|refused| refused.audited(asked))?;
    let params = match rename {
        Some((path, original)) => Cow::Owned(
            splice::edit_path(p, path, Op::Replace(&splice::quote(&original)))
                .ok_or_else(|| invalid("params must be an object".into()))?,
        ),
        None => Cow::Borrowed(p),
    };
    Ok(Routed { mounted, params, name })
}

fn str_at(params: &str, path: &[&str]) -> Option<String> {
    splice::get_path(params, path).and_then(splice::as_str).map(Cow::into_owned)
}

fn invalid(msg: String) -> RpcError {
    RpcError::new(ErrorCode::InvalidParams, msg)
}

fn unknown(what: &str, name: &str, miss: Miss) -> RpcError {
    match miss {
        Miss::Unknown => invalid(format!("unknown {what} `{name}`")),
        Miss::Ambiguous(c) => {
            invalid(format!("{what} `{name}` is offered by several servers; use one of: {}", c.join(", ")))
        }
    }
}

/// An ambiguous bare name names only the candidates the caller may see: listing the others
/// would tell a persona what other servers offer.
fn only_visible(mounts: &crate::gateway::Mounts, session: &Session, kind: Kind, miss: Miss) -> Miss {
    let Miss::Ambiguous(candidates) = miss else { return miss };
    let visible = candidates
        .into_iter()
        .filter(|c| {
            let found = if kind == Kind::Tool { mounts.catalog.tool(c) } else { mounts.catalog.prompt(c) };
            found.is_ok_and(|t| {
                let server = &mounts.servers[t.server].spec.id;
                Policy::visible(&session.caller, Subject { server, kind, name: t.name })
            })
        })
        .collect::<Vec<_>>();
    if visible.len() > 1 { Miss::Ambiguous(visible) } else { Miss::Unknown }
}

/// The server that serves `uri` to this caller: of the servers that could, the first the
/// caller may use (see `Catalog::resource_owner_for`).
pub(crate) fn resource_owner(
    mounts: &crate::gateway::Mounts,
    session: &Session,
    uri: &str,
) -> Result<usize, RpcError> {
    let may_use = |s: usize| {
        let server = &mounts.servers[s].spec.id;
        Policy::visible(&session.caller, Subject { server, kind: Kind::Resource, name: uri })
    };
    mounts.catalog.resource_owner_for(uri, may_use).ok_or_else(|| resource_not_found(uri))
}

fn resource_not_found(uri: &str) -> RpcError {
    RpcError::new(
        ErrorCode::ResourceNotFound,
        format!("resource not found: no mounted server serves `{uri}`"),
    )
    .with_data(serde_json::json!({ "uri": uri }))
}

/// Map a transport-level failure to the seed's codes; the message names the server.
pub fn upstream_error(e: &UpstreamError) -> RpcError {
    let code = match e {
        UpstreamError::Unavailable(..) => ErrorCode::ServerUnavailable,
        UpstreamError::Closed(_) => ErrorCode::TransportClosed,
        UpstreamError::Timeout(..) => ErrorCode::ConnectionTimeout,
    };
    RpcError::new(code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::Shape;

    #[test]
    fn shape_reads_a_retry_and_the_meta_in_one_pass() {
        let cases = [
            (r#"{"name":"echo","arguments":{"requestState":"x"}}"#, Shape::default()),
            (
                r#"{"name":"a","_meta":{"progressToken":1},"inputResponses":{},"_meta":{"x":2}}"#,
                Shape { input_responses: true, meta: Some(r#"{"progressToken":1}"#), ..Shape::default() },
            ),
            (r#"{"requestState":"s","name":"a"}"#, Shape { request_state: true, ..Shape::default() }),
            ("[1]", Shape::default()),
        ];
        for (params, want) in cases {
            assert_eq!(Shape::of(params), want, "{params}");
        }
    }
}
