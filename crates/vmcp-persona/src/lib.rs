//! vMCP personas: named access sets that say which servers, and which of their tools, prompts
//! and resources, a caller may use. Secure by default: a new persona reaches nothing.
//!
//! - [`Persona::check`]: the decision the gateway's one policy function calls, per request and
//!   per listed item (pure, no allocation on the allow path).
//! - [`PersonaStore`]: one JSON file per persona under `config/personas/`, atomic writes, an
//!   advisory lock around every change; [`PersonaStore::snapshot`] gives the gateway an
//!   immutable [`Personas`] and [`PersonaStore::fingerprint`] tells it when to reload.
//! - [`tokens`]: API keys, stored as SHA-256 only, checked in constant time, optionally expiring.
//! - [`oauth`]: OAuth 2.1 resource-server mode (JWTs from a configured issuer, via JWKS).
//! - [`audit`]: the JSON-lines audit log.
//!
//! Dependencies point one way: this crate knows `vmcp-config` only, never the gateway.

pub mod audit;
mod error;
pub mod oauth;
mod pattern;
mod persona;
mod rules;
mod snapshot;
mod store;
mod timestamp;
pub mod tokens;

pub use error::PersonaError;
pub use pattern::Pattern;
pub use persona::{FORMAT_VERSION, Persona, RESERVED_NAMES, RawPersona, validate_name};
pub use rules::{Denied, Effect, Kind, RawRuleSet, RawServerRules, RuleKind};
pub use snapshot::Personas;
pub use store::PersonaStore;
pub use tokens::Authenticated;
