//! The repository's one error type: what went wrong, tagged by who can fix it.
//!
//! `Usage` errors are the operator's (bad name, unknown package, missing secret); `Source` errors
//! come from a repository or a package (malformed manifest, unreachable host, bad checksum);
//! `Local` errors are this machine's (IO, a failing package manager).

use std::path::PathBuf;

/// Everything the repository library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The operator asked for something invalid or unknown; the message suggests the fix.
    #[error("{0}")]
    Usage(String),
    /// A repository, its index or one of its packages is wrong or out of reach.
    #[error("{source_name}: {message}")]
    Source { source_name: String, message: String },
    /// A package's manifest or install.json does not validate.
    #[error("invalid package {package}: {message}")]
    InvalidPackage { package: String, message: String },
    /// A download did not match its declared sha256.
    #[error("checksum mismatch for {what}: expected sha256 {expected}, got {actual}")]
    Checksum { what: String, expected: String, actual: String },
    /// An install step (npm, pip, cargo, ...) failed; the log keeps its output.
    #[error("{step} failed: {message}{}", log.as_ref().map(|p| format!(" (log: {})", p.display())).unwrap_or_default())]
    Install { step: String, message: String, log: Option<PathBuf> },
    /// A network request failed.
    #[error("cannot fetch {url}: {message}")]
    Network { url: String, message: String },
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A vMCP config file (servers.json, repositories.json) is invalid.
    #[error(transparent)]
    Config(#[from] vmcp_config::ConfigError),
}

impl RepoError {
    pub fn usage(message: impl Into<String>) -> Self {
        RepoError::Usage(message.into())
    }

    pub fn source(name: impl Into<String>, message: impl Into<String>) -> Self {
        RepoError::Source { source_name: name.into(), message: message.into() }
    }

    pub fn invalid(package: impl Into<String>, message: impl Into<String>) -> Self {
        RepoError::InvalidPackage { package: package.into(), message: message.into() }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RepoError::Io { path: path.into(), source }
    }

    /// True when the operator's input or config files are at fault (the CLI exits 64 for these).
    pub fn is_usage(&self) -> bool {
        matches!(self, RepoError::Usage(_) | RepoError::Config(_))
    }
}

/// Shorthand used across the crate.
pub type Result<T, E = RepoError> = std::result::Result<T, E>;

/// Attach a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| RepoError::io(path, e))
    }
}

/// A file's text, or `None` when it does not exist.
pub(crate) fn read_if_exists(path: &std::path::Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RepoError::io(path, e)),
    }
}

/// A config file that is not valid JSON, named with its line and column.
pub(crate) fn json_config_error(path: &std::path::Path, e: &serde_json::Error) -> RepoError {
    vmcp_config::ConfigError::new(path, Some(format!("{}:{}", e.line(), e.column())), e.to_string()).into()
}
