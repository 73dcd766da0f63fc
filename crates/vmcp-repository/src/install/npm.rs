//! npm installs: `npm install --prefix DIR PACKAGE@VERSION` (lifecycle scripts off unless the
//! package declares `scripts: true`), launched as `node DIR/node_modules/.bin/BIN`.

use std::process::Command;

use serde_json::Value;

use super::process::{run, which};
use super::{Build, Built};
use crate::error::{RepoError, Result};
use crate::install_spec::NpmMethod;
use crate::lockfile::Launch;
use crate::name::is_file_name;

pub(super) fn install(m: &NpmMethod, b: &Build<'_>) -> Result<Built> {
    let npm = which("npm").ok_or_else(|| missing("npm"))?;
    let node = which("node").ok_or_else(|| missing("node"))?;
    let mut cmd = Command::new(npm);
    cmd.arg("install").arg("--prefix").arg(b.staging);
    cmd.args(["--no-audit", "--no-fund", "--omit=dev", "--loglevel=error", "--no-update-notifier"]);
    if !m.scripts {
        cmd.arg("--ignore-scripts");
    }
    cmd.arg(format!("{}@{}", m.package, b.upstream_version));
    run(&format!("npm install {}@{}", m.package, b.upstream_version), cmd, b.log, b.progress)?;
    let bin = match &m.bin {
        Some(bin) => bin.clone(),
        None => detect_bin(b, &m.package)?,
    };
    if !b.staging.join("node_modules/.bin").join(&bin).exists() {
        return Err(install_err(format!("{} has no executable `{bin}`", m.package)));
    }
    let mut args = vec![b.final_dir.join("node_modules/.bin").join(&bin).to_string_lossy().into_owned()];
    args.extend(b.args.iter().cloned());
    let launch = Launch {
        transport: "stdio".into(),
        command: Some(node.to_string_lossy().into_owned()),
        args,
        url: None,
    };
    Ok(Built { launch, checksum: integrity(b, &m.package) })
}

/// The package's only `bin`, or the one named like the package.
fn detect_bin(b: &Build<'_>, package: &str) -> Result<String> {
    let path = b.staging.join("node_modules").join(package).join("package.json");
    let text = std::fs::read_to_string(&path).map_err(|e| RepoError::io(&path, e))?;
    let json: Value =
        serde_json::from_str(&text).map_err(|e| install_err(format!("{}: {e}", path.display())))?;
    let short = package.rsplit('/').next().unwrap_or(package);
    let name = match json.get("bin") {
        Some(Value::String(_)) => Some(short.to_owned()),
        Some(Value::Object(map)) if map.len() == 1 => map.keys().next().cloned(),
        Some(Value::Object(map)) => map.contains_key(short).then(|| short.to_owned()),
        _ => None,
    };
    name.filter(|n| is_file_name(n)).ok_or_else(|| {
        install_err(format!(
            "{package} declares no single executable; the package's install.json must set `bin`"
        ))
    })
}

/// npm's `integrity` for the package, from `node_modules/.package-lock.json`.
fn integrity(b: &Build<'_>, package: &str) -> Option<String> {
    let text = std::fs::read_to_string(b.staging.join("node_modules/.package-lock.json")).ok()?;
    let json: Value = serde_json::from_str(&text).ok()?;
    let key = format!("node_modules/{package}");
    json.get("packages")?.get(&key)?.get("integrity")?.as_str().map(str::to_owned)
}

fn missing(tool: &str) -> RepoError {
    RepoError::usage(format!(
        "`{tool}` is not on PATH; install Node.js to use npm packages, or pick another --method"
    ))
}

fn install_err(message: String) -> RepoError {
    RepoError::Install { step: "npm install".into(), message, log: None }
}
