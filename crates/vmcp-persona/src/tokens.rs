//! API keys issued per persona.
//!
//! A key is `vmcp_` followed by the unpadded base64url of 32 random bytes from the operating
//! system (256 bits), shown once at creation. Only its SHA-256 is stored, in the persona's own
//! file, next to a random public id (`tok_` + 8 hex digits, unrelated to the key) used to list and
//! revoke it and to name it in the audit log. A plain hash is enough: the key has 256 bits of
//! entropy, so there is nothing to brute-force and a salt or slow hash would only cost time.
//!
//! Verification hashes the presented key, finds candidates by the first 8 bytes of the hash,
//! and compares the full 32-byte hashes with `subtle`'s constant-time equality. The bucket
//! lookup leaks at most the timing of a hash prefix of the presented value, which says nothing
//! about any stored key.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::persona::RawPersona;
use crate::{Persona, PersonaError, timestamp};

/// Every key starts with this.
pub const KEY_PREFIX: &str = "vmcp_";
/// `vmcp_` + 43 base64url characters.
const KEY_LEN: usize = KEY_PREFIX.len() + 43;
/// The most keys one persona may have at once.
pub const MAX_TOKENS_PER_PERSONA: usize = 100;

/// One key as stored: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    /// Public id, e.g. `tok_1a2b3c4d`.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// RFC 3339 UTC.
    pub created: String,
    /// Lowercase hex SHA-256 of the whole key (`vmcp_...`).
    pub sha256: String,
}

/// A key just issued: the secret is here and nowhere else.
pub struct IssuedToken {
    pub id: String,
    /// The key to hand to the client. Shown once; never stored or logged.
    pub key: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken").field("id", &self.id).field("key", &"<redacted>").finish()
    }
}

/// Create a key for `persona`, record its hash there, and return the key.
pub fn issue(persona: &mut RawPersona, label: Option<String>) -> Result<IssuedToken, PersonaError> {
    if persona.tokens.len() >= MAX_TOKENS_PER_PERSONA {
        return Err(PersonaError::Usage(format!(
            "persona `{}` already has {MAX_TOKENS_PER_PERSONA} tokens; revoke some first",
            persona.name
        )));
    }
    if let Some(l) = &label {
        check_label(l)?;
    }
    let mut secret = [0u8; 32];
    os_random(&mut secret)?;
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    let id = loop {
        let mut raw = [0u8; 4];
        os_random(&mut raw)?;
        let id = format!("tok_{}", hex(&raw));
        if !persona.tokens.iter().any(|t| t.id == id) {
            break id;
        }
    };
    persona.tokens.push(RawToken {
        id: id.clone(),
        label,
        created: timestamp::now(),
        sha256: hex(&hash(&key)),
    });
    Ok(IssuedToken { id, key })
}

/// Remove a key by id.
pub fn revoke(persona: &mut RawPersona, id: &str) -> Result<RawToken, PersonaError> {
    let i = persona
        .tokens
        .iter()
        .position(|t| t.id == id)
        .ok_or_else(|| PersonaError::TokenNotFound { persona: persona.name.clone(), id: id.to_owned() })?;
    Ok(persona.tokens.remove(i))
}

fn check_label(label: &str) -> Result<(), PersonaError> {
    if label.len() > 200 || label.chars().any(char::is_control) {
        return Err(PersonaError::Usage(
            "a token label is at most 200 characters, without control characters".into(),
        ));
    }
    Ok(())
}

/// Check the tokens of a persona file: well-formed hashes and unique ids.
pub(crate) fn validate(persona: &RawPersona) -> Result<(), PersonaError> {
    let mut ids = HashSet::new();
    for t in &persona.tokens {
        let bad =
            |what: &str| PersonaError::Usage(format!("persona `{}`: token `{}`: {what}", persona.name, t.id));
        if parse_hash(&t.sha256).is_none() {
            return Err(bad("`sha256` is not 64 hex digits"));
        }
        if !ids.insert(t.id.as_str()) {
            return Err(bad("duplicate id"));
        }
    }
    Ok(())
}

fn os_random(buf: &mut [u8]) -> Result<(), PersonaError> {
    rand::rngs::OsRng
        .try_fill_bytes(buf)
        .map_err(|e| PersonaError::io("/dev/urandom", std::io::Error::other(e.to_string())))
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// Which persona a key belongs to, for the gateway's snapshot.
#[derive(Debug, Default)]
pub(crate) struct TokenIndex {
    buckets: HashMap<u64, Vec<Entry>>,
}

#[derive(Debug)]
struct Entry {
    hash: [u8; 32],
    id: Box<str>,
    persona: Arc<Persona>,
}

/// A key that matched: whose it is and which one.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub persona: Arc<Persona>,
    /// The key's public id, for logs and the audit trail.
    pub token_id: Box<str>,
}

impl TokenIndex {
    pub(crate) fn insert(&mut self, persona: &Arc<Persona>) {
        for t in &persona.raw().tokens {
            // `Persona::from_raw` validated every hash.
            let Some(hash) = parse_hash(&t.sha256) else { continue };
            self.buckets.entry(bucket(&hash)).or_default().push(Entry {
                hash,
                id: t.id.as_str().into(),
                persona: persona.clone(),
            });
        }
    }

    pub(crate) fn authenticate(&self, bearer: &str) -> Option<Authenticated> {
        // The format is public; refusing malformed input early reveals nothing.
        if bearer.len() != KEY_LEN || !bearer.starts_with(KEY_PREFIX) {
            return None;
        }
        let presented = hash(bearer);
        let mut found: Option<&Entry> = None;
        for e in self.buckets.get(&bucket(&presented))? {
            if bool::from(e.hash.ct_eq(&presented)) {
                found = Some(e);
            }
        }
        found.map(|e| Authenticated { persona: e.persona.clone(), token_id: e.id.clone() })
    }
}

fn bucket(hash: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
#[path = "tokens/tests.rs"]
mod tests;
