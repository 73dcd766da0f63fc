//! Small MCP servers built into vmcp and a fault-injecting test fixture, on a minimal dual-era
//! stdio server kit.
//!
//! - [`kit`]: the server kit (framing, both eras, handlers, progress, cancellation, MRTR).
//! - [`builtin`]: `clock`, `notes`, `utils`, served by `vmcp builtin NAME` ([`run_builtin`]).
//! - [`fixture`]: the test fixture behind `vmcp-fixture` ([`fixture::fixture_main`]).

pub mod builtin;
pub mod fixture;
pub mod kit;

pub use builtin::{BUILTIN_NAMES, run_builtin};
