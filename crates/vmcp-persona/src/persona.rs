//! A persona: a named access set, as written on disk ([`RawPersona`]) and validated and compiled
//! for the gateway ([`Persona`]).
//!
//! Secure by default: a new persona has no enabled server and so reaches nothing.
//! Invariant: [`Persona::check`] is pure and does not allocate.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::rules::{Denied, Effect, Kind, RawServerRules, RuleKind, ServerAccess};
use crate::tokens::RawToken;
use crate::{PersonaError, timestamp};

/// The on-disk format this build writes and understands.
pub const FORMAT_VERSION: u32 = 1;

/// Words of `vmcp persona` that cannot be persona names (`vmcp persona NAME VERB` would be
/// ambiguous).
pub const RESERVED_NAMES: &[&str] = &["create", "list", "show", "delete", "help"];

/// Check a persona name: `[A-Za-z0-9_-]{1,64}`, not starting with `-` (it would read as a
/// flag) and not one of [`RESERVED_NAMES`].
pub fn validate_name(name: &str) -> Result<(), PersonaError> {
    let bad = |reason| Err(PersonaError::InvalidName { name: name.to_owned(), reason });
    if name.is_empty() || name.len() > 64 {
        return bad("use 1 to 64 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return bad("use letters, digits, `_` and `-`");
    }
    if name.starts_with('-') {
        return bad("a name cannot start with `-`");
    }
    if RESERVED_NAMES.contains(&name) {
        return bad("this word is a `vmcp persona` command");
    }
    Ok(())
}

/// A persona file as written on disk (`config/personas/persona-<name>.json`). The seed's fields
/// (`name`, `description`, `created`, `modified`, `enabled_servers`, `metadata`) plus `rules`
/// and `tokens`; `version` defaults to 1 so files written by hand in the seed's shape load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPersona {
    #[serde(default = "format_version")]
    pub version: u32,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// RFC 3339 UTC.
    pub created: String,
    /// RFC 3339 UTC; bumped by every change.
    pub modified: String,
    /// Servers this persona may reach at all. Nothing else is reachable.
    #[serde(default)]
    pub enabled_servers: BTreeSet<String>,
    /// Rules by server id. Rules of a server that is not enabled are kept but grant nothing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, RawServerRules>,
    /// API keys, by hash only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<RawToken>,
    /// Free-form data kept for the operator (the seed's `metadata`); never interpreted.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

fn format_version() -> u32 {
    FORMAT_VERSION
}

impl RawPersona {
    /// A new persona with zero permissions.
    pub fn new(name: &str, description: Option<String>) -> Self {
        let now = timestamp::now();
        Self {
            version: FORMAT_VERSION,
            name: name.to_owned(),
            description,
            created: now.clone(),
            modified: now,
            enabled_servers: BTreeSet::new(),
            rules: BTreeMap::new(),
            tokens: Vec::new(),
            metadata: serde_json::Map::new(),
        }
    }

    /// Enable a server; `Ok(false)` if it already was.
    pub fn enable(&mut self, server: &str) -> Result<bool, PersonaError> {
        check_server_id(server)?;
        Ok(self.enabled_servers.insert(server.to_owned()))
    }

    /// Disable a server (its rules stay, for when it is enabled again); `false` if it was not
    /// enabled.
    pub fn disable(&mut self, server: &str) -> bool {
        self.enabled_servers.remove(server)
    }

    /// Add an `allow` or `deny` pattern; `Ok(false)` if it was already there.
    pub fn add_rule(
        &mut self,
        server: &str,
        kind: RuleKind,
        effect: Effect,
        pattern: &str,
    ) -> Result<bool, PersonaError> {
        check_server_id(server)?;
        crate::pattern::Pattern::new(pattern)?;
        let set = self.rules.entry(server.to_owned()).or_default().kind_mut(kind).patterns_mut(effect);
        Ok(set.insert(pattern.to_owned()))
    }

    /// Remove a pattern; `false` if it was not there.
    pub fn remove_rule(&mut self, server: &str, kind: RuleKind, effect: Effect, pattern: &str) -> bool {
        let Some(rules) = self.rules.get_mut(server) else { return false };
        let removed = rules.kind_mut(kind).patterns_mut(effect).remove(pattern);
        if rules.is_empty() {
            self.rules.remove(server);
        }
        removed
    }
}

fn check_server_id(server: &str) -> Result<(), PersonaError> {
    if vmcp_config::is_valid_server_id(server) {
        Ok(())
    } else {
        Err(PersonaError::InvalidServerId(server.to_owned()))
    }
}

/// A validated persona with its rules compiled. Immutable; shared as `Arc<Persona>`.
#[derive(Debug, Clone)]
pub struct Persona {
    raw: RawPersona,
    /// Enabled servers only, with their compiled rules.
    servers: HashMap<Box<str>, ServerAccess>,
}

impl Persona {
    /// Validate a persona file's content and compile its rules.
    pub fn from_raw(raw: RawPersona) -> Result<Self, PersonaError> {
        if raw.version != FORMAT_VERSION {
            return Err(PersonaError::Usage(format!(
                "persona `{}` has format version {} but this vmcp understands {FORMAT_VERSION}",
                raw.name, raw.version
            )));
        }
        validate_name(&raw.name)?;
        for id in raw.enabled_servers.iter().chain(raw.rules.keys()) {
            check_server_id(id)?;
        }
        let mut compiled = HashMap::with_capacity(raw.enabled_servers.len());
        for (server, rules) in &raw.rules {
            let access = ServerAccess::compile(rules)?;
            if raw.enabled_servers.contains(server) {
                compiled.insert(server.as_str().into(), access);
            }
        }
        for server in &raw.enabled_servers {
            compiled.entry(server.as_str().into()).or_insert_with(ServerAccess::default);
        }
        crate::tokens::validate(&raw)?;
        Ok(Self { raw, servers: compiled })
    }

    pub fn name(&self) -> &str {
        &self.raw.name
    }

    /// The file content this persona was built from.
    pub fn raw(&self) -> &RawPersona {
        &self.raw
    }

    pub fn enabled_servers(&self) -> impl Iterator<Item = &str> {
        self.raw.enabled_servers.iter().map(String::as_str)
    }

    /// May this persona use `name` (a tool or prompt name as the backend knows it, a resource
    /// URI or template) of `server`? For [`Kind::Server`], `name` is ignored.
    ///
    /// Pure, no allocation: it runs per request and per listed item.
    #[inline]
    pub fn check(&self, server: &str, kind: Kind, name: &str) -> Result<(), Denied> {
        let Some(access) = self.servers.get(server) else { return Err(Denied::ServerNotAllowed) };
        if access.permits(kind, name) { Ok(()) } else { Err(Denied::NotPermitted) }
    }
}

#[cfg(test)]
#[path = "persona/tests.rs"]
mod tests;
