//! The plan of one install or switch: which release, which server id, the existing registry
//! entry, and where the version goes. Computed before anything is built or changed.

use std::path::{Path, PathBuf};

use vmcp_config::{Home, RawServer};

use super::{Change, Outcome, entry, outcome};
use crate::error::{RepoError, Result};
use crate::install_spec::{Method, MethodKind};
use crate::journal;
use crate::lockfile::{InstalledVersion, LockFile};
use crate::name::PackageName;
use crate::package::{Package, Release};

pub(super) struct Plan<'p> {
    pub pkg: &'p Package,
    pub release: &'p Release,
    pub lock: LockFile,
    pub server_id: String,
    /// The servers registry the installer changes (`Installer::registry_file`), read now and
    /// changed at the commit.
    pub servers_file: PathBuf,
    /// The registry entry with that id (it is ours, or the plan fails).
    pub existing: Option<RawServer>,
    /// The current version, if the package is installed.
    pub previous: Option<String>,
    pub final_dir: PathBuf,
    pub data_dir: PathBuf,
}

impl<'p> Plan<'p> {
    pub fn new(
        home: &Home,
        servers_file: &Path,
        pkg: &'p Package,
        version: &str,
        opts: &super::InstallOptions,
    ) -> Result<Self> {
        let name = PackageName::parse(pkg.name())?;
        let release = pkg
            .release(version)
            .ok_or_else(|| RepoError::usage(format!("no release {version} of {name}")))?;
        let lock = LockFile::load(home)?;
        let locked = lock.packages.get(pkg.name());
        let server_id = opts
            .server_id
            .clone()
            .or_else(|| locked.map(|l| l.server_id.clone()))
            .unwrap_or_else(|| name.default_server_id());
        let servers_file = servers_file.to_owned();
        let raw = journal::load_raw(&servers_file)?;
        let existing = check_server_id(&lock, &raw.servers, &server_id, pkg.name())?.cloned();
        let previous = locked.map(|l| l.current.clone());
        let final_dir = home.installed_dir().join(name.dir_key()).join(version);
        let data_dir = home.data_dir().join(&server_id);
        Ok(Self { pkg, release, lock, server_id, servers_file, existing, previous, final_dir, data_dir })
    }

    /// Already current and registered: nothing to do.
    pub fn unchanged(&self) -> Option<Outcome> {
        let locked = self.lock.packages.get(self.pkg.name())?;
        if locked.current != self.release.version || self.existing.is_none() {
            return None;
        }
        let method = locked.current_install().map_or(MethodKind::Remote, |i| i.method);
        Some(outcome(self.pkg.name(), &self.server_id, &locked.current, None, method, Change::Unchanged))
    }

    /// This version, already on disk (the previous one, or a re-registration).
    pub fn reusable(&self) -> Option<&InstalledVersion> {
        let locked = self.lock.packages.get(self.pkg.name())?;
        locked.installs.get(&self.release.version).filter(|i| i.dir.as_ref().is_none_or(|d| d.exists()))
    }

    /// Substitute `{install_dir}` and `{data_dir}`.
    pub fn expand(&self, template: &str) -> String {
        entry::expand(template, &self.final_dir.to_string_lossy(), &self.data_dir.to_string_lossy())
    }

    /// Whether the launch refers to `{data_dir}` (then it is created before the commit).
    pub fn uses_data(&self, method: &Method) -> bool {
        let install = &self.release.install;
        method
            .args()
            .unwrap_or(&install.args)
            .iter()
            .map(String::as_str)
            .chain(install.env.iter().filter_map(|v| v.default.as_deref()))
            .any(|s| s.contains("{data_dir}"))
    }
}

/// The existing servers.json entry for `id`, refusing one that belongs to something else.
fn check_server_id<'s>(
    lock: &LockFile,
    servers: &'s [RawServer],
    id: &str,
    package: &str,
) -> Result<Option<&'s RawServer>> {
    if !vmcp_config::is_valid_server_id(id) {
        return Err(RepoError::usage(format!(
            "server id `{id}` must be 1-64 of A-Z, a-z, 0-9, `_` or `-`; pass --id"
        )));
    }
    if let Some((other, _)) = lock.by_server_id(id).filter(|(p, _)| *p != package) {
        return Err(RepoError::usage(format!(
            "server id `{id}` is taken by installed package {other}; pass --id NAME"
        )));
    }
    let existing = servers.iter().find(|s| s.id == id);
    if let Some(e) = existing
        && !entry::is_ours(e, package)
    {
        return Err(RepoError::usage(format!(
            "servers.json already has a server `{id}` not installed from {package}; pass --id NAME"
        )));
    }
    Ok(existing)
}
