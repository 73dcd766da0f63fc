//! `config/vmcp.toml`: the gateway's own settings, in the seed's sections.
//!
//! Every key has a default, so an absent file means "the built-in default".

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{ConfigError, Home, parse_size};

/// The file as written on disk.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGatewayFile {
    #[serde(default)]
    pub vmcp: RawVmcp,
    #[serde(default)]
    pub gateway: RawGateway,
    #[serde(default)]
    pub cache: RawCache,
    #[serde(default)]
    pub logging: RawLogging,
    #[serde(default)]
    pub monitoring: RawMonitoring,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVmcp {
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    #[serde(default)]
    pub transports: RawTransports,
    /// Largest accepted message, e.g. `"4MiB"` or a number of bytes.
    pub max_message_size: Option<toml::Value>,
    /// Default per-request timeout toward backends, seconds.
    pub request_timeout: Option<f64>,
    /// How long `initialize` waits for backends still starting, seconds.
    pub startup_timeout: Option<f64>,
    /// Grace between SIGTERM and SIGKILL for children, seconds.
    pub shutdown_grace: Option<f64>,
    /// Registry file; default `registry/servers.json` under the home.
    pub servers_file: Option<String>,
    /// Threads that run the gateway; default half the CPUs, at least one (its stdio servers,
    /// on the same machine, need the rest).
    pub worker_threads: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransports {
    #[serde(default)]
    pub stdio: RawStdio,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub websocket: RawWebSocket,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStdio {
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub enabled: Option<bool>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    /// Extra `Host` header values to accept (loopback names are always accepted).
    pub allowed_hosts: Option<Vec<String>>,
    /// Extra `Origin` values to accept (loopback origins are always accepted).
    pub allowed_origins: Option<Vec<String>>,
    pub max_sessions: Option<usize>,
    /// Seconds a legacy session may sit idle before it is closed.
    pub session_idle_timeout: Option<f64>,
    /// Serve the legacy HTTP+SSE transport (`GET /sse`, `POST /messages`) as well.
    pub legacy_sse: Option<bool>,
    /// Open connections served at once; past it a new connection gets 503 and is closed.
    pub max_connections: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebSocket {
    pub enabled: Option<bool>,
    pub host: Option<String>,
    pub port: Option<u16>,
    /// Open connections served at once; past it a new connection gets 503 and is closed.
    pub max_connections: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    pub enabled: Option<bool>,
    pub ttl: Option<f64>,
    pub max_size: Option<toml::Value>,
    pub backend: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogging {
    pub level: Option<String>,
    pub file: Option<String>,
    pub max_size: Option<toml::Value>,
    pub backup_count: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitoring {
    pub metrics_enabled: Option<bool>,
    pub health_check_interval: Option<f64>,
    pub prometheus_port: Option<u16>,
}

/// Connections each network listener serves at once unless `max_connections` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The largest `max_connections` accepted (a semaphore's permits are counted in `u32`).
const MAX_CONNECTIONS_CAP: usize = 1 << 20;

/// The Streamable HTTP (and legacy SSE) front.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpFront {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub max_sessions: usize,
    pub session_idle_timeout_secs: f64,
    pub legacy_sse: bool,
    pub max_connections: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebSocketFront {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    pub max_connections: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    pub enabled: bool,
    pub ttl_secs: f64,
    pub max_size: u64,
    pub backend: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoggingConfig {
    pub level: String,
    pub file: Option<PathBuf>,
    pub max_size: u64,
    pub backup_count: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MonitoringConfig {
    pub metrics_enabled: bool,
    pub health_check_interval_secs: f64,
    pub prometheus_port: Option<u16>,
}

/// The validated, immutable gateway settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
    pub stdio_enabled: bool,
    pub http: HttpFront,
    pub websocket: WebSocketFront,
    pub max_message_size: usize,
    pub request_timeout_secs: f64,
    pub startup_timeout_secs: f64,
    pub shutdown_grace_secs: f64,
    /// Threads of the gateway's runtime.
    pub worker_threads: usize,
    pub servers_file: Option<PathBuf>,
    pub cache: CacheConfig,
    pub logging: LoggingConfig,
    pub monitoring: MonitoringConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self::from_raw(Path::new("<default>"), RawGatewayFile::default()).expect("defaults are valid")
    }
}

impl GatewayConfig {
    /// Read and validate `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(ConfigError::new(path, None, format!("cannot read: {e}"))),
        }
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw: RawGatewayFile = toml::from_str(text).map_err(|e| {
            let place = e.span().map(|span| line_col(text, span.start));
            ConfigError::new(path, place, e.message().to_owned())
        })?;
        let mut cfg = Self::from_raw(path, raw)?;
        cfg.source = Some(path.to_owned());
        Ok(cfg)
    }

    pub fn from_raw(path: &Path, raw: RawGatewayFile) -> Result<Self, ConfigError> {
        let err = |place: &str, msg: String| ConfigError::new(path, Some(place.to_owned()), msg);
        let size = |v: &Option<toml::Value>, default: u64, place: &str| -> Result<u64, ConfigError> {
            match v {
                None => Ok(default),
                Some(toml::Value::Integer(n)) if *n > 0 => Ok(*n as u64),
                Some(toml::Value::String(s)) => parse_size(s).map_err(|m| err(place, m)),
                Some(other) => Err(err(place, format!("expected a size like \"4MiB\", got {other}"))),
            }
        };
        let secs = |v: Option<f64>, default: f64, place: &str| -> Result<f64, ConfigError> {
            match v {
                None => Ok(default),
                Some(x) if x > 0.0 && x.is_finite() => Ok(x),
                Some(x) => Err(err(place, format!("expected a positive number of seconds, got {x}"))),
            }
        };
        let connections = |v: Option<usize>, place: &str| -> Result<usize, ConfigError> {
            match v {
                None => Ok(DEFAULT_MAX_CONNECTIONS),
                Some(n) if (1..=MAX_CONNECTIONS_CAP).contains(&n) => Ok(n),
                Some(n) => {
                    Err(err(place, format!("expected 1 to {MAX_CONNECTIONS_CAP} connections, got {n}")))
                }
            }
        };
        let g = &raw.gateway;
        let path_value = g.transports.http.path.clone().unwrap_or_else(|| "/mcp".into());
        if !path_value.starts_with('/') {
            return Err(err(
                "gateway.transports.http.path",
                format!("must start with `/` (got `{path_value}`)"),
            ));
        }
        let level = raw.logging.level.clone().unwrap_or_else(|| "info".into()).to_ascii_lowercase();
        if !["trace", "debug", "info", "warn", "warning", "error"].contains(&level.as_str()) {
            return Err(err(
                "logging.level",
                format!("unknown level `{level}` (expected trace, debug, info, warn or error)"),
            ));
        }
        let max_message_size = size(&g.max_message_size, 4 << 20, "gateway.max_message_size")?;
        if max_message_size < 1024 {
            return Err(err("gateway.max_message_size", "must be at least 1KiB".into()));
        }
        Ok(Self {
            source: None,
            stdio_enabled: g.transports.stdio.enabled.unwrap_or(true),
            http: HttpFront {
                enabled: g.transports.http.enabled.unwrap_or(false),
                host: g.transports.http.host.clone().unwrap_or_else(|| "127.0.0.1".into()),
                port: g.transports.http.port.unwrap_or(3000),
                path: path_value,
                allowed_hosts: g.transports.http.allowed_hosts.clone().unwrap_or_default(),
                allowed_origins: g.transports.http.allowed_origins.clone().unwrap_or_default(),
                max_sessions: g.transports.http.max_sessions.unwrap_or(1000),
                session_idle_timeout_secs: secs(
                    g.transports.http.session_idle_timeout,
                    1800.0,
                    "gateway.transports.http.session_idle_timeout",
                )?,
                legacy_sse: g.transports.http.legacy_sse.unwrap_or(true),
                max_connections: connections(
                    g.transports.http.max_connections,
                    "gateway.transports.http.max_connections",
                )?,
            },
            websocket: WebSocketFront {
                enabled: g.transports.websocket.enabled.unwrap_or(false),
                host: g.transports.websocket.host.clone().unwrap_or_else(|| "127.0.0.1".into()),
                port: g.transports.websocket.port.unwrap_or(3001),
                max_connections: connections(
                    g.transports.websocket.max_connections,
                    "gateway.transports.websocket.max_connections",
                )?,
            },
            max_message_size: max_message_size as usize,
            request_timeout_secs: secs(g.request_timeout, 30.0, "gateway.request_timeout")?,
            startup_timeout_secs: secs(g.startup_timeout, 15.0, "gateway.startup_timeout")?,
            shutdown_grace_secs: secs(g.shutdown_grace, 3.0, "gateway.shutdown_grace")?,
            worker_threads: match g.worker_threads {
                Some(0) => return Err(err("gateway.worker_threads", "must be at least 1".into())),
                Some(n) => n,
                None => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            },
            servers_file: match g.servers_file.as_deref() {
                Some("") => {
                    return Err(err(
                        "gateway.servers_file",
                        "must name a file (e.g. \"registry/servers.json\"); remove the key for the default"
                            .into(),
                    ));
                }
                other => other.map(PathBuf::from),
            },
            cache: CacheConfig {
                enabled: raw.cache.enabled.unwrap_or(true),
                ttl_secs: secs(raw.cache.ttl, 300.0, "cache.ttl")?,
                max_size: size(&raw.cache.max_size, 100 << 20, "cache.max_size")?,
                backend: raw.cache.backend.clone().unwrap_or_else(|| "memory".into()),
            },
            logging: LoggingConfig {
                level: if level == "warning" { "warn".into() } else { level },
                file: raw.logging.file.as_ref().map(PathBuf::from),
                max_size: size(&raw.logging.max_size, 10 << 20, "logging.max_size")?,
                backup_count: raw.logging.backup_count.unwrap_or(5),
            },
            monitoring: MonitoringConfig {
                metrics_enabled: raw.monitoring.metrics_enabled.unwrap_or(true),
                health_check_interval_secs: secs(
                    raw.monitoring.health_check_interval,
                    30.0,
                    "monitoring.health_check_interval",
                )?,
                prometheus_port: raw.monitoring.prometheus_port,
            },
        })
    }
}

impl GatewayConfig {
    /// The servers registry this config points at: `gateway.servers_file` as written when
    /// absolute, else relative to the directory of `config_path` (the file the config was read
    /// from); without `servers_file`, the home's `registry/servers.json`. This is the one rule
    /// the gateway, `vmcp config`, `vmcp mount` and the package manager all follow.
    pub fn servers_path(&self, config_path: &Path, home: &Home) -> PathBuf {
        match &self.servers_file {
            Some(p) if p.is_relative() => config_path.parent().unwrap_or(Path::new(".")).join(p),
            Some(p) => p.clone(),
            None => home.servers_file(),
        }
    }
}

fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.len(), |i| before.len() - i - 1) + 1;
    format!("{line}:{col}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_file_validates() {
        let text = r#"
[vmcp]
version = "1.0.0"
[gateway.transports.stdio]
enabled = true
[gateway.transports.http]
enabled = true
port = 3000
host = "127.0.0.1"
[gateway.transports.websocket]
enabled = false
port = 3001
[cache]
enabled = true
ttl = 300
max_size = "100MB"
backend = "memory"
[logging]
level = "INFO"
file = "~/.vmcp/logs/vmcp.log"
max_size = "10MB"
backup_count = 5
[monitoring]
metrics_enabled = true
health_check_interval = 30
prometheus_port = 9090
"#;
        let cfg = GatewayConfig::parse(Path::new("vmcp.toml"), text).unwrap();
        assert!(cfg.http.enabled);
        assert_eq!(cfg.http.host, "127.0.0.1");
        assert_eq!(cfg.cache.max_size, 100 << 20);
        assert_eq!(cfg.logging.level, "info");
    }

    #[test]
    fn defaults_bind_loopback() {
        let cfg = GatewayConfig::default();
        assert_eq!(cfg.http.host, "127.0.0.1");
        assert_eq!(cfg.websocket.host, "127.0.0.1");
        assert!(!cfg.http.enabled);
        assert!(cfg.worker_threads >= 1);
    }

    #[test]
    fn errors_name_line_and_key() {
        let cases = [
            ("[gateway]\nmax_mesage_size = 1\n", "2:1", "unknown field"),
            ("[logging]\nlevel = \"loud\"\n", "logging.level", "unknown level"),
            (
                "[gateway]\nmax_message_size = \"4 parsecs\"\n",
                "gateway.max_message_size",
                "unknown size unit",
            ),
            (
                "[gateway.transports.http]\npath = \"mcp\"\n",
                "gateway.transports.http.path",
                "must start with",
            ),
            ("[gateway\n", "1:", ""),
            (
                "[gateway.transports.http]\nmax_connections = 0\n",
                "gateway.transports.http.max_connections",
                "expected 1 to",
            ),
            ("[gateway]\nworker_threads = 0\n", "gateway.worker_threads", "at least 1"),
            ("[gateway]\nservers_file = \"\"\n", "gateway.servers_file", "must name a file"),
        ];
        for (text, place, msg) in cases {
            let e = GatewayConfig::parse(Path::new("vmcp.toml"), text).unwrap_err();
            assert!(e.place.as_deref().unwrap_or("").starts_with(place), "{text}: {:?}", e.place);
            assert!(e.message.contains(msg), "{text}: {}", e.message);
        }
    }

    #[test]
    fn servers_path_is_relative_to_the_config_file_else_the_home_default() {
        let home = Home::at("/h");
        let config = Path::new("/h/config/vmcp.toml");
        let with = |text: &str| GatewayConfig::parse(config, text).unwrap().servers_path(config, &home);
        assert_eq!(with(""), PathBuf::from("/h/registry/servers.json"));
        assert_eq!(
            with("[gateway]\nservers_file = \"elsewhere/servers.json\"\n"),
            PathBuf::from("/h/config/elsewhere/servers.json")
        );
        assert_eq!(with("[gateway]\nservers_file = \"/srv/s.json\"\n"), PathBuf::from("/srv/s.json"));
        // `--config` elsewhere: relative to that file's directory, not the home.
        let other = Path::new("/etc/vmcp/gw.toml");
        let cfg = GatewayConfig::parse(other, "[gateway]\nservers_file = \"s.json\"\n").unwrap();
        assert_eq!(cfg.servers_path(other, &home), PathBuf::from("/etc/vmcp/s.json"));
    }

    #[test]
    fn a_home_s_registry_file_follows_vmcp_toml_and_refuses_a_broken_one() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        assert_eq!(home.registry_file().unwrap(), home.servers_file());
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::write(home.config_file(), "[gateway]\nservers_file = \"elsewhere/servers.json\"\n").unwrap();
        assert_eq!(home.registry_file().unwrap(), dir.path().join("config/elsewhere/servers.json"));
        std::fs::write(home.config_file(), "[gateway]\nservers_fil = \"x.json\"\n").unwrap();
        let e = home.registry_file().unwrap_err();
        assert_eq!(e.file, home.config_file());
        assert!(e.message.contains("unknown field"), "{e}");
    }
}
