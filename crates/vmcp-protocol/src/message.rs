//! The JSON-RPC 2.0 envelope with raw members.
//!
//! A `Message` reads only `id` and `method`; `params`, `result` and `error` stay the peer's bytes.
//! Writers build outgoing envelopes around raw payloads without re-serializing them.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::codes::{ErrorCode, RpcError};

/// One JSON-RPC message as received.
#[derive(Debug, Deserialize)]
pub struct Message {
    #[serde(default)]
    jsonrpc: Option<Box<RawValue>>,
    /// Any JSON-RPC id form (string, integer of any size), kept verbatim; `null` is kept too.
    #[serde(default, deserialize_with = "present")]
    pub id: Option<Box<RawValue>>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub params: Option<Box<RawValue>>,
    #[serde(default)]
    pub result: Option<Box<RawValue>>,
    #[serde(default)]
    pub error: Option<Box<RawValue>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Request,
    Notification,
    Response,
}

/// Why a frame is not a usable message; each maps to a JSON-RPC error for the peer.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("parse error: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid request: {0}")]
    Invalid(&'static str),
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
}

impl ParseError {
    /// The error to send back (with `id: null`, since the id could not be trusted).
    pub fn to_rpc(&self) -> RpcError {
        match self {
            ParseError::Json(e) => RpcError::new(ErrorCode::ParseError, format!("parse error: {e}")),
            ParseError::Invalid(what) => {
                RpcError::new(ErrorCode::InvalidRequest, format!("invalid request: {what}"))
            }
            ParseError::TooLarge { .. } => RpcError::new(ErrorCode::InvalidRequest, self.to_string()),
        }
    }
}

/// The raw `id` of a message known only by its first bytes (an oversized line that was not
/// kept): found when the top-level `id` member lies complete within `head`, as it does in what
/// SDKs write (`{"jsonrpc":"2.0","id":7,"result":...`). A string or an integer; else `None`.
pub fn peek_id(head: &[u8]) -> Option<&str> {
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
    };
    let mut id = None;
    // The walk stops where the head was cut; a value that reaches the cut may be cut short.
    let _ = crate::splice::scan_members(text, |m| {
        if m.key == "id" {
            id = (m.span.end < text.len()).then_some(m.value);
            return false;
        }
        true
    });
    let id = id?;
    let integer = id.trim_start_matches('-').bytes().all(|c| c.is_ascii_digit()) && !id.ends_with('-');
    (id.starts_with('"') || integer).then_some(id)
}

/// Keep a member that is present, even when it is `null` (serde would make that `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

impl Message {
    /// Parse and check one message (not a batch).
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let msg: Message = serde_json::from_slice(bytes)?;
        msg.check()?;
        Ok(msg)
    }

    fn check(&self) -> Result<(), ParseError> {
        match self.jsonrpc.as_deref().map(RawValue::get) {
            Some("\"2.0\"") => {}
            _ => return Err(ParseError::Invalid("`jsonrpc` must be \"2.0\"")),
        }
        if let Some(id) = &self.id {
            let first = id.get().as_bytes().first().copied();
            if !matches!(first, Some(b'"' | b'-' | b'0'..=b'9')) {
                // null ids are kept for error responses (a peer may answer a parse error with id null).
                if !(id.get() == "null" && self.method.is_none()) {
                    return Err(ParseError::Invalid("`id` must be a string or a number"));
                }
            }
        }
        match (&self.method, &self.result, &self.error) {
            (Some(_), None, None) => Ok(()),
            (None, Some(_), None) | (None, None, Some(_)) if self.id.is_some() => Ok(()),
            (None, None, None) => Err(ParseError::Invalid("a message needs `method`, `result` or `error`")),
            _ => Err(ParseError::Invalid("`method`, `result` and `error` are exclusive")),
        }
    }

    pub fn kind(&self) -> MessageKind {
        match (&self.method, &self.id) {
            (Some(_), Some(_)) => MessageKind::Request,
            (Some(_), None) => MessageKind::Notification,
            (None, _) => MessageKind::Response,
        }
    }

    pub fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("")
    }

    /// Raw params text, `None` when absent.
    pub fn params(&self) -> Option<&str> {
        self.params.as_deref().map(RawValue::get)
    }

    /// The id as a number, when it is a non-negative integer that fits `u64`.
    pub fn id_u64(&self) -> Option<u64> {
        self.id.as_deref().and_then(|id| id.get().parse().ok())
    }
}

/// Does this frame hold a JSON array (a batch)?
pub fn is_batch(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

/// Split a batch into its raw elements.
pub fn split_batch(bytes: &[u8]) -> Result<Vec<Box<RawValue>>, ParseError> {
    let items: Vec<Box<RawValue>> = serde_json::from_slice(bytes)?;
    if items.is_empty() {
        return Err(ParseError::Invalid("empty batch"));
    }
    Ok(items)
}

/// `{"jsonrpc":"2.0","id":ID,"method":M,"params":P}`.
pub fn request(id: &str, method: &str, params: Option<&str>) -> String {
    let mut out = String::with_capacity(48 + method.len() + params.map_or(0, str::len));
    out.push_str("{\"jsonrpc\":\"2.0\",\"id\":");
    out.push_str(id);
    push_method(&mut out, method, params);
    out
}

/// `{"jsonrpc":"2.0","method":M,"params":P}`.
pub fn notification(method: &str, params: Option<&str>) -> String {
    let mut out = String::with_capacity(40 + method.len() + params.map_or(0, str::len));
    out.push_str("{\"jsonrpc\":\"2.0\"");
    push_method(&mut out, method, params);
    out
}

fn push_method(out: &mut String, method: &str, params: Option<&str>) {
    out.push_str(",\"method\":");
    if method.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-.$".contains(&b)) {
        out.push('"');
        out.push_str(method);
        out.push('"');
    } else {
        out.push_str(&crate::splice::quote(method));
    }
    if let Some(p) = params {
        out.push_str(",\"params\":");
        out.push_str(p);
    }
    out.push('}');
}

/// `{"jsonrpc":"2.0","id":ID,"result":R}`.
pub fn response(id: &str, result: &str) -> String {
    let mut out = String::with_capacity(36 + id.len() + result.len());
    out.push_str("{\"jsonrpc\":\"2.0\",\"id\":");
    out.push_str(id);
    out.push_str(",\"result\":");
    out.push_str(result);
    out.push('}');
    out
}

/// `{"jsonrpc":"2.0","id":ID,"error":E}` with a raw error object.
pub fn error_response(id: Option<&str>, error: &str) -> String {
    let id = id.unwrap_or("null");
    let mut out = String::with_capacity(36 + id.len() + error.len());
    out.push_str("{\"jsonrpc\":\"2.0\",\"id\":");
    out.push_str(id);
    out.push_str(",\"error\":");
    out.push_str(error);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_and_keeps_raw_members() {
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":123456789012345678901234,"method":"tools/call","params":{"b":1.0,"a":2}}"#).unwrap();
        assert_eq!(m.kind(), MessageKind::Request);
        assert_eq!(m.id.as_deref().unwrap().get(), "123456789012345678901234");
        assert_eq!(m.params(), Some(r#"{"b":1.0,"a":2}"#));
        assert_eq!(m.id_u64(), None);
        let n = Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(n.kind(), MessageKind::Notification);
        let r = Message::parse(br#"{"jsonrpc":"2.0","id":"x","result":{}}"#).unwrap();
        assert_eq!(r.kind(), MessageKind::Response);
    }

    #[test]
    fn rejects_what_is_not_json_rpc() {
        let cases: [(&[u8], i32); 7] = [
            (b"{not json", -32700),
            (br#"{"id":1,"method":"x"}"#, -32600),
            (br#"{"jsonrpc":"1.0","id":1,"method":"x"}"#, -32600),
            (br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#, -32600),
            (br#"{"jsonrpc":"2.0","id":null,"method":"x"}"#, -32600),
            (br#"{"jsonrpc":"2.0","id":1}"#, -32600),
            (br#"{"jsonrpc":"2.0","id":1,"method":"x","result":{}}"#, -32600),
        ];
        for (input, code) in cases {
            let err = Message::parse(input).unwrap_err();
            assert_eq!(err.to_rpc().code, code, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn writers_build_valid_envelopes() {
        let req = request("7", "tools/call", Some(r#"{"name":"x"}"#));
        assert_eq!(req, r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}}"#);
        assert_eq!(notification("a\"b", None), r#"{"jsonrpc":"2.0","method":"a\"b"}"#);
        assert_eq!(response("\"s\"", "{}"), r#"{"jsonrpc":"2.0","id":"s","result":{}}"#);
        let err = RpcError::new(ErrorCode::MethodNotFound, "method not found: x").to_json();
        let text = error_response(None, &err);
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"method not found: x"}}"#
        );
    }

    #[test]
    fn detects_batches() {
        assert!(is_batch(b"  [{}]"));
        assert!(!is_batch(b"{}"));
        assert_eq!(split_batch(br#"[{"a":1}, 2]"#).unwrap().len(), 2);
        assert!(split_batch(b"[]").is_err());
    }

    #[test]
    fn peek_id_finds_a_complete_top_level_id_in_a_prefix() {
        assert_eq!(peek_id(br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"na"#), Some("7"));
        assert_eq!(peek_id(br#"{"jsonrpc":"2.0","id":"a,b}","method":"x","params":{"#), Some(r#""a,b}""#));
        assert_eq!(peek_id(br#"{"params":{"id":1,"x":[1,{"y":"}"}]},"id":-12 ,"#), Some("-12"));
        // Cut inside the id, or the id comes after the cut: unknown.
        assert_eq!(peek_id(br#"{"jsonrpc":"2.0","id":12"#), None);
        assert_eq!(peek_id(br#"{"jsonrpc":"2.0","result":{"a":"#), None);
        assert_eq!(peek_id(br#"{"id":null,"error":{}}"#), None);
        assert_eq!(peek_id(b"not json at all"), None);
    }
}
