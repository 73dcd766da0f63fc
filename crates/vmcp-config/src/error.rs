//! The one error type of configuration: which file, where in it, and what is wrong.

use std::fmt;
use std::path::PathBuf;

/// A configuration problem a user can fix, naming the file and the place in it.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    /// `line:column` or a key path such as `servers[2].command`.
    pub place: Option<String>,
    pub message: String,
}

impl ConfigError {
    pub fn new(file: impl Into<PathBuf>, place: Option<String>, message: impl Into<String>) -> Self {
        Self { file: file.into(), place, message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.place {
            // `file:line:col: message`, the form editors and terminals link to.
            Some(place) if place.bytes().all(|b| b.is_ascii_digit() || b == b':') => {
                write!(f, "{}:{}: {}", self.file.display(), place, self.message)
            }
            Some(place) => write!(f, "{}: {}: {}", self.file.display(), place, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}
