//! The official MCP registry API: `GET /v0/servers` with cursor paging, entries in the
//! `server.json` format (camelCase; the older snake_case spelling is accepted too).
//!
//! Each server version becomes a release of the package named like the server
//! (`io.github.acme/weather`). npm, PyPI and cargo packages and remotes are supported; other
//! registry types (oci, nuget, mcpb) are reported and skipped. Later syncs send
//! `updated_since` and merge the changes into the cache.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{CachedIndex, Fetch, PackageError, RepoConfig, SyncState};
use crate::error::{RepoError, Result};
use crate::install_spec::{CargoMethod, EnvVar, InstallSpec, Method, NpmMethod, PypiMethod, RemoteMethod};
use crate::manifest::Manifest;
use crate::net::Net;
use crate::package::{Package, Release};
use crate::progress::Progress;
use crate::versions;

const MAX_PAGE: u64 = 16 * 1024 * 1024;
const MAX_PAGES: usize = 10_000;

#[derive(Deserialize)]
struct Page {
    servers: Vec<Value>,
    #[serde(default)]
    metadata: Option<PageMeta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageMeta {
    #[serde(default, alias = "next_cursor")]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerJson {
    name: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default, alias = "version_detail")]
    version_detail: Option<VersionDetail>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, alias = "website_url")]
    website_url: Option<String>,
    #[serde(default)]
    repository: Option<RepoRef>,
    #[serde(default)]
    packages: Vec<RegPackage>,
    #[serde(default)]
    remotes: Vec<RegRemote>,
}

#[derive(Deserialize)]
struct VersionDetail {
    version: String,
}

#[derive(Deserialize)]
struct RepoRef {
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegPackage {
    #[serde(alias = "registry_type")]
    registry_type: String,
    identifier: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default, alias = "package_arguments")]
    package_arguments: Vec<RegArg>,
    #[serde(default, alias = "environment_variables")]
    environment_variables: Vec<RegInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegArg {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    default: Option<String>,
    #[serde(default, alias = "is_required")]
    is_required: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegInput {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, alias = "is_required")]
    is_required: bool,
    #[serde(default, alias = "is_secret")]
    is_secret: bool,
    #[serde(default)]
    default: Option<String>,
}

#[derive(Deserialize)]
struct RegRemote {
    #[serde(rename = "type", alias = "transport_type")]
    kind: String,
    url: String,
}

pub(super) fn fetch(
    cfg: &RepoConfig,
    net: &Net,
    previous: Option<&CachedIndex>,
    progress: &Progress,
) -> Result<Fetch> {
    let started = vmcp_config::civil::now_utc();
    let since = previous.and_then(|p| p.state.updated_since.clone());
    let mut by_name: BTreeMap<String, Package> = previous
        .map(|p| p.packages.iter().map(|p| (p.name().to_owned(), p.clone())).collect())
        .unwrap_or_default();
    let mut errors: BTreeMap<String, String> = previous
        .map(|p| p.errors.iter().map(|e| (e.package.clone(), e.message.clone())).collect())
        .unwrap_or_default();
    let bar = progress.count(&format!("syncing {} (registry)", cfg.name), None);
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let url = page_url(&cfg.url, cursor.as_deref(), since.as_deref());
        let text = net.get_text(&url, MAX_PAGE).map_err(|e| RepoError::source(&cfg.name, e.to_string()))?;
        let page: Page = serde_json::from_str(&text)
            .map_err(|e| RepoError::source(&cfg.name, format!("malformed /v0/servers page: {e}")))?;
        for entry in page.servers {
            bar.inc(1);
            apply_entry(entry, &mut by_name, &mut errors);
        }
        match page.metadata.and_then(|m| m.next_cursor).filter(|c| !c.is_empty()) {
            Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
            _ => break,
        }
    }
    let packages = by_name.into_values().collect();
    let errors = errors.into_iter().map(|(package, message)| PackageError { package, message }).collect();
    Ok(Fetch { packages, errors, state: SyncState { updated_since: Some(started), ..Default::default() } })
}

/// Merge one list entry (`{"server": ..., "_meta": ...}` or a bare server.json).
fn apply_entry(entry: Value, by_name: &mut BTreeMap<String, Package>, errors: &mut BTreeMap<String, String>) {
    let meta_status = entry
        .pointer("/_meta/io.modelcontextprotocol.registry~1official/status")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let server_value = entry.get("server").cloned().unwrap_or(entry);
    let label = server_value.get("name").and_then(Value::as_str).unwrap_or("(unnamed)").to_owned();
    let server: ServerJson = match serde_json::from_value(server_value) {
        Ok(s) => s,
        Err(e) => {
            errors.insert(label, format!("malformed server.json: {e}"));
            return;
        }
    };
    let status = meta_status.or_else(|| server.status.clone()).unwrap_or_else(|| "active".into());
    let name = server.name.clone();
    let result = if status == "deleted" {
        remove_release(by_name, &server);
        Ok(())
    } else {
        convert(server).and_then(|(manifest, release)| merge(by_name, manifest, release))
    };
    match result {
        Ok(()) => {
            errors.remove(&name);
        }
        Err(e) => {
            errors.insert(name, e.to_string());
        }
    }
}

fn server_version(s: &ServerJson) -> Option<String> {
    s.version.clone().or_else(|| s.version_detail.as_ref().map(|v| v.version.clone()))
}

fn remove_release(by_name: &mut BTreeMap<String, Package>, server: &ServerJson) {
    let Some(version) = server_version(server) else { return };
    if let Some(pkg) = by_name.get_mut(&server.name) {
        pkg.releases.retain(|r| r.version != version);
        if pkg.releases.is_empty() {
            by_name.remove(&server.name);
            return;
        }
        pkg.manifest.version = pkg.releases[0].version.clone();
        refresh_digest(pkg);
    }
}

/// One server version as a manifest and a release.
fn convert(s: ServerJson) -> Result<(Manifest, Release)> {
    let version =
        server_version(&s).ok_or_else(|| RepoError::invalid(&s.name, "server.json has no version"))?;
    let (methods, env, skipped) = methods_of(&s, &version);
    if methods.is_empty() {
        let why = if skipped.is_empty() {
            "no packages or remotes".to_owned()
        } else {
            format!("unsupported package types: {}", skipped.join(", "))
        };
        return Err(RepoError::invalid(&s.name, format!("no installable method ({why})")));
    }
    let homepage = s.website_url.clone().or_else(|| s.repository.as_ref().and_then(|r| r.url.clone()));
    let manifest = Manifest {
        name: s.name.clone(),
        version: version.clone(),
        title: s.title.clone(),
        description: s.description.clone().filter(|d| !d.trim().is_empty()).unwrap_or_else(|| s.name.clone()),
        tags: Vec::new(),
        homepage: homepage.filter(|h| h.starts_with("https://") || h.starts_with("http://")),
        license: None,
        readme: String::new(),
    };
    let install = InstallSpec { versions: Vec::new(), methods, args: Vec::new(), env };
    manifest.validate()?;
    install.validate(&s.name)?;
    Ok((manifest, Release { version, install }))
}

/// Install methods and environment from `packages` and `remotes`, plus the skipped registry types.
fn methods_of(s: &ServerJson, version: &str) -> (Vec<Method>, Vec<EnvVar>, Vec<String>) {
    let mut methods = Vec::new();
    let mut env: Vec<EnvVar> = Vec::new();
    let mut skipped = Vec::new();
    for p in &s.packages {
        let Some(m) = package_method(p, version) else {
            skipped.push(p.registry_type.clone());
            continue;
        };
        methods.push(m);
        for e in &p.environment_variables {
            if env.iter().any(|x| x.name == e.name) {
                continue;
            }
            env.push(EnvVar {
                name: e.name.clone(),
                description: e.description.clone(),
                required: e.is_required,
                secret: e.is_secret,
                default: e.default.clone(),
            });
        }
    }
    for r in s.remotes.iter().filter(|r| !r.url.contains('{')) {
        let transport = if r.kind == "sse" { "sse" } else { "http" };
        methods.push(Method::Remote(RemoteMethod { url: r.url.clone(), transport: transport.into() }));
    }
    (methods, env, skipped)
}

fn package_method(p: &RegPackage, server_version: &str) -> Option<Method> {
    let version = p.version.clone().filter(|v| v != server_version && v != "latest");
    let args = registry_args(&p.package_arguments)?;
    let args = (!args.is_empty()).then_some(args);
    let package = p.identifier.clone();
    Some(match p.registry_type.as_str() {
        "npm" => Method::Npm(NpmMethod { package, version, bin: None, args, scripts: false }),
        "pypi" => Method::Pypi(PypiMethod { package, version, bin: None, args, build: false }),
        "cargo" => Method::Cargo(CargoMethod { krate: package, version, bin: None, args }),
        _ => return None,
    })
}

/// Fixed arguments; `None` when a required argument has neither a value nor a default.
fn registry_args(args: &[RegArg]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for a in args {
        let value = a.value.clone().or_else(|| a.default.clone());
        match (a.kind.as_str(), value) {
            ("named", Some(v)) => out.extend([a.name.clone()?, v]),
            ("named", None) if !a.is_required => {}
            ("positional", Some(v)) => out.push(v),
            (_, None) if !a.is_required => {}
            _ => return None,
        }
    }
    Some(out)
}

fn merge(by_name: &mut BTreeMap<String, Package>, manifest: Manifest, release: Release) -> Result<()> {
    let entry = by_name.entry(manifest.name.clone());
    let pkg = entry.or_insert_with(|| Package {
        manifest: manifest.clone(),
        repository: String::new(),
        releases: Vec::new(),
        digest: String::new(),
    });
    pkg.releases.retain(|r| r.version != release.version);
    pkg.releases.push(release);
    pkg.releases.sort_by(|a, b| versions::compare(&b.version, &a.version));
    if pkg.releases[0].version == manifest.version {
        pkg.manifest = manifest;
    }
    refresh_digest(pkg);
    Ok(())
}

fn refresh_digest(pkg: &mut Package) {
    let bytes = serde_json::to_vec(&(&pkg.manifest, &pkg.releases)).unwrap_or_default();
    pkg.digest = crate::package::digest_of(&bytes, b"");
}

fn page_url(base: &str, cursor: Option<&str>, since: Option<&str>) -> String {
    let base = base.trim_end_matches('/');
    let mut url = if base.ends_with("/servers") { base.to_owned() } else { format!("{base}/v0/servers") };
    url.push_str("?limit=100");
    if let Some(c) = cursor {
        url.push_str("&cursor=");
        url.push_str(&percent_encode(c));
    }
    if let Some(s) = since {
        url.push_str("&updated_since=");
        url.push_str(&percent_encode(s));
    }
    url
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
#[path = "registry_api_tests.rs"]
mod tests;
