//! vMCP's own methods (`vmcp/servers/list`, `vmcp/servers/info`, `vmcp/servers/health`,
//! `vmcp/cache/clear`, `vmcp/metrics`), filtered by the same policy as everything else.

use serde_json::{Value, json};
use vmcp_protocol::splice;
use vmcp_protocol::{ErrorCode, RpcError};

use crate::gateway::{Gateway, Mounted};
use crate::policy::Policy;
use crate::resilience::Health;
use crate::session::Session;
use crate::upstream::Status;
use std::sync::atomic::Ordering;

pub fn handle(
    gw: &Gateway,
    session: &Session,
    method: &str,
    params: Option<&str>,
) -> Result<String, RpcError> {
    let mounts = gw.mounts();
    let visible: Vec<&std::sync::Arc<Mounted>> =
        mounts.servers.iter().filter(|m| Policy::may_reach(&session.caller, &m.spec.id)).collect();
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
            let servers: Vec<Value> = visible.iter().map(|m| health_entry(m)).collect();
            let overall = Health::combine(visible.iter().map(|m| m.health()));
            let overall = if visible.is_empty() { Health::Healthy } else { overall };
            json!({ "status": overall.as_str(), "servers": servers })
        }
        "vmcp/cache/clear" => json!({ "cleared": 0 }),
        "vmcp/metrics" => json!({
            "uptime_seconds": gw.started_at.elapsed().as_secs(),
            "sessions": gw.sessions().len(),
            "servers": visible.iter().map(|m| json!({
                "id": m.spec.id,
                "status": m.up().status().label(),
                "health": m.health().as_str(),
                "in_flight": m.replicas.iter().map(|r| r.in_flight()).sum::<u32>(),
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

/// A server's health and each replica's: process, probes, breaker, load, restarts.
fn health_entry(m: &Mounted) -> Value {
    json!({
        "id": m.spec.id,
        "status": m.health().as_str(),
        "crash_loop": m.crash_loop(),
        "strategy": m.resilience.strategy.as_str(),
        "replicas": replicas(m),
    })
}

fn replicas(m: &Mounted) -> Vec<Value> {
    let now = std::time::Instant::now();
    m.replicas
        .iter()
        .map(|r| {
            let up = r.up();
            let breaker = r.breaker.snapshot(now);
            json!({
                "replica": r.index,
                "status": up.status().label(),
                "health": r.health(now).as_str(),
                "breaker": breaker.state.as_str(),
                "breaker_opened": breaker.opened,
                "in_flight": r.in_flight(),
                "latency_ewma_ms": r.ewma().as_secs_f64() * 1000.0,
                "restarts": r.restarts.load(Ordering::Relaxed),
                "crash_loop": r.crash_loop.load(Ordering::Relaxed),
                "pid": up.pid(),
            })
        })
        .collect()
}

pub fn summary(m: &Mounted) -> Value {
    let items = m.items.lock().unwrap_or_else(|p| p.into_inner());
    json!({
        "id": m.spec.id,
        "name": m.spec.name,
        "transport": m.spec.transport.kind(),
        "status": m.up().status().label(),
        "health": m.health().as_str(),
        "crash_loop": m.crash_loop(),
        "replicas": m.replicas.len(),
        "replicas_ready": m.replicas.iter().filter(|r| r.up().is_ready()).count(),
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
        o.insert("in_flight".into(), json!(m.replicas.iter().map(|r| r.in_flight()).sum::<u32>()));
        o.insert("strategy".into(), json!(m.resilience.strategy.as_str()));
        o.insert("replica_details".into(), json!(replicas(m)));
        o.insert("stats".into(), json!(m.stats.snapshot()));
    }
    v
}

fn raw(r: &serde_json::value::RawValue) -> Value {
    serde_json::from_str(r.get()).unwrap_or(Value::Null)
}
