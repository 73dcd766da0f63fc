//! Git repositories through the system `git`: a shallow clone in the cache, then `fetch` +
//! `reset` on each sync. An unchanged commit reuses the cached packages.
//!
//! Invariant: git never prompts, never runs the `ext::` transport, and always gets the URL after
//! `--`, so a URL cannot smuggle in options. Plain `http://` and `git://` need `--allow-insecure`.

use std::path::Path;
use std::process::{Command, Stdio};

use super::{CachedIndex, Fetch, RepoConfig, SyncState, local};
use crate::error::{RepoError, Result};
use crate::progress::Progress;

pub(super) fn fetch(
    cfg: &RepoConfig,
    cache: &Path,
    previous: Option<&CachedIndex>,
    progress: &Progress,
) -> Result<Fetch> {
    check_url(cfg)?;
    let checkout = cache.join("checkout");
    let bar = progress.spinner(&format!("syncing {} (git)", cfg.name));
    if checkout.join(".git").is_dir() {
        git(cfg, Some(&checkout), &["fetch", "--quiet", "--depth", "1", "origin", "HEAD"])?;
        git(cfg, Some(&checkout), &["reset", "--quiet", "--hard", "FETCH_HEAD"])?;
    } else {
        clone(cfg, cache, &checkout)?;
    }
    drop(bar);
    let revision = git(cfg, Some(&checkout), &["rev-parse", "HEAD"])?.trim().to_owned();
    let state = SyncState { revision: Some(revision.clone()), ..Default::default() };
    if let Some(prev) = previous.filter(|p| p.state.revision.as_deref() == Some(revision.as_str())) {
        return Ok(Fetch { packages: prev.packages.clone(), errors: prev.errors.clone(), state });
    }
    let (packages, errors) = local::scan(&checkout);
    Ok(Fetch { packages, errors, state })
}

/// Clone into a temporary sibling, then rename, so a killed clone leaves no half checkout.
fn clone(cfg: &RepoConfig, cache: &Path, checkout: &Path) -> Result<()> {
    std::fs::create_dir_all(cache).map_err(|e| RepoError::io(cache, e))?;
    let tmp = cache.join(format!("checkout.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_dir_all(checkout);
    let target = tmp.to_string_lossy().into_owned();
    let result = git(cfg, None, &["clone", "--quiet", "--depth", "1", "--no-tags", "--", &cfg.url, &target]);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, checkout).map_err(|e| RepoError::io(checkout, e))
}

/// Accept https, ssh, scp-like and local repositories; plain http and git:// only if insecure.
fn check_url(cfg: &RepoConfig) -> Result<()> {
    let url = cfg.url.as_str();
    if url.starts_with('-') || url.contains("::") || url.chars().any(char::is_control) {
        return Err(RepoError::usage(format!("refusing git URL `{}`", url.escape_debug())));
    }
    let secure = url.starts_with("https://")
        || url.starts_with("ssh://")
        || url.starts_with("file://")
        || url.starts_with('/')
        || (url.contains('@') && url.contains(':') && !url.contains("://"));
    let insecure = url.starts_with("http://") || url.starts_with("git://");
    if secure || (insecure && cfg.allow_insecure) {
        Ok(())
    } else if insecure {
        Err(RepoError::usage(format!("refusing insecure git URL {url}: use https, or pass --allow-insecure")))
    } else {
        Err(RepoError::usage(format!(
            "unsupported git URL `{url}`: use https://, ssh:// or an absolute path"
        )))
    }
}

fn git(cfg: &RepoConfig, dir: Option<&Path>, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    cmd.args(["-c", "protocol.ext.allow=never", "-c", "core.hooksPath=/dev/null"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null());
    let out = cmd.output().map_err(|e| {
        RepoError::source(&cfg.name, format!("cannot run git ({e}); install git to use git repositories"))
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let msg = err.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("git failed").trim().to_owned();
        return Err(RepoError::source(&cfg.name, format!("git {}: {msg}", args[0])));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::SourceKind;

    fn cfg(url: &str, insecure: bool) -> RepoConfig {
        RepoConfig {
            name: "t".into(),
            url: url.into(),
            kind: SourceKind::Git,
            enabled: true,
            allow_insecure: insecure,
        }
    }

    #[test]
    fn url_policy() {
        for ok in ["https://github.com/a/b.git", "git@github.com:a/b.git", "/srv/repo", "ssh://h/r"] {
            assert!(check_url(&cfg(ok, false)).is_ok(), "{ok}");
        }
        for bad in
            ["http://h/r.git", "git://h/r", "--upload-pack=touch /tmp/x", "ext::sh -c id", "relative/path"]
        {
            assert!(check_url(&cfg(bad, false)).is_err(), "{bad}");
        }
        assert!(check_url(&cfg("http://h/r.git", true)).is_ok());
    }
}
