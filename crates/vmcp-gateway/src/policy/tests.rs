//! Table-driven checks of the one policy function: full access, personas by server and rule,
//! live swaps and fail-closed lookups.

use std::sync::Arc;

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
    let limited = Caller::persona(Identity::LocalUser, "limited", "stdio", book.clone());
    let empty = Caller::persona(Identity::LocalUser, "empty", "stdio", book.clone());
    let ghost = Caller::persona(Identity::LocalUser, "ghost", "stdio", book);
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
        let got = Policy::check(caller, Subject { server, kind, name }).err().map(|e| e.code);
        assert_eq!(got, want, "{:?} {server} {kind:?} {name}", caller.persona_name());
        assert_eq!(Policy::visible(caller, Subject { server, kind, name }), want.is_none());
    }
}

#[test]
fn a_swapped_snapshot_applies_to_existing_callers() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path());
    let caller = Caller::persona(Identity::LocalUser, "empty", "stdio", book.clone());
    let s = Subject { server: "server1", kind: Kind::Tool, name: "tool1" };
    assert!(Policy::check(&caller, s).is_err());
    let store = PersonaStore::at(dir.path());
    store.update("empty", |p| p.enable("server1")).unwrap();
    book.replace(store.snapshot().unwrap());
    assert!(Policy::check(&caller, s).is_ok());
    store.delete("empty").unwrap();
    book.replace(store.snapshot().unwrap());
    assert_eq!(Policy::check(&caller, s).unwrap_err().code, 3002);
}

/// A caller as an OAuth token makes it: persona, subject, expiry.
fn jwt_caller(book: &Arc<PersonaBook>, persona: &str, sub: &str, expires: u64) -> Caller {
    let mut c = Caller::persona(Identity::LocalUser, persona, &format!("jwt:{sub}"), book.clone());
    if let Access::Persona(p) = &mut c.access {
        p.expires = Some(Arc::new(expires.into()));
    }
    c
}

#[test]
fn a_session_belongs_to_one_principal_and_a_fresh_token_extends_it() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path());
    let tool1 = Subject { server: "server1", kind: Kind::Tool, name: "tool1" };
    let (past, future) = (now_secs() - 3600, now_secs() + 600);
    let opener = jwt_caller(&book, "limited", "alice", past);
    assert_eq!(Policy::check(&opener, tool1).err().map(|e| e.code), Some(3002), "an expired token");

    let strangers = [
        Caller::persona(Identity::LocalUser, "limited", "token:tok_2", book.clone()),
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
