//! `subscriptions/listen` (2026-07-28): a modern client's long-lived request through which it
//! receives `list_changed` and `resources/updated` notifications, each tagged with the listen
//! request's id as `_meta["io.modelcontextprotocol/subscriptionId"]`.
//!
//! Toward modern backends vMCP holds one listen per backend for list changes (opened at mount),
//! so their `list_changed` refreshes the catalog like a legacy backend's does.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use vmcp_protocol::splice::{self, Op};
use vmcp_protocol::{RpcError, message, meta};

use crate::gateway::Gateway;
use crate::session::Session;
use crate::upstream::Upstream;

/// The three list changes, as notification methods.
pub const LIST_CHANGES: [&str; 3] = [
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
    "notifications/resources/list_changed",
];

/// What one listen request asked for.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
    pub uris: HashSet<String>,
}

impl Filter {
    pub fn parse(params: Option<&str>) -> Self {
        let n = params.and_then(|p| splice::get(p, "notifications")).unwrap_or("{}");
        let flag = |k: &str| splice::get(n, k) == Some("true");
        let uris = splice::get(n, "resourceSubscriptions")
            .and_then(splice::elements)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|u| splice::as_str(u).map(|s| s.into_owned()))
            .collect();
        Self {
            tools: flag("toolsListChanged"),
            prompts: flag("promptsListChanged"),
            resources: flag("resourcesListChanged"),
            uris,
        }
    }

    /// Does this listener want a notification with this method (and uri, for updates)?
    pub fn wants(&self, method: &str, uri: Option<&str>) -> bool {
        match method {
            "notifications/tools/list_changed" => self.tools,
            "notifications/prompts/list_changed" => self.prompts,
            "notifications/resources/list_changed" => self.resources,
            "notifications/resources/updated" => uri.is_some_and(|u| self.uris.contains(u)),
            _ => false,
        }
    }
}

/// Tag a notification's params with the subscription id.
pub fn tag(method: &str, params: Option<&str>, subscription: &str) -> String {
    let p =
        splice::edit_path(params.unwrap_or("{}"), &["_meta", meta::SUBSCRIPTION_ID], Op::Set(subscription))
            .unwrap_or_else(|| params.unwrap_or("{}").to_owned());
    message::notification(method, Some(&p))
}

/// Serve a client's listen request until it is cancelled (the task is dropped), vMCP stops or
/// the client's input ends (stdio).
pub async fn serve(
    gw: &Arc<Gateway>,
    session: &Arc<Session>,
    id: &str,
    params: Option<&str>,
) -> Result<String, RpcError> {
    let filter = Filter::parse(params);
    let ack_params = format!(
        r#"{{"notifications":{}}}"#,
        params.and_then(|p| splice::get(p, "notifications")).unwrap_or("{}")
    );
    for uri in &filter.uris {
        crate::subscriptions::for_listener(gw, session, uri).await?;
    }
    let _registration = session.add_listener(id, filter);
    session.send(tag("notifications/subscriptions/acknowledged", Some(&ack_params), id)).await;
    tokio::select! {
        () = gw.stopping() => {}
        () = session.input_closed() => {}
    }
    Ok(format!(r#"{{"resultType":"complete","_meta":{{{}:{}}}}}"#, splice::quote(meta::SUBSCRIPTION_ID), id))
}

/// Keep a listen open on a modern backend so its list changes reach vMCP. Ends when the
/// backend goes away.
pub async fn upstream_list_changes(up: Arc<Upstream>) {
    let Some(hs) = up.handshake() else { return };
    let wants = |cap: &str| hs.flag(cap, "listChanged");
    if !(wants("tools") || wants("prompts") || wants("resources")) {
        return;
    }
    let params = format!(
        r#"{{"notifications":{{"toolsListChanged":{},"promptsListChanged":{},"resourcesListChanged":{}}}}}"#,
        wants("tools"),
        wants("prompts"),
        wants("resources")
    );
    let params = crate::era::to_backend(Some(&params), &up, None).map(|p| p.into_owned());
    let forever = Duration::from_secs(60 * 60 * 24 * 365);
    // A backend may end the stream (a result, or `notifications/cancelled` on stdio); listen again
    // while it is up.
    while up.is_ready() {
        match up.request(up.next_id(), "subscriptions/listen", params.as_deref(), None, forever).await {
            Ok(reply) if reply.error.is_some() => {
                tracing::debug!(server = %up.id(), "backend refused subscriptions/listen");
                return;
            }
            Ok(_) => tracing::debug!(server = %up.id(), "backend ended its subscriptions/listen"),
            Err(e) => tracing::debug!(server = %up.id(), "subscriptions/listen ended: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
