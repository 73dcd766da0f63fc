//! `vmcp config validate|paths`, and loading the two config files for other commands.

use std::path::{Path, PathBuf};

use vmcp_config::{GatewayConfig, Home, ServersFile};

/// The gateway config (from `--config` or the home) and the registry it points at.
pub struct Loaded {
    pub home: Home,
    pub gateway: GatewayConfig,
    pub servers_path: PathBuf,
    /// `None`: no registry file, so the built-in default applies.
    pub servers: Option<ServersFile>,
}

pub fn load(config: Option<&Path>) -> anyhow::Result<Loaded> {
    let home = Home::from_env();
    let path = config.map(Path::to_path_buf).unwrap_or_else(|| home.config_file());
    if config.is_some() && !path.exists() {
        return Err(crate::UsageError(format!("config file {} does not exist", path.display())).into());
    }
    let gateway = GatewayConfig::load(&path)?;
    let servers_path = gateway.servers_path(&path, &home);
    let servers = ServersFile::load(&servers_path)?;
    Ok(Loaded { home, gateway, servers_path, servers })
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

pub fn paths() -> anyhow::Result<()> {
    let home = Home::from_env();
    println!("home          {}", home.root().display());
    println!("config        {}", home.config_file().display());
    println!("servers       {}", home.registry_file()?.display());
    println!("personas      {}", home.personas_dir().display());
    println!("repositories  {}", home.repositories_file().display());
    println!("installed     {}", home.installed_dir().display());
    println!("logs          {}", home.logs_dir().display());
    Ok(())
}
