//! A package as the index holds it: the newest manifest plus one release per installable
//! version, each with its install spec; and how a package directory is read.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{IoContext, RepoError, Result};
use crate::install_spec::{InstallSpec, Method};
use crate::manifest::Manifest;
use crate::versions;

/// Largest `MANIFEST.md` or `install.json` accepted.
pub const MAX_PACKAGE_FILE: u64 = 256 * 1024;

/// One package from one repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub manifest: Manifest,
    /// The repository it came from (filled in by the index).
    #[serde(default)]
    pub repository: String,
    /// Newest first; never empty.
    pub releases: Vec<Release>,
    /// `sha256:` of the source files, so a sync can skip unchanged packages.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
}

/// One installable version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub version: String,
    pub install: InstallSpec,
}

impl Package {
    /// Combine a manifest and an install spec: one release per listed version (default: the
    /// manifest's), newest first, each validated.
    pub fn from_parts(manifest: Manifest, mut spec: InstallSpec) -> Result<Self> {
        manifest.validate()?;
        spec.validate(&manifest.name)?;
        let mut list = std::mem::take(&mut spec.versions);
        if list.is_empty() {
            list.push(manifest.version.clone());
        }
        versions::sort_newest_first(&mut list);
        let releases = list.into_iter().map(|version| Release { version, install: spec.clone() }).collect();
        Ok(Self { manifest, repository: String::new(), releases, digest: String::new() })
    }

    /// Parse the two files of a package directory.
    pub fn from_texts(manifest_md: &str, install_json: &str) -> Result<Self> {
        let manifest = Manifest::parse(manifest_md)?;
        let spec = InstallSpec::parse(install_json).map_err(|e| match e {
            RepoError::InvalidPackage { message, .. } => RepoError::invalid(&manifest.name, message),
            other => other,
        })?;
        let mut pkg = Self::from_parts(manifest, spec)?;
        pkg.digest = digest_of(manifest_md.as_bytes(), install_json.as_bytes());
        Ok(pkg)
    }

    /// Read `dir/MANIFEST.md` and `dir/install.json`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let manifest = read_limited(&dir.join("MANIFEST.md"))?;
        let install = read_limited(&dir.join("install.json"))?;
        Self::from_texts(&manifest, &install)
    }

    /// Re-check everything (used for inline and cached entries).
    pub fn validate(&self) -> Result<()> {
        self.manifest.validate()?;
        if self.releases.is_empty() {
            return Err(RepoError::invalid(&self.manifest.name, "no releases"));
        }
        for r in &self.releases {
            crate::name::check_version(&r.version)
                .map_err(|e| RepoError::invalid(&self.manifest.name, e.to_string()))?;
            r.install.validate(&self.manifest.name)?;
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The newest release.
    pub fn latest(&self) -> &Release {
        &self.releases[0]
    }

    pub fn versions(&self) -> Vec<String> {
        self.releases.iter().map(|r| r.version.clone()).collect()
    }

    pub fn release(&self, version: &str) -> Option<&Release> {
        self.releases.iter().find(|r| r.version == version)
    }

    /// Transports offered by the newest release (`stdio`, `http`, `sse`).
    pub fn transports(&self) -> Vec<&str> {
        let mut t: Vec<&str> = self.latest().install.methods.iter().map(Method::transport).collect();
        t.sort_unstable();
        t.dedup();
        t
    }

    /// True when `id` names one of the package's upstream identifiers (npm/PyPI package, crate).
    pub fn has_identifier(&self, id: &str) -> bool {
        self.latest().install.methods.iter().any(|m| !matches!(m, Method::Remote(_)) && m.identifier() == id)
    }
}

/// `sha256:<hex>` over both files, separated so that moving bytes between them changes it.
pub fn digest_of(manifest: &[u8], install: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(manifest);
    h.update([0u8]);
    h.update(install);
    format!("sha256:{}", hex(&h.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_limited(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).at(path)?;
    if meta.len() > MAX_PACKAGE_FILE {
        return Err(RepoError::invalid(path.display().to_string(), "file larger than 256 KiB"));
    }
    std::fs::read_to_string(path).at(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_versions_into_releases_newest_first() {
        let pkg = Package::from_texts(
            "---\nname: x\nversion: 1.1.0\ndescription: d\n---\n",
            r#"{"versions":["1.0.0","1.1.0"],"methods":[{"type":"npm","package":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(pkg.versions(), ["1.1.0", "1.0.0"]);
        assert!(pkg.digest.starts_with("sha256:"));
        assert!(pkg.has_identifier("x") && !pkg.has_identifier("y"));
        assert_eq!(pkg.transports(), ["stdio"]);
    }

    #[test]
    fn install_errors_name_the_package() {
        let err =
            Package::from_texts("---\nname: x\nversion: 1.0.0\ndescription: d\n---\n", "{").unwrap_err();
        assert!(err.to_string().contains("invalid package x"), "{err}");
    }
}
