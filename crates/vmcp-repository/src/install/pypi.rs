//! PyPI installs: a virtualenv per version (`uv` when on PATH, else `python3 -m venv` + pip:
//! the system pip with `--python` into a venv made without pip when it can, else the venv's
//! own pip), wheels only unless the package declares `build: true`. Launched as
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
        // The system pip (22.3+ has `--python`) installs into a venv made without pip: seconds
        // faster than seeding the venv with its own pip, and needs no `ensurepip`.
        let outer_pip = has_pip_python_option(&base);
        let mut create = Command::new(&base);
        create.args(["-m", "venv"]);
        if outer_pip {
            create.arg("--without-pip");
        }
        create.arg(venv);
        run("python3 -m venv", create, b.log, b.progress)?;
        let mut pip = if outer_pip {
            let mut pip = Command::new(&base);
            pip.args(["-m", "pip", "--python"]).arg(&python);
            pip
        } else {
            let mut pip = Command::new(&python);
            pip.args(["-m", "pip"]);
            pip
        };
        pip.args(["install", "--disable-pip-version-check", "--no-input", "--quiet"]);
        if !m.build {
            pip.arg("--only-binary=:all:");
        }
        pip.arg(requirement);
        run(&format!("pip install {requirement}"), pip, b.log, b.progress)?;
    }
    Ok(())
}

/// True when `python -m pip` exists and is 22.3 or newer (the first with `--python`).
fn has_pip_python_option(python: &Path) -> bool {
    let Ok(out) = Command::new(python)
        .args(["-m", "pip", "--version", "--disable-pip-version-check"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && text.strip_prefix("pip ").is_some_and(pip_has_python_option)
}

/// `23.2.1 from ...` -> true; `22.2.2 ...` -> false.
fn pip_has_python_option(version_line: &str) -> bool {
    let version = version_line.split_whitespace().next().unwrap_or("");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (22, 3)
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

#[cfg(test)]
mod tests {
    use super::pip_has_python_option;

    #[test]
    fn pip_python_option_from_22_3() {
        for (line, want) in [
            ("23.2.1 from /x (python 3.11)", true),
            ("22.3 from /x", true),
            ("22.2.2 from /x", false),
            ("", false),
        ] {
            assert_eq!(pip_has_python_option(line), want, "{line}");
        }
    }
}
