//! What a persona allows: nothing when new, then exactly its enabled servers and rules.

use super::*;
use crate::rules::{Denied, Effect, Kind, RuleKind};

fn persona(edit: impl FnOnce(&mut RawPersona)) -> Persona {
    let mut raw = RawPersona::new("p", None);
    edit(&mut raw);
    Persona::from_raw(raw).unwrap()
}

#[test]
fn a_new_persona_reaches_nothing() {
    let p = persona(|_| {});
    for kind in [Kind::Tool, Kind::Prompt, Kind::Resource, Kind::Server] {
        assert_eq!(p.check("files", kind, "read"), Err(Denied::ServerNotAllowed), "{kind:?}");
    }
    assert_eq!(p.enabled_servers().count(), 0);
}

#[test]
fn rules_decide_within_enabled_servers() {
    let p = persona(|r| {
        r.enable("files").unwrap();
        r.enable("web").unwrap();
        r.add_rule("files", RuleKind::Tool, Effect::Allow, "read_*").unwrap();
        r.add_rule("files", RuleKind::Tool, Effect::Deny, "read_secret*").unwrap();
        r.add_rule("files", RuleKind::Resource, Effect::Deny, "file:///etc/*").unwrap();
        // Rules of a server that is not enabled grant nothing.
        r.add_rule("db", RuleKind::Tool, Effect::Allow, "*").unwrap();
    });
    let cases = [
        ("files", Kind::Tool, "read_file", Ok(())),
        ("files", Kind::Tool, "read_secrets", Err(Denied::NotPermitted)),
        ("files", Kind::Tool, "write_file", Err(Denied::NotPermitted)),
        ("files", Kind::Prompt, "anything", Ok(())),
        ("files", Kind::Resource, "file:///etc/passwd", Err(Denied::NotPermitted)),
        ("files", Kind::Resource, "file:///home/a", Ok(())),
        ("web", Kind::Tool, "fetch", Ok(())),
        ("db", Kind::Tool, "query", Err(Denied::ServerNotAllowed)),
        ("nope", Kind::Server, "", Err(Denied::ServerNotAllowed)),
    ];
    for (server, kind, name, want) in cases {
        assert_eq!(p.check(server, kind, name), want, "{server} {kind:?} {name}");
    }
}

#[test]
fn names_and_server_ids_are_checked() {
    for bad in ["", "../x", "a/b", "x.json", "-flag", "create", "list", "é", &"a".repeat(65)] {
        assert!(validate_name(bad).is_err(), "`{bad}` must be refused");
    }
    for good in ["limited", "team_a", "ci-bot", "A1"] {
        validate_name(good).unwrap();
    }
    let mut raw = RawPersona::new("p", None);
    assert!(raw.enable("../etc").is_err());
    assert!(raw.add_rule("files", RuleKind::Tool, Effect::Allow, "").is_err(), "an empty pattern");
    assert!(raw.enable("files").unwrap());
    assert!(!raw.enable("files").unwrap(), "enabling twice changes nothing");
    assert!(raw.disable("files"));
    assert!(!raw.disable("files"));
}

#[test]
fn a_seed_file_without_the_new_fields_loads() {
    let seed = r#"{ "name": "dev", "description": "d", "created": "2025-01-01T00:00:00Z",
        "modified": "2025-01-01T00:00:00Z", "enabled_servers": ["server1"], "metadata": {} }"#;
    let raw: RawPersona = serde_json::from_str(seed).unwrap();
    let p = Persona::from_raw(raw).unwrap();
    assert_eq!(p.check("server1", Kind::Tool, "tool1"), Ok(()));
    assert_eq!(p.check("server2", Kind::Tool, "tool2"), Err(Denied::ServerNotAllowed));
    let unknown = seed.replace("\"metadata\": {}", "\"metadata\": {}, \"admin\": true");
    assert!(serde_json::from_str::<RawPersona>(&unknown).is_err(), "unknown fields are refused");
}
