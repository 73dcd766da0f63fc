//! What backends send on their own, relayed to clients: notifications fan in, server-to-client
//! requests reach the client whose request caused them, and a modern backend's
//! `InputRequiredResult` is bridged for a legacy client.
//!
//! - progress: the backend's token (vMCP's request id) maps back to the client's own token;
//!   progress for a request that carried no token is dropped, never invented;
//! - `list_changed`: refreshes the catalog, then reaches every session;
//! - `resources/updated`: only sessions subscribed to that URI;
//! - `notifications/message` (logs): the gateway log, and the clients that asked for that level
//!   (the causing request's client for a modern backend or a modern client; else legacy sessions);
//! - `notifications/subscriptions/acknowledged`: the ack of vMCP's own listen, kept;
//! - `sampling/createMessage`, `elicitation/create`, `roots/list`, `ping`: the causing session
//!   (the most recent one with a request in flight to that backend), with a fresh id; the answer
//!   goes back to the backend under the backend's own id.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::value::RawValue;
use vmcp_protocol::splice::{self, Op};
use vmcp_protocol::{Era, ErrorCode, Message, RpcError, message};

use crate::gateway::Gateway;
use crate::log_level::LogLevel;
use crate::policy::Policy;
use crate::route::Reply;
use crate::session::Session;
use crate::upstream::{Events, Upstream};

/// The gateway's side of [`Events`]; holds the gateway weakly (upstreams live inside it).
pub struct Relay(pub Weak<Gateway>);

impl Events for Relay {
    fn notification(&self, up: &Arc<Upstream>, msg: Message) {
        let Some(gw) = self.0.upgrade() else { return };
        notification(&gw, up, msg);
    }

    fn request(&self, up: &Arc<Upstream>, msg: Message) {
        let Some(gw) = self.0.upgrade() else { return };
        let up = up.clone();
        tokio::spawn(async move { server_request(&gw, &up, msg).await });
    }

    fn status_changed(&self, up: &Arc<Upstream>) {
        tracing::debug!(server = %up.id(), status = up.status().label(), "status changed");
    }
}

fn notification(gw: &Arc<Gateway>, up: &Arc<Upstream>, msg: Message) {
    let method = msg.method();
    let params = msg.params();
    match method {
        "notifications/progress" => {
            let Some(token) = params.and_then(|p| splice::get(p, "progressToken")) else { return };
            let Ok(id) = token.parse::<u64>() else { return };
            let Some(origin) = up.origin(id) else { return };
            let (Some(client_token), Some(session)) = (origin.progress_token, gw.session(origin.session))
            else {
                return;
            };
            let Some(p) = params
                .and_then(|p| splice::edit_object(p, &[("progressToken", Op::Replace(client_token.get()))]))
            else {
                return;
            };
            session.try_send_related(origin.request.as_deref(), message::notification(method, Some(&p)));
        }
        "notifications/tools/list_changed"
        | "notifications/prompts/list_changed"
        | "notifications/resources/list_changed" => {
            let gw2 = gw.clone();
            let id = up.id().to_owned();
            let method = method.to_owned();
            tokio::spawn(async move {
                gw2.refresh(&id).await;
                fan_out(&gw2, &id, &method, None, None);
            });
        }
        "notifications/resources/updated" => {
            let Some(uri) = params.and_then(|p| splice::get(p, "uri")).and_then(splice::as_str) else {
                return;
            };
            // A modern backend tags updates with vMCP's own listen id, which means nothing to a client.
            let stripped = params.and_then(strip_subscription);
            fan_out(gw, up.id(), method, stripped.as_deref().or(params), Some(&uri));
        }
        "notifications/message" => {
            tracing::info!(target: "vmcp::server", server = %up.id(), "log: {}", params.unwrap_or(""));
            log_message(gw, up, params);
        }
        "notifications/subscriptions/acknowledged" => {
            // The backend acknowledges vMCP's own `subscriptions/listen`: vMCP's business only.
            tracing::debug!(server = %up.id(), "backend acknowledged vMCP's listen: {}", params.unwrap_or(""));
            crate::subscriptions::acknowledged(gw, up, params);
        }
        "notifications/cancelled" => {
            // Legacy: the backend gave up on a request it sent us (the relay task times out on its
            // own). Modern stdio: the backend ends one of vMCP's `subscriptions/listen` requests.
            let id = params.and_then(|p| splice::get(p, "requestId")).and_then(|i| i.parse::<u64>().ok());
            if let Some(id) = id {
                up.end_request(id);
            }
            tracing::debug!(server = %up.id(), "backend cancelled a request: {}", params.unwrap_or(""));
        }
        _ => {
            // A task's status names the task as clients know it (`tasks.rs`).
            let renamed = match method {
                "notifications/tasks/status" => params.and_then(|p| crate::tasks::status_params(gw, up, p)),
                _ => None,
            };
            let line = message::notification(method, renamed.as_deref().or(params));
            for s in gw
                .sessions()
                .iter()
                .filter(|s| s.era() != Some(Era::Modern) && Policy::may_reach(&s.caller, up.id()))
            {
                s.try_send(line.clone());
            }
        }
    }
}

/// A backend's log line, to the clients that asked for logs at or above its level. A modern
/// backend logs for one request (the one in flight), and so does a legacy backend working for a
/// modern client's request; otherwise a legacy backend logs for its whole connection, and every
/// legacy session gets the line (unless it asked for a higher level).
fn log_message(gw: &Gateway, up: &Upstream, params: Option<&str>) {
    let level = LogLevel::of_message(params);
    let line = message::notification("notifications/message", params);
    if let Some(origin) = up.latest_origin()
        && let Some(s) = gw.session(origin.session)
        && (up.era() == Some(Era::Modern) || s.era() == Some(Era::Modern))
    {
        let request = origin.request.as_deref();
        let wanted = match s.era() {
            Some(Era::Modern) => s.log_level_for(request).is_some_and(|min| level >= min),
            _ => s.log_level_for(None).is_none_or(|min| level >= min),
        };
        if wanted {
            s.try_send_related(request, line);
        }
        return;
    }
    for s in
        gw.sessions().iter().filter(|s| s.era() != Some(Era::Modern) && Policy::may_reach(&s.caller, up.id()))
    {
        if s.log_level_for(None).is_none_or(|min| level >= min) {
            s.try_send(line.clone());
        }
    }
}

/// Deliver a list change or resource update to every session that wants it: legacy sessions
/// directly (updates only when subscribed), modern sessions through their listen requests.
fn fan_out(gw: &Gateway, server: &str, method: &str, params: Option<&str>, uri: Option<&str>) {
    for s in gw.sessions() {
        // Nothing of a server reaches a client that may not use it (nor an updated resource
        // its persona may not read).
        let allowed = match uri {
            Some(u) => crate::policy::Policy::visible(
                &s.caller,
                crate::policy::Subject { server, kind: crate::policy::Kind::Resource, name: u },
            ),
            None => Policy::may_reach(&s.caller, server),
        };
        if allowed {
            s.notify(method, params, uri);
        }
    }
}

/// A modern backend tags its notifications with vMCP's own listen id; that means nothing to a client.
fn strip_subscription(params: &str) -> Option<String> {
    let meta = splice::get(params, "_meta")?;
    splice::get(meta, vmcp_protocol::meta::SUBSCRIPTION_ID)?;
    let edited = splice::edit_object(meta, &[(vmcp_protocol::meta::SUBSCRIPTION_ID, Op::Remove)])?;
    if edited.trim() == "{}" {
        splice::edit_object(params, &[("_meta", Op::Remove)])
    } else {
        splice::edit_object(params, &[("_meta", Op::Replace(&edited))])
    }
}

/// Which client capability a server-to-client request needs.
fn needed_capability(method: &str) -> Option<&'static str> {
    match method {
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" => Some("elicitation"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

async fn server_request(gw: &Arc<Gateway>, up: &Arc<Upstream>, msg: Message) {
    let Some(id) = msg.id.as_deref() else { return };
    let method = msg.method();
    let origin = up.latest_origin();
    let timeout = Duration::from_secs_f64(up.spec.timeout_secs);
    // A modern client's call: the request becomes one of its input requests (`input_bridge`).
    if let Some(inputs) = origin.as_ref().and_then(|o| o.inputs.clone()) {
        let capable = needed_capability(method).is_none_or(|cap| {
            origin.as_ref().and_then(|o| gw.session(o.session)).is_some_and(|s| s.has_capability(cap))
        });
        let answer = match method {
            "ping" => Ok("{}".to_owned()),
            _ if !capable => Err(RpcError::new(
                ErrorCode::MethodNotFound,
                format!("the client does not support `{method}`"),
            )),
            _ => crate::input_bridge::ask(&inputs, method, msg.params(), timeout).await,
        };
        match answer {
            Ok(result) => up.respond(id, Ok(&result)).await,
            Err(e) => up.respond(id, Err(&e.to_json())).await,
        }
        return;
    }
    let request = origin.as_ref().and_then(|o| o.request.clone());
    let session = origin.and_then(|o| gw.session(o.session)).or_else(|| {
        let all = gw.sessions();
        (all.len() == 1).then(|| all[0].clone())
    });
    let answer = match session {
        None if method == "ping" => Ok("{}".to_owned()),
        None => Err(RpcError::new(ErrorCode::InternalError, format!("no client to relay `{method}` to"))),
        Some(s) => ask_client(&s, request.as_deref(), method, msg.params(), timeout).await,
    };
    match answer {
        Ok(result) => up.respond(id, Ok(&result)).await,
        Err(e) => up.respond(id, Err(&e.to_json())).await,
    }
}

/// Send a request to a legacy client and wait for its answer (raw result text).
async fn ask_client(
    session: &Session,
    related: Option<&str>,
    method: &str,
    params: Option<&str>,
    timeout: Duration,
) -> Result<String, RpcError> {
    if session.era() == Some(Era::Modern) {
        return Err(RpcError::new(
            ErrorCode::MethodNotFound,
            format!("the client speaks 2026-07-28 and takes no `{method}` requests"),
        ));
    }
    if let Some(cap) = needed_capability(method)
        && !session.has_capability(cap)
    {
        return Err(RpcError::new(ErrorCode::MethodNotFound, format!("the client does not support {cap}")));
    }
    let (id, rx) = session.begin_outgoing();
    if !session.send_related(related, message::request(&id.to_string(), method, params)).await {
        session.abandon_outgoing(id);
        return Err(RpcError::new(ErrorCode::TransportClosed, "the client went away"));
    }
    let reply = match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(_)) => return Err(RpcError::new(ErrorCode::TransportClosed, "the client went away")),
        Err(_) => {
            session.abandon_outgoing(id);
            return Err(RpcError::new(
                ErrorCode::ConnectionTimeout,
                format!("the client did not answer `{method}`"),
            ));
        }
    };
    match (reply.result, reply.error) {
        (Some(r), _) => Ok(r.get().to_owned()),
        (None, Some(e)) => Err(passthrough_error(&e)),
        _ => Err(RpcError::new(ErrorCode::InvalidMessage, "empty answer from the client")),
    }
}

fn passthrough_error(e: &RawValue) -> RpcError {
    let code = splice::get(e.get(), "code").and_then(|c| c.parse().ok()).unwrap_or(-32603);
    let message =
        splice::get(e.get(), "message").and_then(splice::as_str).map(|m| m.into_owned()).unwrap_or_default();
    let data = splice::get(e.get(), "data").and_then(|d| RawValue::from_string(d.to_owned()).ok());
    RpcError { code, message, data }
}

/// Does this result need bridging: a modern backend asking a legacy client for input?
pub fn needs_bridge(result: &str, session: &Session) -> bool {
    session.era() != Some(Era::Modern)
        && splice::get(result, "resultType").and_then(splice::as_str).as_deref() == Some("input_required")
}

const MAX_ROUNDS: usize = 16;

/// Turn each input request into an ordinary server-to-client request to the legacy client, then
/// retry the backend call with the answers, until it completes.
pub async fn bridge_input_required(
    _gw: &Gateway,
    session: &Arc<Session>,
    request: Option<&str>,
    up: &Arc<Upstream>,
    method: &str,
    params: Option<&str>,
    first: &str,
) -> Result<Reply, RpcError> {
    let timeout = up.spec.timeout_for(method);
    let mut result = first.to_owned();
    for _ in 0..MAX_ROUNDS {
        if !needs_bridge(&result, session) {
            return Ok(Reply::Result(result));
        }
        let requests = splice::get(&result, "inputRequests").unwrap_or("{}");
        let mut responses = String::from("{");
        for (i, req) in splice::members(requests).unwrap_or_default().into_iter().enumerate() {
            let method = splice::get(req.value, "method").and_then(splice::as_str).unwrap_or_default();
            let answer =
                ask_client(session, request, &method, splice::get(req.value, "params"), timeout).await?;
            if i > 0 {
                responses.push(',');
            }
            responses.push_str(&splice::quote(&req.key));
            responses.push(':');
            responses.push_str(&answer);
        }
        responses.push('}');
        let base = params.unwrap_or("{}");
        let mut edits = vec![("inputResponses", Op::Set(&responses))];
        let state = splice::get(&result, "requestState").map(str::to_owned);
        if let Some(s) = &state {
            edits.push(("requestState", Op::Set(s)));
        }
        let retry = splice::edit_object(base, &edits)
            .ok_or_else(|| RpcError::new(ErrorCode::InvalidParams, "params must be an object"))?;
        let reply = up
            .request(up.next_id(), method, Some(&retry), None, timeout)
            .await
            .map_err(|e| crate::route::upstream_error(&e))?;
        match (reply.result, reply.error) {
            (Some(r), _) => result = r.get().to_owned(),
            (None, Some(e)) => return Ok(Reply::BackendError(e.get().to_owned())),
            _ => return Err(RpcError::new(ErrorCode::InvalidMessage, "empty answer from the backend")),
        }
    }
    Err(RpcError::new(
        ErrorCode::ProtocolError,
        format!("backend asked for input more than {MAX_ROUNDS} times"),
    ))
}
