//! [`Personas`]: an immutable snapshot of every persona and the key index, built by
//! [`crate::PersonaStore::snapshot`] and swapped in whole by the gateway when
//! [`crate::PersonaStore::fingerprint`] changes.
//!
//! Fail closed: a persona file that does not load is left out of the snapshot (its callers are
//! refused) and reported in [`Personas::problems`]; it never falls back to a previous version.

use std::collections::HashMap;
use std::sync::Arc;

use crate::tokens::{Authenticated, KeyRefused, TokenIndex};
use crate::{Persona, PersonaError};

#[derive(Debug, Default)]
pub struct Personas {
    by_name: HashMap<Box<str>, Arc<Persona>>,
    tokens: TokenIndex,
    fingerprint: u64,
    problems: Vec<PersonaError>,
}

impl Personas {
    pub(crate) fn build(personas: Vec<Persona>, problems: Vec<PersonaError>, fingerprint: u64) -> Self {
        let mut by_name = HashMap::with_capacity(personas.len());
        let mut tokens = TokenIndex::default();
        for p in personas {
            let p = Arc::new(p);
            tokens.insert(&p);
            by_name.insert(p.name().into(), p);
        }
        Self { by_name, tokens, fingerprint, problems }
    }

    /// A persona by name (`vmcp start --persona NAME`).
    pub fn get(&self, name: &str) -> Option<&Arc<Persona>> {
        self.by_name.get(name)
    }

    /// The persona a bearer API key belongs to and which key matched (for the audit log), or
    /// why it was refused: a wrong or revoked key, or one past its expiry.
    pub fn authenticate(&self, bearer: &str) -> Result<Authenticated, KeyRefused> {
        self.authenticate_at(bearer, crate::timestamp::now_millis())
    }

    /// [`Personas::authenticate`] as of `now_millis` (milliseconds since the epoch).
    pub fn authenticate_at(&self, bearer: &str, now_millis: i64) -> Result<Authenticated, KeyRefused> {
        self.tokens.authenticate_at(bearer, now_millis)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Persona>> {
        self.by_name.values()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The store's fingerprint when this snapshot was read (taken before reading, so a change
    /// during the read shows up as a new fingerprint on the next poll).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Persona files that did not load and so are not in this snapshot; the gateway logs them.
    pub fn problems(&self) -> &[PersonaError] {
        &self.problems
    }
}
