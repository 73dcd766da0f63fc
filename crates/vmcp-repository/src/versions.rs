//! Version ordering and resolution: semver where versions are semver (`2026.10.19` is), a
//! lenient fallback otherwise, and `NAME@REQ` requirements in Cargo's syntax.

use std::cmp::Ordering;

use crate::error::{RepoError, Result};

/// What the operator asked for after `@`.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionReq {
    /// No `@`: the newest stable version (or the newest at all if none is stable).
    Latest,
    /// A requirement such as `1.2.3`, `^1.2`, `~1`, `>=1, <2`, `=1.2.0`, or an exact non-semver
    /// string; an exact string match always wins.
    Req(String),
}

impl VersionReq {
    pub fn parse(raw: Option<&str>) -> Result<Self> {
        match raw.map(str::trim) {
            None | Some("latest") => Ok(VersionReq::Latest),
            Some("") => Err(RepoError::usage("empty version after `@`")),
            Some(r) if r.len() > 64 || r.chars().any(char::is_control) => {
                Err(RepoError::usage(format!("invalid version requirement `{}`", r.escape_debug())))
            }
            Some(r) => Ok(VersionReq::Req(r.to_owned())),
        }
    }

    /// Pick the best of `available` (any order).
    pub fn resolve<'a>(&self, available: &'a [String]) -> Option<&'a str> {
        match self {
            VersionReq::Latest => latest(available),
            VersionReq::Req(r) => {
                if let Some(exact) = available.iter().find(|v| v.as_str() == r.trim_start_matches('v')) {
                    return Some(exact);
                }
                let req = semver::VersionReq::parse(r).ok()?;
                available
                    .iter()
                    .filter(|v| parse(v).is_some_and(|sv| req.matches(&sv)))
                    .max_by(|a, b| compare(a, b))
                    .map(String::as_str)
            }
        }
    }
}

impl std::fmt::Display for VersionReq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionReq::Latest => f.write_str("latest"),
            VersionReq::Req(r) => f.write_str(r),
        }
    }
}

/// The newest stable version, or the newest prerelease when nothing is stable.
pub fn latest(available: &[String]) -> Option<&str> {
    let stable = available.iter().filter(|v| parse(v).is_some_and(|s| s.pre.is_empty()));
    stable
        .max_by(|a, b| compare(a, b))
        .or_else(|| available.iter().max_by(|a, b| compare(a, b)))
        .map(String::as_str)
}

/// Semver, accepting `1`, `1.2` and a leading `v`.
pub fn parse(raw: &str) -> Option<semver::Version> {
    let s = raw.trim_start_matches('v');
    if let Ok(v) = semver::Version::parse(s) {
        return Some(v);
    }
    let core_end = s.find(['-', '+']).unwrap_or(s.len());
    let dots = s[..core_end].matches('.').count();
    let padded = match dots {
        0 => format!("{}.0.0{}", &s[..core_end], &s[core_end..]),
        1 => format!("{}.0{}", &s[..core_end], &s[core_end..]),
        _ => return None,
    };
    semver::Version::parse(&padded).ok()
}

/// Total order: semver versions by precedence, above non-semver ones, which compare as strings.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.cmp_precedence(&y).then_with(|| a.cmp(b)),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => a.cmp(b),
    }
}

/// Sort newest first and drop duplicates.
pub fn sort_newest_first(versions: &mut Vec<String>) {
    versions.sort_by(|a, b| compare(b, a));
    versions.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn resolves_requirements() {
        let av = v(&["2026.10.19", "2026.8.18", "2025.9.25", "0.6.2", "3.0.0-rc.1"]);
        let cases = [
            (None, Some("2026.10.19")),
            (Some("latest"), Some("2026.10.19")),
            (Some("0.6.2"), Some("0.6.2")),
            (Some("=2025.9.25"), Some("2025.9.25")),
            (Some("~2026.8"), Some("2026.8.18")),
            (Some("<2026"), Some("2025.9.25")),
            (Some("^3.0.0-rc.1"), Some("3.0.0-rc.1")),
            (Some("9.9.9"), None),
            (Some("not a version"), None),
        ];
        for (req, want) in cases {
            let got = VersionReq::parse(req).unwrap();
            assert_eq!(got.resolve(&av), want, "{req:?}");
        }
    }

    #[test]
    fn orders_leniently() {
        let mut list = v(&["1.2", "1.10.0", "v1.9.0", "weird", "1.10.0", "2"]);
        sort_newest_first(&mut list);
        assert_eq!(list, v(&["2", "1.10.0", "v1.9.0", "1.2", "weird"]));
        assert_eq!(latest(&v(&["1.0.0-beta", "0.9.0"])), Some("0.9.0"));
        assert_eq!(latest(&v(&["1.0.0-beta"])), Some("1.0.0-beta"));
    }
}
