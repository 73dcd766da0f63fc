//! What a handler can do besides returning its result: report progress, log, send
//! notifications, ask the client for something (a server->client request in the legacy era, an
//! `InputRequiredResult` round in the modern one), notice cancellation, and change what the
//! server offers ([`ServerHandle`]).

use std::future::Future;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::conn::Conn;
use super::defs::{Resource, Tool};
use super::era::{META_CLIENT_CAPABILITIES, RequestEra};
use super::level::Level;
use super::mrtr::{InputRequired, Inputs};
use super::output::{HandlerError, HandlerResult};
use super::registry::{ReadRequest, boxed, write};
use super::subscriptions::Change;
use super::wire::{self, Id, RpcError};

/// The context of one request.
#[derive(Clone)]
pub struct Ctx {
    conn: Arc<Conn>,
    id: Id,
    era: RequestEra,
    progress_token: Option<Value>,
    log_level: Option<Level>,
    client_capabilities: Arc<Value>,
    cancel: watch::Receiver<bool>,
    inputs: Arc<Inputs>,
}

impl Ctx {
    pub(crate) fn new(
        conn: Arc<Conn>,
        id: Id,
        era: RequestEra,
        params: &Value,
        cancel: watch::Receiver<bool>,
    ) -> Self {
        let meta = params.get("_meta");
        let progress_token = meta.and_then(|m| m.get("progressToken")).filter(|t| !t.is_null()).cloned();
        let log_level = meta
            .and_then(|m| m.get(super::era::META_LOG_LEVEL))
            .and_then(Value::as_str)
            .and_then(Level::parse);
        let client_capabilities = match era {
            RequestEra::Legacy => conn.client_capabilities(),
            RequestEra::Modern => {
                meta.and_then(|m| m.get(META_CLIENT_CAPABILITIES)).cloned().unwrap_or_default()
            }
        };
        let client_capabilities = Arc::new(client_capabilities);
        Self { conn, id, era, progress_token, log_level, client_capabilities, cancel, inputs: Arc::default() }
    }

    pub(crate) fn with_inputs(mut self, inputs: Inputs) -> Self {
        self.inputs = Arc::new(inputs);
        self
    }

    pub(crate) fn inputs(&self) -> &Inputs {
        &self.inputs
    }

    /// The id of the request being answered.
    pub fn request_id(&self) -> &Id {
        &self.id
    }

    pub fn era(&self) -> RequestEra {
        self.era
    }

    /// The client's capabilities: from `initialize` (legacy) or this request's `_meta` (modern).
    pub fn client_capabilities(&self) -> &Value {
        &self.client_capabilities
    }

    pub fn is_cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Resolves when the client cancels this request (never, if it does not).
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.cancel.clone();
        async move {
            if rx.wait_for(|c| *c).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Send `notifications/progress`, if the request asked for progress (`_meta.progressToken`).
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = &self.progress_token else { return };
        let mut params = json!({ "progressToken": token, "progress": number(progress) });
        if let Some(t) = total {
            params["total"] = number(t);
        }
        if let Some(m) = message {
            params["message"] = json!(m);
        }
        self.conn.notify("notifications/progress", Some(&params)).await;
    }

    /// Send `notifications/message` if the client wants `level`: legacy per `logging/setLevel`
    /// (everything until it is set), modern per the request's `_meta` log level (nothing if unset).
    pub async fn log(&self, level: Level, logger: Option<&str>, data: Value) {
        let wanted = match self.era {
            RequestEra::Legacy => self.conn.logs(level),
            RequestEra::Modern => self.log_level.is_some_and(|min| level >= min),
        };
        if !wanted {
            return;
        }
        let mut params = json!({ "level": level.as_str(), "data": data });
        if let Some(l) = logger {
            params["logger"] = json!(l);
        }
        self.conn.notify("notifications/message", Some(&params)).await;
    }

    /// Send any notification.
    pub async fn notify(&self, method: &str, params: Value) {
        self.conn.notify(method, Some(&params)).await;
    }

    /// Send a server->client request (legacy only) and wait for the answer. A client error
    /// becomes a tool error; cancellation of this request stops the wait.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, HandlerError> {
        if self.era == RequestEra::Modern {
            return Err(RpcError::internal(format!("{method}: 2026-07-28 servers send no requests")).into());
        }
        let (id, rx) = self.conn.expect_reply();
        self.conn.send(wire::request(id, method, Some(&params))).await;
        tokio::select! {
            reply = rx => match reply {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(HandlerError::Tool(format!("the client refused {method}: {e}"))),
                Err(_) => Err(HandlerError::Tool(format!("the connection closed before {method} was answered"))),
            },
            () = self.cancelled() => {
                self.conn.forget(id);
                let params = json!({ "requestId": id, "reason": "the request that asked was cancelled" });
                self.conn.notify("notifications/cancelled", Some(&params)).await;
                Err(HandlerError::Cancelled)
            }
        }
    }

    /// Ask the client for input in either era: legacy sends `method` and waits; modern returns
    /// the response to `key` from the retry, or `Err(InputRequired)` for the handler to return
    /// (-32021 if this request did not declare the capability `method` needs).
    pub async fn input(&self, key: &str, method: &str, params: Value) -> Result<Value, HandlerError> {
        match self.era {
            RequestEra::Legacy => self.request(method, params).await,
            RequestEra::Modern => match self.inputs.get(key) {
                Some(v) => Ok(v.clone()),
                None => {
                    self.require_capability(method)?;
                    Err(HandlerError::InputRequired(InputRequired::one(key, method, params)))
                }
            },
        }
    }

    /// Modern: fail with -32021 unless the request declared the capability `method` needs.
    fn require_capability(&self, method: &str) -> Result<(), RpcError> {
        let needed = match method {
            "sampling/createMessage" => "sampling",
            "elicitation/create" => "elicitation",
            "roots/list" => "roots",
            _ => return Ok(()),
        };
        if self.client_capabilities.get(needed).is_some_and(|v| !v.is_null()) {
            return Ok(());
        }
        Err(RpcError::new(
            wire::code::MISSING_REQUIRED_CLIENT_CAPABILITY,
            format!("{method} needs the client capability `{needed}`"),
        )
        .with_data(json!({ "requiredCapabilities": { needed: {} } })))
    }

    /// The error for a `resources/read` of a URI nobody serves: -32002 for legacy requests,
    /// -32602 for modern ones (which retired -32002).
    pub fn resource_not_found(&self, uri: &str) -> HandlerError {
        wire::resource_not_found(uri, self.era).into()
    }

    /// The server this request runs in.
    pub fn server(&self) -> ServerHandle {
        ServerHandle { conn: self.conn.clone() }
    }
}

/// Whole numbers as integers, others as floats.
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 { json!(x as i64) } else { json!(x) }
}

/// Changes what the server offers while it serves, and tells subscribers.
#[derive(Clone)]
pub struct ServerHandle {
    conn: Arc<Conn>,
}

impl ServerHandle {
    /// Add (or replace) a tool and send `notifications/tools/list_changed`.
    pub async fn add_tool<F, Fut>(&self, tool: Tool, handler: F)
    where
        F: Fn(Value, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        write(&self.conn.registry.tools).insert(tool.name().to_owned(), tool.to_text(), boxed(handler));
        self.conn.broadcast(Change::ToolsListChanged).await;
    }

    pub async fn remove_tool(&self, name: &str) -> bool {
        let removed = write(&self.conn.registry.tools).remove(name);
        if removed {
            self.conn.broadcast(Change::ToolsListChanged).await;
        }
        removed
    }

    /// Add (or replace) a resource and send `notifications/resources/list_changed`.
    pub async fn add_resource<F, Fut>(&self, resource: Resource, reader: F)
    where
        F: Fn(ReadRequest, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        write(&self.conn.registry.resources).insert(
            resource.uri().to_owned(),
            resource.to_text(),
            boxed(reader),
        );
        self.conn.broadcast(Change::ResourcesListChanged).await;
    }

    pub async fn remove_resource(&self, uri: &str) -> bool {
        let removed = write(&self.conn.registry.resources).remove(uri);
        if removed {
            self.conn.broadcast(Change::ResourcesListChanged).await;
        }
        removed
    }

    /// Send `notifications/resources/updated` to whoever subscribed to `uri`.
    pub async fn resource_updated(&self, uri: &str) {
        self.conn.broadcast(Change::ResourceUpdated(uri.to_owned())).await;
    }

    pub fn is_subscribed(&self, uri: &str) -> bool {
        self.conn.subs.is_subscribed(uri)
    }

    /// Send `change` to its subscribers.
    pub async fn changed(&self, change: Change) {
        self.conn.broadcast(change).await;
    }

    /// Send any notification.
    pub async fn notify(&self, method: &str, params: Map<String, Value>) {
        self.conn.notify(method, Some(&Value::Object(params))).await;
    }
}
