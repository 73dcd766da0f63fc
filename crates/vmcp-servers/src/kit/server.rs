//! The server: a builder that collects what it offers and how it behaves, and the stdio loop
//! that serves one client.
//!
//! The read loop parses each line in order and spawns one task per request; one writer task
//! owns the output. At end of input, requests still running get a short grace period, then the
//! loop returns [`Shutdown::Eof`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::conn::{Conn, OUT_QUEUE, write_loop};
use super::ctx::Ctx;
use super::defs::{Prompt, Resource, Template, Tool};
use super::dispatch;
use super::era::{Era, RequestEra};
use super::lines::{Line, LineReader, MAX_LINE};
use super::output::{HandlerError, HandlerResult, append_members};
use super::registry::{CompletionRequest, ReadRequest, Registry, boxed, write};
use super::subscriptions::Filter;
use super::uri_template::UriTemplate;
use super::wire::{self, Incoming, Request, RpcError, code};

/// Bound on requests answered at once; more get an error at once.
pub const MAX_IN_FLIGHT: usize = 4096;

/// What to do with a request before it is answered (fault injection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Answer,
    /// Never answer it.
    Ignore,
    /// Stop reading and end the server with this exit code; this request is not answered, those
    /// already running get the drain grace period.
    Exit(i32),
}

/// Looks at each request as it arrives.
pub type Intercept = Arc<dyn Fn(&Request) -> Verdict + Send + Sync>;

/// Told (with the `requestId`) when the client cancels a request in flight, before any later
/// message is read.
pub type OnCancel = Arc<dyn Fn(&Value) + Send + Sync>;

/// Why serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// The client closed the input.
    Eof,
    /// An intercept asked to exit with this code.
    Exit(i32),
}

/// Which kinds of things the server offers (fixed when serving starts).
#[derive(Debug, Clone, Copy, Default)]
pub struct Offers {
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
    pub completions: bool,
}

impl Offers {
    /// The part of a modern subscription filter this server can honour.
    pub fn accept(&self, f: Filter) -> Filter {
        Filter {
            tools_list_changed: f.tools_list_changed && self.tools,
            prompts_list_changed: f.prompts_list_changed && self.prompts,
            resources_list_changed: f.resources_list_changed && self.resources,
            resource_subscriptions: if self.resources { f.resource_subscriptions } else { Vec::new() },
        }
    }
}

/// How a server presents itself and behaves.
pub struct Config {
    pub name: String,
    pub version: String,
    pub title: Option<String>,
    pub instructions: Option<String>,
    pub era: Era,
    pub page_size: Option<usize>,
    /// Raw members appended to `capabilities`.
    pub capability_members: Vec<String>,
    /// `ttlMs` and `cacheScope` on modern cacheable results.
    pub cache_ttl_ms: u64,
    pub cache_scope: String,
    pub intercept: Option<Intercept>,
    pub on_cancel: Option<OnCancel>,
    /// A line written before every response (fault injection).
    pub preamble: Option<String>,
    /// How long requests still running at end of input may take to finish.
    pub drain: Duration,
    pub max_line: usize,
    pub offers: Offers,
}

impl Config {
    /// The `capabilities` object as JSON text.
    pub fn capabilities(&self, era: RequestEra) -> String {
        let o = self.offers;
        let mut caps = Map::new();
        if o.tools {
            caps.insert("tools".into(), json!({ "listChanged": true }));
        }
        if o.prompts {
            caps.insert("prompts".into(), json!({ "listChanged": true }));
        }
        if o.resources {
            caps.insert("resources".into(), json!({ "subscribe": true, "listChanged": true }));
        }
        if o.completions {
            caps.insert("completions".into(), json!({}));
        }
        if era == RequestEra::Legacy {
            caps.insert("logging".into(), json!({}));
        }
        let text = Value::Object(caps).to_string();
        self.capability_members.iter().fold(text, |t, m| append_members(&t, m))
    }

    /// The `serverInfo` object as JSON text.
    pub fn server_info(&self) -> String {
        let mut info = json!({ "name": self.name, "version": self.version });
        if let Some(t) = &self.title {
            info["title"] = json!(t);
        }
        info.to_string()
    }
}

/// A server under construction.
pub struct Server {
    config: Config,
    registry: Registry,
}

impl Server {
    pub fn new(name: &str, version: &str) -> Self {
        let config = Config {
            name: name.to_owned(),
            version: version.to_owned(),
            title: None,
            instructions: None,
            era: Era::Legacy,
            page_size: None,
            capability_members: Vec::new(),
            cache_ttl_ms: 0,
            cache_scope: "public".into(),
            intercept: None,
            on_cancel: None,
            preamble: None,
            drain: Duration::from_millis(500),
            max_line: MAX_LINE,
            offers: Offers::default(),
        };
        Self { config, registry: Registry::default() }
    }

    pub fn era(mut self, era: Era) -> Self {
        self.config.era = era;
        self
    }

    pub fn title(mut self, title: &str) -> Self {
        self.config.title = Some(title.to_owned());
        self
    }

    pub fn instructions(mut self, text: &str) -> Self {
        self.config.instructions = Some(text.to_owned());
        self
    }

    /// Paginate all four lists with pages of `size` (`None`: one page).
    pub fn page_size(mut self, size: Option<usize>) -> Self {
        self.config.page_size = size;
        self
    }

    /// Add raw members (JSON text without braces) to `capabilities`.
    pub fn capability_members(mut self, members: &str) -> Self {
        self.config.capability_members.push(members.to_owned());
        self
    }

    /// `ttlMs` and `cacheScope` (`public` or `private`) on modern cacheable results.
    pub fn cache_hint(mut self, ttl_ms: u64, scope: &str) -> Self {
        self.config.cache_ttl_ms = ttl_ms;
        self.config.cache_scope = scope.to_owned();
        self
    }

    pub fn intercept(mut self, f: impl Fn(&Request) -> Verdict + Send + Sync + 'static) -> Self {
        self.config.intercept = Some(Arc::new(f));
        self
    }

    /// Call `f` with the `requestId` whenever the client cancels a request in flight.
    pub fn on_cancel(mut self, f: impl Fn(&Value) + Send + Sync + 'static) -> Self {
        self.config.on_cancel = Some(Arc::new(f));
        self
    }

    /// Write `line` before every response (a fault: it is not JSON-RPC).
    pub fn response_preamble(mut self, line: &str) -> Self {
        self.config.preamble = Some(line.to_owned());
        self
    }

    pub fn drain_grace(mut self, grace: Duration) -> Self {
        self.config.drain = grace;
        self
    }

    pub fn max_line(mut self, bytes: usize) -> Self {
        self.config.max_line = bytes;
        self
    }

    pub fn tool<F, Fut>(self, tool: Tool, handler: F) -> Self
    where
        F: Fn(Value, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        write(&self.registry.tools).insert(tool.name().to_owned(), tool.to_text(), boxed(handler));
        self
    }

    pub fn prompt<F, Fut>(self, prompt: Prompt, handler: F) -> Self
    where
        F: Fn(Map<String, Value>, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        write(&self.registry.prompts).insert(prompt.name().to_owned(), prompt.to_text(), boxed(handler));
        self
    }

    pub fn resource<F, Fut>(self, resource: Resource, reader: F) -> Self
    where
        F: Fn(ReadRequest, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        write(&self.registry.resources).insert(resource.uri().to_owned(), resource.to_text(), boxed(reader));
        self
    }

    /// A resource template; `reader` gets the URI and its variables.
    pub fn template<F, Fut>(self, template: Template, reader: F) -> Self
    where
        F: Fn(ReadRequest, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let matcher = Arc::new(UriTemplate::parse(template.uri_template()));
        let entry = (matcher, boxed(reader));
        write(&self.registry.templates).insert(template.uri_template().to_owned(), template.to_text(), entry);
        self
    }

    /// Answer `completion/complete` (the kit caps the values at 100 and sets `total`/`hasMore`).
    pub fn completion<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(CompletionRequest, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<String>, HandlerError>> + Send + 'static,
    {
        self.registry.completion = Some(boxed(handler));
        self
    }

    /// Serve one client on stdin/stdout.
    pub async fn serve_stdio(self) -> std::io::Result<Shutdown> {
        self.serve(tokio::io::stdin(), tokio::io::stdout()).await
    }

    /// Serve one client until its input ends (or an intercept says exit).
    pub async fn serve<R, W>(self, reader: R, writer: W) -> std::io::Result<Shutdown>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let Self { mut config, registry } = self;
        config.offers = Offers {
            tools: !super::registry::read(&registry.tools).is_empty(),
            prompts: !super::registry::read(&registry.prompts).is_empty(),
            resources: !super::registry::read(&registry.resources).is_empty()
                || !super::registry::read(&registry.templates).is_empty(),
            completions: registry.completion.is_some(),
        };
        let grace = config.drain;
        let (tx, rx) = mpsc::channel(OUT_QUEUE);
        let mut writer = tokio::spawn(write_loop(rx, writer, config.preamble.clone()));
        let conn = Arc::new(Conn::new(Arc::new(registry), Arc::new(config), tx));
        let mut tasks = JoinSet::new();
        let outcome = read_loop(&conn, reader, &mut tasks).await;
        if outcome.is_ok() {
            conn.fail_pending();
            let _ = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        }
        tasks.shutdown().await;
        conn.close();
        drop(conn);
        match tokio::time::timeout(grace, &mut writer).await {
            Ok(Ok(Err(e))) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e),
            Ok(_) => {}
            Err(_) => writer.abort(),
        }
        outcome
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    conn: &Arc<Conn>,
    reader: R,
    tasks: &mut JoinSet<()>,
) -> std::io::Result<Shutdown> {
    let mut lines = LineReader::new(reader, conn.config.max_line);
    while let Some(line) = lines.next().await? {
        while tasks.try_join_next().is_some() {}
        if let Some(code) = on_line(conn, line, tasks).await {
            return Ok(Shutdown::Exit(code));
        }
    }
    Ok(Shutdown::Eof)
}

/// Handle one line; `Some(code)` to exit.
async fn on_line(conn: &Arc<Conn>, line: Line, tasks: &mut JoinSet<()>) -> Option<i32> {
    let text = match line {
        Line::Text(t) => t,
        Line::TooLong => return reject(conn, "parse error: message too large").await,
        Line::NotUtf8 => return reject(conn, "parse error: not UTF-8").await,
    };
    match wire::parse(&text) {
        Err(r) => conn.respond(wire::error_response(r.id.as_ref(), &r.error)).await,
        Ok(Incoming::Response { id, outcome }) => {
            conn.resolve(&id, outcome);
        }
        Ok(Incoming::Notification { method, params }) => {
            if method == "notifications/cancelled"
                && let Some(id) = params.get("requestId")
                && conn.cancel(&wire::key_of(id))
                && let Some(f) = &conn.config.on_cancel
            {
                f(id);
            }
        }
        Ok(Incoming::Request(req)) => {
            let verdict = conn.config.intercept.as_ref().map_or(Verdict::Answer, |f| f(&req));
            match verdict {
                Verdict::Answer if tasks.len() >= MAX_IN_FLIGHT => {
                    let busy = RpcError::internal(format!(
                        "more than {MAX_IN_FLIGHT} requests in flight; retry later"
                    ));
                    conn.respond(wire::error_response(Some(&req.id), &busy)).await;
                }
                Verdict::Answer => {
                    let cancel = conn.begin(&req.id);
                    tasks.spawn(dispatch::run(conn.clone(), req, cancel));
                }
                Verdict::Ignore => {}
                Verdict::Exit(code) => return Some(code),
            }
        }
    }
    None
}

async fn reject(conn: &Conn, message: &str) -> Option<i32> {
    conn.respond(wire::error_response(None, &RpcError::new(code::PARSE_ERROR, message))).await;
    None
}

/// Run `server` on stdin/stdout on a runtime of its own; for a `main`.
pub fn run_stdio(server: Server) -> std::io::Result<Shutdown> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let outcome = rt.block_on(server.serve_stdio());
    rt.shutdown_timeout(Duration::from_millis(100));
    outcome
}
