//! Local directories (and git checkouts): every directory holding a `MANIFEST.md` is a package.
//!
//! Invariant: the walk never follows symlinks and never leaves the root, so a repository cannot
//! point the scan at files outside itself.

use std::path::Path;

use super::{Fetch, PackageError, RepoConfig, SyncState, dedupe};
use crate::error::{RepoError, Result};
use crate::package::Package;

/// Deepest directory level searched for packages below the root.
const MAX_DEPTH: usize = 4;

pub(super) fn fetch(cfg: &RepoConfig) -> Result<Fetch> {
    let root = Path::new(&cfg.url);
    if !root.is_dir() {
        return Err(RepoError::source(&cfg.name, format!("{} is not a directory", root.display())));
    }
    let (packages, errors) = scan(root);
    Ok(Fetch { packages, errors, state: SyncState::default() })
}

/// All packages below `root`, plus the ones that failed to parse.
pub(super) fn scan(root: &Path) -> (Vec<Package>, Vec<PackageError>) {
    let mut packages = Vec::new();
    let mut errors = Vec::new();
    walk(root, root, 0, &mut packages, &mut errors);
    packages.sort_by(|a, b| a.name().cmp(b.name()));
    let packages = dedupe(packages, &mut errors);
    (packages, errors)
}

fn walk(root: &Path, dir: &Path, depth: usize, packages: &mut Vec<Package>, errors: &mut Vec<PackageError>) {
    if dir.join("MANIFEST.md").is_file() {
        let rel = dir.strip_prefix(root).unwrap_or(dir).display().to_string();
        match Package::from_dir(dir) {
            Ok(p) => packages.push(p),
            Err(e) => errors.push(PackageError {
                package: if rel.is_empty() { ".".into() } else { rel },
                message: e.to_string(),
            }),
        }
        return;
    }
    if depth >= MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut subdirs: Vec<_> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && name != "node_modules"
        })
        .map(|e| e.path())
        .collect();
    subdirs.sort();
    for sub in subdirs {
        walk(root, &sub, depth + 1, packages, errors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pkg(dir: &Path, name: &str, manifest_extra: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("MANIFEST.md"),
            format!("---\nname: {name}\nversion: 1.0.0\ndescription: test {name}\n{manifest_extra}---\n"),
        )
        .unwrap();
        std::fs::write(dir.join("install.json"), r#"{"methods":[{"type":"npm","package":"x"}]}"#).unwrap();
    }

    #[test]
    fn finds_nested_packages_and_skips_bad_ones() {
        let root = tempfile::tempdir().unwrap();
        write_pkg(&root.path().join("a"), "a", "");
        write_pkg(&root.path().join("group/b"), "b", "");
        write_pkg(&root.path().join("bad"), "../evil", "");
        write_pkg(&root.path().join("dup"), "a", "");
        write_pkg(&root.path().join(".hidden/c"), "c", "");
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.path().join("a"), root.path().join("link")).unwrap();
        let (pkgs, errs) = scan(root.path());
        let names: Vec<_> = pkgs.iter().map(Package::name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs.iter().any(|e| e.package == "bad"));
    }
}
