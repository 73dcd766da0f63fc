//! cargo installs: `cargo install --root DIR --version =VERSION --locked CRATE`, launched as
//! `DIR/bin/BIN`.

use std::process::Command;

use super::process::{run, which};
use super::{Build, Built};
use crate::error::{RepoError, Result};
use crate::install_spec::CargoMethod;
use crate::lockfile::Launch;

pub(super) fn install(m: &CargoMethod, b: &Build<'_>) -> Result<Built> {
    let cargo = which("cargo")
        .ok_or_else(|| RepoError::usage("`cargo` is not on PATH; install Rust to use cargo packages"))?;
    let mut cmd = Command::new(cargo);
    cmd.arg("install").arg("--root").arg(b.staging);
    cmd.args(["--locked", "--quiet", "--version"]).arg(format!("={}", b.upstream_version));
    if let Some(bin) = &m.bin {
        cmd.args(["--bin", bin]);
    }
    cmd.arg(&m.krate);
    run(&format!("cargo install {}@{}", m.krate, b.upstream_version), cmd, b.log, b.progress)?;
    let bin = m.bin.clone().unwrap_or_else(|| m.krate.clone());
    if !b.staging.join("bin").join(&bin).is_file() {
        return Err(RepoError::Install {
            step: "cargo install".into(),
            message: format!("crate {} installed no binary `{bin}`", m.krate),
            log: Some(b.log.to_owned()),
        });
    }
    let command = b.final_dir.join("bin").join(&bin).to_string_lossy().into_owned();
    Ok(Built {
        launch: Launch { transport: "stdio".into(), command: Some(command), args: b.args.clone(), url: None },
        checksum: None,
    })
}
