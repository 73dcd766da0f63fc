//! `installed/lock.json`: what is installed, from where, how, and which version is current.
//!
//! Invariant: every version directory under `installed/servers/` that is not listed here is an
//! unfinished install and is removed at the next locked run; the file itself is only written
//! through the journal (see `journal`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use vmcp_config::Home;

use crate::error::{Result, json_config_error, read_if_exists};
use crate::install_spec::MethodKind;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LockFile {
    #[serde(default = "format_one")]
    pub format: u32,
    /// By package name.
    #[serde(default)]
    pub packages: BTreeMap<String, LockedPackage>,
}

fn format_one() -> u32 {
    1
}

/// One installed package: its versions on disk and which one the server entry launches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedPackage {
    /// The `id` of its entry in `registry/servers.json`.
    pub server_id: String,
    pub current: String,
    /// What `vmcp rollback` switches to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// By version.
    pub installs: BTreeMap<String, InstalledVersion>,
}

/// One version on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstalledVersion {
    pub version: String,
    pub repository: String,
    pub method: MethodKind,
    /// The npm/PyPI package, crate, binary or URL that was installed.
    pub package: String,
    /// Its version in that package registry.
    pub upstream_version: String,
    /// `sha256:...` for downloads, npm's `sha512-...` integrity for npm packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    pub installed_at: String,
    /// The version directory; absent for remote servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    pub launch: Launch,
}

/// How the server entry starts or reaches this version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    /// `stdio`, `http` or `sse`.
    pub transport: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// `installed/` (the parent of `installed/servers/`).
pub fn installed_root(home: &Home) -> PathBuf {
    home.root().join("installed")
}

pub fn lock_path(home: &Home) -> PathBuf {
    installed_root(home).join("lock.json")
}

impl LockFile {
    pub fn load(home: &Home) -> Result<Self> {
        let path = lock_path(home);
        match read_if_exists(&path)? {
            Some(text) => serde_json::from_str(&text).map_err(|e| json_config_error(&path, &e)),
            None => Ok(Self { format: 1, ..Default::default() }),
        }
    }

    /// The package whose server entry is `id`.
    pub fn by_server_id(&self, id: &str) -> Option<(&String, &LockedPackage)> {
        self.packages.iter().find(|(_, p)| p.server_id == id)
    }

    /// True when some install lists `dir`.
    pub fn owns_dir(&self, dir: &std::path::Path) -> bool {
        self.packages.values().flat_map(|p| p.installs.values()).any(|i| i.dir.as_deref() == Some(dir))
    }
}

impl LockedPackage {
    pub fn current_install(&self) -> Option<&InstalledVersion> {
        self.installs.get(&self.current)
    }
}
