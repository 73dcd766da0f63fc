//! The `notes` built-in: a small note store persisted as JSON in `$VMCP_NOTES_DIR` (default
//! `./notes`). Tools `add_note`, `list_notes`, `read_note`, `delete_note`; resources `note://NAME`
//! (listed, plus the template `note://{name}`) with subscriptions; prompt `summarize_notes`.
//!
//! Adding or deleting a note sends `notifications/resources/list_changed`; changing one sends
//! `notifications/resources/updated` to its subscribers.

mod store;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Map, Value, json};

pub use store::{NOTES_DIR_ENV, Note, Store, check_name};

use crate::kit::{
    self, CompletionRequest, Ctx, Era, HandlerError, HandlerResult, Output, Prompt, ReadRequest, Resource,
    Server, Template, Tool,
};

type Shared = Arc<Mutex<Store>>;

const SCHEME: &str = "note://";

pub fn server() -> std::io::Result<Server> {
    Ok(server_with(Store::from_env()?))
}

/// The notes server over `store`.
pub fn server_with(store: Store) -> Server {
    let names = store.names();
    let shared: Shared = Arc::new(Mutex::new(store));
    let mut server = Server::new("notes", env!("CARGO_PKG_VERSION"))
        .title("Notes (built in)")
        .era(Era::Dual)
        .instructions("A small persistent note store. Notes are also resources: note://NAME.")
        .tool(add_tool(), bind(&shared, add_note))
        .tool(
            name_tool("list_notes", "List the notes (name, URI, size, last update).", false).read_only(),
            bind(&shared, list_notes),
        )
        .tool(
            name_tool("read_note", "Read one note.", true).read_only().idempotent(),
            bind(&shared, read_note),
        )
        .tool(
            name_tool("delete_note", "Delete a note.", true).hint("destructiveHint", true).idempotent(),
            bind(&shared, delete_note),
        )
        .template(
            Template::new("note://{name}", "note").mime("text/plain").description("A note by name"),
            bind(&shared, read_resource),
        )
        .prompt(summarize_prompt(), bind(&shared, summarize))
        .completion(bind(&shared, complete));
    for name in names {
        server = server.resource(resource_def(&name), bind(&shared, read_resource));
    }
    server
}

/// Give a handler the shared store.
fn bind<A, T, F, Fut>(store: &Shared, f: F) -> impl Fn(A, Ctx) -> Fut + Send + Sync + 'static
where
    F: Fn(Shared, A, Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let store = store.clone();
    move |a, ctx| f(store.clone(), a, ctx)
}

fn lock(store: &Shared) -> MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(PoisonError::into_inner)
}

fn resource_def(name: &str) -> Resource {
    Resource::new(&format!("{SCHEME}{name}"), name)
        .mime("text/plain")
        .description(&format!("The note `{name}`"))
}

fn add_tool() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "description": "1-64 letters, digits, _ - ." },
            "text": { "type": "string", "description": "The note's text (replaces an existing note)" },
        },
        "required": ["name", "text"],
    });
    Tool::new("add_note", "Add a note, or replace the text of an existing one.", schema).idempotent()
}

fn name_tool(name: &str, description: &str, with_name: bool) -> Tool {
    let schema = if with_name {
        json!({ "type": "object", "properties": { "name": { "type": "string" } }, "required": ["name"] })
    } else {
        json!({ "type": "object", "properties": {} })
    };
    Tool::new(name, description, schema)
}

fn summarize_prompt() -> Prompt {
    Prompt::new("summarize_notes", "Ask the assistant to summarize all notes.").argument(
        "focus",
        "What the summary should focus on",
        false,
    )
}

fn arg<'a>(args: &'a Value, key: &str) -> Result<&'a str, HandlerError> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| HandlerError::Tool(format!("`{key}` (a string) is required")))
}

fn io_error(e: std::io::Error) -> HandlerError {
    HandlerError::Tool(format!("could not save the notes: {e}"))
}

async fn add_note(store: Shared, args: Value, ctx: Ctx) -> HandlerResult {
    let (name, text) = (arg(&args, "name")?, arg(&args, "text")?);
    check_name(name).map_err(HandlerError::Tool)?;
    let created = lock(&store).put(name, text).map_err(io_error)?;
    let server = ctx.server();
    if created {
        server.add_resource(resource_def(name), bind(&store, read_resource)).await;
    }
    server.resource_updated(&format!("{SCHEME}{name}")).await;
    Ok(Output::text(format!("{} note `{name}`", if created { "added" } else { "updated" })))
}

async fn list_notes(store: Shared, _args: Value, _ctx: Ctx) -> HandlerResult {
    let list: Vec<Value> = lock(&store)
        .iter()
        .map(|(name, n)| json!({ "name": name, "uri": format!("{SCHEME}{name}"), "chars": n.text.chars().count(), "updated": n.updated }))
        .collect();
    Ok(Output::json(
        &json!({ "content": [{ "type": "text", "text": Value::Array(list.clone()).to_string() }], "structuredContent": { "notes": list } }),
    ))
}

async fn read_note(store: Shared, args: Value, _ctx: Ctx) -> HandlerResult {
    let name = arg(&args, "name")?;
    let text = lock(&store).get(name).map(|n| n.text.clone());
    text.map(Output::text).ok_or_else(|| HandlerError::Tool(format!("no note `{name}`")))
}

async fn delete_note(store: Shared, args: Value, ctx: Ctx) -> HandlerResult {
    let name = arg(&args, "name")?;
    let deleted = lock(&store).delete(name).map_err(io_error)?;
    if !deleted {
        return Err(HandlerError::Tool(format!("no note `{name}`")));
    }
    let uri = format!("{SCHEME}{name}");
    ctx.server().remove_resource(&uri).await;
    ctx.server().resource_updated(&uri).await;
    Ok(Output::text(format!("deleted note `{name}`")))
}

async fn read_resource(store: Shared, req: ReadRequest, ctx: Ctx) -> HandlerResult {
    let name = req.uri.strip_prefix(SCHEME).unwrap_or_default();
    let text = lock(&store).get(name).map(|n| n.text.clone());
    text.map(|t| Output::resource_text(&req.uri, "text/plain", t))
        .ok_or_else(|| ctx.resource_not_found(&req.uri))
}

async fn summarize(store: Shared, args: Map<String, Value>, _ctx: Ctx) -> HandlerResult {
    let mut text = String::from("Summarize these notes");
    if let Some(focus) = args.get("focus").and_then(Value::as_str).filter(|f| !f.is_empty()) {
        text.push_str(&format!(", focusing on {focus}"));
    }
    text.push_str(":\n");
    let guard = lock(&store);
    if guard.names().is_empty() {
        text.push_str("\n(there are no notes yet)\n");
    }
    for (name, note) in guard.iter() {
        text.push_str(&format!("\n## {name}\n{}\n", note.text));
    }
    drop(guard);
    Ok(Output::json(&json!({
        "description": "Summarize all notes",
        "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
    })))
}

async fn complete(store: Shared, req: CompletionRequest, _ctx: Ctx) -> Result<Vec<String>, HandlerError> {
    if req.ref_type == "ref/resource" && req.argument == "name" {
        let names = lock(&store).names();
        return Ok(kit::complete_from(names.iter().map(String::as_str), &req.value));
    }
    Ok(Vec::new())
}
