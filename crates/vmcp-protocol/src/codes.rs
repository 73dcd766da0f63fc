//! Error codes: JSON-RPC's standard ones plus the seed's vMCP ranges (1xxx transport, 2xxx routing,
//! 3xxx permission, 4xxx protocol, 5xxx gateway), and the error object the gateway itself sends.
//!
//! Backend errors are never rebuilt from these: they pass through as raw JSON.

use serde_json::value::RawValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ErrorCode {
    ParseError = -32700,
    InvalidRequest = -32600,
    MethodNotFound = -32601,
    InvalidParams = -32602,
    InternalError = -32603,
    /// 2026-07-28: an HTTP header disagrees with the body.
    HeaderMismatch = -32020,
    /// 2026-07-28: the request needs a client capability it did not declare.
    MissingClientCapability = -32021,
    /// 2026-07-28: `data: {supported, requested}`.
    UnsupportedProtocolVersion = -32022,
    /// MCP: no such resource.
    ResourceNotFound = -32002,
    TransportError = 1000,
    ConnectionFailed = 1001,
    ConnectionTimeout = 1002,
    TransportClosed = 1003,
    NoServerFound = 2000,
    ServerUnavailable = 2001,
    RoutingFailed = 2002,
    AllServersDown = 2003,
    Unauthorized = 3000,
    PersonaNotFound = 3001,
    ServerNotAllowed = 3002,
    InsufficientPermissions = 3003,
    ProtocolError = 4000,
    UnsupportedVersion = 4001,
    InvalidMessage = 4002,
    GatewayError = 5000,
    BackendError = 5001,
    CacheError = 5002,
    ConfigurationError = 5003,
}

impl ErrorCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// An error produced by vMCP (not by a backend).
#[derive(Debug, Clone)]
pub struct RpcError {
    pub code: i32,
    pub message: String,
    /// Raw JSON for `error.data`.
    pub data: Option<Box<RawValue>>,
}

impl RpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code: code.code(), message: message.into(), data: None }
    }

    /// Attach `data` (any serializable value).
    pub fn with_data(mut self, data: impl serde::Serialize) -> Self {
        self.data = serde_json::value::to_raw_value(&data).ok();
        self
    }

    /// The `error` member's JSON text.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64 + self.message.len());
        out.push_str("{\"code\":");
        out.push_str(itoa(self.code as i64).as_str());
        out.push_str(",\"message\":");
        out.push_str(&serde_json::to_string(&self.message).unwrap_or_else(|_| "\"\"".into()));
        if let Some(data) = &self.data {
            out.push_str(",\"data\":");
            out.push_str(data.get());
        }
        out.push('}');
        out
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}

fn itoa(n: i64) -> String {
    n.to_string()
}
