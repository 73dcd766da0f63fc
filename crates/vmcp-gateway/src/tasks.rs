//! Tasks, relayed: the `io.modelcontextprotocol/tasks` extension (SEP-2663, modern era:
//! `tasks/get`, `tasks/update`, `tasks/cancel`) and the 2025-11-25 core tasks (legacy era:
//! `tasks/get`, `tasks/result`, `tasks/cancel`, `tasks/list`).
//!
//! A backend's task id means nothing across backends, so the client sees it namespaced:
//! `{server}.{replica}.{original}`. Server ids are `[A-Za-z0-9_-]` (no `.`) and the replica is a
//! number, so the first two dots split it unambiguously, and vMCP keeps no table (nothing to
//! bound or lose on restart). The id is rewritten where a task is named toward the client (the
//! result that creates it, `tasks/*` results, `notifications/tasks/status`) and restored on the
//! way in; every other byte passes unchanged. A task runs on one replica, so its requests go to
//! that replica.
//!
//! Policy: a task belongs to its server; a caller that may not use that server gets 3002.

use std::borrow::Cow;
use std::sync::Arc;

use vmcp_protocol::splice::{self, Op};
use vmcp_protocol::{Era, ErrorCode, RpcError, meta};

use crate::era;
use crate::gateway::{Gateway, Mounted};
use crate::policy::{Policy, Subject};
use crate::route::{Reply, upstream_error};
use crate::session::Session;
use crate::upstream::{Origin, Upstream};

/// The extension's identifier in `capabilities.extensions`.
pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// The requests this module answers.
pub fn is_method(method: &str) -> bool {
    matches!(method, "tasks/get" | "tasks/update" | "tasks/cancel" | "tasks/result" | "tasks/list")
}

/// A task id as the client sees it, split into where it lives.
#[derive(Debug, PartialEq, Eq)]
pub struct TaskRef<'a> {
    pub server: &'a str,
    pub replica: usize,
    pub original: &'a str,
}

impl<'a> TaskRef<'a> {
    pub fn parse(id: &'a str) -> Option<Self> {
        let (server, rest) = id.split_once('.')?;
        let (replica, original) = rest.split_once('.')?;
        let valid_server =
            !server.is_empty() && server.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let replica_digits =
            !replica.is_empty() && replica.len() <= 4 && replica.bytes().all(|b| b.is_ascii_digit());
        if !valid_server || !replica_digits {
            return None;
        }
        Some(Self { server, replica: replica.parse().ok()?, original })
    }
}

/// The id the client sees for a backend's task.
pub fn namespaced(server: &str, replica: usize, original: &str) -> String {
    format!("{server}.{replica}.{original}")
}

/// A backend's answer to a routed request, with any task it created renamed for the client:
/// a modern `CreateTaskResult` (`taskId` at the top) or a legacy one (`task.taskId`).
pub fn on_answer(method: &str, server: &str, replica: usize, reply: Reply) -> Reply {
    let Reply::Result(result) = &reply else { return reply };
    // Fast path: nothing task-shaped in the result.
    if method != "tools/call" || !result.contains("\"taskId\"") {
        return reply;
    }
    let renamed = rename_at(result, &["taskId"], server, replica)
        .or_else(|| rename_at(result, &["task", "taskId"], server, replica));
    renamed.map_or(reply, Reply::Result)
}

/// Rewrite the string at `path` of the object `text` to its namespaced form.
fn rename_at(text: &str, path: &[&str], server: &str, replica: usize) -> Option<String> {
    let original = splice::get_path(text, path).and_then(splice::as_str)?;
    let id = namespaced(server, replica, &original);
    splice::edit_path(text, path, Op::Replace(&splice::quote(&id)))
}

/// A backend's `notifications/tasks/status` params (a `Task`), renamed for clients.
pub fn status_params(gw: &Gateway, up: &Arc<Upstream>, params: &str) -> Option<String> {
    let mounts = gw.mounts();
    let m = mounts.servers.iter().find(|m| m.spec.id == up.id())?;
    let replica = m.replicas.iter().position(|r| Arc::ptr_eq(&r.up(), up))?;
    rename_at(params, &["taskId"], &m.spec.id, replica)
}

/// Answer a `tasks/*` request.
pub async fn handle(
    gw: &Gateway,
    session: &Arc<Session>,
    request: Option<&str>,
    method: &str,
    params: Option<&str>,
) -> Result<Reply, RpcError> {
    let modern = session.era() == Some(Era::Modern);
    if modern && matches!(method, "tasks/result" | "tasks/list") {
        // SEP-2663 removed them: the result is inlined on tasks/get, and there is no listing.
        return Err(RpcError::new(
            ErrorCode::MethodNotFound,
            format!("`{method}` does not exist in this protocol version"),
        ));
    }
    if modern && !declared(params) {
        return Err(RpcError::new(
            ErrorCode::MissingClientCapability,
            format!("{method} requires the {EXTENSION} extension, which this request did not declare"),
        )
        .with_data(serde_json::json!({ "requiredCapabilities": { "extensions": { EXTENSION: {} } } })));
    }
    if method == "tasks/list" {
        return list(gw, session, params).await;
    }
    let p = params.ok_or_else(|| invalid(format!("{method} needs params")))?;
    let task_id = splice::get(p, "taskId")
        .and_then(splice::as_str)
        .ok_or_else(|| invalid(format!("{method} needs a `taskId`")))?;
    let unknown =
        || invalid(format!("unknown task `{task_id}`")).with_data(serde_json::json!({ "taskId": task_id }));
    let task = TaskRef::parse(&task_id).ok_or_else(unknown)?;
    let mounts = gw.mounts();
    let m = mounts.servers.iter().find(|m| m.spec.id == task.server).ok_or_else(unknown)?.clone();
    Policy::check(&session.caller, Subject::server(&m.spec.id)).map_err(|refused| refused.audited(method))?;
    if task.replica >= m.replicas.len() {
        return Err(unknown());
    }
    let params = splice::edit_object(p, &[("taskId", Op::Replace(&splice::quote(task.original)))])
        .ok_or_else(|| invalid("params must be an object".into()))?;
    forward(&m, session, request, method, &params, task.replica).await
}

/// Send a task request to the replica that runs the task, and rename the task in the answer.
async fn forward(
    m: &Arc<Mounted>,
    session: &Arc<Session>,
    request: Option<&str>,
    method: &str,
    params: &str,
    replica: usize,
) -> Result<Reply, RpcError> {
    // Every replica but this one counts as tried: the lease is that replica or none.
    let lease = m.choose(None, !(1u64 << replica.min(63)))?;
    let up = lease.up.clone();
    let id = up.next_id();
    let params = era::to_backend(Some(params), &up, Some(session));
    let origin =
        Origin { session: session.id, request: request.map(Arc::from), progress_token: None, inputs: None };
    let reply = up.request(id, method, params.as_deref(), Some(origin), m.spec.timeout_for(method)).await;
    let msg = match reply {
        Ok(msg) => {
            lease.answered();
            msg
        }
        Err(e) => {
            return Err(
                upstream_error(&e).with_data(serde_json::json!({ "server": m.spec.id, "replica": replica }))
            );
        }
    };
    if let Some(result) = msg.result.as_deref() {
        let result = result.get();
        let renamed = rename_result(method, result, &m.spec.id, replica);
        let text = renamed.as_deref().unwrap_or(result);
        return Ok(Reply::Result(era::to_client(text, session).into_owned()));
    }
    Ok(Reply::BackendError(msg.error.as_deref().map_or_else(|| "{}".to_owned(), |e| e.get().to_owned())))
}

/// The task named in a `tasks/*` result: a `Task` at the top (`tasks/get`, legacy
/// `tasks/cancel`), or the related-task `_meta` of a legacy `tasks/result`.
fn rename_result(method: &str, result: &str, server: &str, replica: usize) -> Option<String> {
    match method {
        "tasks/result" => rename_at(result, &["_meta", RELATED_TASK, "taskId"], server, replica),
        _ => rename_at(result, &["taskId"], server, replica),
    }
}

const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

/// Legacy `tasks/list`: every task of every server the caller may use that offers task listing,
/// merged in file order. Paging: the first page of each backend (a backend's `nextCursor` is
/// not relayed; vMCP's merged listing is one page).
async fn list(gw: &Gateway, session: &Arc<Session>, params: Option<&str>) -> Result<Reply, RpcError> {
    let mounts = gw.mounts();
    let view = Policy::view(&session.caller);
    let targets: Vec<Arc<Mounted>> = mounts
        .servers
        .iter()
        .filter(|m| {
            let up = m.up();
            up.is_ready()
                && up
                    .handshake()
                    .is_some_and(|h| splice::get_path(h.capabilities.get(), &["tasks", "list"]).is_some())
                && view.visible(Subject::server(&m.spec.id))
        })
        .cloned()
        .collect();
    let params: Cow<str> = match params.and_then(|p| splice::edit_object(p, &[("cursor", Op::Remove)])) {
        Some(p) => Cow::Owned(p),
        None => Cow::Borrowed(params.unwrap_or("{}")),
    };
    let answers = futures_util::future::join_all(targets.iter().map(|m| {
        let params = &params;
        async move {
            let out = Vec::new();
            let Ok(lease) = m.choose(None, 0) else { return out };
            let (up, replica) = (lease.up.clone(), lease.index);
            let reply = up
                .request(up.next_id(), "tasks/list", Some(params), None, m.spec.timeout_for("tasks/list"))
                .await;
            lease.answered();
            let Some(result) = reply.ok().and_then(|msg| msg.result) else { return out };
            let Some(tasks) = splice::get(result.get(), "tasks").and_then(splice::elements) else {
                return out;
            };
            tasks
                .into_iter()
                .map(|t| rename_at(t, &["taskId"], &m.spec.id, replica).unwrap_or_else(|| t.to_owned()))
                .collect::<Vec<String>>()
        }
    }))
    .await;
    let tasks: Vec<String> = answers.into_iter().flatten().collect();
    Ok(Reply::Result(format!("{{\"tasks\":[{}]}}", tasks.join(","))))
}

/// Did this request declare the tasks extension in its client capabilities?
fn declared(params: Option<&str>) -> bool {
    meta::request_capabilities(params)
        .and_then(|caps| splice::get(caps, "extensions"))
        .and_then(|ext| splice::get(ext, EXTENSION))
        .is_some_and(|v| v != "null" && v != "false")
}

fn invalid(msg: String) -> RpcError {
    RpcError::new(ErrorCode::InvalidParams, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_split_at_the_first_two_dots() {
        let t = TaskRef::parse("fixture.0.task-1.2:3").unwrap();
        assert_eq!(t, TaskRef { server: "fixture", replica: 0, original: "task-1.2:3" });
        assert_eq!(TaskRef::parse(&namespaced("a-b_c", 12, "x.y")).unwrap().original, "x.y");
        for bad in ["server2:1", "fixture.task-1", "fix.ture.0", ".0.x", "s.x.y", "s.99999.y", "s/1.0.x"] {
            assert_eq!(TaskRef::parse(bad), None, "{bad}");
        }
        assert_eq!(TaskRef::parse("s.1.").unwrap().original, "");
    }

    #[test]
    fn created_tasks_are_renamed_and_nothing_else_changes() {
        let modern = r#"{"resultType":"task","taskId":"t-1","status":"working","ttlMs":300000,"x":1.50}"#;
        let Reply::Result(got) = on_answer("tools/call", "fx", 0, Reply::Result(modern.into())) else {
            panic!()
        };
        assert_eq!(
            got,
            r#"{"resultType":"task","taskId":"fx.0.t-1","status":"working","ttlMs":300000,"x":1.50}"#
        );
        let legacy = r#"{"task":{"taskId":"t-2","status":"working"},"_meta":{}}"#;
        let Reply::Result(got) = on_answer("tools/call", "fx", 1, Reply::Result(legacy.into())) else {
            panic!()
        };
        assert_eq!(got, r#"{"task":{"taskId":"fx.1.t-2","status":"working"},"_meta":{}}"#);
        let plain = r#"{"content":[{"type":"text","text":"\"taskId\""}]}"#;
        let Reply::Result(got) = on_answer("tools/call", "fx", 0, Reply::Result(plain.into())) else {
            panic!()
        };
        assert_eq!(got, plain);
    }

    #[test]
    fn the_extension_must_be_declared_per_request() {
        let with = r#"{"_meta":{"io.modelcontextprotocol/clientCapabilities":{"extensions":{"io.modelcontextprotocol/tasks":{}}}}}"#;
        let without = r#"{"_meta":{"io.modelcontextprotocol/clientCapabilities":{}}}"#;
        assert!(declared(Some(with)));
        assert!(!declared(Some(without)));
        assert!(!declared(None));
    }
}
