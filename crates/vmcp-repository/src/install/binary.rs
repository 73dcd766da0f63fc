//! Binary downloads: the file for this version, OS and architecture, streamed to `bin/NAME`,
//! verified against its sha256 before it is made executable, launched as `DIR/bin/NAME`.

use super::{Build, Built};
use crate::error::{IoContext, RepoError, Result};
use crate::install_spec::{BinaryMethod, Download};
use crate::lockfile::Launch;

/// Largest binary accepted.
const MAX_BINARY: u64 = 512 * 1024 * 1024;

pub(super) fn install(m: &BinaryMethod, b: &Build<'_>) -> Result<Built> {
    let download = pick(&m.downloads, b.version)?;
    let bin_dir = b.staging.join("bin");
    std::fs::create_dir_all(&bin_dir).at(&bin_dir)?;
    let part = bin_dir.join(format!("{}.part", m.bin));
    let actual = b.net.download(&download.url, &part, MAX_BINARY, b.progress)?;
    if !actual.eq_ignore_ascii_case(&download.sha256) {
        let _ = std::fs::remove_file(&part);
        return Err(RepoError::Checksum {
            what: download.url.clone(),
            expected: download.sha256.to_lowercase(),
            actual,
        });
    }
    let target = bin_dir.join(&m.bin);
    std::fs::rename(&part, &target).at(&target)?;
    make_executable(&target)?;
    let command = b.final_dir.join("bin").join(&m.bin).to_string_lossy().into_owned();
    Ok(Built {
        launch: Launch { transport: "stdio".into(), command: Some(command), args: b.args.clone(), url: None },
        checksum: Some(format!("sha256:{actual}")),
    })
}

/// The download for `version` on this OS and architecture.
fn pick<'a>(downloads: &'a [Download], version: &str) -> Result<&'a Download> {
    let here = |d: &&Download| {
        d.version == version
            && d.os.as_deref().is_none_or(|os| os == std::env::consts::OS)
            && d.arch.as_deref().is_none_or(|a| a == std::env::consts::ARCH)
    };
    downloads.iter().find(here).ok_or_else(|| {
        RepoError::usage(format!(
            "no download of version {version} for {}-{}; pick another version or --method",
            std::env::consts::OS,
            std::env::consts::ARCH
        ))
    })
}

fn make_executable(path: &std::path::Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).at(path)?;
    }
    Ok(())
}
