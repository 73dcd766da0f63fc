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
    let ka = issue(&mut a, Some("laptop".into())).unwrap();
    let kb = issue(&mut b, None).unwrap();
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
    let keep = issue(&mut a, None).unwrap();
    let gone = issue(&mut a, None).unwrap();
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
        assert!(snap.authenticate(bad).is_none(), "`{bad}` must be refused");
    }
    assert!(snap.authenticate(&keep.key).is_some());
}

#[test]
fn a_revoked_or_deleted_persona_key_stops_working_in_the_next_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = PersonaStore::at(dir.path());
    store.create("p", None).unwrap();
    let (_, key) = store.update("p", |r| issue(r, None)).unwrap();
    assert!(store.snapshot().unwrap().authenticate(&key.key).is_some());
    store.update("p", |r| revoke(r, &key.id)).unwrap();
    assert!(store.snapshot().unwrap().authenticate(&key.key).is_none(), "revoked");
    let (_, again) = store.update("p", |r| issue(r, None)).unwrap();
    store.delete("p").unwrap();
    assert!(store.snapshot().unwrap().authenticate(&again.key).is_none(), "persona deleted");
}

#[test]
fn a_tampered_token_list_does_not_load() {
    let mut a = RawPersona::new("a", None);
    issue(&mut a, None).unwrap();
    let mut bad_hash = a.clone();
    bad_hash.tokens[0].sha256 = "not-a-hash".into();
    assert!(Persona::from_raw(bad_hash).is_err());
    let mut duplicate = a.clone();
    duplicate.tokens.push(a.tokens[0].clone());
    assert!(Persona::from_raw(duplicate).is_err());
    assert!(issue(&mut a, Some("line\nbreak".into())).is_err(), "labels have no control characters");
}
