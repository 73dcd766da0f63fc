//! MCP log levels (RFC 5424 severities) and who asked for which.
//!
//! A legacy client opts in to a session's logs with `logging/setLevel`; a modern client opts in
//! per request with `_meta["io.modelcontextprotocol/logLevel"]`. Backends' `notifications/message`
//! reach a client only at or above the level it asked for.

use vmcp_protocol::{meta, splice};

/// A log level, ordered from `debug` (0) to `emergency` (7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogLevel(u8);

const NAMES: [&str; 8] = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

impl LogLevel {
    /// From a raw JSON string (`"warning"`); `None` for anything else.
    pub fn from_json(raw: &str) -> Option<Self> {
        let name = splice::as_str(raw)?;
        NAMES.iter().position(|n| *n == name).map(|i| Self(i as u8))
    }

    /// The quoted JSON form.
    pub fn to_json(self) -> String {
        splice::quote(NAMES[self.0 as usize])
    }

    /// The level a modern request asked for in its `_meta`. Read on every request, so params
    /// that cannot hold the key (most requests) are told apart without reading their members.
    pub fn requested(params: Option<&str>) -> Option<Self> {
        let params = params.filter(|p| meta::may_carry_log_level(p))?;
        let meta = splice::get(params, "_meta")?;
        Self::from_json(splice::get(meta, meta::LOG_LEVEL)?)
    }

    /// The level of a `notifications/message`; unknown or missing levels count as `emergency`
    /// (better shown than lost).
    pub fn of_message(params: Option<&str>) -> Self {
        params.and_then(|p| splice::get(p, "level")).and_then(Self::from_json).unwrap_or(Self(7))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_and_parse() {
        let warning = LogLevel::from_json("\"warning\"").unwrap();
        assert!(LogLevel::from_json("\"debug\"").unwrap() < warning);
        assert!(warning < LogLevel::from_json("\"error\"").unwrap());
        assert_eq!(LogLevel::from_json("\"loud\""), None);
        assert_eq!(warning.to_json(), "\"warning\"");
        let params = r#"{"name":"x","_meta":{"io.modelcontextprotocol/logLevel":"info"}}"#;
        assert_eq!(LogLevel::requested(Some(params)), LogLevel::from_json("\"info\""));
        assert_eq!(LogLevel::requested(Some(r#"{"name":"x"}"#)), None);
        // The key spelled with an escape is the same key.
        let escaped = r#"{"_meta":{"io.modelcontextprotocol\/logLevel":"error"}}"#;
        assert_eq!(LogLevel::requested(Some(escaped)), LogLevel::from_json("\"error\""));
        assert_eq!(
            LogLevel::of_message(Some(r#"{"level":"error","data":1}"#)),
            LogLevel::from_json("\"error\"").unwrap()
        );
    }
}
