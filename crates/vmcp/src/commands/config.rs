//! `vmcp config validate|paths`, and loading the two config files for other commands.

use std::path::{Path, PathBuf};

use vmcp_config::{GatewayConfig, Home, ServersFile};

use crate::UsageError;

/// The gateway config (from `--config` or the home) and the registry it points at.
pub struct Loaded {
    pub home: Home,
    pub gateway: GatewayConfig,
    pub servers_path: PathBuf,
    /// `None`: no registry file, so the built-in default applies.
    pub servers: Option<ServersFile>,
}

pub fn load(config: Option<&Path>) -> anyhow::Result<Loaded> {
    let Resolved { home, gateway, servers_path, .. } = resolve(config)?;
    let servers = ServersFile::load(&servers_path)?;
    Ok(Loaded { home, gateway, servers_path, servers })
}

/// The gateway config a command follows and the servers registry it names.
struct Resolved {
    home: Home,
    /// The file read: `--config FILE`, else the home's `config/vmcp.toml`.
    config_path: PathBuf,
    gateway: GatewayConfig,
    /// Absolute, so a journal that records it means the same file from any directory.
    servers_path: PathBuf,
}

/// The one rule for every command: `--config FILE` (which must exist) or the home's vmcp.toml
/// (absent: the defaults), and the registry it names ([`GatewayConfig::servers_path`]: a
/// relative `servers_file` is relative to that file's directory). A broken file is an error
/// naming it (exit 64), never a fall back to the default registry.
fn resolve(config: Option<&Path>) -> anyhow::Result<Resolved> {
    let home = Home::from_env();
    let config_path = match config.map(|path| (path, path.try_exists())) {
        None => home.config_file(),
        Some((path, Ok(true))) => path.to_path_buf(),
        Some((path, Ok(false))) => {
            return Err(UsageError(format!("config file {} does not exist", path.display())).into());
        }
        Some((path, Err(e))) => {
            return Err(UsageError(format!("cannot read config file {}: {e}", path.display())).into());
        }
    };
    let gateway = GatewayConfig::load(&config_path)?;
    let servers_path = std::path::absolute(gateway.servers_path(&config_path, &home))?;
    Ok(Resolved { home, config_path, gateway, servers_path })
}

/// The home and the servers registry `mount`, `unmount` and the package manager change under
/// `--config`.
pub fn registry(config: Option<&Path>) -> anyhow::Result<(Home, PathBuf)> {
    let Resolved { home, servers_path, .. } = resolve(config)?;
    Ok((home, servers_path))
}

pub fn validate(config: Option<&Path>) -> anyhow::Result<()> {
    let loaded = load(config)?;
    let source = loaded
        .gateway
        .source
        .as_ref()
        .map_or_else(|| "built-in defaults".to_owned(), |p| p.display().to_string());
    if let Some(file) = &loaded.servers {
        check_resilience(file)?;
    }
    println!("ok: {source}");
    match &loaded.servers {
        Some(s) => println!("ok: {} ({} servers enabled)", loaded.servers_path.display(), s.servers.len()),
        None => println!("ok: {} absent; the built-in default servers apply", loaded.servers_path.display()),
    }
    Ok(())
}

/// Each enabled server's `resilience` object, checked as the gateway will when it starts the
/// server (which, with an invalid one, leaves that server stopped).
fn check_resilience(file: &ServersFile) -> Result<(), vmcp_config::ConfigError> {
    for (i, raw) in file.raw.servers.iter().enumerate() {
        let Some(spec) = file.servers.iter().find(|s| s.id == raw.id) else { continue };
        let replicas = vmcp_gateway::mounted::replica_count(spec);
        if let Err(e) = vmcp_gateway::resilience::Resilience::from_value(spec.resilience.as_ref(), replicas) {
            return Err(vmcp_config::ConfigError::new(
                &file.path,
                Some(format!("servers[{i}]")),
                e.to_string(),
            ));
        }
    }
    Ok(())
}

pub fn paths(config: Option<&Path>) -> anyhow::Result<()> {
    let Resolved { home, config_path, servers_path, .. } = resolve(config)?;
    println!("home          {}", home.root().display());
    println!("config        {}", config_path.display());
    println!("servers       {}", servers_path.display());
    println!("personas      {}", home.personas_dir().display());
    println!("repositories  {}", home.repositories_file().display());
    println!("installed     {}", home.installed_dir().display());
    println!("logs          {}", home.logs_dir().display());
    Ok(())
}
