//! API keys: shown once, stored as a hash only, matched exactly, dead once revoked.

use super::*;
use crate::store::PersonaStore;

fn snapshot_of(raws: Vec<RawPersona>) -> crate::Personas {
    let personas = raws.into_iter().map(|r| Persona::from_raw(r).unwrap()).collect();
    crate::Personas::build(personas, Vec::new(), 1)
}

#[test]
fn a_key_is_stored_only_as_its_hash_and_authenticates_its_persona() {
    let mut a = RawPersona::new("a", None);
    let mut b = RawPersona::new("b", None);
    let ka = issue(&mut a, Some("laptop".into()), None).unwrap();
    let kb = issue(&mut b, None, None).unwrap();
    assert!(ka.key.starts_with(KEY_PREFIX) && ka.key.len() == KEY_LEN);
    assert_ne!(ka.key, kb.key);
    let stored = serde_json::to_string(&a).unwrap();
    assert!(!stored.contains(&ka.key) && !stored.contains(&ka.key[KEY_PREFIX.len()..]), "{stored}");
    assert!(stored.contains(&hex(&hash(&ka.key))));
    assert!(!format!("{ka:?}").contains(&ka.key), "Debug redacts the key");

    let snap = snapshot_of(vec![a, b]);
    let who = snap.authenticate(&ka.key).unwrap();
    assert_eq!((who.persona.name(), &*who.token_id), ("a", ka.id.as_str()));
    assert_eq!(snap.authenticate(&kb.key).unwrap().persona.name(), "b");
}

#[test]
fn wrong_malformed_and_revoked_keys_are_refused() {
    let mut a = RawPersona::new("a", None);
    let keep = issue(&mut a, None, None).unwrap();
    let gone = issue(&mut a, None, None).unwrap();
    revoke(&mut a, &gone.id).unwrap();
    assert!(matches!(revoke(&mut a, &gone.id), Err(PersonaError::TokenNotFound { .. })));
    let snap = snapshot_of(vec![a]);
    let mut flipped = keep.key.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for bad in
        [gone.key.as_str(), &flipped, "", "vmcp_", &keep.key[1..], &format!("{} ", keep.key), "Bearer x"]
    {
        assert_eq!(snap.authenticate(bad).err(), Some(KeyRefused::Unknown), "`{bad}` must be refused");
    }
    assert!(snap.authenticate(&keep.key).is_ok());
}

#[test]
fn a_revoked_or_deleted_persona_key_stops_working_in_the_next_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = PersonaStore::at(dir.path());
    store.create("p", None).unwrap();
    let (_, key) = store.update("p", |r| issue(r, None, None)).unwrap();
    assert!(store.snapshot().unwrap().authenticate(&key.key).is_ok());
    store.update("p", |r| revoke(r, &key.id)).unwrap();
    assert!(store.snapshot().unwrap().authenticate(&key.key).is_err(), "revoked");
    let (_, again) = store.update("p", |r| issue(r, None, None)).unwrap();
    store.delete("p").unwrap();
    assert!(store.snapshot().unwrap().authenticate(&again.key).is_err(), "persona deleted");
}

#[test]
fn a_tampered_token_list_does_not_load() {
    let mut a = RawPersona::new("a", None);
    issue(&mut a, None, None).unwrap();
    let mut bad_hash = a.clone();
    bad_hash.tokens[0].sha256 = "not-a-hash".into();
    assert!(Persona::from_raw(bad_hash).is_err());
    let mut duplicate = a.clone();
    duplicate.tokens.push(a.tokens[0].clone());
    assert!(Persona::from_raw(duplicate).is_err());
    assert!(issue(&mut a, Some("line\nbreak".into()), None).is_err(), "labels have no control characters");
}

#[test]
fn a_key_works_until_its_expiry_and_is_refused_as_expired_from_then_on() {
    let mut a = RawPersona::new("a", None);
    let at = Expiry::at("2030-01-01T00:00:00+01:00").unwrap();
    let key = issue(&mut a, None, Some(at)).unwrap();
    let forever = issue(&mut a, None, None).unwrap();
    assert_eq!(a.tokens[0].expires.as_deref(), Some("2029-12-31T23:00:00.000Z"), "stored as UTC");
    assert_eq!(a.tokens[1].expires, None);
    let snap = snapshot_of(vec![a]);
    let expiry_ms = crate::timestamp::parse_millis("2029-12-31T23:00:00Z").unwrap();
    let who = snap.authenticate_at(&key.key, expiry_ms - 1).unwrap();
    assert_eq!((&*who.token_id, who.expires), (key.id.as_str(), Some(at)));
    assert_eq!(snap.authenticate_at(&key.key, expiry_ms).err(), Some(KeyRefused::Expired));
    assert_eq!(snap.authenticate_at(&key.key, expiry_ms + 86_400_000).err(), Some(KeyRefused::Expired));
    assert!(snap.authenticate_at(&forever.key, i64::MAX).is_ok(), "a key without expiry never expires");
    assert_eq!(KeyRefused::Expired.as_str(), "expired_key");
    assert_eq!(at.as_secs_ceil(), 1_893_452_400);
}

#[test]
fn an_expiry_is_a_time_with_an_offset_or_a_span_from_now() {
    let soon = Expiry::after("90m").unwrap();
    assert!(!soon.passed());
    assert!(Expiry::at("2000-01-01T00:00:00Z").unwrap().passed());
    for bad in ["2030-01-01", "2030-01-01T00:00:00", "tomorrow", ""] {
        assert!(matches!(Expiry::at(bad), Err(PersonaError::Usage(_))), "--expires-at {bad}");
    }
    for bad in ["30", "0d", "1y", "-5m"] {
        assert!(matches!(Expiry::after(bad), Err(PersonaError::Usage(_))), "--expires-in {bad}");
    }
}

#[test]
fn key_files_without_an_expiry_load_and_an_unreadable_expiry_does_not() {
    // A persona file written before keys could expire.
    let old = r#"{"version":1,"name":"old","created":"2026-01-01T00:00:00.000Z",
        "modified":"2026-01-01T00:00:00.000Z","enabled_servers":["s"],
        "tokens":[{"id":"tok_0a1b2c3d","label":"ci","created":"2026-01-01T00:00:00.000Z",
        "sha256":"5d41402abc4b2a76b9719d911017c592aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}]}"#;
    let raw: RawPersona = serde_json::from_str(old).unwrap();
    assert_eq!(raw.tokens[0].expires, None);
    let p = Persona::from_raw(raw.clone()).unwrap();
    assert!(!serde_json::to_string(p.raw()).unwrap().contains("expires"), "no field is added");
    let mut bad = raw;
    bad.tokens[0].expires = Some("someday".into());
    let err = Persona::from_raw(bad).unwrap_err().to_string();
    assert!(err.contains("expires"), "{err}");
}
