//! What handlers return: a result object kept as JSON text, so vendor fields, big integers and
//! number spellings (`1.50`) reach the client exactly as written, plus [`HandlerError`].

use serde_json::{Value, json};

use super::mrtr::InputRequired;
use super::wire::RpcError;

/// A result object as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct Output(String);

/// What a handler returns.
pub type HandlerResult = Result<Output, HandlerError>;

/// Why a handler produced no ordinary result.
#[derive(Debug, Clone)]
pub enum HandlerError {
    /// Answer with this JSON-RPC error.
    Rpc(RpcError),
    /// The tool ran and failed: a `tools/call` result with `isError: true` and this text.
    Tool(String),
    /// 2026-07-28: the client must provide input and retry (an `InputRequiredResult`).
    InputRequired(InputRequired),
    /// The request was cancelled: send nothing.
    Cancelled,
}

impl From<RpcError> for HandlerError {
    fn from(e: RpcError) -> Self {
        Self::Rpc(e)
    }
}

impl Output {
    /// An object given as JSON text; the caller vouches that it is one.
    pub fn raw(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn json(value: &Value) -> Self {
        Self(value.to_string())
    }

    /// `{}`.
    pub fn empty() -> Self {
        Self("{}".into())
    }

    /// A tool result with one text content.
    pub fn text(text: impl Into<String>) -> Self {
        Self::json(&json!({ "content": [{ "type": "text", "text": text.into() }] }))
    }

    /// A tool result with one text content holding `value` as JSON.
    pub fn json_text(value: &Value) -> Self {
        Self::text(value.to_string())
    }

    /// A failed tool result (`isError: true`).
    pub fn tool_error(text: impl Into<String>) -> Self {
        Self::json(&json!({ "content": [{ "type": "text", "text": text.into() }], "isError": true }))
    }

    /// A `resources/read` result with one text content.
    pub fn resource_text(uri: &str, mime: &str, text: impl Into<String>) -> Self {
        Self::json(&json!({ "contents": [{ "uri": uri, "mimeType": mime, "text": text.into() }] }))
    }

    /// A `resources/read` result with one blob content (`blob` is base64).
    pub fn resource_blob(uri: &str, mime: &str, blob: impl Into<String>) -> Self {
        Self::json(&json!({ "contents": [{ "uri": uri, "mimeType": mime, "blob": blob.into() }] }))
    }

    /// Add members, given as JSON text without braces (`"a":1,"b":1.50`), at the end.
    pub fn with_members(self, members: &str) -> Self {
        Self(append_members(&self.0, members))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// Parse back into a value (for tests and small edits).
    pub fn to_value(&self) -> Option<Value> {
        serde_json::from_str(&self.0).ok()
    }
}

impl From<Value> for Output {
    fn from(v: Value) -> Self {
        Self::json(&v)
    }
}

/// Insert `members` (JSON text without braces) at the end of object text `obj`.
pub fn append_members(obj: &str, members: &str) -> String {
    let trimmed = obj.trim_end();
    let Some(body) = trimmed.strip_suffix('}') else { return obj.to_owned() };
    if members.trim().is_empty() {
        return obj.to_owned();
    }
    let sep = if body.trim_start().strip_prefix('{').is_some_and(|b| b.trim().is_empty()) { "" } else { "," };
    format!("{body}{sep}{members}}}")
}

/// Insert `members` (JSON text without braces) at the start of object text `obj`.
pub fn prepend_members(obj: &str, members: &str) -> String {
    let trimmed = obj.trim_start();
    let Some(body) = trimmed.strip_prefix('{') else { return obj.to_owned() };
    if members.trim().is_empty() {
        return obj.to_owned();
    }
    let sep = if body.trim_start().starts_with('}') { "" } else { "," };
    format!("{{{members}{sep}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_members_into_objects() {
        let cases = [
            ("{}", r#""a":1"#, r#"{"a":1}"#, r#"{"a":1}"#),
            ("{ }", r#""a":1"#, r#"{ "a":1}"#, r#"{"a":1 }"#),
            (r#"{"b":2}"#, r#""a":1.50"#, r#"{"b":2,"a":1.50}"#, r#"{"a":1.50,"b":2}"#),
            ("[1]", r#""a":1"#, "[1]", "[1]"),
            (r#"{"b":2}"#, "", r#"{"b":2}"#, r#"{"b":2}"#),
        ];
        for (obj, members, appended, prepended) in cases {
            assert_eq!(append_members(obj, members), appended, "append to {obj}");
            assert_eq!(prepend_members(obj, members), prepended, "prepend to {obj}");
        }
    }

    #[test]
    fn tool_results_have_the_mcp_shape() {
        assert_eq!(Output::text("hi").as_str(), r#"{"content":[{"type":"text","text":"hi"}]}"#);
        let err = Output::tool_error("bad").to_value().unwrap();
        assert_eq!(err["isError"], true);
    }
}
