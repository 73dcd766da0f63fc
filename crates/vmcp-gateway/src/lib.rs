//! The vMCP gateway: one MCP endpoint in front of many MCP servers.
//!
//! A client message enters through a front (`front::stdio`), becomes a `Message`, and runs
//! through `dispatch`: era check, then a local answer (`initialize`, `server/discover`, `ping`),
//! a list fan-out (`lists`), a routed request (`route`, via the `catalog` and `policy`), or a
//! vMCP method (`ext`). Requests reach backends through `upstream`; what backends send on their
//! own comes back through `relay`. See ARCHITECTURE.md.

pub mod capabilities;
pub mod catalog;
pub mod dispatch;
mod era;
pub mod ext;
pub mod front;
pub mod gateway;
mod input_bridge;
pub mod listen;
pub mod lists;
mod log_level;
pub mod mounted;
pub mod naming;
pub mod param_headers;
pub mod persona_watch;
pub mod policy;
mod relay;
pub mod reload;
pub mod resilience;
pub mod route;
pub mod session;
mod stats;
mod subscriptions;
pub mod tasks;
pub mod upstream;
pub mod uri_template;
mod watch;

pub use gateway::Gateway;
pub use policy::Caller;
