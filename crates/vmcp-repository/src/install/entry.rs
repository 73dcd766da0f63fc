//! The `registry/servers.json` entry of an installed package: launch fields from the install,
//! the operator's own fields (timeouts, prefix, ...) kept, and `source` recording where it came from.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use vmcp_config::RawServer;

use crate::lockfile::{InstalledVersion, Launch};

/// `source` = `{package, version, repository, method}`.
pub fn source_json(package: &str, installed: &InstalledVersion) -> Value {
    json!({
        "package": package,
        "version": installed.version,
        "repository": installed.repository,
        "method": installed.method.as_str(),
    })
}

/// True when the entry was written by `vmcp install` for `package`.
pub fn is_ours(entry: &RawServer, package: &str) -> bool {
    entry.source.as_ref().and_then(|s| s.get("package")).and_then(Value::as_str) == Some(package)
}

/// The new entry: `existing` (if any) with launch, environment and source replaced.
pub fn build(
    existing: Option<&RawServer>,
    id: &str,
    title: &str,
    launch: &Launch,
    environment: BTreeMap<String, String>,
    source: Value,
) -> RawServer {
    let mut e = existing.cloned().unwrap_or_default();
    e.id = id.to_owned();
    if e.name.is_none() {
        e.name = Some(title.to_owned());
    }
    e.transport = launch.transport.clone();
    e.command = launch.command.clone();
    e.args = launch.args.clone();
    e.url = launch.url.clone();
    e.cwd = None;
    e.environment = environment;
    e.source = Some(source);
    e
}

/// Substitute `{install_dir}` and `{data_dir}`.
pub fn expand(template: &str, install_dir: &str, data_dir: &str) -> String {
    template.replace("{install_dir}", install_dir).replace("{data_dir}", data_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install_spec::MethodKind;

    #[test]
    fn keeps_operator_fields_and_replaces_launch() {
        let existing = RawServer {
            id: "time".into(),
            name: Some("My time".into()),
            command: Some("/old/python".into()),
            timeout: Some(5.0),
            ..Default::default()
        };
        let launch = Launch {
            transport: "stdio".into(),
            command: Some("/new/python".into()),
            args: vec!["s".into()],
            url: None,
        };
        let inst = InstalledVersion {
            version: "2.0.0".into(),
            repository: "builtin".into(),
            method: MethodKind::Pypi,
            package: "mcp-server-time".into(),
            upstream_version: "2.0.0".into(),
            checksum: None,
            installed_at: "now".into(),
            dir: None,
            launch: launch.clone(),
        };
        let e = build(Some(&existing), "time", "Time", &launch, BTreeMap::new(), source_json("time", &inst));
        assert_eq!(
            (e.name.as_deref(), e.timeout, e.command.as_deref()),
            (Some("My time"), Some(5.0), Some("/new/python"))
        );
        assert!(is_ours(&e, "time") && !is_ours(&e, "other"));
        assert_eq!(e.source.unwrap()["method"], "pypi");
        assert_eq!(expand("{data_dir}/db -- {install_dir}", "/i", "/d"), "/d/db -- /i");
    }
}
