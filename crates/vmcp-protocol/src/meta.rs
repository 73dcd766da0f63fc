//! Modern-era (2026-07-28) request metadata: the `_meta` keys every request carries, and the
//! edits vMCP makes when it bridges a request between eras.

use std::borrow::Cow;

use crate::splice::{self, Op};
use crate::version::MODERN;

/// `_meta` key naming the protocol version of a modern request.
pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key carrying the client's capabilities on a modern request.
pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key carrying the client's name and version on a modern request.
pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";

/// `_meta` key on a result naming the server (e.g. on `server/discover`).
pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` key on notifications delivered through `subscriptions/listen`.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
/// `_meta` key with the log level a modern request asks for (deprecated in 2026-07-28).
pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";

/// What every modern `_meta` key above starts with.
const NAMESPACE: &str = "io.modelcontextprotocol/";

/// Whether `text` may hold a key starting with `prefix` (which starts with [`NAMESPACE`]):
/// `false` only when it certainly holds none. Keys are compared unescaped, so text with a
/// backslash anywhere may spell one in escapes. Looks only at the slashes (SIMD), so that a
/// request with no modern key (most of the traffic) costs next to nothing to tell apart.
fn may_hold(text: &str, prefix: &str) -> bool {
    debug_assert!(prefix.starts_with(NAMESPACE));
    let b = text.as_bytes();
    let slash = NAMESPACE.len() - 1;
    memchr::memchr2_iter(b'/', b'\\', b)
        .any(|j| b[j] == b'\\' || (j >= slash && b[j - slash..].starts_with(prefix.as_bytes())))
}

/// Whether request text may carry a modern `_meta` key (version, capabilities, client info, log
/// level): `false` only when it certainly carries none.
pub fn may_carry_modern(text: &str) -> bool {
    may_hold(text, NAMESPACE)
}

/// Whether request text may carry the log level key (see [`may_carry_modern`]).
pub fn may_carry_log_level(text: &str) -> bool {
    may_hold(text, LOG_LEVEL)
}

/// Whether a request's `_meta` object (its text) carries what every modern request must: the
/// protocol version and the client's capabilities.
pub fn carries_modern(meta: &str) -> bool {
    splice::get(meta, PROTOCOL_VERSION).is_some() && splice::get(meta, CLIENT_CAPABILITIES).is_some()
}

/// The protocol version a request's `_meta` names, if any.
pub fn request_version(params: Option<&str>) -> Option<Cow<'_, str>> {
    splice::get_path(params?, &["_meta", PROTOCOL_VERSION]).and_then(splice::as_str)
}

/// The raw client capabilities a modern request carries.
pub fn request_capabilities(params: Option<&str>) -> Option<&str> {
    splice::get_path(params?, &["_meta", CLIENT_CAPABILITIES])
}

/// Params for `server/discover` from vMCP to a backend.
pub fn discover_params(capabilities: &str, client_info: &str) -> String {
    format!(
        r#"{{"_meta":{{{}:{},{}:{},{}:{}}}}}"#,
        splice::quote(PROTOCOL_VERSION),
        splice::quote(MODERN),
        splice::quote(CLIENT_CAPABILITIES),
        capabilities,
        splice::quote(CLIENT_INFO),
        client_info
    )
}

/// Make `params` a valid modern request: add the version and capabilities if missing.
pub fn add_modern(params: Option<&str>, capabilities: &str) -> String {
    let base = params.unwrap_or("{}");
    let with_version =
        splice::edit_path(base, &["_meta", PROTOCOL_VERSION], Op::Default(&splice::quote(MODERN)))
            .unwrap_or_else(|| base.to_owned());
    splice::edit_path(&with_version, &["_meta", CLIENT_CAPABILITIES], Op::Default(capabilities))
        .unwrap_or(with_version)
}

/// Remove the modern-only keys from a request's `_meta` (for a legacy backend). `None` when
/// there was nothing to remove.
pub fn strip_modern(params: &str) -> Option<String> {
    if !may_carry_modern(params) {
        return None;
    }
    let meta = splice::get(params, "_meta")?;
    let members = splice::members(meta)?;
    let modern = [PROTOCOL_VERSION, CLIENT_CAPABILITIES, CLIENT_INFO];
    if !members.iter().any(|m| modern.contains(&m.key.as_ref())) {
        return None;
    }
    let left = members.iter().filter(|m| !modern.contains(&m.key.as_ref())).count();
    if left == 0 {
        return splice::edit_object(params, &[("_meta", Op::Remove)]);
    }
    let edited = splice::edit_object(meta, &modern.map(|k| (k, Op::Remove)))?;
    splice::edit_object(params, &[("_meta", Op::Replace(&edited))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridges_meta_between_eras() {
        let legacy = r#"{"name":"echo","_meta":{"progressToken":1}}"#;
        let modern = add_modern(Some(legacy), r#"{"sampling":{}}"#);
        assert_eq!(request_version(Some(&modern)).as_deref(), Some(MODERN));
        assert_eq!(request_capabilities(Some(&modern)), Some(r#"{"sampling":{}}"#));
        assert_eq!(strip_modern(&modern).as_deref(), Some(legacy));
        assert_eq!(strip_modern(legacy), None);
        let only = add_modern(None, "{}");
        assert_eq!(strip_modern(&only).as_deref(), Some("{}"));
        let p = discover_params("{}", r#"{"name":"vmcp"}"#);
        assert_eq!(request_version(Some(&p)).as_deref(), Some(MODERN));
    }

    /// The quick check before `strip_modern` never hides a modern key: keys are compared
    /// unescaped, so one spelled with escapes is still found and removed.
    #[test]
    fn strips_modern_keys_spelled_with_escapes() {
        for key in
            [r#"io.modelcontextprotocol\/protocolVersion"#, r#"\u0069o.modelcontextprotocol/clientInfo"#]
        {
            let params = format!(r#"{{"name":"echo","_meta":{{"{key}":"x","progressToken":1}}}}"#);
            assert!(may_carry_modern(&params), "{params}");
            let stripped = strip_modern(&params);
            assert_eq!(
                stripped.as_deref(),
                Some(r#"{"name":"echo","_meta":{"progressToken":1}}"#),
                "{params}"
            );
        }
    }

    #[test]
    fn quick_check_tells_legacy_requests_apart() {
        let legacy = r#"{"name":"echo","arguments":{"text":"hi"},"_meta":{"progressToken":1}}"#;
        assert!(!may_carry_modern(legacy));
        assert!(!may_carry_log_level(legacy));
        let paths = r#"{"uri":"file:///tmp/a/b","arguments":{"url":"https://example.com/io.model/x"}}"#;
        assert!(!may_carry_modern(paths));
        // At the very start of the text, and a namespace without the wanted key.
        assert!(may_carry_modern("io.modelcontextprotocol/x"));
        assert!(!may_carry_log_level(r#"{"io.modelcontextprotocol/logLeve":1}"#));
        // The namespace in an argument is a maybe; the full read then finds nothing to strip.
        let mention = r#"{"name":"echo","arguments":{"text":"io.modelcontextprotocol/logLevel"}}"#;
        assert!(may_carry_modern(mention) && may_carry_log_level(mention));
        assert_eq!(strip_modern(mention), None);
        let modern = add_modern(Some(legacy), "{}");
        assert!(may_carry_modern(&modern));
        assert!(!may_carry_log_level(&modern));
        assert!(may_carry_log_level(r#"{"_meta":{"io.modelcontextprotocol/logLevel":"info"}}"#));
    }
}
