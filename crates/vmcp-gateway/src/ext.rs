//! vMCP's own methods (`vmcp/servers/list`, `vmcp/servers/info`, `vmcp/servers/health`,
//! `vmcp/cache/clear`, `vmcp/metrics`), filtered by the same policy as everything else.

use serde_json::{Value, json};
use vmcp_protocol::splice;
use vmcp_protocol::{ErrorCode, RpcError};

use crate::gateway::{Gateway, Mounted};
use crate::policy::{Kind, Policy, Subject};
use crate::session::Session;
use crate::upstream::Status;

pub fn handle(
    gw: &Gateway,
    session: &Session,
    method: &str,
    params: Option<&str>,
) -> Result<String, RpcError> {
    let mounts = gw.mounts();
    let visible: Vec<&std::sync::Arc<Mounted>> = mounts
        .servers
        .iter()
        .filter(|m| {
            Policy::visible(&session.caller, Subject { server: &m.spec.id, kind: Kind::Server, name: "" })
        })
        .collect();
    let value = match method {
        "vmcp/servers/list" => json!({ "servers": visible.iter().map(|m| summary(m)).collect::<Vec<_>>() }),
        "vmcp/servers/info" => {
            let id = params
                .and_then(|p| splice::get(p, "id").or_else(|| splice::get(p, "server_id")))
                .and_then(splice::as_str)
                .ok_or_else(|| RpcError::new(ErrorCode::InvalidParams, "vmcp/servers/info needs an `id`"))?;
            let m = visible.iter().find(|m| m.spec.id == id).ok_or_else(|| {
                RpcError::new(ErrorCode::NoServerFound, format!("server `{id}` not found"))
                    .with_data(json!({ "server_id": id }))
            })?;
            info(m)
        }
        "vmcp/servers/health" => {
            let servers: Vec<Value> =
                visible.iter().map(|m| json!({ "id": m.spec.id, "status": health(m) })).collect();
            let healthy = visible.iter().filter(|m| m.up().is_ready()).count();
            let overall = match (healthy, visible.len()) {
                (_, 0) => "healthy",
                (h, n) if h == n => "healthy",
                (0, _) => "unhealthy",
                _ => "degraded",
            };
            json!({ "status": overall, "servers": servers })
        }
        "vmcp/cache/clear" => json!({ "cleared": 0 }),
        "vmcp/metrics" => json!({
            "uptime_seconds": gw.started_at.elapsed().as_secs(),
            "sessions": gw.sessions().len(),
            "servers": visible.iter().map(|m| json!({
                "id": m.spec.id,
                "status": m.up().status().label(),
                "in_flight": m.up().in_flight(),
                "stats": m.stats.snapshot(),
            })).collect::<Vec<_>>(),
        }),
        _ => {
            return Err(RpcError::new(ErrorCode::MethodNotFound, format!("method not found: {method}"))
                .with_data(json!({ "method": method })));
        }
    };
    Ok(value.to_string())
}

fn health(m: &Mounted) -> &'static str {
    match m.up().status() {
        Status::Ready => "healthy",
        Status::Starting => "degraded",
        _ => "unhealthy",
    }
}

pub fn summary(m: &Mounted) -> Value {
    let items = m.items.lock().unwrap_or_else(|p| p.into_inner());
    json!({
        "id": m.spec.id,
        "name": m.spec.name,
        "transport": m.spec.transport.kind(),
        "status": m.up().status().label(),
        "era": m.up().era().map(|e| format!("{e:?}").to_lowercase()),
        "protocol_version": m.up().version().map(|v| v.as_str()),
        "tools": items.tools.len(),
        "prompts": items.prompts.len(),
        "resources": items.resources.len(),
        "resource_templates": items.templates.len(),
    })
}

fn info(m: &Mounted) -> Value {
    let mut v = summary(m);
    let hs = m.up().handshake();
    let reason = match m.up().status() {
        Status::Failed(r) | Status::Exited(r) => Some(r),
        _ => None,
    };
    let items = m.items.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Value::Object(o) = &mut v {
        o.insert("reason".into(), json!(reason));
        o.insert(
            "server_info".into(),
            hs.as_ref().and_then(|h| h.server_info.as_deref()).map_or(Value::Null, raw),
        );
        o.insert("capabilities".into(), hs.as_ref().map_or(Value::Null, |h| raw(&h.capabilities)));
        o.insert("tool_names".into(), json!(items.tools));
        o.insert("prompt_names".into(), json!(items.prompts));
        o.insert("timeout_seconds".into(), json!(m.spec.timeout_secs));
        o.insert("in_flight".into(), json!(m.up().in_flight()));
        o.insert("stats".into(), json!(m.stats.snapshot()));
    }
    v
}

fn raw(r: &serde_json::value::RawValue) -> Value {
    serde_json::from_str(r.get()).unwrap_or(Value::Null)
}
