//! Opening a backend session in the backend's era.
//!
//! `era = auto` probes with `server/discover` (2026-07-28): a result means modern; an error
//! means legacy, and vMCP sends `initialize` + `notifications/initialized`. The verdict is kept
//! for the life of the connection.

use std::time::Duration;

use serde_json::value::RawValue;
use vmcp_config::Era as ConfigEra;
use vmcp_protocol::{Era, ProtocolVersion, meta, splice, version};

use super::{Options, Upstream, UpstreamError};

/// What vMCP learned when it opened the session.
#[derive(Debug)]
pub struct Handshake {
    pub era: Era,
    pub version: ProtocolVersion,
    /// The server's `capabilities` object, raw.
    pub capabilities: Box<RawValue>,
    /// The server's `serverInfo` object, raw.
    pub server_info: Option<Box<RawValue>>,
    pub instructions: Option<String>,
}

impl Handshake {
    /// Does the server declare capability `name` (e.g. `tools`)?
    pub fn has(&self, name: &str) -> bool {
        splice::get(self.capabilities.get(), name).is_some_and(|v| v != "null" && v != "false")
    }

    /// Does capability `name` set `flag` to true (e.g. `resources.subscribe`)?
    pub fn flag(&self, name: &str, flag: &str) -> bool {
        splice::get_path(self.capabilities.get(), &[name, flag]) == Some("true")
    }
}

/// The capabilities vMCP declares to backends: it relays sampling, elicitation and roots to the
/// client whose request caused them.
const CLIENT_CAPABILITIES: &str = r#"{"sampling":{},"elicitation":{},"roots":{"listChanged":true}}"#;

fn client_info() -> String {
    format!(r#"{{"name":"vmcp","title":"vMCP gateway","version":"{}"}}"#, env!("CARGO_PKG_VERSION"))
}

pub(super) async fn run(up: &Upstream, opts: &Options) -> Result<Handshake, String> {
    match up.spec.era {
        ConfigEra::Legacy => initialize(up, opts).await,
        ConfigEra::Modern => {
            discover(up, opts).await?.ok_or_else(|| "server does not speak 2026-07-28".to_owned())
        }
        ConfigEra::Auto => match discover(up, opts).await? {
            Some(hs) => Ok(hs),
            None => initialize(up, opts).await,
        },
    }
}

/// `Ok(None)`: the server answered with an error (or, probing, not at all), so it is legacy.
async fn discover(up: &Upstream, opts: &Options) -> Result<Option<Handshake>, String> {
    let params = meta::discover_params(CLIENT_CAPABILITIES, &client_info());
    let id = up.next_id();
    let probing = up.spec.era == ConfigEra::Auto;
    // A legacy server may ignore a method it does not know; don't let that eat the whole startup budget.
    let wait = if probing { (opts.startup_timeout / 3).min(PROBE_TIMEOUT) } else { opts.startup_timeout };
    let reply = match up.request(id, "server/discover", Some(&params), None, wait).await {
        Ok(reply) => reply,
        Err(UpstreamError::Timeout(..)) if probing => {
            tracing::debug!(server = %up.spec.id, "no answer to server/discover; trying initialize");
            return Ok(None);
        }
        Err(e) => return Err(e.to_string()),
    };
    let Some(result) = reply.result.as_deref().map(RawValue::get) else {
        tracing::debug!(server = %up.spec.id, "server/discover refused; speaking legacy");
        return Ok(None);
    };
    let hs = from_result(result, Era::Modern)?;
    Ok(Some(hs))
}

async fn initialize(up: &Upstream, opts: &Options) -> Result<Handshake, String> {
    let params = format!(
        r#"{{"protocolVersion":"{}","capabilities":{},"clientInfo":{}}}"#,
        version::LATEST_LEGACY,
        CLIENT_CAPABILITIES,
        client_info()
    );
    let id = up.next_id();
    let reply = up
        .request(id, "initialize", Some(&params), None, opts.startup_timeout)
        .await
        .map_err(|e| e.to_string())?;
    let result = match (reply.result.as_deref(), reply.error.as_deref()) {
        (Some(r), _) => r.get(),
        (None, Some(e)) => return Err(format!("initialize failed: {}", e.get())),
        (None, None) => return Err("initialize returned nothing".into()),
    };
    let hs = from_result(result, Era::Legacy)?;
    up.notify("notifications/initialized", None).await;
    Ok(hs)
}

/// Read an `initialize` or `server/discover` result.
fn from_result(result: &str, era: Era) -> Result<Handshake, String> {
    let version = match era {
        Era::Legacy => {
            let v = splice::get(result, "protocolVersion")
                .and_then(splice::as_str)
                .ok_or("no protocolVersion")?;
            ProtocolVersion::parse(&v).ok_or_else(|| format!("unsupported protocol version `{v}`"))?
        }
        Era::Modern => ProtocolVersion::V2026_07_28,
    };
    let raw = |key: &str| splice::get(result, key).and_then(|v| RawValue::from_string(v.to_owned()).ok());
    Ok(Handshake {
        era,
        version,
        capabilities: raw("capabilities")
            .unwrap_or_else(|| RawValue::from_string("{}".into()).expect("valid")),
        server_info: raw("serverInfo").or_else(|| {
            splice::get_path(result, &["_meta", meta::SERVER_INFO])
                .and_then(|v| RawValue::from_string(v.to_owned()).ok())
        }),
        instructions: splice::get(result, "instructions").and_then(splice::as_str).map(|s| s.into_owned()),
    })
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_initialize_result_and_its_capabilities() {
        let hs = from_result(
            r#"{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":true},"resources":{"subscribe":true},"logging":{}},"serverInfo":{"name":"x","version":"1"},"instructions":"hi"}"#,
            Era::Legacy,
        )
        .unwrap();
        assert_eq!(hs.version, ProtocolVersion::V2025_06_18);
        assert!(hs.has("tools") && hs.has("logging") && !hs.has("prompts"));
        assert!(hs.flag("resources", "subscribe") && !hs.flag("tools", "subscribe"));
        assert_eq!(hs.instructions.as_deref(), Some("hi"));
        assert!(from_result(r#"{"protocolVersion":"1999-01-01","capabilities":{}}"#, Era::Legacy).is_err());
    }
}
