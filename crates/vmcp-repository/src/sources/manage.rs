//! `repo add`, `repo remove` and `repo sync` as library calls, each under the home lock.
//!
//! Invariant: a repository is added to `config/repositories.json` only after its first sync
//! succeeded; a failed add leaves neither a config entry nor a cache behind.

use vmcp_config::Home;

use super::{BUILTIN, RepoConfig, Repositories, SourceKind, SyncReport, cache_dir, default_name, sync};
use crate::error::{RepoError, Result};
use crate::home_lock::HomeLock;
use crate::journal::remove_dir;
use crate::name::check_repo_name;
use crate::progress::Progress;

/// What `repo add` needs.
#[derive(Debug, Clone, Default)]
pub struct AddRequest {
    pub url: String,
    pub name: Option<String>,
    pub kind: Option<SourceKind>,
    pub allow_insecure: bool,
}

/// Validate, sync, then record the repository.
pub fn add_repository(
    home: &Home,
    req: &AddRequest,
    progress: &Progress,
) -> Result<(RepoConfig, SyncReport)> {
    let _lock = HomeLock::acquire(home, progress)?;
    let mut repos = Repositories::load(home)?;
    let kind = req.kind.unwrap_or_else(|| SourceKind::detect(&req.url));
    if kind == SourceKind::Builtin {
        return Err(RepoError::usage("the builtin catalog is always present; it cannot be added"));
    }
    let url = normalize_url(&req.url, kind)?;
    if matches!(kind, SourceKind::Http | SourceKind::Registry) {
        // The operator's URL is at fault (exit 64), not the network: check before fetching.
        crate::net::Net::new(req.allow_insecure).check_url(&url)?;
    }
    let name = req.name.clone().unwrap_or_else(|| default_name(&url));
    check_repo_name(&name)?;
    if name == BUILTIN || repos.get(&name).is_some() {
        return Err(RepoError::usage(format!("a repository named `{name}` already exists; pass --name")));
    }
    let cfg = RepoConfig { name: name.clone(), url, kind, enabled: true, allow_insecure: req.allow_insecure };
    let report = match sync(home, &cfg, progress) {
        Ok(r) => r,
        Err(e) => {
            let _ = remove_dir(&cache_dir(home, &name));
            return Err(e);
        }
    };
    repos.list.push(cfg.clone());
    if let Err(e) = repos.save() {
        let _ = remove_dir(&cache_dir(home, &name));
        return Err(e);
    }
    Ok((cfg, report))
}

/// Forget a repository and delete its cache. Installed packages stay installed.
pub fn remove_repository(home: &Home, name: &str, progress: &Progress) -> Result<RepoConfig> {
    let _lock = HomeLock::acquire(home, progress)?;
    let mut repos = Repositories::load(home)?;
    if name == BUILTIN {
        return Err(RepoError::usage("the builtin catalog cannot be removed"));
    }
    let pos = repos.list.iter().position(|r| r.name == name).ok_or_else(|| unknown(&repos, name))?;
    let cfg = repos.list.remove(pos);
    repos.save()?;
    remove_dir(&cache_dir(home, name))?;
    Ok(cfg)
}

/// Sync one repository or every enabled one; one failure does not stop the others.
pub fn sync_repositories(
    home: &Home,
    name: Option<&str>,
    progress: &Progress,
) -> Result<Vec<(String, Result<SyncReport>)>> {
    let _lock = HomeLock::acquire(home, progress)?;
    let repos = Repositories::load(home)?;
    let targets: Vec<RepoConfig> = match name {
        Some(n) => {
            vec![repos.with_builtin().into_iter().find(|r| r.name == n).ok_or_else(|| unknown(&repos, n))?]
        }
        None => repos.with_builtin().into_iter().filter(|r| r.enabled).collect(),
    };
    Ok(targets.into_iter().map(|cfg| (cfg.name.clone(), sync(home, &cfg, progress))).collect())
}

fn unknown(repos: &Repositories, name: &str) -> RepoError {
    let names: Vec<&str> = repos.list.iter().map(|r| r.name.as_str()).chain([BUILTIN]).collect();
    RepoError::usage(format!("no repository `{name}` (configured: {})", names.join(", ")))
}

/// Local paths become absolute; remote URLs lose a trailing slash.
fn normalize_url(url: &str, kind: SourceKind) -> Result<String> {
    let url = url.trim();
    if url.is_empty() || url.chars().any(char::is_control) {
        return Err(RepoError::usage("repository URL is empty or contains control characters"));
    }
    let local_path =
        kind == SourceKind::Local || (kind == SourceKind::Git && !url.contains("://") && !url.contains('@'));
    if local_path {
        let path = std::fs::canonicalize(url.strip_prefix("file://").unwrap_or(url))
            .map_err(|e| RepoError::usage(format!("repository path {url}: {e}")))?;
        return Ok(path.to_string_lossy().into_owned());
    }
    Ok(url.trim_end_matches('/').to_owned())
}
