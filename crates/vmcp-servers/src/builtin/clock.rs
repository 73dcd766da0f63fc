//! The `clock` built-in: the current time and time conversion between fixed UTC offsets.
//! Offline and dependency-free (no time zone database: offsets like `+02:00`, not IANA names).

use serde_json::{Value, json};

use super::civil::{self, Instant, Offset};
use crate::kit::{Era, HandlerError, Output, Server, Tool};

pub fn server() -> Server {
    Server::new("clock", env!("CARGO_PKG_VERSION"))
        .title("Clock (built in)")
        .era(Era::Dual)
        .instructions(
            "Current time and conversions between fixed UTC offsets such as +02:00 (no time zone names).",
        )
        .tool(now_tool(), |args: Value, _ctx| async move { now(&args) })
        .tool(convert_tool(), |args: Value, _ctx| async move { convert(&args) })
}

fn now_tool() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": {
            "utc_offset": {
                "type": "string",
                "description": "Offset from UTC such as \"+02:00\", \"-05:30\" or \"Z\" (default: UTC)",
            },
        },
    });
    Tool::new("now", "The current date and time in RFC 3339, at a UTC offset.", schema)
        .title("Current time")
        .read_only()
        .output_schema(time_schema())
}

fn convert_tool() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": {
            "time": {
                "type": "string",
                "description": "RFC 3339 time, e.g. \"2026-03-01T14:05:00+02:00\"; without an offset it is read at `from`",
            },
            "from": { "type": "string", "description": "UTC offset of `time` when it has none (default: UTC)" },
            "to": { "type": "string", "description": "UTC offset to express the time at, e.g. \"-05:00\"" },
        },
        "required": ["time", "to"],
    });
    Tool::new("convert_time", "Express a time at another UTC offset.", schema)
        .title("Convert time")
        .read_only()
        .idempotent()
        .output_schema(time_schema())
}

fn time_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "time": { "type": "string" },
            "utc_offset": { "type": "string" },
            "unix_seconds": { "type": "integer" },
            "weekday": { "type": "string" },
        },
        "required": ["time", "utc_offset", "unix_seconds", "weekday"],
    })
}

fn offset_arg(args: &Value, key: &str) -> Result<Option<Offset>, HandlerError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Offset::parse(s).map(Some).ok_or_else(|| {
            HandlerError::Tool(format!("`{key}`: `{s}` is not a UTC offset like +02:00 or -05:30"))
        }),
        Some(other) => Err(HandlerError::Tool(format!("`{key}` must be a string, not {other}"))),
    }
}

/// The result for instant `t` shown at `offset`.
fn describe(t: Instant, offset: Offset) -> Output {
    let text = civil::format(Instant { nanos: 0, ..t }, offset);
    let local_days = (t.secs + i64::from(offset.0)).div_euclid(86_400);
    let structured = json!({
        "time": text,
        "utc_offset": offset.to_rfc3339(),
        "unix_seconds": t.secs,
        "weekday": civil::weekday(local_days),
    });
    Output::json(&json!({ "content": [{ "type": "text", "text": text }], "structuredContent": structured }))
}

fn now(args: &Value) -> Result<Output, HandlerError> {
    let offset = offset_arg(args, "utc_offset")?.unwrap_or(Offset::UTC);
    Ok(describe(Instant::now(), offset))
}

fn convert(args: &Value) -> Result<Output, HandlerError> {
    let time = args
        .get("time")
        .and_then(Value::as_str)
        .ok_or_else(|| HandlerError::Tool("`time` is required".into()))?;
    let from = offset_arg(args, "from")?.unwrap_or(Offset::UTC);
    let to = offset_arg(args, "to")?.ok_or_else(|| HandlerError::Tool("`to` is required".into()))?;
    let (t, _) = civil::parse(time, Some(from)).map_err(HandlerError::Tool)?;
    Ok(describe(t, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(out: Result<Output, HandlerError>) -> Result<String, String> {
        match out {
            Ok(o) => Ok(o.to_value().unwrap()["content"][0]["text"].as_str().unwrap().to_owned()),
            Err(HandlerError::Tool(m)) => Err(m),
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn converts_between_offsets() {
        let cases = [
            (json!({ "time": "2026-03-01T14:05:00+02:00", "to": "-05:00" }), Ok("2026-03-01T07:05:00-05:00")),
            (
                json!({ "time": "2026-03-01T23:30:00", "from": "-01:00", "to": "Z" }),
                Ok("2026-03-02T00:30:00Z"),
            ),
            (json!({ "time": "2026-03-01T23:30:00", "to": "+05:45" }), Ok("2026-03-02T05:15:00+05:45")),
            (json!({ "time": "yesterday", "to": "Z" }), Err(())),
            (json!({ "time": "2026-03-01T10:00:00Z", "to": "Mars/Olympus" }), Err(())),
            (json!({ "time": "2026-03-01T10:00:00Z" }), Err(())),
        ];
        for (args, want) in cases {
            let got = text(convert(&args));
            assert_eq!(got.as_deref().map_err(|_| ()), want, "{args}");
        }
    }

    #[test]
    fn now_is_rfc3339_at_the_offset() {
        let t = text(now(&json!({ "utc_offset": "+02:00" }))).unwrap();
        assert!(t.ends_with("+02:00") && civil::parse(&t, None).is_ok(), "{t}");
        let t = text(now(&json!({}))).unwrap();
        assert!(t.ends_with('Z'), "{t}");
        assert!(now(&json!({ "utc_offset": 5 })).is_err());
    }
}
