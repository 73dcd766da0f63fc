//! A test client on one end of a duplex and a test server on the other.
//!
//! Nothing here sleeps: reads wait for the next line (with a generous timeout that turns a hang
//! into a failure), and "nothing else was sent" is checked by closing the input and reading to
//! the end.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::task::JoinHandle;

use crate::kit::era::{META_CLIENT_CAPABILITIES, META_PROTOCOL_VERSION, MODERN};
use crate::kit::lines::{Line, LineReader};
use crate::kit::{Era, HandlerError, Level, Output, Prompt, Resource, Server, Shutdown, Template, Tool};

const PATIENCE: Duration = Duration::from_secs(10);

pub struct Client {
    input: WriteHalf<DuplexStream>,
    output: LineReader<ReadHalf<DuplexStream>>,
    server: JoinHandle<std::io::Result<Shutdown>>,
}

impl Client {
    pub fn start(server: Server) -> Self {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let (sr, sw) = tokio::io::split(server_io);
        let server = tokio::spawn(server.serve(sr, sw));
        let (cr, cw) = tokio::io::split(client_io);
        Self { input: cw, output: LineReader::new(cr, 1 << 20), server }
    }

    pub async fn send_line(&mut self, line: &str) {
        self.input.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    }

    pub async fn send(&mut self, message: Value) {
        self.send_line(&message.to_string()).await;
    }

    /// Send a request without waiting.
    pub async fn start_request(&mut self, id: Value, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })).await;
    }

    /// The next line as written.
    pub async fn recv_line(&mut self) -> String {
        let line = tokio::time::timeout(PATIENCE, self.output.next()).await.expect("server went silent");
        match line.unwrap() {
            Some(Line::Text(t)) => t,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The next line, parsed.
    pub async fn recv(&mut self) -> Value {
        let t = self.recv_line().await;
        serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
    }

    /// Read until the response with `id`; returns it and what came before.
    pub async fn response(&mut self, id: &Value) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let m = self.recv().await;
            if m.get("id") == Some(id) && m.get("method").is_none() {
                return (m, before);
            }
            before.push(m);
        }
    }

    /// Send a request and return its response.
    pub async fn request(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.start_request(id.clone(), method, params).await;
        self.response(&id).await.0
    }

    /// Close the input and return everything the server still wrote, and how it ended.
    pub async fn finish(mut self) -> (Vec<Value>, Shutdown) {
        self.input.shutdown().await.unwrap();
        let mut rest = Vec::new();
        while let Some(line) = tokio::time::timeout(PATIENCE, self.output.next()).await.unwrap().unwrap() {
            let Line::Text(t) = line else { panic!("unexpected {line:?}") };
            rest.push(serde_json::from_str(&t).unwrap());
        }
        let shutdown = tokio::time::timeout(PATIENCE, self.server).await.unwrap().unwrap().unwrap();
        (rest, shutdown)
    }
}

/// `params` for a modern request, with the `_meta` every modern request carries.
pub fn modern(params: Value) -> Value {
    modern_with(params, json!({}))
}

/// `params` for a modern request from a client with `capabilities`.
pub fn modern_with(mut params: Value, capabilities: Value) -> Value {
    params["_meta"][META_PROTOCOL_VERSION] = json!(MODERN);
    params["_meta"][META_CLIENT_CAPABILITIES] = capabilities;
    params
}

fn object_schema() -> Value {
    json!({ "type": "object" })
}

/// A server with a bit of everything, for the kit's tests.
pub fn test_server(era: Era) -> Server {
    Server::new("kit-test", "1.0.0")
        .era(era)
        .tool(Tool::new("echo", "Echo text", object_schema()).read_only(), |args: Value, _ctx| async move {
            Ok(Output::text(args["text"].as_str().unwrap_or_default()))
        })
        .tool(Tool::new("steps", "Reports 3 progress steps", object_schema()), |_args, ctx: crate::kit::Ctx| async move {
            for i in 1..=3 {
                ctx.progress(f64::from(i), Some(3.0), Some(&format!("step {i}"))).await;
            }
            Ok(Output::text("done"))
        })
        .tool(Tool::new("wait", "Waits until cancelled", object_schema()), |_args, ctx: crate::kit::Ctx| async move {
            ctx.cancelled().await;
            ctx.notify("test/saw_cancel", json!({ "id": ctx.request_id().raw() })).await;
            Err(HandlerError::Cancelled)
        })
        .tool(Tool::new("ask", "Asks the client to sample", object_schema()), |_args, ctx: crate::kit::Ctx| async move {
            let answer = ctx.input("s", "sampling/createMessage", json!({ "maxTokens": 5 })).await?;
            Ok(Output::text(answer["content"]["text"].as_str().unwrap_or("?")))
        })
        .tool(Tool::new("fail", "Fails", object_schema()), |_args, _ctx| async move {
            Err(HandlerError::Tool("it broke".into()))
        })
        .tool(Tool::new("panic", "Panics", object_schema()), |_args, _ctx| async move {
            if true {
                panic!("handler panic (expected by the test)");
            }
            Ok(Output::empty())
        })
        .tool(Tool::new("log", "Logs at each level", object_schema()), |_args, ctx: crate::kit::Ctx| async move {
            for level in [Level::Debug, Level::Warning] {
                ctx.log(level, Some("t"), json!(level.as_str())).await;
            }
            Ok(Output::empty())
        })
        .tool(Tool::new("grow", "Adds a tool", object_schema()), |_args, ctx: crate::kit::Ctx| async move {
            ctx.server().add_tool(Tool::new("new", "New", object_schema()), |_a, _c| async { Ok(Output::text("new")) }).await;
            ctx.server().resource_updated("kit://a").await;
            Ok(Output::empty())
        })
        .tool(Tool::new("t5", "Filler", object_schema()), |_args, _ctx| async { Ok(Output::empty()) })
        .prompt(Prompt::new("greet", "Greets").argument("name", "who", true), |args, _ctx| async move {
            let name = args.get("name").and_then(Value::as_str).unwrap_or("you").to_owned();
            Ok(Output::json(&json!({ "messages": [{ "role": "user", "content": { "type": "text", "text": format!("hi {name}") } }] })))
        })
        .resource(Resource::new("kit://a", "a").mime("text/plain"), |req, _ctx| async move {
            Ok(Output::resource_text(&req.uri, "text/plain", "A"))
        })
        .template(Template::new("kit://items/{id}", "items"), |req, _ctx| async move {
            Ok(Output::resource_text(&req.uri, "text/plain", format!("item {}", req.var("id").unwrap_or("?"))))
        })
        .completion(|req, _ctx| async move {
            Ok(crate::kit::complete_from(["alice", "bob", "albert"], &req.value))
        })
}
