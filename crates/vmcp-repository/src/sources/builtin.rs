//! The built-in catalog: well-known MCP servers compiled into the binary (`catalog/builtin.json`,
//! in the HTTP index format with inline entries), so search works offline on first run.

use std::sync::OnceLock;

use super::{RepoConfig, SourceKind, http_index};
use crate::package::Package;

/// The reserved repository name of the catalog.
pub const BUILTIN: &str = "builtin";

const CATALOG: &str = include_str!("../../catalog/builtin.json");

pub(super) fn config() -> RepoConfig {
    RepoConfig {
        name: BUILTIN.into(),
        url: "builtin:".into(),
        kind: SourceKind::Builtin,
        enabled: true,
        allow_insecure: false,
    }
}

/// The catalog's packages, parsed once. A bad entry is a bug caught by the unit test below.
pub fn builtin_packages() -> &'static [Package] {
    static PACKAGES: OnceLock<Vec<Package>> = OnceLock::new();
    PACKAGES.get_or_init(|| {
        let Ok((entries, _errors)) = http_index::parse_index(CATALOG) else { return Vec::new() };
        entries
            .into_iter()
            .filter_map(|e| match e {
                http_index::IndexEntry::Inline(p) => Some(Package { repository: BUILTIN.into(), ..*p }),
                http_index::IndexEntry::Ref { .. } => None,
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_valid_and_covers_the_well_known_servers() {
        let (entries, errors) = http_index::parse_index(CATALOG).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(entries.len(), builtin_packages().len());
        for name in
            ["filesystem", "git", "time", "fetch", "memory", "everything", "sqlite", "sequential-thinking"]
        {
            assert!(builtin_packages().iter().any(|p| p.name() == name), "{name} missing");
        }
        let mut names: Vec<_> = builtin_packages().iter().map(Package::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), builtin_packages().len(), "duplicate names");
    }
}
