//! The persona store: one file per persona, hostile names refused, changes atomic and kept.

use super::*;
use crate::rules::{Effect, Kind, RuleKind};

fn store() -> (tempfile::TempDir, PersonaStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = PersonaStore::at(dir.path().join("personas"));
    (dir, store)
}

#[test]
fn hostile_names_are_refused_before_any_file_is_touched() {
    let (dir, store) = store();
    for bad in ["../x", "../../etc/passwd", "a/b", "/abs", ".hidden", "x\0y", "", "create", "-rf"] {
        assert!(matches!(store.create(bad, None), Err(PersonaError::InvalidName { .. })), "create `{bad:?}`");
        assert!(store.get(bad).is_err(), "get `{bad:?}`");
        assert!(store.update(bad, |_| Ok(())).is_err(), "update `{bad:?}`");
        assert!(store.delete(bad).is_err(), "delete `{bad:?}`");
    }
    assert!(!dir.path().join("x").exists() && !dir.path().join("personas/x").exists());
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn a_created_persona_is_one_seed_shaped_file_with_zero_permissions() {
    let (_dir, store) = store();
    let p = store.create("limited", Some("for CI".into())).unwrap();
    assert_eq!(p.check("server1", Kind::Tool, "tool1"), Err(crate::Denied::ServerNotAllowed));
    let text = fs::read_to_string(store.path_of("limited")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for field in ["name", "description", "created", "modified", "enabled_servers"] {
        assert!(v.get(field).is_some(), "`{field}` in {text}");
    }
    assert_eq!(v["enabled_servers"], serde_json::json!([]));
    assert!(matches!(store.create("limited", None), Err(PersonaError::AlreadyExists(_))));
    assert!(matches!(store.create("Limited", None), Err(PersonaError::AlreadyExists(_))), "case twins");
    match store.get("limitd") {
        Err(e @ PersonaError::NotFound { .. }) => assert!(e.to_string().contains("did you mean `limited`")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn updates_are_kept_and_a_failed_change_writes_nothing() {
    let (_dir, store) = store();
    store.create("p", None).unwrap();
    store.update("p", |r| r.enable("server1")).unwrap();
    store.update("p", |r| r.add_rule("server1", RuleKind::Tool, Effect::Deny, "rm*")).unwrap();
    let before = fs::read_to_string(store.path_of("p")).unwrap();
    assert!(store.update("p", |r| r.enable("../bad")).is_err());
    assert_eq!(fs::read_to_string(store.path_of("p")).unwrap(), before, "a refused change writes nothing");
    let p = store.get("p").unwrap();
    assert_eq!(p.check("server1", Kind::Tool, "ls"), Ok(()));
    assert_eq!(p.check("server1", Kind::Tool, "rmdir"), Err(crate::Denied::NotPermitted));
    let fingerprint = store.fingerprint();
    store.update("p", |r| Ok(r.disable("server1"))).unwrap();
    assert_ne!(store.fingerprint(), fingerprint, "a change shows in the fingerprint");
    store.delete("p").unwrap();
    assert!(store.get("p").is_err());
}

#[test]
fn a_corrupt_file_is_left_out_of_the_snapshot_and_named() {
    let (_dir, store) = store();
    store.create("good", None).unwrap();
    store.create("bad", None).unwrap();
    fs::write(store.path_of("bad"), "{ not json").unwrap();
    // A file claiming another persona's name, and leftovers of an interrupted write.
    fs::write(store.path_of("liar"), fs::read_to_string(store.path_of("good")).unwrap()).unwrap();
    fs::write(store.dir().join(".persona-good.json.tmp.1"), "{ half").unwrap();
    let snap = store.snapshot().unwrap();
    assert!(snap.get("good").is_some());
    assert!(snap.get("bad").is_none() && snap.get("liar").is_none(), "unloadable files grant nothing");
    assert_eq!(snap.problems().len(), 2, "{:?}", snap.problems());
    assert!(store.get("bad").unwrap_err().to_string().contains("persona-bad.json"));
}
