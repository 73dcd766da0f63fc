//! JSON-RPC 2.0 as the kit reads and writes it: parsing one line into an [`Incoming`] message,
//! request ids kept exactly as the client wrote them, and the outgoing lines (responses, errors,
//! notifications, server->client requests) built as text.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// JSON-RPC and MCP error codes the kit sends: `vmcp_protocol`'s, as the kit's `i64`.
pub mod code {
    use vmcp_protocol::ErrorCode;

    pub const PARSE_ERROR: i64 = ErrorCode::ParseError as i64;
    pub const INVALID_REQUEST: i64 = ErrorCode::InvalidRequest as i64;
    pub const METHOD_NOT_FOUND: i64 = ErrorCode::MethodNotFound as i64;
    pub const INVALID_PARAMS: i64 = ErrorCode::InvalidParams as i64;
    pub const INTERNAL_ERROR: i64 = ErrorCode::InternalError as i64;
    /// MCP (legacy): `resources/read` of a URI nobody serves.
    pub const RESOURCE_NOT_FOUND: i64 = ErrorCode::ResourceNotFound as i64;
    /// 2026-07-28: the request lacks a client capability the server needs.
    pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = ErrorCode::MissingClientCapability as i64;
    /// 2026-07-28: the request names a protocol version the server does not speak.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = ErrorCode::UnsupportedProtocolVersion as i64;
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Box<Value>>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(Box::new(data));
        self
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(code::METHOD_NOT_FOUND, format!("method not found: {method}"))
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(code::INTERNAL_ERROR, message)
    }

    pub fn to_value(&self) -> Value {
        let mut v = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            v["data"] = (**data).clone();
        }
        v
    }

    /// Read an error object a client sent.
    pub fn from_value(v: &Value) -> Self {
        let code = v.get("code").and_then(Value::as_i64).unwrap_or(code::INTERNAL_ERROR);
        let message = v.get("message").and_then(Value::as_str).unwrap_or("error").to_owned();
        Self { code, message, data: v.get("data").cloned().map(Box::new) }
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}

/// The error for a `resources/read` of an unknown URI in `era`.
pub fn resource_not_found(uri: &str, era: super::era::RequestEra) -> RpcError {
    let code = match era {
        super::era::RequestEra::Legacy => code::RESOURCE_NOT_FOUND,
        super::era::RequestEra::Modern => code::INVALID_PARAMS,
    };
    RpcError::new(code, format!("resource not found: {uri}")).with_data(json!({ "uri": uri }))
}

/// A request id, kept as the client wrote it and echoed byte for byte.
#[derive(Debug, Clone)]
pub struct Id {
    raw: String,
    key: String,
}

impl Id {
    fn from_raw(raw: &RawValue) -> Self {
        let raw = raw.get().to_owned();
        let key = serde_json::from_str::<Value>(&raw).map(|v| key_of(&v)).unwrap_or_else(|_| raw.clone());
        Self { raw, key }
    }

    /// The JSON text of the id.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// A normalized form for maps: `1` and `"1"` differ, `"a"` and `"\u0061"` do not.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

/// The map key of an id given as a JSON value (e.g. `notifications/cancelled`'s `requestId`).
pub fn key_of(id: &Value) -> String {
    id.to_string()
}

/// A request from the client.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: Id,
    pub method: String,
    /// `Value::Null` when the request had no params.
    pub params: Value,
}

/// One message read from the client.
#[derive(Debug, Clone)]
pub enum Incoming {
    Request(Request),
    Notification {
        method: String,
        params: Value,
    },
    /// The client's answer to a server->client request.
    Response {
        id: Id,
        outcome: Result<Value, RpcError>,
    },
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    id: Option<Box<RawValue>>,
    #[serde(default)]
    method: Option<Value>,
    #[serde(default)]
    params: Option<Value>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

/// A line that is not a message: answer with this error (and this id, if one could be read).
#[derive(Debug, Clone)]
pub struct Rejected {
    pub id: Option<Id>,
    pub error: RpcError,
}

/// Parse one line.
pub fn parse(line: &str) -> Result<Incoming, Rejected> {
    let value: &RawValue = serde_json::from_str(line).map_err(|e| Rejected {
        id: None,
        error: RpcError::new(code::PARSE_ERROR, format!("parse error: {e}")),
    })?;
    let text = value.get().trim_start();
    if !text.starts_with('{') {
        let message =
            if text.starts_with('[') { "batches are not supported" } else { "not a JSON-RPC object" };
        return Err(Rejected { id: None, error: RpcError::new(code::INVALID_REQUEST, message) });
    }
    let env: Envelope = serde_json::from_str(line)
        .map_err(|e| Rejected { id: None, error: RpcError::new(code::INVALID_REQUEST, e.to_string()) })?;
    let id = env.id.as_deref().map(Id::from_raw);
    let params = env.params.unwrap_or(Value::Null);
    match (env.method, id) {
        (Some(Value::String(method)), Some(id)) => Ok(Incoming::Request(Request { id, method, params })),
        (Some(Value::String(method)), None) => Ok(Incoming::Notification { method, params }),
        (Some(_), id) => {
            Err(Rejected { id, error: RpcError::new(code::INVALID_REQUEST, "method must be a string") })
        }
        (None, Some(id)) => {
            let outcome = match (env.result, env.error) {
                (_, Some(e)) => Err(RpcError::from_value(&e)),
                (Some(r), None) => Ok(r),
                (None, None) => Ok(Value::Null),
            };
            Ok(Incoming::Response { id, outcome })
        }
        (None, None) => {
            Err(Rejected { id: None, error: RpcError::new(code::INVALID_REQUEST, "no method and no id") })
        }
    }
}

/// A success response carrying `result` (JSON text).
pub fn response(id: &Id, result: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{},"result":{}}}"#, id.raw(), result)
}

/// An error response; `id` is `null` when the request's id could not be read.
pub fn error_response(id: Option<&Id>, error: &RpcError) -> String {
    let id = id.map_or("null", Id::raw);
    format!(r#"{{"jsonrpc":"2.0","id":{},"error":{}}}"#, id, error.to_value())
}

/// A notification.
pub fn notification(method: &str, params: Option<&Value>) -> String {
    let mut v = json!({ "jsonrpc": "2.0", "method": method });
    if let Some(p) = params {
        v["params"] = p.clone();
    }
    v.to_string()
}

/// A server->client request.
pub fn request(id: u64, method: &str, params: Option<&Value>) -> String {
    let mut v = json!({ "jsonrpc": "2.0", "id": id, "method": method });
    if let Some(p) = params {
        v["params"] = p.clone();
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(line: &str) -> (Option<String>, i64) {
        match parse(line) {
            Err(r) => (r.id.map(|i| i.raw().to_owned()), r.error.code),
            Ok(m) => panic!("accepted {line}: {m:?}"),
        }
    }

    #[test]
    fn classifies_messages() {
        let cases = [
            (r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#, "request"),
            (r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, "notification"),
            (r#"{"jsonrpc":"2.0","id":"s1","result":{}}"#, "response"),
            (r#"{"jsonrpc":"2.0","id":"s1","error":{"code":-1,"message":"no"}}"#, "response"),
        ];
        for (line, kind) in cases {
            let got = match parse(line).unwrap() {
                Incoming::Request(_) => "request",
                Incoming::Notification { .. } => "notification",
                Incoming::Response { .. } => "response",
            };
            assert_eq!(got, kind, "{line}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_message() {
        assert_eq!(rejected("{not json"), (None, code::PARSE_ERROR));
        assert_eq!(rejected("[1,2]"), (None, code::INVALID_REQUEST));
        assert_eq!(rejected("42"), (None, code::INVALID_REQUEST));
        assert_eq!(rejected(r#"{"id":3,"method":5}"#), (Some("3".into()), code::INVALID_REQUEST));
    }

    #[test]
    fn ids_are_echoed_exactly() {
        let Incoming::Request(r) = parse(r#"{"id":123456789012345678901234567890,"method":"x"}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            response(&r.id, "{}"),
            r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"result":{}}"#
        );
        let Incoming::Request(r) = parse(r#"{"id":"a\u0062","method":"x"}"#).unwrap() else { panic!() };
        assert_eq!(r.id.raw(), r#""a\u0062""#);
        assert_eq!(r.id.key(), key_of(&json!("ab")));
    }
}
