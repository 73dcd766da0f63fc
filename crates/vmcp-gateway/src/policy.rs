//! The one place that decides what a caller may see and use.
//!
//! Every listing filters through [`Policy::visible`] and every routed request passes
//! [`Policy::check`] before it reaches a backend; nothing in the gateway reaches a server
//! around it. Today the only caller is the local stdio user with full access; personas plug in
//! here.
//!
//! Invariant: pure and cheap (no IO, no allocation on the allow path); it runs on every request.

use vmcp_protocol::{ErrorCode, RpcError};

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Everything mounted. Only ever given to the local stdio user.
    Full,
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
}

/// What kind of thing a request touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tool,
    Prompt,
    Resource,
    /// Gateway-level operations on a server (`vmcp/servers/*`).
    Server,
}

/// One thing a caller wants: a server's item by its backend name (or the server itself).
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub server: &'a str,
    pub kind: Kind,
    pub name: &'a str,
}

pub struct Policy;

impl Policy {
    /// May the caller see this item in a listing?
    pub fn visible(caller: &Caller, subject: Subject<'_>) -> bool {
        Self::check(caller, subject).is_ok()
    }

    /// May the caller use this item? A refusal is the error to send (3002 / 3003).
    pub fn check(caller: &Caller, subject: Subject<'_>) -> Result<(), RpcError> {
        match &caller.access {
            Access::Full => Ok(()),
        }
        .map_err(|()| {
            RpcError::new(ErrorCode::ServerNotAllowed, format!("server `{}` is not allowed", subject.server))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_user_may_use_everything() {
        let caller = Caller::local_user();
        for kind in [Kind::Tool, Kind::Prompt, Kind::Resource, Kind::Server] {
            assert!(Policy::check(&caller, Subject { server: "a", kind, name: "x" }).is_ok());
            assert!(Policy::visible(&caller, Subject { server: "b", kind, name: "y" }));
        }
    }
}
