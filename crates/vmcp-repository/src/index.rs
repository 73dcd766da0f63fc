//! The merged index: every enabled repository's synced packages plus the built-in catalog, in
//! priority order, with lower-cased search fields precomputed.

use vmcp_config::Home;

use crate::error::{RepoError, Result};
use crate::package::Package;
use crate::sources::{self, Repositories, SourceKind};

/// Lower-cased fields for search, one per package.
#[derive(Debug, Clone)]
pub(crate) struct SearchDoc {
    pub name: String,
    pub short: String,
    /// Name split on `-`, `_`, `.`, `/`, `@`.
    pub words: Vec<String>,
    pub tags: Vec<String>,
    pub description: String,
    /// Short name, name words and tags with their character masks, for the typo pass.
    pub fuzzy: Vec<(String, u64)>,
    /// Transports of the newest release.
    pub transports: Vec<String>,
    /// Position of the package's repository in priority order.
    pub priority: usize,
}

/// All known packages.
#[derive(Debug, Clone, Default)]
pub struct Index {
    packages: Vec<Package>,
    pub(crate) docs: Vec<SearchDoc>,
    /// Repositories that could not be read (not yet synced, corrupt cache).
    pub warnings: Vec<String>,
}

impl Index {
    /// Load the built-in catalog and every enabled repository's cache.
    pub fn load(home: &Home) -> Result<Self> {
        let repos = Repositories::load(home)?;
        let mut packages = Vec::new();
        let mut warnings = Vec::new();
        for cfg in repos.with_builtin().into_iter().filter(|r| r.enabled) {
            if cfg.kind == SourceKind::Builtin {
                packages.extend(sources::builtin_packages().iter().cloned());
                continue;
            }
            match sources::load_cached(home, &cfg.name) {
                Ok(Some(cached)) => packages.extend(
                    cached.packages.into_iter().map(|p| Package { repository: cfg.name.clone(), ..p }),
                ),
                Ok(None) => warnings.push(format!(
                    "repository `{}` was never synced; run `vmcp repo sync {}`",
                    cfg.name, cfg.name
                )),
                Err(e) => warnings.push(e.to_string()),
            }
        }
        let mut index = Self::from_packages(packages);
        index.warnings = warnings;
        Ok(index)
    }

    /// Build from packages already in priority order (repository field set).
    pub fn from_packages(packages: Vec<Package>) -> Self {
        let mut order: Vec<String> = Vec::new();
        let docs = packages
            .iter()
            .map(|p| {
                let priority = match order.iter().position(|r| *r == p.repository) {
                    Some(i) => i,
                    None => {
                        order.push(p.repository.clone());
                        order.len() - 1
                    }
                };
                doc_for(p, priority)
            })
            .collect();
        Self { packages, docs, warnings: Vec::new() }
    }

    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    /// The package called `name` (in `repo` if given, else the highest-priority one); failing
    /// that, the one whose npm/PyPI package or crate is `name`.
    pub fn find(&self, name: &str, repo: Option<&str>) -> Result<&Package> {
        let in_repo = |p: &&Package| repo.is_none_or(|r| p.repository == r);
        if let Some(p) = self.packages.iter().filter(in_repo).find(|p| p.name() == name) {
            return Ok(p);
        }
        let by_id: Vec<&Package> =
            self.packages.iter().filter(in_repo).filter(|p| p.has_identifier(name)).collect();
        if let Some(first) = by_id.first() {
            return Ok(first);
        }
        Err(self.not_found(name, repo))
    }

    fn not_found(&self, name: &str, repo: Option<&str>) -> RepoError {
        let hits = self.search(&crate::search::SearchQuery {
            text: name.to_owned(),
            limit: 3,
            ..Default::default()
        });
        let mut msg = match repo {
            Some(r) => format!("no package `{name}` in repository `{r}`"),
            None => format!("no package `{name}` in any repository"),
        };
        if !hits.is_empty() {
            let names: Vec<_> = hits.iter().map(|h| format!("`{}`", h.package.name())).collect();
            msg.push_str(&format!("; did you mean {}?", names.join(", ")));
        } else {
            msg.push_str("; try `vmcp search` or `vmcp repo sync`");
        }
        RepoError::usage(msg)
    }
}

fn doc_for(p: &Package, priority: usize) -> SearchDoc {
    let name = p.name().to_ascii_lowercase();
    let short = name.rsplit('/').next().unwrap_or(&name).to_owned();
    let words: Vec<String> =
        name.split(['-', '_', '.', '/', '@']).filter(|w| !w.is_empty()).map(str::to_owned).collect();
    let tags: Vec<String> = p.manifest.tags.iter().map(|t| t.to_lowercase()).collect();
    let mut fuzzy: Vec<(String, u64)> = Vec::new();
    for w in std::iter::once(&short).chain(&words).chain(&tags) {
        if !fuzzy.iter().any(|(f, _)| f == w) {
            fuzzy.push((w.clone(), char_mask(w)));
        }
    }
    SearchDoc {
        short,
        words,
        tags,
        fuzzy,
        description: format!("{} {}", p.manifest.title.as_deref().unwrap_or(""), p.manifest.description)
            .to_lowercase(),
        name,
        transports: p.transports().into_iter().map(str::to_owned).collect(),
        priority,
    }
}

/// One bit per character class (code point modulo 64): which characters a word contains.
pub(crate) fn char_mask(s: &str) -> u64 {
    s.chars().fold(0, |m, c| m | 1u64 << (c as u32 % 64))
}
