//! Rollback and uninstall, and finding an installed package by name or server id.

use std::path::Path;

use serde_json::Value;
use vmcp_config::Home;

use super::{Change, Installer, Outcome, entry, outcome};
use crate::error::{RepoError, Result};
use crate::home_lock::HomeLock;
use crate::journal::{self, Journal, ServerOp};
use crate::lockfile::{LockFile, LockedPackage};
use crate::name::PackageName;

/// The installed package called `name`, or whose server id is `name`.
pub(crate) fn find_locked<'l>(lock: &'l LockFile, name: &str) -> Result<(&'l str, &'l LockedPackage)> {
    if let Some((k, p)) = lock.packages.get_key_value(name) {
        return Ok((k, p));
    }
    if let Some((k, p)) = lock.by_server_id(name) {
        return Ok((k, p));
    }
    let installed: Vec<&str> = lock.packages.keys().map(String::as_str).collect();
    let hint = if installed.is_empty() {
        "nothing is installed".to_owned()
    } else {
        format!("installed: {}", installed.join(", "))
    };
    Err(RepoError::usage(format!("`{name}` was not installed with `vmcp install` ({hint})")))
}

impl Installer<'_> {
    /// `vmcp rollback NAME`: make the previous version current again (twice = back again).
    pub fn rollback(&self, name: &str) -> Result<Outcome> {
        let _lock = HomeLock::acquire(self.home, &self.progress)?;
        let servers_file = self.registry_file()?;
        let lock = LockFile::load(self.home)?;
        let (pkg, locked) = find_locked(&lock, name)?;
        let prev = locked
            .previous
            .clone()
            .ok_or_else(|| RepoError::usage(format!("{pkg} has no previous version to roll back to")))?;
        let inst = locked
            .installs
            .get(&prev)
            .filter(|i| i.dir.as_ref().is_none_or(|d| d.exists()))
            .ok_or_else(|| {
                RepoError::usage(format!(
                    "previous version {prev} of {pkg} is no longer on disk; use `vmcp install {pkg}@{prev}`"
                ))
            })?;
        let raw = journal::load_raw(&servers_file)?;
        let existing = raw.servers.iter().find(|s| s.id == locked.server_id);
        let env = existing.map(|e| e.environment.clone()).unwrap_or_default();
        let entry =
            entry::build(existing, &locked.server_id, pkg, &inst.launch, env, entry::source_json(pkg, inst));
        let mut next = lock.clone();
        if let Some(p) = next.packages.get_mut(pkg) {
            p.previous = Some(std::mem::replace(&mut p.current, prev.clone()));
        }
        let servers = vec![ServerOp::Upsert { entry: Box::new(entry) }];
        let journal =
            Journal { lock: next, servers_file: Some(servers_file), servers, remove_dirs: Vec::new() };
        journal::commit(self.home, &journal)?;
        let mut out = outcome(
            pkg,
            &locked.server_id,
            &prev,
            Some(locked.current.clone()),
            inst.method,
            Change::RolledBack,
        );
        out.previous = Some(locked.current.clone());
        Ok(out)
    }

    /// `vmcp uninstall NAME`: remove the files, the lock entry and the servers.json entry.
    /// Warns (in the outcome) when personas still reference the server.
    pub fn uninstall(&self, name: &str) -> Result<Outcome> {
        let _lock = HomeLock::acquire(self.home, &self.progress)?;
        let servers_file = self.registry_file()?;
        let lock = LockFile::load(self.home)?;
        let (pkg, locked) = find_locked(&lock, name)?;
        let key = PackageName::parse(pkg)?.dir_key();
        let raw = journal::load_raw(&servers_file)?;
        let mut warnings = Vec::new();
        let mut servers = Vec::new();
        match raw.servers.iter().find(|s| s.id == locked.server_id) {
            Some(e) if entry::is_ours(e, pkg) => {
                servers.push(ServerOp::Remove { id: locked.server_id.clone() })
            }
            Some(_) => warnings.push(format!(
                "servers.json entry `{}` was not written for {pkg}; left in place",
                locked.server_id
            )),
            None => {}
        }
        for persona in persona_references(self.home, &locked.server_id) {
            warnings.push(format!("persona `{persona}` still references server `{}`", locked.server_id));
        }
        let mut next = lock.clone();
        next.packages.remove(pkg);
        let remove_dirs = vec![self.home.installed_dir().join(key)];
        journal::commit(
            self.home,
            &Journal { lock: next, servers_file: Some(servers_file), servers, remove_dirs },
        )?;
        let method = locked.current_install().map_or(crate::install_spec::MethodKind::Remote, |i| i.method);
        let mut out = outcome(pkg, &locked.server_id, &locked.current, None, method, Change::Removed);
        out.warnings = warnings;
        Ok(out)
    }
}

/// Personas (files in `config/personas/`) that mention `server_id` as a value.
///
/// A deliberately tolerant reader rather than `vmcp-persona`'s store: a warning must also name a
/// persona file the store would reject (hand-edited, older format), and the package manager
/// should not pull in the persona crate's HTTP and JWT dependencies for one warning. The name
/// is the file's `name` field (the store writes `persona-NAME.json`), else the file stem.
pub fn persona_references(home: &Home, server_id: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(home.personas_dir()) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .filter_map(|p| mentions(&p, server_id))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The persona's name when the file mentions `id`. Parsed JSON or TOML: any string equal to
/// the id (or `id__tool`); otherwise a whole-word match.
fn mentions(path: &Path, id: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let parsed: Option<Value> = serde_json::from_str(&text)
        .ok()
        .or_else(|| toml::from_str::<toml::Value>(&text).ok().and_then(|t| serde_json::to_value(t).ok()));
    let found = match &parsed {
        Some(v) => value_mentions(v, id),
        None => text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .any(|w| w == id || w.strip_prefix(id).is_some_and(|r| r.starts_with("__"))),
    };
    if !found {
        return None;
    }
    let named = parsed.as_ref().and_then(|v| v.get("name")).and_then(Value::as_str).map(str::to_owned);
    named.or_else(|| {
        let stem = path.file_stem()?.to_string_lossy().into_owned();
        Some(stem.strip_prefix("persona-").map(str::to_owned).unwrap_or(stem))
    })
}

fn value_mentions(v: &Value, id: &str) -> bool {
    match v {
        Value::String(s) => s == id || s.strip_prefix(id).is_some_and(|r| r.starts_with("__")),
        Value::Array(items) => items.iter().any(|i| value_mentions(i, id)),
        Value::Object(map) => map.iter().any(|(k, v)| k == id || value_mentions(v, id)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_persona_references_in_json_toml_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let p = home.personas_dir();
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("dev.json"), r#"{"servers":["time","git"]}"#).unwrap();
        std::fs::write(p.join("ops.toml"), "[servers]\nallow = [\"time__get_current_time\"]\n").unwrap();
        std::fs::write(p.join("notes.yaml"), "servers:\n  - time\n").unwrap();
        std::fs::write(p.join("other.json"), r#"{"servers":["timer"]}"#).unwrap();
        // The layout of vmcp-persona's store: `persona-NAME.json` with a `name` field.
        let admin = r#"{"version":1,"name":"admin","created":"2026-01-01T00:00:00Z",
            "modified":"2026-01-01T00:00:00Z","enabled_servers":["time"],"rules":{}}"#;
        std::fs::write(p.join("persona-admin.json"), admin).unwrap();
        std::fs::write(p.join("persona-ro.json"), r#"{"name":"ro","rules":{"time":{}}}"#).unwrap();
        std::fs::write(p.join(".lock"), "time").unwrap();
        assert_eq!(persona_references(&home, "time"), ["admin", "dev", "notes", "ops", "ro"]);
    }
}
