//! `config/secrets.env`: credentials for upstreams, kept out of `servers.json`.
//!
//! One `NAME=value` per line (`#` comments, blank lines, an optional `export ` prefix and
//! matching quotes around the value are allowed). An upstream's `headers` (and a stdio server's
//! `environment`) refer to them as `${NAME}`; a variable of the gateway's environment with the
//! same name wins. The file must be private to its owner (mode 0600): vMCP refuses a file that
//! others can read, as ssh does.
//!
//! Invariants: a value never appears in an error or in `Debug` output; the file is read once,
//! when the gateway starts (`install`), and never written by vMCP.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use crate::ConfigError;

/// Named secrets read from the secrets file.
#[derive(Clone, Default, PartialEq)]
pub struct Secrets {
    values: BTreeMap<String, String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets").field("names", &self.values.keys().collect::<Vec<_>>()).finish()
    }
}

impl Secrets {
    /// Read `path`; a missing file means no secrets.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(ConfigError::new(path, None, format!("cannot read: {e}"))),
        };
        check_private(path)?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut values = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let place = Some(format!("line {}", i + 1));
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((name, value)) = line.split_once('=') else {
                return Err(ConfigError::new(path, place, "expected NAME=value"));
            };
            let name = name.trim();
            if !valid_name(name) {
                return Err(ConfigError::new(
                    path,
                    place,
                    format!(
                        "`{name}` is not a variable name (letters, digits and `_`, not starting with a digit)"
                    ),
                ));
            }
            let value = unquote(value.trim());
            if values.insert(name.to_owned(), value.to_owned()).is_some() {
                return Err(ConfigError::new(path, place, format!("`{name}` is defined twice")));
            }
        }
        Ok(Self { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(q) && value.ends_with(q) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| ConfigError::new(path, None, format!("cannot read: {e}")))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(ConfigError::new(
            path,
            None,
            format!(
                "holds secrets but is accessible to other users (mode {:o}); run `chmod 600 {}`",
                mode & 0o777,
                path.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), ConfigError> {
    Ok(())
}

static INSTALLED: OnceLock<Secrets> = OnceLock::new();

/// Make `secrets` the ones `lookup` sees, for the life of the process (first call wins).
pub fn install(secrets: Secrets) {
    let _ = INSTALLED.set(secrets);
}

/// A `${NAME}` for upstream configuration: the gateway's environment, then the secrets file.
pub fn lookup(name: &str) -> Option<String> {
    std::env::var(name).ok().or_else(|| INSTALLED.get()?.get(name).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_values_comments_and_quotes() {
        let text =
            "# upstream tokens\n\nAPI_TOKEN=abc=def\nexport QUOTED = \"with spaces\"\nSINGLE='x'\n_EMPTY=\n";
        let s = Secrets::parse(Path::new("secrets.env"), text).unwrap();
        assert_eq!(s.get("API_TOKEN"), Some("abc=def"));
        assert_eq!(s.get("QUOTED"), Some("with spaces"));
        assert_eq!(s.get("SINGLE"), Some("x"));
        assert_eq!(s.get("_EMPTY"), Some(""));
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn errors_name_the_line_and_never_the_value() {
        let cases = [
            ("A=1\nno equals sign here\n", "line 2", "expected NAME=value"),
            ("1BAD=hunter2\n", "line 1", "not a variable name"),
            ("A=hunter2\nA=hunter3\n", "line 2", "defined twice"),
        ];
        for (text, place, msg) in cases {
            let e = Secrets::parse(Path::new("secrets.env"), text).unwrap_err();
            assert_eq!(e.place.as_deref(), Some(place), "{text}");
            assert!(e.message.contains(msg), "{text}: {}", e.message);
            assert!(!e.to_string().contains("hunter"), "a value leaked: {e}");
        }
        let s = Secrets::parse(Path::new("secrets.env"), "TOKEN=hunter2\n").unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_refused_and_a_missing_one_is_empty() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.env");
        assert!(Secrets::load(&path).unwrap().is_empty());
        std::fs::write(&path, "TOKEN=t\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Secrets::load(&path).unwrap_err();
        assert!(e.message.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Secrets::load(&path).unwrap().get("TOKEN"), Some("t"));
    }
}
