//! The `utils` built-in: `echo`, `sha256`, `base64_encode`, `base64_decode`, `uuid_v4` and
//! `calculate`, plus a `use_tool` prompt whose `tool` argument completes.

use std::io::Read;

use serde_json::{Map, Value, json};

use super::{calc, sha256};
use crate::kit::{self, CompletionRequest, Ctx, Era, HandlerError, Output, Prompt, Server, Tool, base64};

const TOOL_NAMES: [&str; 6] = ["echo", "sha256", "base64_encode", "base64_decode", "uuid_v4", "calculate"];

pub fn server() -> Server {
    let pure = |name: &str, description: &str, arg: &str, arg_doc: &str| {
        let schema = json!({
            "type": "object",
            "properties": { arg: { "type": "string", "description": arg_doc } },
            "required": [arg],
        });
        Tool::new(name, description, schema).read_only().idempotent()
    };
    Server::new("utils", env!("CARGO_PKG_VERSION"))
        .title("Utilities (built in)")
        .era(Era::Dual)
        .tool(pure("echo", "Return the text unchanged.", "text", "Text to echo"), |a, _| async move {
            Ok(Output::text(string(&a, "text")?))
        })
        .tool(pure("sha256", "SHA-256 of the UTF-8 text, as lowercase hex.", "text", "Text to hash"), |a, _| async move {
            Ok(Output::text(sha256::hex(&sha256::digest(string(&a, "text")?.as_bytes()))))
        })
        .tool(pure("base64_encode", "Base64 (standard, padded) of the UTF-8 text.", "text", "Text to encode"), |a, _| async move {
            Ok(Output::text(base64::encode(string(&a, "text")?.as_bytes())))
        })
        .tool(pure("base64_decode", "Decode base64 to UTF-8 text.", "data", "Base64 to decode"), |a, _| async move {
            decode(string(&a, "data")?)
        })
        .tool(uuid_tool(), |_a, _| async move { uuid_v4().map(Output::text).map_err(HandlerError::Tool) })
        .tool(pure("calculate", "Evaluate arithmetic: numbers, + - * /, parentheses.", "expression", "e.g. (1 + 2) * 3.5"), |a, _| async move {
            let v = calc::evaluate(string(&a, "expression")?).map_err(HandlerError::Tool)?;
            Ok(Output::text(calc::format_number(v)))
        })
        .prompt(use_tool_prompt(), |args, _ctx| async move { use_tool(&args) })
        .completion(|req: CompletionRequest, _ctx: Ctx| async move {
            match (req.ref_name.as_str(), req.argument.as_str()) {
                ("use_tool", "tool") => Ok(kit::complete_from(TOOL_NAMES, &req.value)),
                _ => Ok(Vec::new()),
            }
        })
}

fn uuid_tool() -> Tool {
    Tool::new("uuid_v4", "A random UUID (version 4).", json!({ "type": "object", "properties": {} }))
        .read_only()
}

fn use_tool_prompt() -> Prompt {
    Prompt::new("use_tool", "Ask the assistant to apply one of the utilities to some input.")
        .argument("tool", "Which utility (completes)", true)
        .argument("input", "The input to give it", true)
}

fn string<'a>(args: &'a Value, key: &str) -> Result<&'a str, HandlerError> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| HandlerError::Tool(format!("`{key}` (a string) is required")))
}

fn decode(data: &str) -> Result<Output, HandlerError> {
    let bytes = base64::decode(data).ok_or_else(|| HandlerError::Tool("not valid base64".into()))?;
    String::from_utf8(bytes).map(Output::text).map_err(|e| {
        HandlerError::Tool(format!("the decoded {} bytes are not UTF-8 text", e.as_bytes().len()))
    })
}

/// A version 4 UUID from the system's random source.
pub fn uuid_v4() -> Result<String, String> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("no random source (/dev/urandom): {e}"))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = sha256::hex(&b);
    Ok(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
}

fn use_tool(args: &Map<String, Value>) -> Result<Output, HandlerError> {
    let get = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default();
    let tool = get("tool");
    if !TOOL_NAMES.contains(&tool) {
        let msg = format!("unknown utility `{tool}`; one of: {}", TOOL_NAMES.join(", "));
        return Err(kit::RpcError::invalid_params(msg).into());
    }
    let text = format!("Use the `{tool}` tool on this input and report the result:\n\n{}", get("input"));
    Ok(Output::json(&json!({
        "description": format!("Apply {tool}"),
        "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let (a, b) = (uuid_v4().unwrap(), uuid_v4().unwrap());
        assert_ne!(a, b);
        let parts: Vec<_> = a.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn decodes_text_only() {
        assert!(decode("aGVsbG8=").is_ok());
        assert!(decode("//79").is_err(), "not UTF-8");
        assert!(decode("***").is_err());
    }
}
