//! Real installs through the `vmcp` binary (needs network to PyPI and npm): `mcp-server-time`
//! from PyPI into a virtualenv and `@modelcontextprotocol/server-memory` from npm; each is
//! mounted and one of its tools is called through the gateway (`vmcp start` over stdio).

mod support;

use std::process::Command;

use serde_json::json;
use support::Gateway;

const VMCP: &str = env!("CARGO_BIN_EXE_vmcp");

/// `vmcp install SPEC --yes` into `home`. The package versions are the ones the built-in
/// catalog pins (`crates/vmcp-repository/catalog/builtin.json`).
fn install(home: &std::path::Path, spec: &str) -> String {
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("repository-real-cache");
    let out = Command::new(VMCP)
        .args(["install", spec, "--yes"])
        .env("VMCP_HOME", home)
        .env_remove("VMCP_LOG")
        // Downloads cached under the tests' own temporary directory: isolated from the user's
        // caches, and a rerun does not download again.
        .env("PIP_CACHE_DIR", cache.join("pip"))
        .env("UV_CACHE_DIR", cache.join("uv"))
        .env("npm_config_cache", cache.join("npm"))
        .env("npm_config_update_notifier", "false")
        .output()
        .expect("run vmcp install");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "vmcp install {spec}: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The gateway's name for `tool` of some mounted server (`{prefix}__{tool}` or bare).
fn find_tool(names: &[String], tool: &str) -> String {
    names.iter().find(|n| n.ends_with(tool)).unwrap_or_else(|| panic!("no {tool} in {names:?}")).clone()
}

#[test]
fn installs_mcp_server_time_from_pypi_and_calls_it_through_the_gateway() {
    let home = tempfile::tempdir().unwrap();
    let out = install(home.path(), "mcp-server-time");
    assert!(out.contains("(pypi) as server `time`"), "{out}");
    let mut gw = Gateway::spawn(home.path(), &["start"]);
    gw.initialize(json!({}));
    let tool = find_tool(&gw.tool_names(), "get_current_time");
    let text = gw.call_text(&tool, json!({"timezone": "UTC"}));
    assert!(text.contains("UTC") && text.contains("datetime"), "{text}\n{}", gw.stderr());
}

#[test]
fn installs_server_memory_from_npm_and_calls_it_through_the_gateway() {
    let home = tempfile::tempdir().unwrap();
    let out = install(home.path(), "@modelcontextprotocol/server-memory");
    assert!(out.contains("(npm) as server `memory`"), "{out}");
    let mut gw = Gateway::spawn(home.path(), &["start"]);
    gw.initialize(json!({}));
    let names = gw.tool_names();
    let create = find_tool(&names, "create_entities");
    let entities = json!({"entities": [{"name": "vmcp", "entityType": "project", "observations": ["installed by vmcp"]}]});
    gw.call_text(&create, entities);
    let graph = gw.call_text(&find_tool(&names, "read_graph"), json!({}));
    assert!(graph.contains("installed by vmcp"), "{graph}\n{}", gw.stderr());
    assert!(home.path().join("data/memory/memory.jsonl").exists(), "memory file not in data dir");
}
