//! A modern (2026-07-28) client behind a legacy backend.
//!
//! A legacy backend asks for input in the middle of a call with a server-to-client request
//! (`sampling/createMessage`, `elicitation/create`, `roots/list`). A modern client takes no
//! requests: it takes an `InputRequiredResult` and retries. So vMCP parks the backend call,
//! answers the client with `input_required` and a `requestState` of its own, and when the retry
//! brings `inputResponses` under that state, answers the backend's requests and goes on waiting
//! for the same call. The other direction (a legacy client behind a modern backend) is
//! `relay::bridge_input_required`.
//!
//! Invariants: only the principal that got a state can resume it, on whatever connection (a
//! modern client may retry on another one); a parked call that is never
//! resumed is dropped after its timeout, which cancels it at the backend; at most
//! [`MAX_PARKED`] calls are parked at once.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use vmcp_protocol::{ErrorCode, Message, RpcError, splice};

use crate::policy::Caller;
use crate::upstream::UpstreamError;

/// A backend's server-to-client request, on its way to a modern client as an input request.
pub struct InputNeeded {
    pub method: String,
    pub params: Option<String>,
    pub answer: oneshot::Sender<Result<String, RpcError>>,
}

/// Where the relay sends a backend's input requests for one call (see `Origin::inputs`).
pub type Inputs = mpsc::Sender<InputNeeded>;

/// A backend call in flight.
pub type Call = Pin<Box<dyn Future<Output = Result<Message, UpstreamError>> + Send>>;

/// Prefix of the `requestState` values vMCP hands out (a backend's own states pass through).
const STATE_PREFIX: &str = "vmcp-input.";
pub const MAX_PARKED: usize = 1024;

struct Parked {
    /// Who may resume it ([`Caller::same_principal`]).
    owner: Caller,
    server: String,
    call: Call,
    inputs: mpsc::Receiver<InputNeeded>,
    /// The input requests the client was shown, by key, and where each answer goes.
    waiting: Vec<(String, oneshot::Sender<Result<String, RpcError>>)>,
}

/// How waiting on a call ended.
pub enum Outcome {
    /// The backend answered (or failed).
    Done(Result<Message, UpstreamError>),
    /// The backend asked for input: the `InputRequiredResult` to give the client.
    InputRequired(String),
}

/// The calls waiting for a modern client's retry.
#[derive(Default, Clone)]
pub struct ParkedCalls(Arc<Mutex<HashMap<String, Parked>>>);

impl ParkedCalls {
    /// Wait for `call`; if the backend asks for input first, park the call and return the
    /// `InputRequiredResult` that tells the client what to answer.
    pub async fn wait(
        &self,
        mut call: Call,
        mut inputs: mpsc::Receiver<InputNeeded>,
        caller: &Caller,
        server: &str,
        ttl: Duration,
    ) -> Outcome {
        let first = tokio::select! {
            done = &mut call => return Outcome::Done(done),
            need = inputs.recv() => need,
        };
        let Some(first) = first else { return Outcome::Done(call.await) };
        let mut needs = vec![first];
        while let Ok(more) = inputs.try_recv() {
            needs.push(more);
        }
        if self.len() >= MAX_PARKED {
            for n in needs {
                let _ = n
                    .answer
                    .send(Err(RpcError::new(ErrorCode::InternalError, "too many calls wait for input")));
            }
            return Outcome::Done(call.await);
        }
        let mut requests = String::from("{");
        let mut waiting = Vec::with_capacity(needs.len());
        for (i, n) in needs.into_iter().enumerate() {
            let key = format!("vmcp{i}");
            if i > 0 {
                requests.push(',');
            }
            requests.push_str(&splice::quote(&key));
            requests.push_str(":{\"method\":");
            requests.push_str(&splice::quote(&n.method));
            if let Some(p) = &n.params {
                requests.push_str(",\"params\":");
                requests.push_str(p);
            }
            requests.push('}');
            waiting.push((key, n.answer));
        }
        requests.push('}');
        let state = format!("{STATE_PREFIX}{:032x}", rand::random::<u128>());
        let parked = Parked { owner: caller.clone(), server: server.to_owned(), call, inputs, waiting };
        self.lock().insert(state.clone(), parked);
        // Never resumed: drop the call after its timeout, which cancels it at the backend.
        let map = self.clone();
        let expired = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            if map.lock().remove(&expired).is_some() {
                tracing::debug!("a call parked for input expired: the client never retried");
            }
        });
        Outcome::InputRequired(format!(
            "{{\"resultType\":\"input_required\",\"inputRequests\":{requests},\"requestState\":{}}}",
            splice::quote(&state)
        ))
    }

    /// Take the call parked under the retry's `requestState`, hand the backend the client's
    /// `inputResponses`, and give back the call and its input channel to wait on again.
    /// `None` when `params` carry no state of vMCP's.
    #[allow(clippy::type_complexity)]
    pub fn resume(
        &self,
        caller: &Caller,
        server: &str,
        params: &str,
    ) -> Option<Result<(Call, mpsc::Receiver<InputNeeded>), RpcError>> {
        let state = splice::get(params, "requestState").and_then(splice::as_str)?;
        if !state.starts_with(STATE_PREFIX) {
            return None;
        }
        let mut map = self.lock();
        let owned_by_caller =
            map.get(state.as_ref()).is_some_and(|p| p.owner.same_principal(caller) && p.server == server);
        if !owned_by_caller {
            return Some(Err(RpcError::new(
                ErrorCode::InvalidParams,
                "unknown or expired requestState: send the original request again",
            )));
        }
        let parked = map.remove(state.as_ref()).expect("checked above");
        drop(map);
        let responses = splice::get(params, "inputResponses");
        for (key, answer) in parked.waiting {
            let reply = match responses.and_then(|r| splice::get(r, &key)) {
                Some(v) => Ok(v.to_owned()),
                None => Err(RpcError::new(
                    ErrorCode::InvalidParams,
                    format!("the client gave no input for `{key}`"),
                )),
            };
            let _ = answer.send(reply);
        }
        Some(Ok((parked.call, parked.inputs)))
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Parked>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Relay side: hand a backend's request to the parked-call machinery and wait for the client's
/// answer (as raw result text).
pub async fn ask(
    inputs: &Inputs,
    method: &str,
    params: Option<&str>,
    timeout: Duration,
) -> Result<String, RpcError> {
    let (tx, rx) = oneshot::channel();
    let need = InputNeeded { method: method.to_owned(), params: params.map(str::to_owned), answer: tx };
    if inputs.send(need).await.is_err() {
        return Err(RpcError::new(ErrorCode::TransportClosed, "the request that caused this is over"));
    }
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => {
            Err(RpcError::new(ErrorCode::TransportClosed, "the client never retried with its input"))
        }
        Err(_) => {
            Err(RpcError::new(ErrorCode::ConnectionTimeout, format!("the client did not answer `{method}`")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_message(result: &str) -> Message {
        Message::parse(format!(r#"{{"jsonrpc":"2.0","id":1,"result":{result}}}"#).as_bytes()).unwrap()
    }

    #[tokio::test]
    async fn input_parks_the_call_and_the_retry_resumes_it() {
        let parked = ParkedCalls::default();
        let (tx, rx) = mpsc::channel(4);
        let caller = Caller::local_user();
        // The "backend call": asks for input, then answers with what the client said.
        let call: Call = Box::pin(async move {
            let said = ask(&tx, "sampling/createMessage", Some(r#"{"maxTokens":5}"#), Duration::from_secs(5))
                .await
                .unwrap();
            Ok(ok_message(&format!(r#"{{"content":[{{"type":"text","text":{}}}]}}"#, splice::quote(&said))))
        });
        let Outcome::InputRequired(result) =
            parked.wait(call, rx, &caller, "s", Duration::from_secs(5)).await
        else {
            panic!("expected input_required")
        };
        let v: serde_json::Value = serde_json::from_str(&result).unwrap();
        assert_eq!(v["resultType"], "input_required");
        assert_eq!(v["inputRequests"]["vmcp0"]["method"], "sampling/createMessage");
        assert_eq!(v["inputRequests"]["vmcp0"]["params"]["maxTokens"], 5);
        let state = v["requestState"].as_str().unwrap();

        // Another persona cannot resume it; the caller can.
        let retry =
            format!(r#"{{"name":"t","inputResponses":{{"vmcp0":{{"x":1}}}},"requestState":"{state}"}}"#);
        assert!(parked.resume(&Caller::local_user(), "other-server", &retry).unwrap().is_err());
        let (call, rx) = parked.resume(&caller, "s", &retry).unwrap().unwrap();
        let Outcome::Done(Ok(msg)) = parked.wait(call, rx, &caller, "s", Duration::from_secs(5)).await else {
            panic!("expected the final answer")
        };
        assert!(msg.result.unwrap().get().contains(r#"{\"x\":1}"#));
        // A state is good once.
        assert!(parked.resume(&caller, "s", &retry).unwrap().is_err());
        // A backend's own state is not vMCP's business.
        assert!(parked.resume(&caller, "s", r#"{"requestState":"backend-state"}"#).is_none());
    }
}
