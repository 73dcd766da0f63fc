//! The one place that decides what a caller may see and use.
//!
//! Every listing filters through [`Policy::visible`] (a whole listing through one
//! [`Policy::view`]) and every routed request passes [`Policy::check`] before it reaches a
//! backend; nothing in the gateway reaches a server around it. A refusal is a typed
//! [`Refusal`], whose only way to become the client's error also writes the audit entry.
//!
//! - The local stdio user without `--persona` has [`Access::Full`]; so has a caller of a network
//!   front that runs without authentication, which is only allowed on loopback (see
//!   `docs/PERSONAS.md`).
//! - Everyone else acts as a persona ([`Access::Persona`]), looked up by name in the current
//!   [`PersonaBook`] snapshot on every check, so a change to the persona's file applies to
//!   connected clients at once. A persona that no longer exists reaches nothing (fail closed).
//!
//! Invariant: pure and cheap (no IO, no allocation on the allow path); it runs on every request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use vmcp_persona::audit::{AuditEvent, AuditLog, AuditWriter, Decision};
use vmcp_persona::oauth::Verified;
use vmcp_persona::{Authenticated, Denied, Persona, Personas};
use vmcp_protocol::{ErrorCode, RpcError};

/// What kind of thing a request touches: the persona rules' own kinds.
pub use vmcp_persona::Kind;

/// Who is calling, established by the front before any request is handled.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    pub access: Access,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The user who started `vmcp start` on a terminal or as a desktop client's child process.
    LocalUser,
    /// A client of a network front, known by its address only.
    Network(std::net::SocketAddr),
}

#[derive(Debug, Clone)]
pub enum Access {
    /// Everything mounted: the local stdio user, or a loopback client of a front without auth.
    Full,
    /// What the named persona may use, as its file says now.
    Persona(PersonaAccess),
}

/// A caller acting as a persona.
#[derive(Debug, Clone)]
pub struct PersonaAccess {
    pub name: Arc<str>,
    pub credential: Credential,
    /// When the caller's credential expires (seconds since the epoch): its JWT's (allowing the
    /// clock skew JWT validation allows: the issuer's clock is not ours), or its API key's
    /// (exact: our own clock). After that, nothing is allowed. Shared with the session
    /// the caller opened, so that a later request of the same principal with a fresh token
    /// extends it ([`Caller::renew`]).
    pub expires: Option<Arc<AtomicU64>>,
    pub book: Arc<PersonaBook>,
}

/// How a persona caller proved who it is, named for logs and the audit log (never a secret):
/// `stdio`, `token:tok_...`, `jwt:SUB`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `vmcp start --persona NAME`: the local user chose the persona.
    Stdio,
    /// An API key, by public id: revoking it cuts the caller off, also on a connection that
    /// stays open (WebSocket, legacy SSE).
    Key(Arc<str>),
    /// An OAuth access token, by its `sub`.
    Jwt(Arc<str>),
}

impl std::fmt::Display for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Stdio => f.write_str("stdio"),
            Credential::Key(id) => write!(f, "token:{id}"),
            Credential::Jwt(sub) => write!(f, "jwt:{sub}"),
        }
    }
}

impl Caller {
    pub fn local_user() -> Self {
        Self { identity: Identity::LocalUser, access: Access::Full }
    }

    /// An unauthenticated network client. Network fronts without authentication bind to
    /// loopback only, so such a caller is on this machine.
    pub fn network(peer: std::net::SocketAddr) -> Self {
        Self { identity: Identity::Network(peer), access: Access::Full }
    }

    /// A caller acting as persona `name`.
    pub fn persona(identity: Identity, name: &str, credential: Credential, book: Arc<PersonaBook>) -> Self {
        Self::with_expiry(identity, name.into(), credential, None, book)
    }

    /// A caller with the API key `key`: it acts as the key's persona until the key's expiry.
    pub fn with_key(identity: Identity, key: &Authenticated, book: Arc<PersonaBook>) -> Self {
        // An expiring key also ends what it opened (WebSocket, SSE) at its expiry.
        let expires = key.expires.map(|e| e.as_secs_ceil());
        Self::with_expiry(
            identity,
            key.persona.name().into(),
            Credential::Key(key.token_id.clone()),
            expires,
            book,
        )
    }

    /// A caller with the OAuth access token `jwt`, valid until its `exp`.
    pub fn with_jwt(identity: Identity, jwt: &Verified, book: Arc<PersonaBook>) -> Self {
        let credential = Credential::Jwt(jwt.subject.as_str().into());
        Self::with_expiry(identity, jwt.persona.as_str().into(), credential, Some(jwt.expires), book)
    }

    fn with_expiry(
        identity: Identity,
        name: Arc<str>,
        credential: Credential,
        expires: Option<u64>,
        book: Arc<PersonaBook>,
    ) -> Self {
        let expires = expires.map(|e| Arc::new(AtomicU64::new(e)));
        Self { identity, access: Access::Persona(PersonaAccess { name, credential, expires, book }) }
    }

    /// The persona's name, if the caller acts as one.
    pub fn persona_name(&self) -> Option<&str> {
        match &self.access {
            Access::Full => None,
            Access::Persona(p) => Some(&p.name),
        }
    }

    /// Do two callers act as the same principal: the same persona with the same credential
    /// (API key id, or JWT subject), or both with full access? A session opened by one caller
    /// serves only that principal (the peer address may differ: a client reconnects).
    pub fn same_principal(&self, other: &Caller) -> bool {
        match (&self.access, &other.access) {
            (Access::Full, Access::Full) => true,
            (Access::Persona(a), Access::Persona(b)) => a.name == b.name && a.credential == b.credential,
            _ => false,
        }
    }

    /// A later request of this same principal (see [`Caller::same_principal`]) came with a
    /// token valid until `other`'s expiry: the session this caller opened lives on until then.
    pub fn renew(&self, other: &Caller) {
        if let (Access::Persona(a), Access::Persona(b)) = (&self.access, &other.access)
            && let (Some(mine), Some(theirs)) = (&a.expires, &b.expires)
        {
            mine.fetch_max(theirs.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// For logs and the audit trail: `local`, the peer address, plus the credential's public id.
    pub fn describe(&self) -> String {
        let who = match &self.identity {
            Identity::LocalUser => "local".to_owned(),
            Identity::Network(a) => a.to_string(),
        };
        match &self.access {
            Access::Full => who,
            Access::Persona(p) => format!("{who} ({})", p.credential),
        }
    }
}

/// The personas as the gateway currently knows them, swapped whole when their files change,
/// and the audit log that records what they were refused (written by its own thread, never on
/// the runtime's).
#[derive(Debug)]
pub struct PersonaBook {
    current: RwLock<Arc<Personas>>,
    audit: Option<AuditWriter>,
}

impl PersonaBook {
    pub fn new(personas: Arc<Personas>, audit: Option<AuditLog>) -> Self {
        let audit = audit.and_then(|log| {
            let path = log.path().to_owned();
            AuditWriter::start(log)
                .map_err(|e| {
                    tracing::warn!("no audit log: cannot start its writer for {}: {e}", path.display())
                })
                .ok()
        });
        Self { current: RwLock::new(personas), audit }
    }

    pub fn load(&self) -> Arc<Personas> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Swap in a new snapshot; returns the old one.
    pub fn replace(&self, next: Arc<Personas>) -> Arc<Personas> {
        std::mem::replace(&mut *self.current.write().unwrap_or_else(|p| p.into_inner()), next)
    }

    pub fn audit(&self) -> Option<&AuditWriter> {
        self.audit.as_ref()
    }

    /// At shutdown: wait (at most `within`) until every audit line recorded so far is written.
    pub fn flush_audit(&self, within: std::time::Duration) {
        if let Some(log) = &self.audit {
            log.flush(within);
        }
    }

    fn check(&self, access: &PersonaAccess, subject: Subject<'_>) -> Result<(), Denied> {
        self.check_at(access, subject, now_secs)
    }

    /// `check` by the clock `now` (seconds since the epoch), read only if the credential expires.
    fn check_at(
        &self,
        access: &PersonaAccess,
        subject: Subject<'_>,
        now: impl FnOnce() -> u64,
    ) -> Result<(), Denied> {
        self.with_persona(access, now, |p| p.check(subject.server, subject.kind, subject.name))?
    }

    /// `f` of the caller's persona as the current snapshot has it, unless the credential has
    /// expired by the clock `now` (read only if it expires), the persona is gone, or its API
    /// key was revoked: then the caller reaches nothing.
    fn with_persona<R>(
        &self,
        access: &PersonaAccess,
        now: impl FnOnce() -> u64,
        f: impl FnOnce(&Arc<Persona>) -> R,
    ) -> Result<R, Denied> {
        if let Some(exp) = &access.expires {
            // A JWT's expiry is by its issuer's clock; an API key's is by ours: no skew.
            let skew = match access.credential {
                Credential::Key(_) => 0,
                Credential::Stdio | Credential::Jwt(_) => vmcp_persona::oauth::LEEWAY_SECS,
            };
            if now() >= exp.load(Ordering::Relaxed).saturating_add(skew) {
                return Err(Denied::ServerNotAllowed);
            }
        }
        let personas = self.current.read().unwrap_or_else(|p| p.into_inner());
        let Some(p) = personas.get(&access.name) else { return Err(Denied::ServerNotAllowed) };
        if let Credential::Key(token) = &access.credential
            && !p.raw().tokens.iter().any(|t| *t.id == **token)
        {
            return Err(Denied::ServerNotAllowed);
        }
        Ok(f(p))
    }
}

/// One thing a caller wants: a server's item by its backend name (or the server itself).
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub server: &'a str,
    pub kind: Kind,
    pub name: &'a str,
}

impl<'a> Subject<'a> {
    /// The server itself: may the caller reach it at all?
    pub fn server(server: &'a str) -> Self {
        Self { server, kind: Kind::Server, name: "" }
    }
}

pub struct Policy;

impl Policy {
    /// May the caller reach this server at all (see anything of it)?
    pub fn may_reach(caller: &Caller, server: &str) -> bool {
        Self::visible(caller, Subject::server(server))
    }

    /// May the caller see this item in a listing? (For many items, take one [`Policy::view`].)
    #[inline]
    pub fn visible(caller: &Caller, subject: Subject<'_>) -> bool {
        match &caller.access {
            Access::Full => true,
            Access::Persona(p) => p.book.check(p, subject).is_ok(),
        }
    }

    /// What the caller may see as of now, for filtering a whole listing: the persona's rules
    /// are looked up and its credential's expiry read once, not once per item.
    pub fn view(caller: &Caller) -> View {
        match &caller.access {
            Access::Full => View::Full,
            Access::Persona(p) => {
                p.book.with_persona(p, now_secs, Arc::clone).map_or(View::Nothing, View::Persona)
            }
        }
    }

    /// May the caller use this item? A refusal says what was refused and why; the request
    /// answers with [`Refusal::audited`].
    #[inline]
    pub fn check<'a>(caller: &'a Caller, subject: Subject<'a>) -> Result<(), Refusal<'a>> {
        let Access::Persona(p) = &caller.access else { return Ok(()) };
        p.book.check(p, subject).map_err(|denied| Refusal { caller, persona: p, subject, denied })
    }
}

/// One look at what a caller may see (see [`Policy::view`]). Taken after the awaits of the
/// listing it filters, so that a persona change or an expiry during them applies.
#[derive(Debug)]
pub enum View {
    Full,
    /// The persona's rules as of the snapshot the view was taken from.
    Persona(Arc<Persona>),
    /// An expired credential, a revoked key or a persona that no longer exists.
    Nothing,
}

impl View {
    #[inline]
    pub fn visible(&self, subject: Subject<'_>) -> bool {
        match self {
            View::Full => true,
            View::Persona(p) => p.check(subject.server, subject.kind, subject.name).is_ok(),
            View::Nothing => false,
        }
    }
}

/// A request the policy refused: who, what and why. [`Refusal::audited`] is the only way to
/// turn it into the client's error, and it writes the audit entry: no refusal goes back
/// unrecorded, and no error is parsed back to find out what was refused.
#[derive(Debug)]
#[must_use]
pub struct Refusal<'a> {
    caller: &'a Caller,
    persona: &'a PersonaAccess,
    subject: Subject<'a>,
    denied: Denied,
}

impl Refusal<'_> {
    /// The JSON-RPC error code it answers with: 3002 (server not allowed) or 3003.
    pub fn code(&self) -> i32 {
        self.error_code().code()
    }

    fn error_code(&self) -> ErrorCode {
        match self.denied {
            Denied::ServerNotAllowed => ErrorCode::ServerNotAllowed,
            Denied::NotPermitted => ErrorCode::InsufficientPermissions,
        }
    }

    /// Record the refusal of `method` in the audit log (never its params: only method, server
    /// and item name), and return the error to send (3002 / 3003, `data` naming what was
    /// refused).
    pub fn audited(self, method: &str) -> RpcError {
        self.record(method);
        self.to_rpc()
    }

    fn record(&self, method: &str) {
        let Some(log) = self.persona.book.audit() else { return };
        let event = AuditEvent::Denied {
            caller: &self.caller.describe(),
            persona: &self.persona.name,
            method,
            server: self.subject.server,
            name: self.subject.name,
            decision: Decision::Deny,
            reason: self.denied.into(),
        };
        if let Err(e) = log.record(&event) {
            tracing::warn!("cannot write the audit log: {e}");
        }
    }

    fn to_rpc(&self) -> RpcError {
        let (persona, subject) = (&*self.persona.name, self.subject);
        let message = match self.denied {
            Denied::ServerNotAllowed => {
                format!("server `{}` is not allowed for persona `{persona}`", subject.server)
            }
            Denied::NotPermitted => {
                format!(
                    "{} `{}` is not permitted for persona `{persona}`",
                    subject.kind.as_str(),
                    subject.name
                )
            }
        };
        RpcError::new(self.error_code(), message).with_data(serde_json::json!({
            "persona": persona,
            "server": subject.server,
            "kind": subject.kind.as_str(),
            "name": subject.name,
        }))
    }
}

/// Now, in seconds since the epoch, by the workspace's one clock (`vmcp_config::civil`).
fn now_secs() -> u64 {
    u64::try_from(vmcp_config::civil::Instant::now().secs).unwrap_or(0)
}

#[cfg(test)]
#[path = "policy/tests.rs"]
mod tests;
