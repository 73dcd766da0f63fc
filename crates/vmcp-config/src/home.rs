//! The vMCP home directory (`VMCP_HOME`, default `~/.vmcp`) and where each file lives in it.

use std::path::{Path, PathBuf};

use crate::{ConfigError, GatewayConfig};

/// The seed's layout under one root directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `VMCP_HOME` if set, else `$HOME/.vmcp`, else `./.vmcp`.
    pub fn from_env() -> Self {
        if let Some(root) = std::env::var_os("VMCP_HOME").filter(|v| !v.is_empty()) {
            return Self::at(root);
        }
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
        Self::at(home.join(".vmcp"))
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config/vmcp.toml")
    }
    /// Credentials for upstreams, `NAME=value` lines referenced as `${NAME}` (mode 0600).
    pub fn secrets_file(&self) -> PathBuf {
        self.root.join("config/secrets.env")
    }
    /// The default servers registry. Commands that read or change the registry use
    /// [`Home::registry_file`], which honours `gateway.servers_file` in `vmcp.toml`.
    pub fn servers_file(&self) -> PathBuf {
        self.root.join("registry/servers.json")
    }
    /// The servers registry this home uses: `gateway.servers_file` of `config/vmcp.toml`
    /// (relative to the directory of `vmcp.toml`, as [`GatewayConfig::servers_path`] says),
    /// else `registry/servers.json`. A `vmcp.toml` that cannot be read or does not validate is
    /// an error, never a silent fallback to the default file.
    pub fn registry_file(&self) -> Result<PathBuf, ConfigError> {
        let config = self.config_file();
        Ok(GatewayConfig::load(&config)?.servers_path(&config, self))
    }
    pub fn personas_dir(&self) -> PathBuf {
        self.root.join("config/personas")
    }
    pub fn repositories_file(&self) -> PathBuf {
        self.root.join("config/repositories.json")
    }
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }
    pub fn installed_dir(&self) -> PathBuf {
        self.root.join("installed/servers")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// The control socket and pid file of a running gateway.
    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }
}
