//! Table-driven checks of the one policy function: full access, personas by server and rule,
//! live swaps and fail-closed lookups.

use std::sync::Arc;

use vmcp_persona::audit::AuditLog;
use vmcp_persona::{Effect, PersonaStore, RuleKind};

use super::*;

#[test]
fn the_local_user_may_use_everything() {
    let caller = Caller::local_user();
    for kind in [Kind::Tool, Kind::Prompt, Kind::Resource, Kind::Server] {
        assert!(Policy::check(&caller, Subject { server: "a", kind, name: "x" }).is_ok());
        assert!(Policy::visible(&caller, Subject { server: "b", kind, name: "y" }));
    }
}

fn book(dir: &std::path::Path) -> Arc<PersonaBook> {
    let store = PersonaStore::at(dir);
    store.create("limited", None).unwrap();
    store.update("limited", |p| p.enable("server1")).unwrap();
    store
        .update("limited", |p| {
            p.enable("files")?;
            p.add_rule("files", RuleKind::Tool, Effect::Allow, "read_*")?;
            p.add_rule("files", RuleKind::Tool, Effect::Deny, "read_secret")?;
            p.add_rule("files", RuleKind::Resource, Effect::Allow, "file:///docs/*")
        })
        .unwrap();
    store.create("empty", None).unwrap();
    Arc::new(PersonaBook::new(store.snapshot().unwrap(), None))
}

#[test]
fn a_persona_reaches_only_what_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path());
    let limited = Caller::persona(Identity::LocalUser, "limited", Credential::Stdio, book.clone());
    let empty = Caller::persona(Identity::LocalUser, "empty", Credential::Stdio, book.clone());
    let ghost = Caller::persona(Identity::LocalUser, "ghost", Credential::Stdio, book);
    #[rustfmt::skip]
    let cases: &[(&Caller, &str, Kind, &str, Option<i32>)] = &[
        (&limited, "server1", Kind::Tool, "tool1", None),
        (&limited, "server1", Kind::Prompt, "anything", None),
        (&limited, "server1", Kind::Server, "", None),
        (&limited, "server2", Kind::Tool, "tool2", Some(3002)),
        (&limited, "server2", Kind::Server, "", Some(3002)),
        (&limited, "server2", Kind::Resource, "test://x", Some(3002)),
        (&limited, "files", Kind::Tool, "read_file", None),
        (&limited, "files", Kind::Tool, "read_secret", Some(3003)),
        (&limited, "files", Kind::Tool, "write_file", Some(3003)),
        (&limited, "files", Kind::Resource, "file:///docs/a.md", None),
        (&limited, "files", Kind::Resource, "file:///etc/passwd", Some(3003)),
        (&empty, "server1", Kind::Tool, "tool1", Some(3002)),
        (&empty, "server1", Kind::Server, "", Some(3002)),
        (&ghost, "server1", Kind::Tool, "tool1", Some(3002)),
    ];
    for &(caller, server, kind, name, want) in cases {
        let got = Policy::check(caller, Subject { server, kind, name }).err().map(|r| r.code());
        assert_eq!(got, want, "{:?} {server} {kind:?} {name}", caller.persona_name());
        assert_eq!(Policy::visible(caller, Subject { server, kind, name }), want.is_none());
    }
}

#[test]
fn a_swapped_snapshot_applies_to_existing_callers() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path());
    let caller = Caller::persona(Identity::LocalUser, "empty", Credential::Stdio, book.clone());
    let s = Subject { server: "server1", kind: Kind::Tool, name: "tool1" };
    assert!(Policy::check(&caller, s).is_err());
    let store = PersonaStore::at(dir.path());
    store.update("empty", |p| p.enable("server1")).unwrap();
    book.replace(store.snapshot().unwrap());
    assert!(Policy::check(&caller, s).is_ok());
    store.delete("empty").unwrap();
    book.replace(store.snapshot().unwrap());
    assert_eq!(Policy::check(&caller, s).unwrap_err().code(), 3002);
}

/// A caller as an OAuth token makes it: persona, subject, expiry.
fn jwt_caller(book: &Arc<PersonaBook>, persona: &str, sub: &str, expires: u64) -> Caller {
    let jwt = Verified { persona: persona.into(), subject: sub.into(), expires };
    Caller::with_jwt(Identity::LocalUser, &jwt, book.clone())
}

#[test]
fn a_session_belongs_to_one_principal_and_a_fresh_token_extends_it() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path());
    let tool1 = Subject { server: "server1", kind: Kind::Tool, name: "tool1" };
    let (past, future) = (now_secs() - 3600, now_secs() + 600);
    let opener = jwt_caller(&book, "limited", "alice", past);
    assert_eq!(Policy::check(&opener, tool1).err().map(|r| r.code()), Some(3002), "an expired token");

    let strangers = [
        Caller::persona(Identity::LocalUser, "limited", Credential::Key("tok_2".into()), book.clone()),
        jwt_caller(&book, "empty", "alice", future),
        jwt_caller(&book, "limited", "bob", future),
        Caller::local_user(),
    ];
    for stranger in &strangers {
        assert!(!opener.same_principal(stranger), "{}", stranger.describe());
    }
    assert!(Caller::local_user().same_principal(&Caller::network("127.0.0.1:1".parse().unwrap())));

    let refreshed = jwt_caller(&book, "limited", "alice", future);
    assert!(opener.same_principal(&refreshed));
    opener.renew(&refreshed);
    assert!(Policy::check(&opener, tool1).is_ok(), "the session lives on with the fresh token");
    opener.renew(&jwt_caller(&book, "limited", "alice", past));
    assert!(Policy::check(&opener, tool1).is_ok(), "an older token never shortens it");
}

/// An API key's expiry is by vMCP's own clock: a connection the key opened (WebSocket, SSE) is
/// cut at the very second a new request with the key is refused, not the JWT skew later. A
/// JWT's expiry, by its issuer's clock, keeps the skew.
#[test]
fn an_api_keys_expiry_is_exact_and_a_jwts_allows_the_clock_skew() {
    use vmcp_persona::oauth::LEEWAY_SECS;
    use vmcp_persona::tokens::{Expiry, KeyRefused, issue};

    let dir = tempfile::tempdir().unwrap();
    let store = PersonaStore::at(dir.path());
    store.create("p", None).unwrap();
    store.update("p", |p| p.enable("server1")).unwrap();
    let (_, issued) =
        store.update("p", |p| issue(p, None, Some(Expiry::at("2030-01-01T00:00:00Z").unwrap()))).unwrap();
    let expiry: u64 = 1_893_456_000; // 2030-01-01T00:00:00Z
    let book = Arc::new(PersonaBook::new(store.snapshot().unwrap(), None));

    // The caller as the HTTP front makes it from the key (front/http/auth.rs).
    let a = book.load().authenticate_at(&issued.key, (expiry as i64 - 1) * 1000).unwrap();
    let key = Caller::with_key(Identity::LocalUser, &a, book.clone());
    let jwt = jwt_caller(&book, "p", "alice", expiry);

    let tool1 = Subject { server: "server1", kind: Kind::Tool, name: "tool1" };
    let allowed_at = |caller: &Caller, now: u64| {
        let Access::Persona(p) = &caller.access else { unreachable!() };
        p.book.check_at(p, tool1, || now).is_ok()
    };
    assert!(allowed_at(&key, expiry - 1), "the key works until its expiry");
    assert_eq!(
        book.load().authenticate_at(&issued.key, expiry as i64 * 1000).err(),
        Some(KeyRefused::Expired),
        "a new request with the key is refused at its expiry"
    );
    for late in [0, 1, LEEWAY_SECS - 1, LEEWAY_SECS] {
        assert!(
            !allowed_at(&key, expiry + late),
            "an open connection's key is cut at its expiry (+{late} s)"
        );
    }

    assert!(allowed_at(&jwt, expiry + LEEWAY_SECS - 1), "a JWT is honoured through the clock skew");
    assert!(!allowed_at(&jwt, expiry + LEEWAY_SECS), "and not past it");
}

/// A refusal answers with the error clients have always had (byte for byte) and writes one
/// audit line naming caller, persona, method, server, item and reason.
#[test]
fn a_refusal_is_the_exact_wire_error_and_one_audit_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = PersonaStore::at(dir.path().join("personas"));
    store.create("limited", None).unwrap();
    store
        .update("limited", |p| {
            p.enable("files")?;
            p.add_rule("files", RuleKind::Tool, Effect::Deny, "rm_*")
        })
        .unwrap();
    let log_path = dir.path().join("logs/audit.log");
    let log = AuditLog::open_at(&log_path).unwrap();
    let book = Arc::new(PersonaBook::new(store.snapshot().unwrap(), Some(log)));
    let peer = "127.0.0.1:5000".parse().unwrap();
    let caller =
        Caller::persona(Identity::Network(peer), "limited", Credential::Jwt("alice".into()), book.clone());

    let other = Subject { server: "server2", kind: Kind::Tool, name: "echo" };
    let e = Policy::check(&caller, other).unwrap_err().audited("tools/call");
    assert_eq!(
        e.to_json(),
        r#"{"code":3002,"message":"server `server2` is not allowed for persona `limited`","data":{"persona":"limited","server":"server2","kind":"tool","name":"echo"}}"#
    );
    let rm = Subject { server: "files", kind: Kind::Tool, name: "rm_rf" };
    let e = Policy::check(&caller, rm).unwrap_err().audited("tools/call");
    assert_eq!(
        e.to_json(),
        r#"{"code":3003,"message":"tool `rm_rf` is not permitted for persona `limited`","data":{"persona":"limited","server":"files","kind":"tool","name":"rm_rf"}}"#
    );
    // Only a refusal turned into the client's error is recorded; a listing's look is not.
    assert!(!Policy::visible(&caller, rm));
    assert!(Policy::check(&caller, rm).is_err());

    book.flush_audit(std::time::Duration::from_secs(30));
    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (l, (server, name, reason)) in
        lines.iter().zip([("server2", "echo", "server_not_allowed"), ("files", "rm_rf", "not_permitted")])
    {
        assert_eq!(l["event"], "denied");
        assert_eq!(l["caller"], "127.0.0.1:5000 (jwt:alice)");
        assert_eq!(l["persona"], "limited");
        assert_eq!(l["method"], "tools/call");
        assert_eq!((l["server"].as_str(), l["name"].as_str()), (Some(server), Some(name)));
        assert_eq!(l["reason"], reason);
        assert_eq!(l["decision"], "deny");
    }
}

/// A view taken once for a listing decides every item as the per-item check does, and a later
/// change (a swapped snapshot, an expired credential) applies to the next view.
#[test]
fn a_listings_view_agrees_with_the_per_item_check() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path());
    let limited = Caller::persona(Identity::LocalUser, "limited", Credential::Stdio, book.clone());
    let ghost = Caller::persona(Identity::LocalUser, "ghost", Credential::Stdio, book.clone());
    let expired = jwt_caller(&book, "limited", "alice", now_secs() - 3600);
    let subjects = [
        ("server1", Kind::Tool, "tool1"),
        ("server1", Kind::Server, ""),
        ("server2", Kind::Tool, "tool2"),
        ("files", Kind::Tool, "read_file"),
        ("files", Kind::Tool, "read_secret"),
        ("files", Kind::Tool, "write_file"),
        ("files", Kind::Resource, "file:///docs/a.md"),
        ("files", Kind::Resource, "file:///etc/passwd"),
    ];
    for caller in [&Caller::local_user(), &limited, &ghost, &expired] {
        let view = Policy::view(caller);
        for &(server, kind, name) in &subjects {
            let s = Subject { server, kind, name };
            assert_eq!(view.visible(s), Policy::visible(caller, s), "{} {server} {name}", caller.describe());
        }
    }
    assert!(Policy::view(&limited).visible(Subject { server: "files", kind: Kind::Tool, name: "read_file" }));
    assert!(!Policy::view(&expired).visible(Subject { server: "server1", kind: Kind::Server, name: "" }));

    let store = PersonaStore::at(dir.path());
    store.update("limited", |p| Ok(p.disable("files"))).unwrap();
    book.replace(store.snapshot().unwrap());
    let read = Subject { server: "files", kind: Kind::Tool, name: "read_file" };
    assert!(!Policy::view(&limited).visible(read), "the next view has the new rules");
}
