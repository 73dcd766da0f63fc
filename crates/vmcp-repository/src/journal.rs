//! The commit of an install, update, rollback or uninstall: a redo journal that makes the change
//! to the servers registry (`gateway.servers_file` of the command's vmcp.toml, else
//! `registry/servers.json`), `installed/lock.json` and old version directories all-or-nothing.
//! The journal names the registry file it changes, so recovery finishes the change in that file.
//!
//! Invariant: before `installed/journal.json` exists nothing visible has changed, so a killed
//! run leaves the previous state exactly; once it exists, the next locked run (or this one)
//! applies it again until done. Every step is idempotent.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vmcp_config::{Home, RawServer, RawServersFile, ServersFile};

use crate::error::{IoContext, RepoError, Result};
use crate::lockfile::{LockFile, installed_root, lock_path};

/// One change to the servers registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum ServerOp {
    /// Insert or replace the entry with this id.
    Upsert { entry: Box<RawServer> },
    /// Remove the entry with this id, if present.
    Remove { id: String },
}

/// Everything one command changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    pub lock: LockFile,
    /// The registry file `servers` changes: the command's registry when the change was planned.
    /// Absent in journals written before it was recorded; the home's registry
    /// (`Home::registry_file`) then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers_file: Option<PathBuf>,
    pub servers: Vec<ServerOp>,
    /// Version directories (or whole package directories) to delete.
    #[serde(default)]
    pub remove_dirs: Vec<PathBuf>,
}

impl Journal {
    /// The registry file this journal changes.
    fn servers_path(&self, home: &Home) -> Result<PathBuf> {
        match &self.servers_file {
            Some(path) => Ok(path.clone()),
            None => Ok(home.registry_file()?),
        }
    }
}

fn journal_path(home: &Home) -> PathBuf {
    installed_root(home).join("journal.json")
}

/// Make the change durable (the commit point), then apply it.
pub fn commit(home: &Home, journal: &Journal) -> Result<()> {
    // Refuse a change that would make the registry invalid; the checked registry is the one
    // written, so the file is read and changed once.
    let servers = changed_servers(home, journal)?
        .map(|(path, raw)| ServersFile::from_raw(&path, raw).map(|f| (path, f.raw)))
        .transpose()?;
    let path = journal_path(home);
    let text = serde_json::to_vec_pretty(journal).map_err(|e| RepoError::io(&path, e.into()))?;
    vmcp_config::write_atomic(&path, &text).at(&path)?;
    apply(home, journal, servers)
}

/// Finish a journal left by a killed run.
pub fn recover(home: &Home) -> Result<bool> {
    let path = journal_path(home);
    let Some(text) = crate::error::read_if_exists(&path)? else { return Ok(false) };
    let journal: Journal = serde_json::from_str(&text).map_err(|e| {
        RepoError::source(
            "journal",
            format!("{} is unreadable ({e}); remove it to discard the change", path.display()),
        )
    })?;
    apply(home, &journal, changed_servers(home, &journal)?)?;
    Ok(true)
}

/// The registry file the journal changes and its content after the change (`None`: the journal
/// changes no server).
fn changed_servers(home: &Home, journal: &Journal) -> Result<Option<(PathBuf, RawServersFile)>> {
    if journal.servers.is_empty() {
        return Ok(None);
    }
    let path = journal.servers_path(home)?;
    let raw = apply_ops(load_raw(&path)?, &journal.servers);
    Ok(Some((path, raw)))
}

/// Write `servers` (from [`changed_servers`]) and the lock, then remove the old directories and
/// the journal.
fn apply(home: &Home, journal: &Journal, servers: Option<(PathBuf, RawServersFile)>) -> Result<()> {
    if let Some((path, raw)) = servers {
        ServersFile::save(&path, &raw).at(&path)?;
    }
    let lock = lock_path(home);
    let text = serde_json::to_vec_pretty(&journal.lock).map_err(|e| RepoError::io(&lock, e.into()))?;
    vmcp_config::write_atomic(&lock, &text).at(&lock)?;
    for dir in &journal.remove_dirs {
        remove_dir(dir)?;
    }
    let path = journal_path(home);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RepoError::io(&path, e)),
        _ => Ok(()),
    }
}

/// The raw registry, or an empty one (with the format's defaults) if the file does not exist yet.
pub fn load_raw(path: &Path) -> Result<RawServersFile> {
    Ok(ServersFile::load(path)?.map(|f| f.raw).unwrap_or_default())
}

fn apply_ops(mut raw: RawServersFile, ops: &[ServerOp]) -> RawServersFile {
    for op in ops {
        match op {
            ServerOp::Upsert { entry } => match raw.servers.iter_mut().find(|s| s.id == entry.id) {
                Some(slot) => *slot = (**entry).clone(),
                None => raw.servers.push((**entry).clone()),
            },
            ServerOp::Remove { id } => raw.servers.retain(|s| s.id != *id),
        }
    }
    raw
}

pub(crate) fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RepoError::io(dir, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, cmd: &str) -> RawServer {
        RawServer {
            id: id.into(),
            transport: "stdio".into(),
            command: Some(cmd.into()),
            ..Default::default()
        }
    }

    #[test]
    fn commit_applies_and_recover_replays_an_interrupted_journal() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let old = installed_root(&home).join("servers/x/1");
        std::fs::create_dir_all(&old).unwrap();
        let mut journal = Journal {
            lock: LockFile::default(),
            servers_file: Some(home.registry_file().unwrap()),
            servers: vec![ServerOp::Upsert { entry: Box::new(entry("x", "a")) }],
            remove_dirs: vec![old.clone()],
        };
        commit(&home, &journal).unwrap();
        assert!(!old.exists() && !journal_path(&home).exists());
        let raw = load_raw(&home.servers_file()).unwrap();
        assert_eq!((raw.version.as_str(), raw.servers[0].command.as_deref()), ("1.0.0", Some("a")));

        // Simulate a run killed right after the commit point.
        journal.servers =
            vec![ServerOp::Upsert { entry: Box::new(entry("x", "b")) }, ServerOp::Remove { id: "y".into() }];
        std::fs::write(journal_path(&home), serde_json::to_vec(&journal).unwrap()).unwrap();
        assert!(recover(&home).unwrap());
        assert!(!recover(&home).unwrap());
        let raw = load_raw(&home.servers_file()).unwrap();
        assert_eq!((raw.servers.len(), raw.servers[0].command.as_deref()), (1, Some("b")));
    }

    #[test]
    fn refuses_a_change_that_breaks_servers_json() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let bad = RawServer { id: "bad id".into(), ..Default::default() };
        let journal = Journal {
            lock: LockFile::default(),
            servers_file: Some(home.registry_file().unwrap()),
            servers: vec![ServerOp::Upsert { entry: Box::new(bad) }],
            remove_dirs: vec![],
        };
        assert!(commit(&home, &journal).is_err());
        assert!(!journal_path(&home).exists() && !home.servers_file().exists());
    }

    fn configure_servers_file(home: &Home, value: &str) {
        let config = home.config_file();
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(config, format!("[gateway]\nservers_file = \"{value}\"\n")).unwrap();
    }

    #[test]
    fn recovery_finishes_the_change_in_the_registry_the_journal_names() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        configure_servers_file(&home, "elsewhere/servers.json");
        let configured = dir.path().join("config/elsewhere/servers.json");
        let journal = Journal {
            lock: LockFile::default(),
            servers_file: Some(home.registry_file().unwrap()),
            servers: vec![ServerOp::Upsert { entry: Box::new(entry("x", "a")) }],
            remove_dirs: vec![],
        };
        // Killed after the commit point; vmcp.toml then points somewhere else: the journal's
        // file is the one the change was planned against, so that is the one finished.
        std::fs::create_dir_all(installed_root(&home)).unwrap();
        std::fs::write(journal_path(&home), serde_json::to_vec(&journal).unwrap()).unwrap();
        configure_servers_file(&home, "moved.json");
        assert!(recover(&home).unwrap());
        assert_eq!(load_raw(&configured).unwrap().servers[0].command.as_deref(), Some("a"));
        assert!(!home.servers_file().exists() && !dir.path().join("config/moved.json").exists());

        // A journal from before the file was recorded: the home's registry now.
        let old = r#"{"lock":{},"servers":[{"op":"remove","id":"x"},
            {"op":"upsert","entry":{"id":"y","transport":"stdio","command":"b"}}]}"#;
        std::fs::write(journal_path(&home), old).unwrap();
        assert!(recover(&home).unwrap());
        let raw = load_raw(&dir.path().join("config/moved.json")).unwrap();
        assert_eq!(raw.servers.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["y"]);
        assert!(!home.servers_file().exists());
    }
}
