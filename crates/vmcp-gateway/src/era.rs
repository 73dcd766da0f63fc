//! Bridging between a client's era and a backend's era, on params going in and results coming out.
//!
//! - toward a modern backend, every request carries the modern `_meta` (the client's own when it
//!   is modern; vMCP adds it for a legacy client, with that client's capabilities);
//! - toward a legacy backend, the modern-only `_meta` keys are removed;
//! - toward a modern client, every result carries `resultType` (`complete` unless the backend
//!   said otherwise).
//!
//! Nothing is copied when nothing changes.

use std::borrow::Cow;

use vmcp_protocol::splice::{self, Op};
use vmcp_protocol::{Era, meta};

use crate::session::Session;
use crate::upstream::Upstream;

/// The capabilities vMCP relays for, used when no client is behind a request.
const GATEWAY_CAPABILITIES: &str = r#"{"sampling":{},"elicitation":{},"roots":{"listChanged":true}}"#;

/// Params as the backend's era wants them. `None` in, `None` out unless the backend is modern.
pub fn to_backend<'a>(
    params: Option<&'a str>,
    up: &Upstream,
    session: Option<&Session>,
) -> Option<Cow<'a, str>> {
    to_backend_meta(params, None, up, session)
}

/// [`to_backend`], given what the caller already read of the params' `_meta` object
/// (`Some(None)`: the params have none; `None`: not read, looked up here if needed).
pub fn to_backend_meta<'a>(
    params: Option<&'a str>,
    known_meta: Option<Option<&str>>,
    up: &Upstream,
    session: Option<&Session>,
) -> Option<Cow<'a, str>> {
    match up.era() {
        Some(Era::Modern) => {
            let request_meta = known_meta.unwrap_or_else(|| {
                params.filter(|p| meta::may_carry_modern(p)).and_then(|p| splice::get(p, "_meta"))
            });
            if request_meta.is_some_and(meta::carries_modern) {
                return params.map(Cow::Borrowed);
            }
            let info = session.map(Session::info).unwrap_or_default();
            let caps = info.capabilities.as_ref().map_or(GATEWAY_CAPABILITIES, |c| c.get());
            let with_meta = meta::add_modern(params, caps);
            // A legacy client asked for logs with `logging/setLevel`: a modern backend sends them
            // only for requests that carry the level.
            let with_level = info.log_level.and_then(|level| {
                splice::edit_path(&with_meta, &["_meta", meta::LOG_LEVEL], Op::Default(&level.to_json()))
            });
            Some(Cow::Owned(with_level.unwrap_or(with_meta)))
        }
        // `strip_modern` first checks cheaply whether there is anything to strip.
        _ => params.map(|p| meta::strip_modern(p).map_or(Cow::Borrowed(p), Cow::Owned)),
    }
}

/// A result as the client's era wants it.
pub fn to_client<'a>(result: &'a str, session: &Session) -> Cow<'a, str> {
    if session.era() == Some(Era::Modern)
        && splice::get(result, "resultType").is_none()
        && let Some(edited) = splice::edit_object(result, &[("resultType", Op::Default("\"complete\""))])
    {
        return Cow::Owned(edited);
    }
    Cow::Borrowed(result)
}

/// A cacheable result (lists, `resources/read`) for a modern client: `resultType`, and `ttlMs` /
/// `cacheScope` when the backend gave none. vMCP's own merged lists are `private`: what a caller
/// may see is decided per caller.
pub fn to_client_cacheable<'a>(result: &'a str, session: &Session) -> Cow<'a, str> {
    if session.era() != Some(Era::Modern) {
        return Cow::Borrowed(result);
    }
    let edits = [
        ("resultType", Op::Default("\"complete\"")),
        ("ttlMs", Op::Default("0")),
        ("cacheScope", Op::Default("\"private\"")),
    ];
    splice::edit_object(result, &edits).map_or(Cow::Borrowed(result), Cow::Owned)
}
