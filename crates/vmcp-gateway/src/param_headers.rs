//! SEP-2243 custom headers: tool parameters mirrored into `Mcp-Param-{Name}` HTTP headers.
//!
//! A tool marks an input property with `"x-mcp-header": "Name"`; over modern Streamable HTTP the
//! caller sends the argument's value in `Mcp-Param-Name` too (`=?base64?…?=` when it is not
//! plain visible ASCII without edge whitespace), so intermediaries can route on it. vMCP checks
//! the headers a client sends against the body (front) and computes them toward a modern HTTP
//! backend (upstream). Only top-level properties are considered.
//!
//! Invariant: pure, no IO; a tool without annotations has no entry, so its calls pay nothing.

use std::borrow::Cow;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use vmcp_protocol::splice;

const PREFIX: &str = "Mcp-Param-";

/// One annotated property of a tool's input schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamHeader {
    /// The argument's name in `arguments`.
    pub property: String,
    /// `Mcp-Param-{Name}` as declared, for messages.
    pub display: String,
    /// The same, lowercase, as an HTTP header name.
    pub name: HeaderName,
    /// Declared `"type": "integer"`: compare numerically (`42` matches `42.0`).
    pub integer: bool,
}

/// The annotated properties of one tool (never empty).
pub type ToolHeaders = Arc<[ParamHeader]>;

/// Read a `tools/list` item's `inputSchema`. `None` when it declares no `x-mcp-header`, or when
/// an annotation is invalid (empty or not an HTTP token, on a non-primitive or `number`
/// property, or duplicated case-insensitively): a conforming client drops such a tool and sends
/// no headers, so there is nothing to check or send.
pub fn from_tool(tool: &str) -> Option<ToolHeaders> {
    let schema = splice::get(tool, "inputSchema")?;
    if !schema.contains("x-mcp-header") {
        return None;
    }
    let schema: serde_json::Value = serde_json::from_str(schema).ok()?;
    let mut out: Vec<ParamHeader> = Vec::new();
    for (property, def) in schema.get("properties")?.as_object()? {
        let Some(token) = def.get("x-mcp-header") else { continue };
        let token = token.as_str()?;
        let ty = def.get("type").and_then(|t| t.as_str());
        if !is_token(token) || !matches!(ty, Some("string" | "integer" | "boolean")) {
            return None;
        }
        let display = format!("{PREFIX}{token}");
        let name = HeaderName::from_bytes(display.to_ascii_lowercase().as_bytes()).ok()?;
        if out.iter().any(|p| p.name == name) {
            return None;
        }
        out.push(ParamHeader { property: property.clone(), display, name, integer: ty == Some("integer") });
    }
    (!out.is_empty()).then(|| out.into())
}

/// RFC 9110 token: the characters allowed in a header field name.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An argument's value as it appears in its header (before encoding): `None` when absent,
/// `null`, or not a primitive.
fn render(raw: &str) -> Option<Cow<'_, str>> {
    let raw = raw.trim();
    match raw.as_bytes().first()? {
        b'"' => splice::as_str(raw),
        b't' | b'f' | b'-' | b'0'..=b'9' => Some(Cow::Borrowed(raw)),
        _ => None,
    }
}

/// Encode a value for a header: verbatim when it is visible ASCII without edge whitespace (and
/// does not itself look like the sentinel), else `=?base64?{utf-8 base64}?=`.
pub fn encode(value: &str) -> Cow<'_, str> {
    let safe = value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && value == value.trim()
        && sentinel(value).is_none();
    if safe { Cow::Borrowed(value) } else { Cow::Owned(format!("=?base64?{}?=", STANDARD.encode(value))) }
}

/// Decode a header value: the `=?base64?…?=` payload (canonical padded base64 of UTF-8), or the
/// value itself when it is not wrapped. `None` when the wrapped payload is malformed.
pub fn decode(raw: &str) -> Option<Cow<'_, str>> {
    match sentinel(raw) {
        None => Some(Cow::Borrowed(raw)),
        Some(payload) => {
            let bytes = STANDARD.decode(payload).ok()?;
            String::from_utf8(bytes).ok().map(Cow::Owned)
        }
    }
}

fn sentinel(s: &str) -> Option<&str> {
    s.strip_prefix("=?base64?")?.strip_suffix("?=")
}

/// The headers a `tools/call` with these `arguments` (raw JSON object text) carries.
pub fn headers_for(spec: &[ParamHeader], arguments: Option<&str>) -> Vec<(HeaderName, HeaderValue)> {
    spec.iter()
        .filter_map(|p| {
            let value = render(splice::get(arguments?, &p.property)?)?;
            let value = HeaderValue::from_str(&encode(&value)).ok()?;
            Some((p.name.clone(), value))
        })
        .collect()
}

/// Check a `tools/call`'s `Mcp-Param-*` headers against its `arguments`: each annotated
/// argument and its header are present together and equal after decoding, or absent together.
/// The error says what is wrong (the caller answers 400 with -32020).
pub fn validate(spec: &[ParamHeader], arguments: Option<&str>, headers: &HeaderMap) -> Result<(), String> {
    for p in spec {
        let mut all = headers.get_all(&p.name).iter();
        let raw = all.next();
        if raw.is_some() && all.next().is_some() {
            return Err(format!("{} header appears more than once", p.display));
        }
        let value = arguments.and_then(|a| splice::get(a, &p.property));
        let rendered = value.and_then(render);
        let raw = match (raw, &rendered) {
            (None, None) => continue,
            (Some(_), None) if value.is_some_and(|v| v.trim() != "null") => {
                return Err(format!(
                    "{} header cannot mirror the non-primitive `{}` argument",
                    p.display, p.property
                ));
            }
            (Some(_), None) => {
                return Err(format!(
                    "{} header is present but the `{}` argument is absent",
                    p.display, p.property
                ));
            }
            (None, Some(_)) => {
                return Err(format!(
                    "{} header is missing but the `{}` argument is present",
                    p.display, p.property
                ));
            }
            (Some(raw), Some(_)) => raw,
        };
        let raw = raw.to_str().map_err(|_| format!("{} header has invalid characters", p.display))?;
        let decoded = decode(raw.trim_matches([' ', '\t']))
            .ok_or_else(|| format!("{} header carries malformed base64", p.display))?;
        let rendered = rendered.unwrap_or_default();
        if !matches(p.integer, &rendered, &decoded) {
            return Err(format!("{} header does not match the `{}` argument", p.display, p.property));
        }
    }
    Ok(())
}

fn matches(integer: bool, body: &str, header: &str) -> bool {
    if body == header {
        return true;
    }
    // Integers compare by value: `42` in the body matches `42.0` in the header and back.
    let int = |s: &str| -> Option<i128> {
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        frac.bytes().all(|b| b == b'0').then(|| whole.parse().ok())?
    };
    integer && int(body).is_some() && int(body) == int(header)
}

#[cfg(test)]
mod tests;
