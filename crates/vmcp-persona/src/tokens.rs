//! API keys issued per persona.
//!
//! A key is `vmcp_` followed by the unpadded base64url of 32 random bytes from the operating
//! system (256 bits), shown once at creation. Only its SHA-256 is stored, in the persona's own
//! file, next to a random public id (`tok_` + 8 hex digits, unrelated to the key) used to list and
//! revoke it and to name it in the audit log. A key may carry an expiry ([`Expiry`], RFC 3339
//! UTC in the file; files without one load as before): from then on it is refused like a wrong
//! key, audited as `expired_key`. A plain hash is enough: the key has 256 bits of
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
    /// RFC 3339 UTC; from this instant on the key is refused. `None`: it never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

impl RawToken {
    /// When the key expires (`None`: never, or an unreadable value, which `validate` refuses).
    pub fn expiry(&self) -> Option<Expiry> {
        self.expires.as_deref().and_then(|e| timestamp::parse_millis(e).ok()).map(Expiry)
    }

    /// Has the key expired?
    pub fn expired(&self) -> bool {
        self.expiry().is_some_and(Expiry::passed)
    }
}

/// When a key stops working: an instant, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expiry(i64);

impl Expiry {
    /// At an RFC 3339 time with an explicit offset (`2026-12-31T23:59:59Z`).
    pub fn at(rfc3339: &str) -> Result<Self, PersonaError> {
        timestamp::parse_millis(rfc3339).map(Self).map_err(PersonaError::Usage)
    }

    /// A span (`90m`, `12h`, `30d`, `2w`) from now.
    pub fn after(span: &str) -> Result<Self, PersonaError> {
        let secs = timestamp::parse_span(span).map_err(PersonaError::Usage)?;
        Ok(Self(timestamp::now_millis().saturating_add(secs as i64 * 1000)))
    }

    /// RFC 3339 UTC with milliseconds, as stored.
    pub fn to_rfc3339(self) -> String {
        timestamp::format_millis(self.0)
    }

    /// Has it passed at `now_millis` (milliseconds since the epoch)?
    pub fn passed_at(self, now_millis: i64) -> bool {
        now_millis >= self.0
    }

    /// Has it passed?
    pub fn passed(self) -> bool {
        self.passed_at(timestamp::now_millis())
    }

    /// Seconds since the epoch, rounded up (the whole second in which the key still works
    /// counts), for the gateway's per-request expiry check.
    pub fn as_secs_ceil(self) -> u64 {
        u64::try_from(self.0.div_euclid(1000) + i64::from(self.0.rem_euclid(1000) != 0)).unwrap_or(0)
    }
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

/// Create a key for `persona`, valid until `expires` (`None`: until revoked), record its hash
/// there, and return the key.
pub fn issue(
    persona: &mut RawPersona,
    label: Option<String>,
    expires: Option<Expiry>,
) -> Result<IssuedToken, PersonaError> {
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
        expires: expires.map(Expiry::to_rfc3339),
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
        if let Some(e) = &t.expires
            && let Err(why) = timestamp::parse_millis(e)
        {
            return Err(bad(&format!("`expires`: {why}")));
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
    id: Arc<str>,
    expires: Option<Expiry>,
    persona: Arc<Persona>,
}

/// A key that matched: whose it is and which one.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub persona: Arc<Persona>,
    /// The key's public id, for logs and the audit trail.
    pub token_id: Arc<str>,
    /// When the key expires (`None`: never).
    pub expires: Option<Expiry>,
}

/// Why a presented key was refused; [`KeyRefused::as_str`] is the word for logs and the audit
/// trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefused {
    /// Malformed, wrong, revoked, or of a persona that no longer exists.
    Unknown,
    /// A key of this persona, but past its expiry.
    Expired,
}

impl KeyRefused {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRefused::Unknown => "unknown_key",
            KeyRefused::Expired => "expired_key",
        }
    }
}

impl TokenIndex {
    pub(crate) fn insert(&mut self, persona: &Arc<Persona>) {
        for t in &persona.raw().tokens {
            // `Persona::from_raw` validated every hash.
            let Some(hash) = parse_hash(&t.sha256) else { continue };
            self.buckets.entry(bucket(&hash)).or_default().push(Entry {
                hash,
                id: t.id.as_str().into(),
                expires: t.expiry(),
                persona: persona.clone(),
            });
        }
    }

    /// The key `bearer` as of `now_millis` (milliseconds since the epoch).
    pub(crate) fn authenticate_at(&self, bearer: &str, now_millis: i64) -> Result<Authenticated, KeyRefused> {
        // The format is public; refusing malformed input early reveals nothing.
        if bearer.len() != KEY_LEN || !bearer.starts_with(KEY_PREFIX) {
            return Err(KeyRefused::Unknown);
        }
        let presented = hash(bearer);
        let mut found: Option<&Entry> = None;
        for e in self.buckets.get(&bucket(&presented)).ok_or(KeyRefused::Unknown)? {
            if bool::from(e.hash.ct_eq(&presented)) {
                found = Some(e);
            }
        }
        let e = found.ok_or(KeyRefused::Unknown)?;
        // Only the key's holder learns that it expired rather than never existed.
        if e.expires.is_some_and(|x| x.passed_at(now_millis)) {
            return Err(KeyRefused::Expired);
        }
        Ok(Authenticated { persona: e.persona.clone(), token_id: e.id.clone(), expires: e.expires })
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
