//! The one error type of personas: what went wrong, naming the persona, file or token.

use std::path::PathBuf;

/// A persona operation that failed. `is_usage()` tells the operator's mistakes (exit 64) from
/// faults of the machine (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum PersonaError {
    #[error("invalid persona name `{name}`: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("no persona named `{name}`{}", hint(suggestion.as_deref()))]
    NotFound { name: String, suggestion: Option<String> },
    #[error("persona `{0}` already exists")]
    AlreadyExists(String),
    #[error("invalid server id `{0}`: use letters, digits, `_` and `-` (at most 64)")]
    InvalidServerId(String),
    #[error("invalid pattern `{pattern}`: {reason}")]
    InvalidPattern { pattern: String, reason: &'static str },
    #[error("persona `{persona}` has no token `{id}` (see `vmcp persona {persona} token list`)")]
    TokenNotFound { persona: String, id: String },
    #[error("{0}")]
    Usage(String),
    #[error("{}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn hint(suggestion: Option<&str>) -> String {
    match suggestion {
        Some(s) => format!("; did you mean `{s}`?"),
        None => " (see `vmcp persona list`)".to_owned(),
    }
}

impl PersonaError {
    /// The operator's input is at fault (exit 64), not the machine (exit 2).
    pub fn is_usage(&self) -> bool {
        !matches!(self, PersonaError::Io { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PersonaError::Io { path: path.into(), source }
    }
}

/// Attach a path to an IO result.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T, PersonaError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T, PersonaError> {
        self.map_err(|e| PersonaError::io(path, e))
    }
}
