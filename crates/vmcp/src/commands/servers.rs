//! `vmcp list`, `vmcp info`, `vmcp mount`, `vmcp unmount`: the server registry on disk.

use std::path::Path;

use serde_json::json;
use vmcp_config::{Home, RawServer, RawServersFile, ServerSpec, ServersFile, is_valid_server_id};
use vmcp_repository::{HomeLock, Progress};

use super::config::load;
use crate::UsageError;

fn specs(config: Option<&Path>) -> anyhow::Result<(Vec<ServerSpec>, bool)> {
    let loaded = load(config)?;
    Ok(match loaded.servers {
        Some(f) => (f.servers, false),
        None => {
            let raw = crate::defaults::servers(&loaded.home)?;
            (ServersFile::from_raw(Path::new("<built-in default>"), raw)?.servers, true)
        }
    })
}

fn describe(s: &ServerSpec) -> serde_json::Value {
    let (target, args) = match &s.transport {
        vmcp_config::Transport::Stdio { command, args, .. } => (command.clone(), args.clone()),
        vmcp_config::Transport::StreamableHttp { url }
        | vmcp_config::Transport::Sse { url }
        | vmcp_config::Transport::WebSocket { url } => (url.clone(), vec![]),
    };
    let prefix = match &s.naming {
        vmcp_config::Naming::Prefixed(p) => Some(p.clone()),
        vmcp_config::Naming::Bare => None,
    };
    json!({
        "id": s.id,
        "name": s.name,
        "transport": s.transport.kind(),
        "target": target,
        "args": args,
        "prefix": prefix,
        "environment": s.environment.keys().collect::<Vec<_>>(),
        "timeout_seconds": s.timeout_secs,
        "era": format!("{:?}", s.era).to_lowercase(),
    })
}

pub fn list(config: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let (specs, builtin) = specs(config)?;
    if json {
        let v: Vec<_> = specs.iter().map(describe).collect();
        println!("{}", serde_json::to_string_pretty(&json!({ "builtin_default": builtin, "servers": v }))?);
        return Ok(());
    }
    if builtin {
        println!("(no servers.json: the built-in default servers)");
    }
    if let Some(mut c) = super::control::Control::connect(&Home::from_env()) {
        let live = c.call("vmcp/servers/list", json!({}))?;
        println!("(live, from the running gateway)");
        super::control::print_servers(&live["servers"]);
        return Ok(());
    }
    println!("{:<20} {:<10} {:<12} TARGET", "ID", "TRANSPORT", "PREFIX");
    for s in &specs {
        let d = describe(s);
        println!(
            "{:<20} {:<10} {:<12} {}",
            s.id,
            s.transport.kind(),
            d["prefix"].as_str().unwrap_or("(bare)"),
            d["target"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

pub fn info(config: Option<&Path>, id: &str, json: bool) -> anyhow::Result<()> {
    let (specs, _) = specs(config)?;
    let Some(s) = specs.iter().find(|s| s.id == id) else {
        // Not a configured server: maybe a package in the repositories.
        if vmcp_repository::cli::package_info(&Home::from_env(), id, json)? {
            return Ok(());
        }
        let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
        let hint = closest(id, &ids).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
        return Err(UsageError(format!("no server `{id}`{hint}")).into());
    };
    let mut d = describe(s);
    if json {
        // An installed server carries the package it came from.
        if let Some(package) = vmcp_repository::cli::package_info_json(&Home::from_env(), id)? {
            d["package"] = package;
        }
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        for (k, v) in d.as_object().into_iter().flatten() {
            println!("{k:<16} {}", if let Some(s) = v.as_str() { s.to_owned() } else { v.to_string() });
        }
        vmcp_repository::cli::installed_package_info(&Home::from_env(), id)?;
    }
    Ok(())
}

fn closest<'a>(wanted: &str, options: &[&'a str]) -> Option<&'a str> {
    options
        .iter()
        .map(|o| (strsim::levenshtein(o, wanted), *o))
        .filter(|(d, o)| o.contains(wanted) || wanted.contains(o) || *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o)
}

/// The servers registry (`gateway.servers_file` of `--config FILE` or the home's vmcp.toml,
/// else `registry/servers.json`) for a read-modify-write, with the home lock that `vmcp install`,
/// `update` and `uninstall` hold while they change the same file, so that no command loses
/// another's change. Keep the lock until the file is saved.
fn registry(config: Option<&Path>) -> anyhow::Result<(HomeLock, std::path::PathBuf, RawServersFile)> {
    let (home, path) = super::config::registry(config)?;
    let lock = HomeLock::acquire(&home, &Progress::stderr())?;
    let raw = ServersFile::load(&path)?.map(|f| f.raw).unwrap_or_default();
    Ok((lock, path, raw))
}

pub fn mount(
    config: Option<&Path>,
    id: &str,
    env: &[String],
    prefix: Option<String>,
    command: &[String],
) -> anyhow::Result<()> {
    if !is_valid_server_id(id) {
        return Err(UsageError(format!(
            "server id `{id}` must be 1-64 characters of A-Z, a-z, 0-9, `_` or `-`"
        ))
        .into());
    }
    let (_lock, path, mut raw) = registry(config)?;
    if raw.servers.iter().any(|s| s.id == id) {
        return Err(UsageError(format!("server `{id}` is already mounted (unmount it first)")).into());
    }
    let mut environment = std::collections::BTreeMap::new();
    for kv in env {
        let (k, v) =
            kv.split_once('=').ok_or_else(|| UsageError(format!("--env takes KEY=VALUE, got `{kv}`")))?;
        environment.insert(k.to_owned(), v.to_owned());
    }
    raw.servers.push(RawServer {
        id: id.to_owned(),
        transport: "stdio".into(),
        command: Some(command[0].clone()),
        args: command[1..].to_vec(),
        environment,
        prefix,
        ..RawServer::default()
    });
    ServersFile::from_raw(&path, raw.clone())?;
    ServersFile::save(&path, &raw)?;
    println!("mounted `{id}` in {}", path.display());
    Ok(())
}

pub fn unmount(config: Option<&Path>, id: &str) -> anyhow::Result<()> {
    let (_lock, path, mut raw) = registry(config)?;
    let before = raw.servers.len();
    raw.servers.retain(|s| s.id != id);
    if raw.servers.len() == before {
        return Err(UsageError(format!("no server `{id}` in {}", path.display())).into());
    }
    ServersFile::save(&path, &raw)?;
    println!("unmounted `{id}`");
    Ok(())
}
