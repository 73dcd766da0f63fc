//! The MCP wire format as vMCP needs it: a JSON-RPC envelope whose payloads stay raw JSON,
//! lexical edits that leave every untouched byte as it was, NDJSON framing with a size cap,
//! protocol versions and error codes.
//!
//! Invariant: no IO and no knowledge of sessions, servers or routing.

pub mod codes;
pub mod framing;
pub mod message;
pub mod meta;
pub mod splice;
pub mod sse;
pub mod version;

pub use codes::{ErrorCode, RpcError};
pub use framing::{Frame, LineCodec};
pub use message::{Message, MessageKind, ParseError};
pub use version::{Era, ProtocolVersion};
