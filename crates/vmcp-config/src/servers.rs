//! `registry/servers.json`: the servers vMCP mounts, in the seed's format, and their validation.
//!
//! Invariant: a `ServerSpec` is valid (id, transport and its fields checked); the gateway never
//! re-validates it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{ConfigError, write_atomic};

/// The file as written on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServersFile {
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default)]
    pub servers: Vec<RawServer>,
}

fn default_version() -> String {
    "1.0.0".into()
}

/// An empty registry, as `{}` reads: a new file starts with the format's version.
impl Default for RawServersFile {
    fn default() -> Self {
        Self { version: default_version(), servers: Vec::new() }
    }
}

/// One server entry as written on disk (the seed's fields plus vMCP's own).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "default_transport")]
    pub transport: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Environment for the child; values may use `${VAR}` from the gateway's environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// HTTP headers for network upstreams; values may use `${VAR}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Informational, as in the seed; the gateway learns capabilities from the server itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_interval: Option<f64>,
    /// Per-request timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// `false` keeps the entry but does not mount it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `auto` (default), `legacy` or `modern`: skip era probing when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub era: Option<String>,
    /// Prefix for this server's tool and prompt names; default: the id. `""` exposes bare names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// How many copies of a stdio server to run (load-balanced), default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Several URLs of the same network server (replicas); `url` is then optional.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Per-method timeouts in seconds, e.g. `{"tools/call": 120}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub timeouts: BTreeMap<String, f64>,
    /// Resilience settings (`strategy`, `weights`, `breaker`, `health`, `restart`, `limits`,
    /// `retry_tools`); validated by the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resilience: Option<serde_json::Value>,
    /// Where the entry came from (written by `vmcp install`); opaque to the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<serde_json::Value>,
}

fn default_transport() -> String {
    "stdio".into()
}

/// How a server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Stdio { command: String, args: Vec<String>, cwd: Option<PathBuf> },
    StreamableHttp { url: String },
    Sse { url: String },
    WebSocket { url: String },
}

impl Transport {
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Stdio { .. } => "stdio",
            Transport::StreamableHttp { .. } => "http",
            Transport::Sse { .. } => "sse",
            Transport::WebSocket { .. } => "websocket",
        }
    }
}

/// Which protocol era to speak to a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    Auto,
    Legacy,
    Modern,
}

/// How a server's tool and prompt names are exposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Naming {
    /// `{prefix}__{name}`.
    Prefixed(String),
    /// The backend's own names.
    Bare,
}

/// A validated server entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSpec {
    pub id: String,
    pub name: String,
    pub transport: Transport,
    /// Unexpanded; `expand_env` runs at spawn time so secrets never sit in the snapshot.
    pub environment: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub timeout_secs: f64,
    pub health_check_interval_secs: f64,
    pub max_retries: u32,
    pub era: Era,
    pub naming: Naming,
    pub replicas: usize,
    pub urls: Vec<String>,
    pub timeouts: BTreeMap<String, f64>,
    pub resilience: Option<serde_json::Value>,
}

impl ServerSpec {
    /// The timeout for one method: its own if configured, else the server's.
    pub fn timeout_for(&self, method: &str) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.timeouts.get(method).copied().unwrap_or(self.timeout_secs))
    }
}

/// The validated registry.
#[derive(Debug, Clone, Default)]
pub struct ServersFile {
    pub path: PathBuf,
    pub raw: RawServersFile,
    /// Enabled servers, in file order (the order that breaks naming ties).
    pub servers: Vec<ServerSpec>,
}

impl ServersFile {
    /// Read and validate; a missing file is `Ok(None)`.
    pub fn load(path: &Path) -> Result<Option<Self>, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ConfigError::new(path, None, format!("cannot read: {e}"))),
        };
        Self::parse(path, &text).map(Some)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw: RawServersFile = serde_json::from_str(text).map_err(|e| {
            ConfigError::new(
                path,
                Some(format!("{}:{}", e.line(), e.column())),
                strip_position(&e.to_string()),
            )
        })?;
        Self::from_raw(path, raw)
    }

    pub fn from_raw(path: &Path, raw: RawServersFile) -> Result<Self, ConfigError> {
        let mut seen = BTreeMap::new();
        let mut servers = Vec::new();
        for (i, s) in raw.servers.iter().enumerate() {
            let place = Some(format!("servers[{i}]"));
            if let Some(prev) = seen.insert(s.id.clone(), i) {
                return Err(ConfigError::new(
                    path,
                    place,
                    format!("duplicate server id `{}` (also servers[{prev}])", s.id),
                ));
            }
            let spec = validate_server(s).map_err(|m| ConfigError::new(path, place, m))?;
            if s.enabled != Some(false) {
                servers.push(spec);
            }
        }
        Ok(Self { path: path.to_owned(), raw, servers })
    }

    /// Write the raw form back atomically (used by install, mount and unmount).
    pub fn save(path: &Path, raw: &RawServersFile) -> std::io::Result<()> {
        let mut text = serde_json::to_string_pretty(raw).map_err(std::io::Error::other)?;
        text.push('\n');
        write_atomic(path, text.as_bytes())
    }
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// Server ids: 1-64 chars of `[A-Za-z0-9_-]`, so that `{id}__{tool}` stays a valid tool name.
pub fn is_valid_server_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn validate_server(s: &RawServer) -> Result<ServerSpec, String> {
    if !is_valid_server_id(&s.id) {
        return Err(format!("server id `{}` must be 1-64 characters of A-Z, a-z, 0-9, `_` or `-`", s.id));
    }
    let need_url = |what: &str| -> Result<String, String> {
        let url = s
            .url
            .clone()
            .or_else(|| s.urls.first().cloned())
            .ok_or_else(|| format!("transport `{what}` needs a `url` (or `urls`)"))?;
        for u in &s.urls {
            if !(u.starts_with("http://")
                || u.starts_with("https://")
                || u.starts_with("ws://")
                || u.starts_with("wss://"))
            {
                return Err(format!(
                    "`urls` entries must start with http://, https://, ws:// or wss:// (got `{u}`)"
                ));
            }
        }
        if !(url.starts_with("http://")
            || url.starts_with("https://")
            || url.starts_with("ws://")
            || url.starts_with("wss://"))
        {
            return Err(format!("`url` must start with http://, https://, ws:// or wss:// (got `{url}`)"));
        }
        Ok(url)
    };
    let transport = match s.transport.as_str() {
        "stdio" => {
            let command = s
                .command
                .clone()
                .filter(|c| !c.trim().is_empty())
                .ok_or("transport `stdio` needs a `command`")?;
            Transport::Stdio { command, args: s.args.clone(), cwd: s.cwd.as_ref().map(PathBuf::from) }
        }
        "http" | "streamable-http" | "streamable_http" => {
            Transport::StreamableHttp { url: need_url("http")? }
        }
        "sse" | "http+sse" => Transport::Sse { url: need_url("sse")? },
        "websocket" | "ws" => Transport::WebSocket { url: need_url("websocket")? },
        other => return Err(format!("unknown transport `{other}` (expected stdio, http, sse or websocket)")),
    };
    let era = match s.era.as_deref().unwrap_or("auto") {
        "auto" => Era::Auto,
        "legacy" => Era::Legacy,
        "modern" => Era::Modern,
        other => return Err(format!("unknown era `{other}` (expected auto, legacy or modern)")),
    };
    let naming = match s.prefix.as_deref() {
        None => Naming::Prefixed(s.id.clone()),
        Some("") => Naming::Bare,
        Some(p) if is_valid_server_id(p) => Naming::Prefixed(p.to_owned()),
        Some(p) => return Err(format!("prefix `{p}` must be 1-64 characters of A-Z, a-z, 0-9, `_` or `-`")),
    };
    let positive = |v: Option<f64>, default: f64, what: &str| -> Result<f64, String> {
        match v {
            None => Ok(default),
            Some(x) if x > 0.0 && x.is_finite() => Ok(x),
            Some(x) => Err(format!("`{what}` must be a positive number of seconds (got {x})")),
        }
    };
    for key in s.environment.keys() {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(format!("environment variable name `{key}` is not valid"));
        }
    }
    Ok(ServerSpec {
        id: s.id.clone(),
        name: s.name.clone().unwrap_or_else(|| s.id.clone()),
        transport,
        environment: s.environment.clone(),
        headers: s.headers.clone(),
        timeout_secs: positive(s.timeout, 30.0, "timeout")?,
        health_check_interval_secs: positive(s.health_check_interval, 30.0, "health_check_interval")?,
        max_retries: s.max_retries.unwrap_or(3),
        era,
        naming,
        replicas: match s.replicas {
            Some(0) => return Err("`replicas` must be at least 1".into()),
            Some(n) => n as usize,
            None => 1,
        },
        urls: s.urls.clone(),
        timeouts: {
            for (method, t) in &s.timeouts {
                if !(*t > 0.0 && t.is_finite()) {
                    return Err(format!("`timeouts.{method}` must be a positive number of seconds"));
                }
            }
            s.timeouts.clone()
        },
        resilience: s.resilience.clone(),
    })
}

/// Expand `${VAR}` (and `$$` for a literal `$`) using `lookup`. Unknown variables are an error,
/// so a missing secret is reported instead of silently becoming empty.
pub fn expand_env(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| format!("unclosed `${{` in `{value}`"))?;
            let name = &body[..end];
            let (name, default) = match name.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (name, None),
            };
            match lookup(name).or_else(|| default.map(str::to_owned)) {
                Some(v) => out.push_str(&v),
                None => return Err(format!("environment variable `{name}` is not set")),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests;
