//! `install.json`: how a package is installed (one or more methods) and how the result is launched
//! (args, environment variables and secrets). Validated on sync, before anything runs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{RepoError, Result};
use crate::name::{PackageName, check_version, is_env_name, is_file_name};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallSpec {
    /// Installable versions, newest first; default: the manifest's version only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// In order of preference; the first one whose tool is on this machine is used.
    pub methods: Vec<Method>,
    /// Arguments after the launched program; `{install_dir}` and `{data_dir}` are substituted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment the server needs, asked for at install time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
}

/// One way to install the package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Method {
    Npm(NpmMethod),
    Pypi(PypiMethod),
    Cargo(CargoMethod),
    Binary(BinaryMethod),
    /// Nothing to install: a server reached over the network.
    Remote(RemoteMethod),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NpmMethod {
    pub package: String,
    /// The npm version, when it differs from the package version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The executable under `node_modules/.bin`; default: the package's only `bin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Run npm lifecycle scripts (off by default: `--ignore-scripts`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scripts: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PypiMethod {
    pub package: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The console script in the venv; default: the package name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Allow building from source distributions (off by default: wheels only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub build: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CargoMethod {
    #[serde(rename = "crate")]
    pub krate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The installed binary; default: the crate name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinaryMethod {
    /// The file name the download is saved as, under `bin/`.
    pub bin: String,
    pub downloads: Vec<Download>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
}

/// One downloadable file; `os`/`arch` use Rust's names (`linux`, `x86_64`); absent = any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Download {
    pub version: String,
    pub url: String,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteMethod {
    pub url: String,
    /// `http` (Streamable HTTP, default) or `sse`.
    #[serde(default = "default_remote_transport")]
    pub transport: String,
}

fn default_remote_transport() -> String {
    "http".into()
}

/// An environment variable the server reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// Asked without echo, never logged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// The closed set of install methods, as named on the command line and in the lockfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodKind {
    Npm,
    Pypi,
    Cargo,
    Binary,
    Remote,
}

impl MethodKind {
    pub const ALL: [MethodKind; 5] =
        [MethodKind::Npm, MethodKind::Pypi, MethodKind::Cargo, MethodKind::Binary, MethodKind::Remote];

    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Npm => "npm",
            MethodKind::Pypi => "pypi",
            MethodKind::Cargo => "cargo",
            MethodKind::Binary => "binary",
            MethodKind::Remote => "remote",
        }
    }
}

impl fmt::Display for MethodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MethodKind {
    type Err = RepoError;
    fn from_str(s: &str) -> Result<Self> {
        MethodKind::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| {
            RepoError::usage(format!(
                "unknown install method `{s}` (expected npm, pypi, cargo, binary or remote)"
            ))
        })
    }
}

impl Method {
    pub fn kind(&self) -> MethodKind {
        match self {
            Method::Npm(_) => MethodKind::Npm,
            Method::Pypi(_) => MethodKind::Pypi,
            Method::Cargo(_) => MethodKind::Cargo,
            Method::Binary(_) => MethodKind::Binary,
            Method::Remote(_) => MethodKind::Remote,
        }
    }

    /// How the installed server is reached: `stdio`, or the remote's `http`/`sse`.
    pub fn transport(&self) -> &str {
        match self {
            Method::Remote(r) => &r.transport,
            _ => "stdio",
        }
    }

    /// The upstream identifier shown to users (npm/PyPI package, crate, URL).
    pub fn identifier(&self) -> &str {
        match self {
            Method::Npm(m) => &m.package,
            Method::Pypi(m) => &m.package,
            Method::Cargo(m) => &m.krate,
            Method::Binary(m) => &m.bin,
            Method::Remote(m) => &m.url,
        }
    }

    /// Per-method argument override.
    pub fn args(&self) -> Option<&[String]> {
        match self {
            Method::Npm(m) => m.args.as_deref(),
            Method::Pypi(m) => m.args.as_deref(),
            Method::Cargo(m) => m.args.as_deref(),
            Method::Binary(m) => m.args.as_deref(),
            Method::Remote(_) => None,
        }
    }

    /// The version the package manager installs for package version `version`.
    pub fn upstream_version<'a>(&'a self, version: &'a str) -> &'a str {
        let pinned = match self {
            Method::Npm(m) => m.version.as_deref(),
            Method::Pypi(m) => m.version.as_deref(),
            Method::Cargo(m) => m.version.as_deref(),
            Method::Binary(_) | Method::Remote(_) => None,
        };
        pinned.unwrap_or(version)
    }
}

impl InstallSpec {
    pub fn parse(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| RepoError::invalid("install.json", e.to_string()))
    }

    /// Check every field that later becomes a path, an argv element or a URL.
    pub fn validate(&self, package: &str) -> Result<()> {
        let fail = |m: String| RepoError::invalid(package, format!("install.json: {m}"));
        if self.methods.is_empty() || self.methods.len() > 16 {
            return Err(fail("`methods` must list 1-16 install methods".into()));
        }
        for v in &self.versions {
            check_version(v).map_err(|e| fail(e.to_string()))?;
        }
        check_args(&self.args).map_err(&fail)?;
        let mut seen = std::collections::BTreeSet::new();
        for var in &self.env {
            if !is_env_name(&var.name) || !seen.insert(var.name.as_str()) {
                return Err(fail(format!(
                    "environment variable `{}` is invalid or repeated",
                    var.name.escape_debug()
                )));
            }
        }
        for method in &self.methods {
            validate_method(method).map_err(&fail)?;
        }
        Ok(())
    }
}

fn validate_method(method: &Method) -> std::result::Result<(), String> {
    let opt_version =
        |v: &Option<String>| v.as_deref().map(check_version).transpose().map_err(|e| e.to_string());
    let opt_bin = |b: &Option<String>| match b {
        Some(b) if !is_file_name(b) => Err(format!("invalid executable name `{}`", b.escape_debug())),
        _ => Ok(()),
    };
    if let Some(args) = method.args() {
        check_args(args)?;
    }
    match method {
        Method::Npm(m) => {
            let ok = PackageName::parse(&m.package).is_ok()
                && (!m.package.contains('/') || m.package.starts_with('@'));
            if !ok {
                return Err(format!("invalid npm package `{}`", m.package.escape_debug()));
            }
            opt_version(&m.version)?;
            opt_bin(&m.bin)
        }
        Method::Pypi(m) => {
            if !is_file_name(&m.package) {
                return Err(format!("invalid PyPI package `{}`", m.package.escape_debug()));
            }
            opt_version(&m.version)?;
            opt_bin(&m.bin)
        }
        Method::Cargo(m) => {
            if !is_file_name(&m.krate) || m.krate.contains('.') {
                return Err(format!("invalid crate name `{}`", m.krate.escape_debug()));
            }
            opt_version(&m.version)?;
            opt_bin(&m.bin)
        }
        Method::Binary(m) => validate_binary(m),
        Method::Remote(m) => {
            if !is_http_url(&m.url) {
                return Err(format!("remote url must be http(s) (got `{}`)", m.url.escape_debug()));
            }
            match m.transport.as_str() {
                "http" | "sse" => Ok(()),
                other => Err(format!("remote transport must be `http` or `sse` (got `{other}`)")),
            }
        }
    }
}

fn validate_binary(m: &BinaryMethod) -> std::result::Result<(), String> {
    if !is_file_name(&m.bin) {
        return Err(format!("invalid executable name `{}`", m.bin.escape_debug()));
    }
    if m.downloads.is_empty() {
        return Err("a binary method needs at least one download".into());
    }
    for d in &m.downloads {
        check_version(&d.version).map_err(|e| e.to_string())?;
        if !is_http_url(&d.url) {
            return Err(format!("download url must be http(s) (got `{}`)", d.url.escape_debug()));
        }
        if d.sha256.len() != 64 || !d.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("download for {} needs a 64-hex-digit sha256", d.version));
        }
    }
    Ok(())
}

fn check_args(args: &[String]) -> std::result::Result<(), String> {
    if args.len() > 64 || args.iter().any(|a| a.len() > 4096 || a.contains('\0')) {
        return Err("`args` must be at most 64 strings without NUL".into());
    }
    Ok(())
}

pub(crate) fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.chars().any(|c| c.is_whitespace() || c.is_control()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_method_kind() {
        let spec = InstallSpec::parse(
            r#"{"versions":["1.1.0","1.0.0"],"methods":[
                {"type":"npm","package":"@s/x","bin":"x"},
                {"type":"pypi","package":"mcp-server-time"},
                {"type":"cargo","crate":"x-mcp"},
                {"type":"binary","bin":"x","downloads":[{"version":"1.0.0","url":"https://h/x","sha256":"00000000000000000000000000000000000000000000000000000000000000aa"}]},
                {"type":"remote","url":"https://h/mcp"}],
              "args":["--root","{data_dir}"],
              "env":[{"name":"TOKEN","required":true,"secret":true}]}"#,
        )
        .unwrap();
        spec.validate("x").unwrap();
        let kinds: Vec<_> = spec.methods.iter().map(Method::kind).collect();
        assert_eq!(kinds, MethodKind::ALL);
        assert_eq!(spec.methods[4].transport(), "http");
    }

    #[test]
    fn rejects_hostile_fields() {
        let cases = [
            r#"{"methods":[]}"#,
            r#"{"methods":[{"type":"npm","package":"x; rm -rf /"}]}"#,
            r#"{"methods":[{"type":"npm","package":"a/b"}]}"#,
            r#"{"methods":[{"type":"pypi","package":"x","bin":"../../bin/sh"}]}"#,
            r#"{"methods":[{"type":"pypi","package":"x","version":"1 || true"}]}"#,
            r#"{"methods":[{"type":"cargo","crate":"--git=evil"}]}"#,
            r#"{"methods":[{"type":"binary","bin":"x","downloads":[{"version":"1","url":"file:///etc/passwd","sha256":"00"}]}]}"#,
            r#"{"methods":[{"type":"binary","bin":"x","downloads":[{"version":"1","url":"https://h/x","sha256":"abc"}]}]}"#,
            r#"{"methods":[{"type":"remote","url":"https://h","transport":"carrier-pigeon"}]}"#,
            r#"{"methods":[{"type":"npm","package":"x"}],"env":[{"name":"A=B"}]}"#,
        ];
        for text in cases {
            let ok = InstallSpec::parse(text).and_then(|s| s.validate("x"));
            assert!(ok.is_err(), "{text} accepted");
        }
        assert!(InstallSpec::parse(r#"{"methods":[{"type":"shell","cmd":"curl | sh"}]}"#).is_err());
    }
}
