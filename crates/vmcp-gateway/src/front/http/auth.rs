//! Who is calling a network front: a persona's API key or an OAuth access token (JWT), or, on a
//! front without authentication (loopback only), the local user.
//!
//! - Every request to an HTTP front (Streamable HTTP, legacy SSE) and every WebSocket upgrade
//!   carries `Authorization: Bearer ...`; a missing, wrong, revoked or expired credential, or a
//!   valid JWT naming a persona the current snapshot does not have, gets 401 with
//!   `WWW-Authenticate: Bearer ...` (with `resource_metadata` in OAuth mode, RFC 9728).
//! - The credential never goes further: backends get their own requests, and logs and the audit
//!   log name a key by its public id and a JWT by its `sub` only.
//! - `/.well-known/oauth-protected-resource` describes this resource (OAuth mode).
//!
//! The HTTP handlers learn the caller through a task-local set by [`layer`] around each request,
//! so the fronts only swap `Caller::network(peer)` for [`caller`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use vmcp_persona::audit::AuditEvent;
use vmcp_persona::oauth::OAuthValidator;
use vmcp_persona::tokens::KEY_PREFIX;

use crate::gateway::Gateway;
use crate::policy::{Access, Caller, Identity, PersonaBook};

/// How network callers authenticate. Absent: no authentication (loopback-only fronts).
#[derive(Debug)]
pub struct Auth {
    pub book: Arc<PersonaBook>,
    /// Accept persona API keys.
    pub api_keys: bool,
    pub oauth: Option<OAuth>,
}

#[derive(Debug)]
pub struct OAuth {
    pub validator: OAuthValidator,
    /// This resource's URL as clients know it; `None`: built from the request's `Host`.
    pub resource: Option<String>,
}

tokio::task_local! {
    static CALLER: Caller;
}

/// The caller of the request being handled: the authenticated persona if the front requires
/// authentication (the layer put it there), else the local user at `peer`.
pub fn caller(peer: SocketAddr) -> Caller {
    CALLER.try_with(Caller::clone).unwrap_or_else(|_| Caller::network(peer))
}

/// The middleware: authenticate, then run the handler with the caller in scope.
pub(crate) async fn layer(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    then(&gw, peer, req, next).await
}

/// Authenticate `req` (when the front requires it), then run `next` with the caller in scope.
pub(crate) async fn then(gw: &Gateway, peer: SocketAddr, req: Request, next: Next) -> Response {
    let Some(auth) = gw.auth() else { return next.run(req).await };
    let path = req.uri().path();
    if matches!(path, "/healthz" | "/readyz") {
        return next.run(req).await;
    }
    if path.starts_with("/.well-known/oauth-protected-resource") {
        return metadata(auth, req.headers());
    }
    match authenticate(auth, req.headers(), peer).await {
        Ok(caller) => CALLER.scope(caller, next.run(req)).await,
        Err(resp) => resp,
    }
}

/// Check the request's bearer credential; `Err` is the 401 to send.
pub async fn authenticate(auth: &Auth, headers: &HeaderMap, peer: SocketAddr) -> Result<Caller, Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(bearer) = bearer.filter(|b| !b.is_empty()) else {
        return Err(refuse(auth, headers, peer, "missing", None));
    };
    if auth.api_keys && bearer.starts_with(KEY_PREFIX) {
        let personas = auth.book.load();
        return match personas.authenticate(bearer) {
            Ok(key) => Ok(Caller::with_key(Identity::Network(peer), &key, auth.book.clone())),
            Err(why) => Err(refuse(auth, headers, peer, why.as_str(), Some("invalid_token"))),
        };
    }
    let Some(oauth) = &auth.oauth else {
        return Err(refuse(auth, headers, peer, "unknown_key", Some("invalid_token")));
    };
    match oauth.validator.verify(bearer).await {
        // Checked against the current snapshot: a persona deleted while running is refused.
        Ok(v) if auth.book.load().get(&v.persona).is_none() => {
            Err(refuse(auth, headers, peer, "unknown_persona", Some("invalid_token")))
        }
        Ok(v) => Ok(Caller::with_jwt(Identity::Network(peer), &v, auth.book.clone())),
        Err(e) => Err(refuse(auth, headers, peer, e.as_str(), Some("invalid_token"))),
    }
}

/// 401, logged and audited by reason (never the credential).
fn refuse(auth: &Auth, headers: &HeaderMap, peer: SocketAddr, reason: &str, error: Option<&str>) -> Response {
    tracing::warn!(%peer, reason, "refused an unauthenticated request");
    if let Some(log) = auth.book.audit() {
        let who = peer.to_string();
        if let Err(e) = log.record(&AuditEvent::AuthFailed { caller: &who, reason }) {
            tracing::warn!("cannot write the audit log: {e}");
        }
    }
    let mut challenge = String::from("Bearer realm=\"vmcp\"");
    if let Some(e) = error {
        challenge.push_str(&format!(", error=\"{e}\""));
    }
    if auth.oauth.is_some() {
        challenge.push_str(&format!(", resource_metadata=\"{}\"", metadata_url(headers)));
    }
    let mut resp =
        (StatusCode::UNAUTHORIZED, "unauthorized: a valid bearer credential is required").into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

fn origin(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

fn metadata_url(headers: &HeaderMap) -> String {
    format!("{}/.well-known/oauth-protected-resource", origin(headers))
}

/// RFC 9728 protected resource metadata.
fn metadata(auth: &Auth, headers: &HeaderMap) -> Response {
    let Some(oauth) = &auth.oauth else { return StatusCode::NOT_FOUND.into_response() };
    let resource = oauth.resource.clone().unwrap_or_else(|| format!("{}/mcp", origin(headers)));
    let body = serde_json::json!({
        "resource": resource,
        "authorization_servers": [oauth.validator.config().issuer],
        "bearer_methods_supported": ["header"],
    });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// May the caller of the request being handled use `session` (found by the id the request
/// named)? Only the principal that opened it may ([`Caller::same_principal`]): a valid key of
/// another persona plus a stolen or guessed session id gets the answer an unknown session gets
/// (404), so it learns nothing, and the attempt is logged and audited (`session_mismatch`).
/// On a front without authentication every caller is the local user, so any may.
pub fn owns_session(session: &crate::session::Session, peer: SocketAddr) -> bool {
    CALLER
        .try_with(|caller| caller_owns(caller, session, peer))
        .unwrap_or(matches!(session.caller.access, Access::Full))
}

fn caller_owns(caller: &Caller, session: &crate::session::Session, peer: SocketAddr) -> bool {
    if caller.same_principal(&session.caller) {
        // A refreshed token (same `sub`) keeps the session usable past the first one's expiry.
        session.caller.renew(caller);
        return true;
    }
    let who = caller.describe();
    tracing::warn!(%peer, caller = %who, session = session.id, "refused a request for another caller's session");
    let audit = match (&caller.access, &session.caller.access) {
        (Access::Persona(p), _) | (_, Access::Persona(p)) => p.book.audit(),
        _ => None,
    };
    if let Some(log) = audit
        && let Err(e) = log.record(&AuditEvent::AuthFailed { caller: &who, reason: "session_mismatch" })
    {
        tracing::warn!("cannot write the audit log: {e}");
    }
    false
}

/// Run `fut` (a WebSocket session, which outlives its upgrade request) as the caller the layer
/// authenticated for the upgrade.
pub async fn with_caller<F: std::future::Future>(caller: Caller, fut: F) -> F::Output {
    CALLER.scope(caller, fut).await
}
