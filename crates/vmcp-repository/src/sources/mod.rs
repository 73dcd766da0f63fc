//! Repositories: `config/repositories.json`, the per-repository cache of synced packages
//! (`cache/repos/NAME/index.json`), and sync.
//!
//! Invariant: a sync replaces a repository's cache atomically, and only after the fetch succeeded;
//! one bad package is reported in the cache's `errors` and skipped, never aborting the sync.

mod builtin;
mod git;
mod http_index;
mod local;
mod manage;
mod registry_api;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vmcp_config::Home;

use crate::error::{IoContext, RepoError, Result, json_config_error, read_if_exists};
use crate::name::check_repo_name;
use crate::net::Net;
use crate::package::Package;
use crate::progress::Progress;

pub use builtin::{BUILTIN, builtin_packages};
pub use http_index::{IndexEntry, parse_index};
pub use manage::{AddRequest, add_repository, remove_repository, sync_repositories};

/// The closed set of source kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A git repository of package directories.
    Git,
    /// An HTTP(S) base URL serving `index.json`.
    Http,
    /// A local directory of package directories.
    Local,
    /// An MCP registry API (`/v0/servers`).
    Registry,
    /// The catalog compiled into vMCP.
    Builtin,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Git => "git",
            SourceKind::Http => "http",
            SourceKind::Local => "local",
            SourceKind::Registry => "registry",
            SourceKind::Builtin => "builtin",
        }
    }

    /// Guess from the URL: `.git` suffix, a GitHub/GitLab/Codeberg URL, ssh, or a local git checkout
    /// -> git; an existing directory ->
    /// local; the official registry's host -> registry; any other http(s) URL -> http.
    pub fn detect(url: &str) -> SourceKind {
        let path = Path::new(url);
        let forge = ["https://github.com/", "https://gitlab.com/", "https://codeberg.org/"];
        if url.ends_with(".git")
            || forge.iter().any(|f| url.starts_with(f))
            || url.starts_with("ssh://")
            || url.starts_with("git@")
            || path.join(".git").exists()
        {
            SourceKind::Git
        } else if path.is_dir() {
            SourceKind::Local
        } else if url.contains("registry.modelcontextprotocol.io") {
            SourceKind::Registry
        } else {
            SourceKind::Http
        }
    }
}

/// One configured repository, as stored in `config/repositories.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    pub name: String,
    pub url: String,
    #[serde(rename = "type")]
    pub kind: SourceKind,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Plain http allowed for this source and the downloads its packages declare.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_insecure: bool,
}

fn yes() -> bool {
    true
}

/// The file as written on disk.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRepositoriesFile {
    #[serde(default)]
    pub repositories: Vec<RepoConfig>,
}

/// The validated list, in priority order (first wins); `builtin` is implicit and last.
#[derive(Debug, Clone)]
pub struct Repositories {
    path: PathBuf,
    pub list: Vec<RepoConfig>,
}

impl Repositories {
    pub fn load(home: &Home) -> Result<Self> {
        let path = home.repositories_file();
        let raw: RawRepositoriesFile = match read_if_exists(&path)? {
            Some(text) => serde_json::from_str(&text).map_err(|e| json_config_error(&path, &e))?,
            None => RawRepositoriesFile::default(),
        };
        let mut seen = std::collections::BTreeSet::new();
        for (i, r) in raw.repositories.iter().enumerate() {
            let fail =
                |m: String| vmcp_config::ConfigError::new(&path, Some(format!("repositories[{i}]")), m);
            check_repo_name(&r.name).map_err(|e| fail(e.to_string()))?;
            if r.name == BUILTIN || r.kind == SourceKind::Builtin || !seen.insert(r.name.clone()) {
                return Err(fail(format!("repository name `{}` is reserved or repeated", r.name)).into());
            }
        }
        Ok(Self { path, list: raw.repositories })
    }

    pub fn save(&self) -> Result<()> {
        let raw = RawRepositoriesFile { repositories: self.list.clone() };
        let mut text = serde_json::to_string_pretty(&raw).map_err(|e| RepoError::io(&self.path, e.into()))?;
        text.push('\n');
        vmcp_config::write_atomic(&self.path, text.as_bytes()).at(&self.path)
    }

    pub fn get(&self, name: &str) -> Option<&RepoConfig> {
        self.list.iter().find(|r| r.name == name)
    }

    /// Configured repositories then `builtin`, in priority order.
    pub fn with_builtin(&self) -> Vec<RepoConfig> {
        let mut all = self.list.clone();
        all.push(builtin::config());
        all
    }
}

/// A package that failed validation during a sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageError {
    pub package: String,
    pub message: String,
}

/// Source-specific state that makes the next sync incremental.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    /// HTTP `ETag` of `index.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Git commit of the checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Registry: start of the last sync, sent as `updated_since` next time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_since: Option<String>,
}

/// `cache/repos/NAME/index.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedIndex {
    pub format: u32,
    pub repository: String,
    pub synced_at: String,
    #[serde(default)]
    pub state: SyncState,
    pub packages: Vec<Package>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<PackageError>,
}

/// What one source fetch produced.
pub(crate) struct Fetch {
    pub packages: Vec<Package>,
    pub errors: Vec<PackageError>,
    pub state: SyncState,
}

/// What a sync changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub repository: String,
    pub packages: usize,
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    pub errors: Vec<PackageError>,
}

impl std::fmt::Display for SyncReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} packages ({} new, {} updated, {} removed",
            self.repository, self.packages, self.added, self.updated, self.removed
        )?;
        if !self.errors.is_empty() {
            write!(f, ", {} invalid skipped", self.errors.len())?;
        }
        f.write_str(")")
    }
}

pub fn cache_dir(home: &Home, repo: &str) -> PathBuf {
    home.cache_dir().join("repos").join(repo)
}

/// The last synced packages of a repository (`None` before its first sync).
pub fn load_cached(home: &Home, repo: &str) -> Result<Option<CachedIndex>> {
    let path = cache_dir(home, repo).join("index.json");
    let Some(text) = read_if_exists(&path)? else { return Ok(None) };
    let cached: CachedIndex = serde_json::from_str(&text).map_err(|e| {
        RepoError::source(
            repo,
            format!("cached index {} is corrupt ({e}); run `vmcp repo sync {repo}`", path.display()),
        )
    })?;
    Ok(Some(cached))
}

/// Fetch a repository, validate its packages, write its cache, and report the changes.
pub fn sync(home: &Home, cfg: &RepoConfig, progress: &Progress) -> Result<SyncReport> {
    if cfg.kind == SourceKind::Builtin {
        let packages = builtin_packages().len();
        return Ok(SyncReport { repository: cfg.name.clone(), packages, ..Default::default() });
    }
    let previous = load_cached(home, &cfg.name).ok().flatten();
    let net = Net::new(cfg.allow_insecure);
    let dir = cache_dir(home, &cfg.name);
    let fetch = match cfg.kind {
        SourceKind::Git => git::fetch(cfg, &dir, previous.as_ref(), progress),
        SourceKind::Http => http_index::fetch(cfg, &net, previous.as_ref(), progress),
        SourceKind::Local => {
            let _bar = progress.count(&format!("syncing {} (local)", cfg.name), None);
            local::fetch(cfg)
        }
        SourceKind::Registry => registry_api::fetch(cfg, &net, previous.as_ref(), progress),
        SourceKind::Builtin => unreachable!("handled above"),
    }?;
    let report = diff(&cfg.name, previous.as_ref(), &fetch);
    let cached = CachedIndex {
        format: 1,
        repository: cfg.name.clone(),
        synced_at: vmcp_config::civil::now_utc(),
        state: fetch.state,
        packages: fetch.packages,
        errors: fetch.errors,
    };
    let path = dir.join("index.json");
    let text = serde_json::to_vec(&cached).map_err(|e| RepoError::io(&path, e.into()))?;
    vmcp_config::write_atomic(&path, &text).at(&path)?;
    Ok(report)
}

fn diff(repo: &str, previous: Option<&CachedIndex>, fetch: &Fetch) -> SyncReport {
    let old: BTreeMap<&str, &str> = previous
        .map(|p| p.packages.iter().map(|p| (p.name(), p.digest.as_str())).collect())
        .unwrap_or_default();
    let mut report =
        SyncReport { repository: repo.to_owned(), packages: fetch.packages.len(), ..Default::default() };
    for p in &fetch.packages {
        match old.get(p.name()) {
            None => report.added += 1,
            Some(d) if *d != p.digest => report.updated += 1,
            Some(_) => {}
        }
    }
    let new: std::collections::BTreeSet<&str> = fetch.packages.iter().map(Package::name).collect();
    report.removed = old.keys().filter(|n| !new.contains(*n)).count();
    report.errors = fetch.errors.clone();
    report
}

/// Keep the first package of each name, reporting later duplicates; fill in missing digests.
pub(crate) fn dedupe(packages: Vec<Package>, errors: &mut Vec<PackageError>) -> Vec<Package> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(packages.len());
    for mut p in packages {
        if !seen.insert(p.name().to_owned()) {
            errors.push(PackageError {
                package: p.name().to_owned(),
                message: "duplicate package name; kept the first".into(),
            });
            continue;
        }
        if p.digest.is_empty() {
            let bytes = serde_json::to_vec(&p).unwrap_or_default();
            p.digest = crate::package::digest_of(&bytes, b"");
        }
        out.push(p);
    }
    out
}

/// A default repository name from its URL: the last path segment without `.git`.
pub fn default_name(url: &str) -> String {
    let trimmed = url.trim_end_matches('/').trim_end_matches(".git");
    let after_scheme = trimmed.split_once("://").map_or(trimmed, |(_, r)| r);
    let last = match after_scheme.rsplit_once('/') {
        Some((_, seg)) if !seg.is_empty() => seg,
        _ => after_scheme.split(['.', ':']).next().unwrap_or("repo"),
    };
    let name = crate::name::slug(&last.to_ascii_lowercase(), 32);
    if name.is_empty() { "repo".into() } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_from_urls() {
        assert_eq!(default_name("https://github.com/acme/MCP-Servers.git"), "mcp-servers");
        assert_eq!(default_name("https://registry.modelcontextprotocol.io"), "registry");
        assert_eq!(default_name("/tmp/x/my_repo/"), "my_repo");
        assert_eq!(default_name("http://127.0.0.1:8080"), "127");
    }

    #[test]
    fn detects_kinds() {
        assert_eq!(SourceKind::detect("https://github.com/a/b.git"), SourceKind::Git);
        assert_eq!(SourceKind::detect("https://github.com/a/b"), SourceKind::Git);
        assert_eq!(SourceKind::detect("https://registry.modelcontextprotocol.io"), SourceKind::Registry);
        assert_eq!(SourceKind::detect("https://example.com/mcp"), SourceKind::Http);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(SourceKind::detect(dir.path().to_str().unwrap()), SourceKind::Local);
    }
}
