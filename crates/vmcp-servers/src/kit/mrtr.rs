//! 2026-07-28 multi-round-trip requests: instead of sending the client a request, a handler
//! answers with an `InputRequiredResult` (`inputRequests` + opaque `requestState`), and the
//! client retries with `inputResponses` and the echoed state.
//!
//! The kit keeps servers stateless: `requestState` carries (base64 JSON) every response gathered
//! in earlier rounds plus the subject (method and name) it belongs to, so a handler that asks
//! several times sees all answers on the last retry.

use serde_json::{Map, Value, json};

use super::base64;
use super::output::Output;
use super::wire::RpcError;

/// What a handler needs from the client before it can finish.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputRequired {
    /// key -> `{method, params}`.
    pub requests: Map<String, Value>,
}

impl InputRequired {
    /// One input request.
    pub fn one(key: &str, method: &str, params: Value) -> Self {
        Self::default().and(key, method, params)
    }

    /// Ask for one more input.
    pub fn and(mut self, key: &str, method: &str, params: Value) -> Self {
        self.requests.insert(key.to_owned(), json!({ "method": method, "params": params }));
        self
    }

    /// The `InputRequiredResult`, with `state` as `requestState`.
    pub fn to_output(&self, state: &str) -> Output {
        Output::json(&json!({
            "resultType": "input_required",
            "inputRequests": self.requests,
            "requestState": state,
        }))
    }
}

/// The inputs a modern request carries: responses from earlier rounds and this retry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    pub responses: Map<String, Value>,
}

impl Inputs {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.responses.get(key)
    }
}

/// Read `inputResponses` and `requestState` from a retry of `subject` (e.g. `tools/call:sample`).
pub fn read_inputs(params: &Value, subject: &str) -> Result<Inputs, RpcError> {
    let responses = params.get("inputResponses");
    let state = params.get("requestState");
    let mut inputs = Inputs::default();
    if let Some(state) = state {
        let text = state.as_str().ok_or_else(|| RpcError::invalid_params("requestState must be a string"))?;
        inputs.responses = decode_state(text, subject)?;
    } else if responses.is_some() {
        return Err(RpcError::invalid_params("inputResponses without the requestState they answer"));
    }
    match responses {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => inputs.responses.extend(m.clone()),
        Some(_) => return Err(RpcError::invalid_params("inputResponses must be an object")),
    }
    Ok(inputs)
}

/// The `requestState` for a round of `subject` that gathered `responses` so far.
pub fn encode_state(subject: &str, responses: &Map<String, Value>) -> String {
    let v = json!({ "v": 1, "subject": subject, "responses": responses });
    base64::encode(v.to_string().as_bytes())
}

fn decode_state(text: &str, subject: &str) -> Result<Map<String, Value>, RpcError> {
    let bad = || RpcError::invalid_params("requestState was not issued by this server");
    let bytes = base64::decode(text).ok_or_else(bad)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if v.get("v") != Some(&json!(1)) {
        return Err(bad());
    }
    if v.get("subject").and_then(Value::as_str) != Some(subject) {
        return Err(RpcError::invalid_params(format!(
            "requestState belongs to another request, not {subject}"
        )));
    }
    Ok(v.get("responses").and_then(Value::as_object).cloned().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_carries_earlier_rounds() {
        let mut first = Map::new();
        first.insert("a".into(), json!({ "x": 1 }));
        let state = encode_state("tools/call:t", &first);
        let retry = json!({ "requestState": state, "inputResponses": { "b": 2 } });
        let inputs = read_inputs(&retry, "tools/call:t").unwrap();
        assert_eq!(inputs.get("a"), Some(&json!({ "x": 1 })));
        assert_eq!(inputs.get("b"), Some(&json!(2)));
    }

    #[test]
    fn rejects_bad_retries() {
        let state = encode_state("tools/call:t", &Map::new());
        let cases = [
            (json!({}), true),
            (json!({ "inputResponses": { "a": 1 } }), false),
            (json!({ "requestState": "garbage!", "inputResponses": {} }), false),
            (json!({ "requestState": state.clone(), "inputResponses": [] }), false),
            (json!({ "requestState": encode_state("tools/call:other", &Map::new()) }), false),
            (json!({ "requestState": state }), true),
        ];
        for (params, ok) in cases {
            assert_eq!(read_inputs(&params, "tools/call:t").is_ok(), ok, "{params}");
        }
    }

    #[test]
    fn input_required_result_shape() {
        let out =
            InputRequired::one("s", "sampling/createMessage", json!({ "maxTokens": 5 })).to_output("ST");
        assert_eq!(
            out.as_str(),
            r#"{"resultType":"input_required","inputRequests":{"s":{"method":"sampling/createMessage","params":{"maxTokens":5}}},"requestState":"ST"}"#
        );
    }
}
