//! Real installs from PyPI and npm through the library (network to the registries needed):
//! `mcp-server-time` and `@modelcontextprotocol/server-memory` from the built-in catalog, then
//! the registered command is started and answers `initialize` and `tools/list` over stdio.
//! Ignored by default; run with `cargo test -p vmcp-repository --test real_installs -- --ignored`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use vmcp_config::{Home, ServersFile};
use vmcp_repository::{InstallOptions, Installer, NoPrompt, Progress};

/// Start the registered server, initialize it, and return its tool names.
fn tool_names(home: &Home, id: &str) -> Vec<String> {
    let servers = ServersFile::load(&home.servers_file()).unwrap().unwrap();
    let entry = servers.raw.servers.iter().find(|s| s.id == id).unwrap();
    let mut cmd = Command::new(entry.command.as_ref().unwrap());
    cmd.args(&entry.args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
    for (k, v) in &entry.environment {
        cmd.env(k, vmcp_config::expand_env(v, |n| std::env::var(n).ok()).unwrap());
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    writeln!(stdin, "{init}").unwrap();
    let _ = lines.next().unwrap().unwrap();
    writeln!(stdin, "{}", json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).unwrap();
    writeln!(stdin, "{}", json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).unwrap();
    let reply: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    reply["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

fn install(home: &Home, spec: &str) {
    let installer = Installer::new(home, Progress::stderr(), &NoPrompt);
    let o = installer.install(spec, &InstallOptions::default()).unwrap();
    eprintln!("{o:?}");
}

#[test]
#[ignore = "needs network to PyPI"]
fn installs_mcp_server_time_from_pypi_in_a_virtualenv() {
    let tmp = tempfile::tempdir().unwrap();
    let home = Home::at(tmp.path());
    install(&home, "mcp-server-time");
    assert!(tool_names(&home, "time").contains(&"get_current_time".to_owned()));
}

#[test]
#[ignore = "needs network to npm"]
fn installs_server_memory_from_npm() {
    let tmp = tempfile::tempdir().unwrap();
    let home = Home::at(tmp.path());
    install(&home, "@modelcontextprotocol/server-memory");
    assert!(tool_names(&home, "memory").contains(&"create_entities".to_owned()));
}
