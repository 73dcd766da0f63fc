//! Answering one request: which methods exist in which era, and the handlers for the
//! protocol's own methods. Tool, prompt, resource and completion calls go to the registry.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::conn::Conn;
use super::ctx::Ctx;
use super::era::{self, Era, RequestEra};
use super::level::Level;
use super::mrtr::{self, encode_state};
use super::output::{HandlerError, HandlerResult, Output, append_members, prepend_members};
use super::registry::{CompletionRequest, ReadRequest, read};
use super::subscriptions::{Filter, listener_line};
use super::wire::{self, Request, RpcError};

/// The methods the kit answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Initialize,
    Discover,
    Ping,
    SetLevel,
    Subscribe,
    Unsubscribe,
    Listen,
    ToolsList,
    ToolsCall,
    PromptsList,
    PromptsGet,
    ResourcesList,
    TemplatesList,
    ResourcesRead,
    Complete,
}

/// Which era a method belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Belongs {
    Legacy,
    Modern,
    Both,
}

impl Method {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "initialize" => Self::Initialize,
            "server/discover" => Self::Discover,
            "ping" => Self::Ping,
            "logging/setLevel" => Self::SetLevel,
            "resources/subscribe" => Self::Subscribe,
            "resources/unsubscribe" => Self::Unsubscribe,
            "subscriptions/listen" => Self::Listen,
            "tools/list" => Self::ToolsList,
            "tools/call" => Self::ToolsCall,
            "prompts/list" => Self::PromptsList,
            "prompts/get" => Self::PromptsGet,
            "resources/list" => Self::ResourcesList,
            "resources/templates/list" => Self::TemplatesList,
            "resources/read" => Self::ResourcesRead,
            "completion/complete" => Self::Complete,
            _ => return None,
        })
    }

    fn belongs(self) -> Belongs {
        match self {
            Self::Initialize | Self::Ping | Self::SetLevel | Self::Subscribe | Self::Unsubscribe => {
                Belongs::Legacy
            }
            Self::Discover | Self::Listen => Belongs::Modern,
            _ => Belongs::Both,
        }
    }

    /// Modern results of these methods carry `ttlMs` and `cacheScope`.
    fn cacheable(self) -> bool {
        matches!(
            self,
            Self::Discover
                | Self::ToolsList
                | Self::PromptsList
                | Self::ResourcesList
                | Self::TemplatesList
                | Self::ResourcesRead
        )
    }
}

/// Aborts the task it holds when dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Answer `req` and write the response (none if it was cancelled). A panicking handler gets an
/// internal error, not silence.
pub async fn run(conn: Arc<Conn>, req: Request, cancel: watch::Receiver<bool>) {
    let mut inner = AbortOnDrop(tokio::spawn(answer(conn.clone(), req.clone(), cancel.clone())));
    let outcome = match (&mut inner.0).await {
        Ok(outcome) => outcome,
        Err(e) if e.is_panic() => {
            Err(RpcError::internal(format!("{} failed: the handler panicked", req.method)))
        }
        Err(_) => Ok(None),
    };
    conn.finish(&req.id);
    if *cancel.borrow() {
        return;
    }
    match outcome {
        Ok(Some(result)) => conn.respond(wire::response(&req.id, &result)).await,
        Ok(None) => {}
        Err(e) => conn.respond(wire::error_response(Some(&req.id), &e)).await,
    }
}

/// The result text for `req`; `None` when nothing is to be sent.
async fn answer(
    conn: Arc<Conn>,
    req: Request,
    cancel: watch::Receiver<bool>,
) -> Result<Option<String>, RpcError> {
    let server_era = conn.config.era;
    let method = Method::parse(&req.method).ok_or_else(|| RpcError::method_not_found(&req.method))?;
    let req_era = admit(method, server_era, &req)?;
    let ctx = Ctx::new(conn.clone(), req.id.clone(), req_era, &req.params, cancel);
    let out = match route(&conn, method, &req.params, ctx).await {
        Ok(out) => out,
        Err(HandlerError::Cancelled) => return Ok(None),
        Err(HandlerError::Rpc(e)) => return Err(e),
        Err(HandlerError::Tool(msg)) => return Err(RpcError::internal(msg)),
        Err(HandlerError::InputRequired(_)) => {
            return Err(RpcError::internal(format!("{} cannot ask for input", req.method)));
        }
    };
    Ok(Some(match req_era {
        RequestEra::Legacy => out.into_string(),
        RequestEra::Modern => decorate_modern(&conn, method, out),
    }))
}

/// Check that `method` exists for this server and request, and return the request's era.
fn admit(method: Method, server_era: Era, req: &Request) -> Result<RequestEra, RpcError> {
    match (method.belongs(), server_era) {
        (Belongs::Legacy, Era::Modern) if method == Method::Initialize => {
            let requested = req.params.get("protocolVersion").cloned().unwrap_or(Value::Null);
            return Err(era::unsupported_version(server_era, &requested));
        }
        (Belongs::Legacy, Era::Modern) | (Belongs::Modern, Era::Legacy) => {
            return Err(RpcError::method_not_found(&req.method));
        }
        _ => {}
    }
    let req_era = era::classify(server_era, &req.params)?;
    match (method.belongs(), req_era) {
        (Belongs::Legacy, RequestEra::Modern) => Err(RpcError::method_not_found(&req.method)),
        (Belongs::Modern, RequestEra::Legacy) => Err(RpcError::invalid_params(format!(
            "{} needs _meta[\"{}\"] = \"{}\"",
            req.method,
            era::META_PROTOCOL_VERSION,
            era::MODERN
        ))),
        _ => Ok(req_era),
    }
}

/// Add `resultType` (and for cacheable results `ttlMs` and `cacheScope`) to a modern result,
/// and `_meta` naming the server unless the result has a `_meta` of its own.
fn decorate_modern(conn: &Conn, method: Method, out: Output) -> String {
    let c = &conn.config;
    let mut text = out.into_string();
    if !text.contains(r#""_meta""#) {
        text =
            append_members(&text, &format!(r#""_meta":{{"{}":{}}}"#, era::META_SERVER_INFO, c.server_info()));
    }
    if text.trim_start().starts_with(r#"{"resultType""#) {
        return text;
    }
    let mut front = r#""resultType":"complete""#.to_owned();
    if method.cacheable() {
        front.push_str(&format!(
            r#","ttlMs":{},"cacheScope":{}"#,
            c.cache_ttl_ms,
            json!(c.cache_scope.as_str())
        ));
    }
    prepend_members(&text, &front)
}

async fn route(conn: &Arc<Conn>, method: Method, params: &Value, ctx: Ctx) -> HandlerResult {
    match method {
        Method::Initialize => Ok(initialize(conn, params)),
        Method::Discover => Ok(discover(conn)),
        Method::Ping | Method::Unsubscribe | Method::Subscribe | Method::SetLevel => {
            session_call(conn, method, params)
        }
        Method::Listen => listen(conn, params, ctx).await,
        Method::ToolsList => list(conn, "tools", params),
        Method::PromptsList => list(conn, "prompts", params),
        Method::ResourcesList => list(conn, "resources", params),
        Method::TemplatesList => list(conn, "resourceTemplates", params),
        Method::ToolsCall => call_tool(conn, params, ctx).await,
        Method::PromptsGet => get_prompt(conn, params, ctx).await,
        Method::ResourcesRead => read_resource(conn, params, ctx).await,
        Method::Complete => complete(conn, params, ctx).await,
    }
}

fn initialize(conn: &Conn, params: &Value) -> Output {
    conn.subs.open_legacy();
    conn.set_client_capabilities(params.get("capabilities").cloned().unwrap_or_else(|| json!({})));
    let version = era::negotiate_legacy(params.get("protocolVersion").and_then(Value::as_str));
    let c = &conn.config;
    let mut text = format!(
        r#"{{"protocolVersion":"{version}","capabilities":{},"serverInfo":{}"#,
        c.capabilities(RequestEra::Legacy),
        c.server_info()
    );
    if let Some(i) = &c.instructions {
        text.push_str(&format!(r#","instructions":{}"#, json!(i)));
    }
    text.push('}');
    Output::raw(text)
}

fn discover(conn: &Conn) -> Output {
    let c = &conn.config;
    let versions = era::supported_versions(c.era);
    let mut text = format!(
        r#"{{"supportedVersions":{},"capabilities":{}"#,
        json!(versions),
        c.capabilities(RequestEra::Modern)
    );
    if let Some(i) = &c.instructions {
        text.push_str(&format!(r#","instructions":{}"#, json!(i)));
    }
    text.push('}');
    Output::raw(text)
}

/// `ping`, `logging/setLevel`, `resources/subscribe` and `resources/unsubscribe` (legacy).
fn session_call(conn: &Conn, method: Method, params: &Value) -> HandlerResult {
    let string = |key: &str| {
        params
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params(format!("missing `{key}`")))
    };
    match method {
        Method::SetLevel => {
            let level = string("level")?;
            let level = Level::parse(level)
                .ok_or_else(|| RpcError::invalid_params(format!("unknown level `{level}`")))?;
            conn.set_log_level(level);
        }
        Method::Subscribe => conn.subs.subscribe(string("uri")?),
        Method::Unsubscribe => conn.subs.unsubscribe(string("uri")?),
        _ => {}
    }
    Ok(Output::empty())
}

/// `subscriptions/listen`: acknowledge, then hold the stream open until the client cancels it.
async fn listen(conn: &Arc<Conn>, params: &Value, ctx: Ctx) -> HandlerResult {
    let filter = Filter::parse(params.get("notifications").unwrap_or(&Value::Null));
    let accepted = conn.config.offers.accept(filter);
    let id = ctx.request_id().clone();
    conn.subs.listen(&id, accepted.clone());
    let mut ack = Map::new();
    ack.insert("notifications".into(), accepted.to_value());
    conn.send(listener_line(&id, "notifications/subscriptions/acknowledged", ack)).await;
    ctx.cancelled().await;
    conn.subs.stop_listening(&id);
    Err(HandlerError::Cancelled)
}

fn list(conn: &Conn, key: &str, params: &Value) -> HandlerResult {
    let cursor = match params.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(RpcError::invalid_params("cursor must be a string").into()),
    };
    let r = &conn.registry;
    let size = conn.config.page_size;
    let (defs, next) = match key {
        "tools" => read(&r.tools).page(cursor, size)?,
        "prompts" => read(&r.prompts).page(cursor, size)?,
        "resources" => read(&r.resources).page(cursor, size)?,
        _ => read(&r.templates).page(cursor, size)?,
    };
    let mut text = String::with_capacity(32 + defs.iter().map(|d| d.len() + 1).sum::<usize>());
    text.push_str(&format!(r#"{{"{key}":["#));
    for (i, d) in defs.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(d);
    }
    text.push(']');
    if let Some(n) = next {
        text.push_str(&format!(r#","nextCursor":{}"#, json!(n)));
    }
    text.push('}');
    Ok(Output::raw(text))
}

fn name_param<'a>(params: &'a Value, key: &str) -> Result<&'a str, RpcError> {
    params
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params(format!("missing `{key}`")))
}

/// Read a modern retry's inputs into `ctx`; legacy requests carry none.
fn with_inputs(ctx: Ctx, params: &Value, subject: &str) -> Result<Ctx, RpcError> {
    match ctx.era() {
        RequestEra::Legacy => Ok(ctx),
        RequestEra::Modern => Ok(ctx.with_inputs(mrtr::read_inputs(params, subject)?)),
    }
}

/// Turn a handler's request for input into an `InputRequiredResult` (modern only).
fn input_round(out: HandlerResult, ctx: &Ctx, subject: &str) -> HandlerResult {
    match out {
        Err(HandlerError::InputRequired(ir)) if ctx.era() == RequestEra::Modern => {
            Ok(ir.to_output(&encode_state(subject, &ctx.inputs().responses)))
        }
        other => other,
    }
}

async fn call_tool(conn: &Conn, params: &Value, ctx: Ctx) -> HandlerResult {
    let name = name_param(params, "name")?;
    let args = match params.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(a @ Value::Object(_)) => a.clone(),
        Some(_) => return Err(RpcError::invalid_params("arguments must be an object").into()),
    };
    let handler = read(&conn.registry.tools)
        .get(name)
        .ok_or_else(|| RpcError::invalid_params(format!("unknown tool `{name}`")))?;
    let subject = format!("tools/call:{name}");
    let ctx = with_inputs(ctx, params, &subject)?;
    match input_round(handler(args, ctx.clone()).await, &ctx, &subject) {
        Err(HandlerError::Tool(msg)) => Ok(Output::tool_error(msg)),
        other => other,
    }
}

async fn get_prompt(conn: &Conn, params: &Value, ctx: Ctx) -> HandlerResult {
    let name = name_param(params, "name")?;
    let args = params.get("arguments").and_then(Value::as_object).cloned().unwrap_or_default();
    let handler = read(&conn.registry.prompts)
        .get(name)
        .ok_or_else(|| RpcError::invalid_params(format!("unknown prompt `{name}`")))?;
    let subject = format!("prompts/get:{name}");
    let ctx = with_inputs(ctx, params, &subject)?;
    input_round(handler(args, ctx.clone()).await, &ctx, &subject)
}

async fn read_resource(conn: &Conn, params: &Value, ctx: Ctx) -> HandlerResult {
    let uri = name_param(params, "uri")?;
    let Some((handler, vars)) = conn.registry.reader(uri) else {
        return Err(ctx.resource_not_found(uri));
    };
    let subject = format!("resources/read:{uri}");
    let ctx = with_inputs(ctx, params, &subject)?;
    let out = handler(ReadRequest { uri: uri.to_owned(), vars }, ctx.clone()).await;
    input_round(out, &ctx, &subject)
}

async fn complete(conn: &Conn, params: &Value, ctx: Ctx) -> HandlerResult {
    let handler =
        conn.registry.completion.clone().ok_or_else(|| RpcError::method_not_found("completion/complete"))?;
    let reference = params.get("ref").ok_or_else(|| RpcError::invalid_params("missing `ref`"))?;
    let ref_type = name_param(reference, "type")?.to_owned();
    let ref_name =
        reference.get("name").or_else(|| reference.get("uri")).and_then(Value::as_str).unwrap_or_default();
    let argument = params.get("argument").ok_or_else(|| RpcError::invalid_params("missing `argument`"))?;
    let req = CompletionRequest {
        ref_type,
        ref_name: ref_name.to_owned(),
        argument: name_param(argument, "name")?.to_owned(),
        value: argument.get("value").and_then(Value::as_str).unwrap_or_default().to_owned(),
        context: params.pointer("/context/arguments").and_then(Value::as_object).cloned().unwrap_or_default(),
    };
    let values = handler(req, ctx).await?;
    let total = values.len();
    let shown: Vec<String> = values.into_iter().take(100).collect();
    Ok(Output::json(&json!({ "completion": { "values": shown, "total": total, "hasMore": total > 100 } })))
}
