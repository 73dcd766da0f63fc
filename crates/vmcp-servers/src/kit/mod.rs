//! A small, dependable MCP server kit over stdio: newline-delimited JSON-RPC (stdout carries
//! only protocol, logs go to stderr), both protocol eras, concurrent handlers.
//!
//! Build a [`Server`], register tools, prompts, resources, templates and a completion handler,
//! then [`Server::serve`] (any reader/writer) or [`run_stdio`]. Handlers get a [`Ctx`] to send
//! progress, logs and notifications, to ask the client for input, and to notice cancellation.
//!
//! Map: `wire` (JSON-RPC messages) and `lines` (framing); `era` (versions, per-request era);
//! `server` (builder, read loop) -> `dispatch` (method table) -> `registry` (handlers);
//! `conn` (queues, in-flight, pending) and `subscriptions` (who hears what); `mrtr` (modern
//! input rounds); `output`, `defs`, `paging`, `uri_template`, `base64`, `level`.

pub mod base64;
mod conn;
mod ctx;
mod defs;
mod dispatch;
pub mod era;
mod level;
mod lines;
mod mrtr;
mod output;
mod paging;
mod registry;
mod server;
mod subscriptions;
pub mod uri_template;
pub mod wire;

#[cfg(test)]
pub(crate) mod tests;

pub use ctx::{Ctx, ServerHandle};
pub use defs::{Prompt, Resource, Template, Tool};
pub use era::{Era, RequestEra};
pub use level::Level;
pub use mrtr::{InputRequired, Inputs};
pub use output::{HandlerError, HandlerResult, Output};
pub use registry::{BoxFuture, CompletionRequest, ReadRequest};
pub use server::{Config, Intercept, MAX_IN_FLIGHT, Offers, OnCancel, Server, Shutdown, Verdict, run_stdio};
pub use subscriptions::Change;
pub use wire::{Id, Request, RpcError};

/// The values among `candidates` that start with `prefix` (case-insensitive), in order.
pub fn complete_from<'a>(candidates: impl IntoIterator<Item = &'a str>, prefix: &str) -> Vec<String> {
    let p = prefix.to_lowercase();
    candidates.into_iter().filter(|c| c.to_lowercase().starts_with(&p)).map(str::to_owned).collect()
}
