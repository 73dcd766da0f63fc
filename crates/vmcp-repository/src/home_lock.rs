//! The advisory lock that serializes every command changing repositories or installs
//! (`installed/.lock`, via `fs4`), and the recovery that runs right after taking it.
//!
//! Recovery: finish a committed journal, delete staging directories, and delete version
//! directories no lock entry lists (left by a run killed between rename and commit).
//! Invariant: while a `HomeLock` lives, no other vmcp process mutates the repository state.

use std::fs::File;
use std::path::{Path, PathBuf};

use vmcp_config::Home;

use crate::error::{IoContext, RepoError, Result};
use crate::journal;
use crate::lockfile::{LockFile, installed_root};
use crate::progress::Progress;

/// The marker written into every finished version directory before it is renamed into place.
pub const INSTALL_MARKER: &str = ".vmcp-install.json";

/// Held for the duration of one mutating command.
pub struct HomeLock {
    _file: File,
}

impl HomeLock {
    /// Block until the lock is ours, then recover from any interrupted run.
    pub fn acquire(home: &Home, progress: &Progress) -> Result<Self> {
        let root = installed_root(home);
        std::fs::create_dir_all(home.installed_dir()).at(&root)?;
        let path = root.join(".lock");
        let file =
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).at(&path)?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                progress
                    .note(format!("waiting for another vmcp command to finish (lock {})...", path.display()));
                fs4::FileExt::lock(&file).at(&path)?;
            }
            Err(fs4::TryLockError::Error(e)) => return Err(RepoError::io(&path, e)),
        }
        if journal::recover(home)? {
            progress.note("finished an interrupted change");
        }
        clean(home)?;
        Ok(Self { _file: file })
    }
}

/// The staging area for installs in progress.
pub fn staging_dir(home: &Home) -> PathBuf {
    home.installed_dir().join(".staging")
}

fn clean(home: &Home) -> Result<()> {
    journal::remove_dir(&staging_dir(home))?;
    let lock = LockFile::load(home)?;
    let servers = home.installed_dir();
    let Ok(entries) = std::fs::read_dir(&servers) else { return Ok(()) };
    for pkg_dir in entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()) {
        clean_package_dir(&pkg_dir, &lock)?;
    }
    Ok(())
}

/// Remove version directories of ours (they carry the marker) that the lock does not list.
fn clean_package_dir(pkg_dir: &Path, lock: &LockFile) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(pkg_dir) else { return Ok(()) };
    for dir in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        if dir.join(INSTALL_MARKER).is_file() && !lock.owns_dir(&dir) {
            tracing::info!(dir = %dir.display(), "removing unfinished install");
            journal::remove_dir(&dir)?;
        }
    }
    if std::fs::read_dir(pkg_dir).is_ok_and(|mut d| d.next().is_none()) {
        let _ = std::fs::remove_dir(pkg_dir);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_staging_and_unlisted_versions_but_not_foreign_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let staged = staging_dir(&home).join("x@1.0.0.123");
        let orphan = home.installed_dir().join("x/2.0.0");
        let foreign = home.installed_dir().join("y/hand-made");
        for d in [&staged, &orphan, &foreign] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(orphan.join(INSTALL_MARKER), "{}").unwrap();
        let _lock = HomeLock::acquire(&home, &Progress::silent()).unwrap();
        assert!(!staged.exists() && !orphan.exists() && !home.installed_dir().join("x").exists());
        assert!(foreign.exists());
    }
}
