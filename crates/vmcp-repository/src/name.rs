//! Validated names: packages, versions, repositories, environment variables, and the on-disk
//! keys and server ids derived from them.
//!
//! Invariant: a value that passed these checks is safe as one path component (after `dir_key`)
//! and as one argv element; none contains `..`, a shell metacharacter or a control character.

use std::fmt;

use crate::error::{RepoError, Result};

/// A package name: `name`, `@scope/name` (npm style) or `namespace/name` (the official
/// registry's reverse-DNS style, e.g. `io.github.acme/weather`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageName(String);

impl PackageName {
    pub fn parse(raw: &str) -> Result<Self> {
        check_package_name(raw).map_err(|why| {
            RepoError::usage(format!("invalid package name `{}`: {why}", raw.escape_debug()))
        })?;
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the last `/`.
    pub fn short(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// One path component: `/` becomes `+`, which names never contain, so the mapping is injective.
    pub fn dir_key(&self) -> String {
        self.0.replace('/', "+")
    }

    /// The default server id in servers.json: the short name, with characters outside
    /// `[A-Za-z0-9_-]` replaced by `-`.
    pub fn default_server_id(&self) -> String {
        slug(self.short(), 64)
    }
}

/// The first `max` characters of `raw`, each outside `[A-Za-z0-9_-]` replaced by `-`, without
/// leading or trailing `-`.
pub(crate) fn slug(raw: &str, max: usize) -> String {
    let slug: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' })
        .take(max)
        .collect();
    slug.trim_matches('-').to_owned()
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_package_name(raw: &str) -> std::result::Result<(), String> {
    if raw.is_empty() || raw.len() > 128 {
        return Err("must be 1-128 characters".into());
    }
    let (scope, rest) = match raw.split_once('/') {
        Some((s, r)) => (Some(s), r),
        None => (None, raw),
    };
    if rest.contains('/') {
        return Err("at most one `/`, between a scope or namespace and the name".into());
    }
    if let Some(scope) = scope {
        let ns = scope.strip_prefix('@').unwrap_or(scope);
        check_segment(ns).map_err(|e| format!("scope {e}"))?;
    } else if raw.starts_with('@') {
        return Err("a scoped name needs `@scope/name`".into());
    }
    check_segment(rest)
}

/// One name segment: ASCII letters, digits, `.`, `_`, `-`; starts with a letter or digit; no `..`.
fn check_segment(seg: &str) -> std::result::Result<(), String> {
    if seg.is_empty() {
        return Err("has an empty part".into());
    }
    if !seg.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or digit".into());
    }
    if seg.contains("..") {
        return Err("must not contain `..`".into());
    }
    if let Some(c) = seg.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("must not contain `{}`", c.escape_debug()));
    }
    Ok(())
}

/// A version string as used in paths: 1-64 of `[A-Za-z0-9.+_-]`, starting with a letter or digit.
pub fn check_version(raw: &str) -> Result<()> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !raw.contains("..")
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(RepoError::usage(format!(
            "invalid version `{}`: use letters, digits, `.`, `+`, `_` or `-`",
            raw.escape_debug()
        )))
    }
}

/// A repository name: 1-32 of `[a-z0-9_-]`, starting with a letter or digit.
pub fn check_repo_name(raw: &str) -> Result<()> {
    let ok = !raw.is_empty()
        && raw.len() <= 32
        && raw.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(RepoError::usage(format!(
            "invalid repository name `{}`: use 1-32 of a-z, 0-9, `_` or `-`",
            raw.escape_debug()
        )))
    }
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_name(raw: &str) -> bool {
    raw.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A file name inside an install dir (an executable's name): one component, no metacharacters.
pub fn is_file_name(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 128
        && raw.starts_with(|c: char| c.is_ascii_alphanumeric())
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Split `NAME[@VERSION]`; a leading `@` belongs to an npm scope.
pub fn split_spec(spec: &str) -> (&str, Option<&str>) {
    let search_from = usize::from(spec.starts_with('@'));
    match spec[search_from..].find('@') {
        Some(i) => {
            let at = i + search_from;
            (&spec[..at], Some(&spec[at + 1..]))
        }
        None => (spec, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_scoped_and_namespaced_names() {
        for ok in [
            "time",
            "mcp-server-time",
            "@modelcontextprotocol/server-memory",
            "io.github.acme/weather",
            "a_b.c",
        ] {
            assert!(PackageName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_hostile_names() {
        for bad in [
            "", "..", "../etc", "a/../b", "a/b/c", "/abs", "a;rm -rf", "$(id)", "a b", "-rf", ".hidden",
            "@scope", "@/x", "a\nb", "x`y`", "a|b", "name/", "@a/b/c", "a\\b", "é",
        ] {
            assert!(PackageName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn dir_keys_and_server_ids() {
        let n = PackageName::parse("@modelcontextprotocol/server-memory").unwrap();
        assert_eq!(n.dir_key(), "@modelcontextprotocol+server-memory");
        assert_eq!(n.default_server_id(), "server-memory");
        let n = PackageName::parse("io.github.acme/weather.v2").unwrap();
        assert_eq!(n.default_server_id(), "weather-v2");
        assert!(vmcp_config::is_valid_server_id(&n.default_server_id()));
    }

    #[test]
    fn versions_and_specs() {
        assert!(check_version("2026.10.19").is_ok());
        assert!(check_version("1.0.0-rc.1+build").is_ok());
        for bad in ["", "../1", "1 2", "1;x", "..", "1/2"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
        assert_eq!(split_spec("time@1.2"), ("time", Some("1.2")));
        assert_eq!(split_spec("@scope/x@^1"), ("@scope/x", Some("^1")));
        assert_eq!(split_spec("@scope/x"), ("@scope/x", None));
        assert!(check_repo_name("team-1").is_ok());
        assert!(check_repo_name("Team").is_err());
        assert!(is_env_name("GITHUB_TOKEN") && !is_env_name("1X") && !is_env_name("A=B"));
    }
}
