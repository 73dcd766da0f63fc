//! PyPI installs: a virtualenv per version (`uv` when on PATH, else `python3 -m venv` + pip),
//! wheels only unless the package declares `build: true`. Launched as
//! `DIR/venv/bin/python DIR/venv/bin/SCRIPT`, which works after the staging directory is renamed
//! (the script's own shebang would still name the staging path).

use std::path::Path;
use std::process::Command;

use super::process::{run, which};
use super::{Build, Built};
use crate::error::{RepoError, Result};
use crate::install_spec::PypiMethod;
use crate::lockfile::Launch;

pub(super) fn install(m: &PypiMethod, b: &Build<'_>) -> Result<Built> {
    let venv = b.staging.join("venv");
    let requirement = format!("{}=={}", m.package, b.upstream_version);
    populate(m, b, &venv, &requirement)?;
    let bin = m.bin.clone().unwrap_or_else(|| m.package.clone());
    if !venv.join("bin").join(&bin).is_file() {
        return Err(RepoError::Install {
            step: "pip install".into(),
            message: format!(
                "{} installs no script `{bin}` (found: {})",
                m.package,
                scripts(&venv.join("bin"))
            ),
            log: Some(b.log.to_owned()),
        });
    }
    let final_venv = b.final_dir.join("venv");
    let mut args = vec![final_venv.join("bin").join(&bin).to_string_lossy().into_owned()];
    args.extend(b.args.iter().cloned());
    let command = final_venv.join("bin/python").to_string_lossy().into_owned();
    Ok(Built {
        launch: Launch { transport: "stdio".into(), command: Some(command), args, url: None },
        checksum: None,
    })
}

/// Create the virtualenv and install the requirement into it (uv when available, else pip).
fn populate(m: &PypiMethod, b: &Build<'_>, venv: &Path, requirement: &str) -> Result<()> {
    let python = venv.join("bin/python");
    if let Some(uv) = which("uv") {
        let mut create = Command::new(&uv);
        create.arg("venv").arg("--quiet").arg(venv);
        run("uv venv", create, b.log, b.progress)?;
        let mut pip = Command::new(&uv);
        pip.args(["pip", "install", "--quiet", "--python"]).arg(&python);
        if !m.build {
            pip.args(["--only-binary", ":all:"]);
        }
        pip.arg(requirement);
        run(&format!("uv pip install {requirement}"), pip, b.log, b.progress)?;
    } else {
        let base = which("python3").ok_or_else(|| {
            RepoError::usage("neither `uv` nor `python3` is on PATH; install Python 3 to use PyPI packages")
        })?;
        let mut create = Command::new(base);
        create.args(["-m", "venv"]).arg(venv);
        run("python3 -m venv", create, b.log, b.progress)?;
        let mut pip = Command::new(&python);
        pip.args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet"]);
        if !m.build {
            pip.arg("--only-binary=:all:");
        }
        pip.arg(requirement);
        run(&format!("pip install {requirement}"), pip, b.log, b.progress)?;
    }
    Ok(())
}

/// The venv's console scripts, for an error message.
fn scripts(bin: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(bin) else { return "nothing".into() };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !(n.starts_with("python")
                || n.starts_with("pip")
                || n.starts_with("activate")
                || n.starts_with("Activate"))
        })
        .collect();
    names.sort();
    if names.is_empty() { "nothing".into() } else { names.join(", ") }
}
