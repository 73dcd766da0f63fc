//! Unit tests for the registry API conversion: server.json shapes, statuses, merging.

use super::*;
use serde_json::json;

fn entry(name: &str, version: &str, status: &str) -> Value {
    json!({
        "server": {
            "$schema": "https://static.modelcontextprotocol.io/schemas/2025-10-17/server.schema.json",
            "name": name,
            "description": "Weather data",
            "version": version,
            "repository": {"url": "https://github.com/acme/weather", "source": "github"},
            "packages": [{
                "registryType": "npm",
                "identifier": "@acme/weather-mcp",
                "version": version,
                "transport": {"type": "stdio"},
                "packageArguments": [{"type": "positional", "value": "serve"}, {"type": "named", "name": "--units", "default": "metric"}],
                "environmentVariables": [{"name": "WEATHER_KEY", "isRequired": true, "isSecret": true}]
            }, {"registryType": "oci", "identifier": "acme/weather", "version": version}],
            "remotes": [{"type": "streamable-http", "url": "https://weather.example/mcp"}]
        },
        "_meta": {"io.modelcontextprotocol.registry/official": {"status": status, "isLatest": true}}
    })
}

#[test]
fn converts_and_merges_versions() {
    let mut by_name = BTreeMap::new();
    let mut errors = BTreeMap::new();
    apply_entry(entry("io.github.acme/weather", "1.0.0", "active"), &mut by_name, &mut errors);
    apply_entry(entry("io.github.acme/weather", "1.1.0", "active"), &mut by_name, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let pkg = &by_name["io.github.acme/weather"];
    assert_eq!(pkg.versions(), ["1.1.0", "1.0.0"]);
    assert_eq!(pkg.manifest.homepage.as_deref(), Some("https://github.com/acme/weather"));
    let install = &pkg.latest().install;
    assert_eq!(install.methods.len(), 2, "npm + remote; oci skipped");
    assert_eq!(install.methods[0].args().unwrap(), ["serve", "--units", "metric"]);
    assert!(install.env[0].secret && install.env[0].required);
    assert_eq!(pkg.transports(), ["http", "stdio"]);

    apply_entry(entry("io.github.acme/weather", "1.1.0", "deleted"), &mut by_name, &mut errors);
    assert_eq!(by_name["io.github.acme/weather"].versions(), ["1.0.0"]);
}

#[test]
fn accepts_legacy_snake_case_and_reports_bad_entries() {
    let mut by_name = BTreeMap::new();
    let mut errors = BTreeMap::new();
    let legacy = json!({
        "name": "io.github.example/weather-mcp",
        "description": "Python weather",
        "version_detail": {"version": "0.5.0"},
        "packages": [{"registry_type": "pypi", "identifier": "weather-mcp-server", "version": "0.5.0",
                      "environment_variables": [{"name": "WEATHER_API_KEY", "is_required": true, "is_secret": true}]}]
    });
    apply_entry(legacy, &mut by_name, &mut errors);
    apply_entry(
        json!({"server": {"name": "io.github.x/oci-only", "version": "1.0.0", "description": "d",
        "packages": [{"registryType": "oci", "identifier": "x/y"}]}}),
        &mut by_name,
        &mut errors,
    );
    apply_entry(
        json!({"server": {"name": "../evil", "version": "1.0.0", "description": "d",
        "remotes": [{"type": "sse", "url": "https://h/sse"}]}}),
        &mut by_name,
        &mut errors,
    );
    apply_entry(json!({"server": {"name": 42}}), &mut by_name, &mut errors);
    assert_eq!(by_name.len(), 1);
    assert_eq!(by_name["io.github.example/weather-mcp"].latest().install.env[0].name, "WEATHER_API_KEY");
    assert!(errors["io.github.x/oci-only"].contains("unsupported package types: oci"));
    assert!(errors.contains_key("../evil"));
    assert_eq!(errors.len(), 3);
}

#[test]
fn page_urls_encode_cursors() {
    assert_eq!(page_url("http://h/", None, None), "http://h/v0/servers?limit=100");
    assert_eq!(
        page_url("http://h/v0.1/servers", Some("com.x/y:1.0.0"), Some("2026-01-01T00:00:00Z")),
        "http://h/v0.1/servers?limit=100&cursor=com.x%2Fy%3A1.0.0&updated_since=2026-01-01T00%3A00%3A00Z"
    );
}
