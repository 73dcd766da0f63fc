//! Who hears which notification: a legacy session (after `initialize`, with its
//! `resources/subscribe` set) and modern `subscriptions/listen` streams (each with a filter and
//! its request id as `subscriptionId`).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value, json};

use super::conn::lock;
use super::era::Era;
use super::wire::{self, Id};

/// `_meta` key tying a notification to its `subscriptions/listen` stream.
pub use vmcp_protocol::meta::SUBSCRIPTION_ID as META_SUBSCRIPTION_ID;

/// Something that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    ToolsListChanged,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated(String),
}

impl Change {
    fn method(&self) -> &'static str {
        match self {
            Self::ToolsListChanged => "notifications/tools/list_changed",
            Self::PromptsListChanged => "notifications/prompts/list_changed",
            Self::ResourcesListChanged => "notifications/resources/list_changed",
            Self::ResourceUpdated(_) => "notifications/resources/updated",
        }
    }

    fn params(&self) -> Map<String, Value> {
        match self {
            Self::ResourceUpdated(uri) => json!({ "uri": uri }).as_object().cloned().unwrap_or_default(),
            _ => Map::new(),
        }
    }
}

/// A modern stream's `SubscriptionFilter`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub tools_list_changed: bool,
    pub prompts_list_changed: bool,
    pub resources_list_changed: bool,
    pub resource_subscriptions: Vec<String>,
}

impl Filter {
    pub fn parse(v: &Value) -> Self {
        let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        let uris = v.get("resourceSubscriptions").and_then(Value::as_array);
        Self {
            tools_list_changed: flag("toolsListChanged"),
            prompts_list_changed: flag("promptsListChanged"),
            resources_list_changed: flag("resourcesListChanged"),
            resource_subscriptions: uris
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
        }
    }

    /// The filter as JSON, naming only what it asks for.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        let flags = [
            ("toolsListChanged", self.tools_list_changed),
            ("promptsListChanged", self.prompts_list_changed),
            ("resourcesListChanged", self.resources_list_changed),
        ];
        for (k, on) in flags {
            if on {
                m.insert(k.into(), json!(true));
            }
        }
        if !self.resource_subscriptions.is_empty() {
            m.insert("resourceSubscriptions".into(), json!(self.resource_subscriptions));
        }
        Value::Object(m)
    }

    fn wants(&self, change: &Change) -> bool {
        match change {
            Change::ToolsListChanged => self.tools_list_changed,
            Change::PromptsListChanged => self.prompts_list_changed,
            Change::ResourcesListChanged => self.resources_list_changed,
            Change::ResourceUpdated(uri) => self.resource_subscriptions.contains(uri),
        }
    }
}

/// The subscribers of one connection.
#[derive(Debug, Default)]
pub struct Subscriptions {
    legacy_session: AtomicBool,
    uris: Mutex<BTreeSet<String>>,
    listeners: Mutex<Vec<(Id, Filter)>>,
}

impl Subscriptions {
    /// A legacy client sent `initialize`.
    pub fn open_legacy(&self) {
        self.legacy_session.store(true, Ordering::Relaxed);
    }

    pub fn subscribe(&self, uri: &str) {
        lock(&self.uris).insert(uri.to_owned());
    }

    pub fn unsubscribe(&self, uri: &str) {
        lock(&self.uris).remove(uri);
    }

    /// Whether anyone (legacy or modern) subscribed to `uri`.
    pub fn is_subscribed(&self, uri: &str) -> bool {
        lock(&self.uris).contains(uri)
            || lock(&self.listeners).iter().any(|(_, f)| f.resource_subscriptions.iter().any(|u| u == uri))
    }

    pub fn listen(&self, id: &Id, filter: Filter) {
        lock(&self.listeners).push((id.clone(), filter));
    }

    pub fn stop_listening(&self, id: &Id) {
        self.stop_listening_key(id.key());
    }

    /// End the stream opened by the request with id key `key` (if it is one).
    pub fn stop_listening_key(&self, key: &str) {
        lock(&self.listeners).retain(|(i, _)| i.key() != key);
    }

    /// The notification lines `change` turns into, for a server speaking `era`.
    pub fn lines(&self, era: Era, change: &Change) -> Vec<String> {
        let mut out = Vec::new();
        let legacy = era == Era::Legacy || self.legacy_session.load(Ordering::Relaxed);
        let legacy_wants = match change {
            Change::ResourceUpdated(uri) => lock(&self.uris).contains(uri),
            _ => true,
        };
        if era.speaks_legacy() && legacy && legacy_wants {
            out.push(wire::notification(change.method(), Some(&Value::Object(change.params()))));
        }
        for (id, _) in lock(&self.listeners).iter().filter(|(_, f)| f.wants(change)) {
            out.push(listener_line(id, change.method(), change.params()));
        }
        out
    }
}

/// A notification on the stream opened by request `id`.
pub fn listener_line(id: &Id, method: &str, mut params: Map<String, Value>) -> String {
    let sub_id: Value = serde_json::from_str(id.raw()).unwrap_or(Value::Null);
    params.insert("_meta".into(), json!({ META_SUBSCRIPTION_ID: sub_id }));
    wire::notification(method, Some(&Value::Object(params)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::wire::{Incoming, parse};

    fn id(raw: &str) -> Id {
        match parse(&format!(r#"{{"id":{raw},"method":"x"}}"#)) {
            Ok(Incoming::Request(r)) => r.id,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn routes_changes_to_subscribers() {
        let subs = Subscriptions::default();
        let updated = Change::ResourceUpdated("a://1".into());
        assert_eq!(subs.lines(Era::Dual, &Change::ToolsListChanged).len(), 0, "no session yet");
        assert_eq!(subs.lines(Era::Legacy, &Change::ToolsListChanged).len(), 1);
        assert_eq!(subs.lines(Era::Legacy, &updated).len(), 0, "not subscribed");
        subs.subscribe("a://1");
        assert_eq!(subs.lines(Era::Legacy, &updated).len(), 1);
        subs.unsubscribe("a://1");
        let filter = Filter::parse(&json!({ "toolsListChanged": true, "resourceSubscriptions": ["a://1"] }));
        subs.listen(&id("\"L\""), filter);
        let lines = subs.lines(Era::Modern, &updated);
        assert_eq!(lines.len(), 1);
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["params"], json!({ "uri": "a://1", "_meta": { META_SUBSCRIPTION_ID: "L" } }));
        assert_eq!(subs.lines(Era::Modern, &Change::PromptsListChanged).len(), 0);
        assert!(subs.is_subscribed("a://1"));
        subs.stop_listening(&id("\"L\""));
        assert!(!subs.is_subscribed("a://1"));
    }
}
