//! Protocol eras and versions: which era a server speaks, and which era one request is in.
//!
//! Legacy (2024-11-05 .. 2025-11-25): a session opened by `initialize`. Modern (2026-07-28):
//! stateless, `server/discover`, every request names its version in `_meta`. The version
//! strings and `_meta` keys are the wire format's own (`vmcp_protocol`).

use serde_json::Value;

use super::wire::{RpcError, code};

pub use vmcp_protocol::meta::{
    CLIENT_CAPABILITIES as META_CLIENT_CAPABILITIES, CLIENT_INFO as META_CLIENT_INFO,
    LOG_LEVEL as META_LOG_LEVEL, PROTOCOL_VERSION as META_PROTOCOL_VERSION, SERVER_INFO as META_SERVER_INFO,
};
pub use vmcp_protocol::version::{LATEST_LEGACY, LEGACY_VERSIONS, MODERN};

/// The eras a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// `initialize` sessions only; `server/discover` is an unknown method.
    Legacy,
    /// 2026-07-28 only; `initialize` is refused.
    Modern,
    /// Both: a request naming a version in `_meta` is modern, any other is legacy.
    Dual,
}

impl Era {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "legacy" => Some(Self::Legacy),
            "modern" => Some(Self::Modern),
            "dual" => Some(Self::Dual),
            _ => None,
        }
    }

    pub fn speaks_legacy(self) -> bool {
        self != Self::Modern
    }

    pub fn speaks_modern(self) -> bool {
        self != Self::Legacy
    }
}

/// The era of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestEra {
    Legacy,
    Modern,
}

/// The version a legacy server answers to `initialize` asking for `requested`.
pub fn negotiate_legacy(requested: Option<&str>) -> &'static str {
    requested.map_or(LATEST_LEGACY, |r| vmcp_protocol::ProtocolVersion::negotiate_legacy(r).as_str())
}

/// The protocol version named in a request's `_meta`, if any.
pub fn meta_version(params: &Value) -> Option<&Value> {
    params.get("_meta")?.get(META_PROTOCOL_VERSION)
}

/// Which era `params` puts a request in, for a server speaking `era`. A modern request must
/// carry both the version and the client capabilities in `_meta` (else -32602).
pub fn classify(era: Era, params: &Value) -> Result<RequestEra, RpcError> {
    let version = meta_version(params);
    match (era, version) {
        (Era::Legacy, _) | (Era::Dual, None) => Ok(RequestEra::Legacy),
        (Era::Modern, None) => Err(RpcError::invalid_params(format!(
            "params._meta must carry \"{META_PROTOCOL_VERSION}\" and \"{META_CLIENT_CAPABILITIES}\": this server speaks {MODERN}"
        ))),
        (_, Some(v)) if v.as_str() != Some(MODERN) => Err(unsupported_version(era, v)),
        (_, Some(_)) => match params["_meta"].get(META_CLIENT_CAPABILITIES) {
            Some(Value::Object(_)) => Ok(RequestEra::Modern),
            _ => Err(RpcError::invalid_params(format!(
                "params._meta is missing the required key \"{META_CLIENT_CAPABILITIES}\""
            ))),
        },
    }
}

/// The versions a server speaking `era` supports, newest first.
pub fn supported_versions(era: Era) -> Vec<&'static str> {
    let mut versions = vec![MODERN];
    if era.speaks_legacy() {
        versions.extend(LEGACY_VERSIONS.iter().rev());
    }
    versions
}

/// The error for a protocol version the server does not speak.
pub fn unsupported_version(era: Era, requested: &Value) -> RpcError {
    RpcError::new(code::UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version")
        .with_data(serde_json::json!({ "supported": supported_versions(era), "requested": requested }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn negotiates_legacy_versions() {
        for v in LEGACY_VERSIONS {
            assert_eq!(negotiate_legacy(Some(v)), v);
        }
        assert_eq!(negotiate_legacy(Some("1999-01-01")), LATEST_LEGACY);
        assert_eq!(negotiate_legacy(Some(MODERN)), LATEST_LEGACY);
        assert_eq!(negotiate_legacy(None), LATEST_LEGACY);
    }

    #[test]
    fn classifies_requests_by_meta() {
        let modern = json!({ "_meta": { META_PROTOCOL_VERSION: MODERN, META_CLIENT_CAPABILITIES: {} } });
        let no_caps = json!({ "_meta": { META_PROTOCOL_VERSION: MODERN } });
        let future = json!({ "_meta": { META_PROTOCOL_VERSION: "2099-01-01" } });
        let plain = json!({ "name": "x" });
        let ok = |e| Ok::<_, ()>(e);
        let cases = [
            (Era::Legacy, &plain, ok(RequestEra::Legacy)),
            (Era::Legacy, &modern, ok(RequestEra::Legacy)),
            (Era::Dual, &plain, ok(RequestEra::Legacy)),
            (Era::Dual, &modern, ok(RequestEra::Modern)),
            (Era::Dual, &future, Err(())),
            (Era::Modern, &modern, ok(RequestEra::Modern)),
            (Era::Modern, &plain, Err(())),
            (Era::Modern, &Value::Null, Err(())),
            (Era::Modern, &no_caps, Err(())),
            (Era::Dual, &no_caps, Err(())),
        ];
        for (era, params, want) in cases {
            assert_eq!(classify(era, params).map_err(|_| ()), want, "{era:?} {params}");
        }
    }
}
