//! HTTP repositories: `BASE/index.json` lists packages, inline or as references to package
//! directories (`BASE/PATH/MANIFEST.md` and `BASE/PATH/install.json`).
//!
//! Incremental: `index.json` is fetched with `If-None-Match`; a referenced package whose digest
//! matches the cached one is not fetched again, and one whose files do not match its declared
//! digest is rejected.

use serde::Deserialize;
use serde_json::Value;

use super::{CachedIndex, Fetch, PackageError, RepoConfig, SyncState, dedupe};
use crate::error::{RepoError, Result};
use crate::install_spec::InstallSpec;
use crate::manifest::Manifest;
use crate::net::{Fetched, Net};
use crate::package::{MAX_PACKAGE_FILE, Package, digest_of};
use crate::progress::Progress;

const MAX_INDEX: u64 = 64 * 1024 * 1024;

/// One entry of `index.json`.
#[derive(Debug, Clone)]
pub enum IndexEntry {
    Inline(Box<Package>),
    Ref { name: String, path: String, digest: Option<String> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInline {
    manifest: Manifest,
    install: InstallSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRef {
    name: String,
    path: String,
    #[serde(default)]
    digest: Option<String>,
}

/// Parse `index.json`: `{"format": 1, "packages": [...]}`. Each bad entry becomes an error;
/// only a file that is not such an object at all fails.
pub fn parse_index(text: &str) -> Result<(Vec<IndexEntry>, Vec<PackageError>)> {
    #[derive(Deserialize)]
    struct RawIndex {
        #[serde(default)]
        format: Option<u32>,
        packages: Vec<Value>,
    }
    let raw: RawIndex =
        serde_json::from_str(text).map_err(|e| RepoError::invalid("index.json", e.to_string()))?;
    if raw.format.is_some_and(|f| f != 1) {
        return Err(RepoError::invalid("index.json", "unsupported format (expected 1)"));
    }
    let mut entries = Vec::with_capacity(raw.packages.len());
    let mut errors = Vec::new();
    for (i, value) in raw.packages.into_iter().enumerate() {
        let label = value.get("name").or_else(|| value.pointer("/manifest/name")).and_then(Value::as_str);
        let label = label.map_or_else(|| format!("packages[{i}]"), str::to_owned);
        match parse_entry(value) {
            Ok(e) => entries.push(e),
            Err(e) => errors.push(PackageError { package: label, message: e.to_string() }),
        }
    }
    Ok((entries, errors))
}

fn parse_entry(value: Value) -> Result<IndexEntry> {
    if value.get("manifest").is_some() {
        let raw: RawInline =
            serde_json::from_value(value).map_err(|e| RepoError::invalid("index entry", e.to_string()))?;
        let manifest_json = serde_json::to_vec(&raw.manifest).unwrap_or_default();
        let install_json = serde_json::to_vec(&raw.install).unwrap_or_default();
        let mut pkg = Package::from_parts(raw.manifest, raw.install)?;
        pkg.digest = digest_of(&manifest_json, &install_json);
        return Ok(IndexEntry::Inline(Box::new(pkg)));
    }
    let raw: RawRef =
        serde_json::from_value(value).map_err(|e| RepoError::invalid("index entry", e.to_string()))?;
    crate::name::PackageName::parse(&raw.name)?;
    let safe_path = !raw.path.is_empty()
        && raw.path.split('/').all(|seg| crate::name::is_file_name(seg) && !seg.starts_with('.'));
    if !safe_path {
        return Err(RepoError::invalid(
            &raw.name,
            format!("unsafe package path `{}`", raw.path.escape_debug()),
        ));
    }
    Ok(IndexEntry::Ref { name: raw.name, path: raw.path, digest: raw.digest })
}

pub(super) fn fetch(
    cfg: &RepoConfig,
    net: &Net,
    previous: Option<&CachedIndex>,
    progress: &Progress,
) -> Result<Fetch> {
    let (index_url, base) = urls(&cfg.url);
    let etag = previous.and_then(|p| p.state.etag.as_deref());
    let fetched =
        net.get(&index_url, etag, MAX_INDEX).map_err(|e| RepoError::source(&cfg.name, e.to_string()))?;
    let (bytes, etag) = match (fetched, previous) {
        (Fetched::NotModified, Some(prev)) => {
            return Ok(Fetch {
                packages: prev.packages.clone(),
                errors: prev.errors.clone(),
                state: prev.state.clone(),
            });
        }
        (Fetched::NotModified, None) => {
            return Err(RepoError::source(&cfg.name, "unexpected 304 without a cache"));
        }
        (Fetched::Body { bytes, etag }, _) => (bytes, etag),
    };
    let text =
        String::from_utf8(bytes).map_err(|_| RepoError::source(&cfg.name, "index.json is not UTF-8"))?;
    let (entries, mut errors) =
        parse_index(&text).map_err(|e| RepoError::source(&cfg.name, e.to_string()))?;
    let bar = progress.count(&format!("syncing {}", cfg.name), Some(entries.len() as u64));
    let mut packages = Vec::with_capacity(entries.len());
    for entry in entries {
        bar.inc(1);
        match entry {
            IndexEntry::Inline(p) => packages.push(*p),
            IndexEntry::Ref { name, path, digest } => {
                match resolve_ref(net, &base, &path, digest.as_deref(), previous, &name) {
                    Ok(p) => packages.push(p),
                    Err(e) => errors.push(PackageError { package: name, message: e.to_string() }),
                }
            }
        }
    }
    let packages = dedupe(packages, &mut errors);
    Ok(Fetch { packages, errors, state: SyncState { etag, ..Default::default() } })
}

/// A referenced package: reused from the cache when its digest is unchanged, else fetched.
fn resolve_ref(
    net: &Net,
    base: &str,
    path: &str,
    digest: Option<&str>,
    previous: Option<&CachedIndex>,
    name: &str,
) -> Result<Package> {
    if let Some(d) = digest
        && let Some(p) =
            previous.and_then(|prev| prev.packages.iter().find(|p| p.name() == name && p.digest == d))
    {
        return Ok(p.clone());
    }
    let manifest = net.get_text(&format!("{base}/{path}/MANIFEST.md"), MAX_PACKAGE_FILE)?;
    let install = net.get_text(&format!("{base}/{path}/install.json"), MAX_PACKAGE_FILE)?;
    let pkg = Package::from_texts(&manifest, &install)?;
    if pkg.name() != name {
        return Err(RepoError::invalid(
            name,
            format!("index says `{name}` but MANIFEST.md says `{}`", pkg.name()),
        ));
    }
    if let Some(d) = digest
        && d != pkg.digest
    {
        return Err(RepoError::Checksum {
            what: format!("{name} package files"),
            expected: d.to_owned(),
            actual: pkg.digest,
        });
    }
    Ok(pkg)
}

/// `(index URL, base URL)`: a URL ending in `.json` is the index itself.
fn urls(url: &str) -> (String, String) {
    let url = url.trim_end_matches('/');
    if url.ends_with(".json") {
        let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
        (url.to_owned(), base.to_owned())
    } else {
        (format!("{url}/index.json"), url.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_inline_and_ref_entries_skipping_bad_ones() {
        let text = r#"{"format":1,"packages":[
            {"manifest":{"name":"a","version":"1.0.0","description":"d"},"install":{"methods":[{"type":"npm","package":"a"}]}},
            {"name":"b","path":"pkgs/b","digest":"sha256:00"},
            {"name":"c","path":"../etc"},
            {"manifest":{"name":"d","version":"1.0.0"},"install":{"methods":[]}},
            {"name":"e; rm","path":"e"}
        ]}"#;
        let (entries, errors) = parse_index(text).unwrap();
        assert_eq!(entries.len(), 2);
        let names: Vec<_> = errors.iter().map(|e| e.package.as_str()).collect();
        assert_eq!(names, ["c", "d", "e; rm"]);
    }

    #[test]
    fn index_urls() {
        assert_eq!(urls("https://h/r/"), ("https://h/r/index.json".into(), "https://h/r".into()));
        assert_eq!(urls("https://h/r/custom.json"), ("https://h/r/custom.json".into(), "https://h/r".into()));
    }
}
