//! The note store: one JSON file (`notes.json`) in a directory, loaded at start and replaced
//! atomically (temp file, fsync, rename) on every change.
//!
//! Invariant: the file on disk is always a complete store; a change that fails to save leaves
//! both the file and the in-memory store as they were.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::builtin::civil::{self, Instant, Offset};

/// Environment variable naming the notes directory.
pub const NOTES_DIR_ENV: &str = "VMCP_NOTES_DIR";
const FILE_NAME: &str = "notes.json";

/// One note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub text: String,
    pub created: String,
    pub updated: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct NotesFile {
    version: u32,
    notes: BTreeMap<String, Note>,
}

/// Notes by name, in name order.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    notes: BTreeMap<String, Note>,
}

impl Store {
    /// The store in `$VMCP_NOTES_DIR`, else `./notes`.
    pub fn from_env() -> std::io::Result<Self> {
        let dir = std::env::var_os(NOTES_DIR_ENV).map_or_else(|| PathBuf::from("notes"), PathBuf::from);
        Self::open(dir)
    }

    /// Load the store in `dir` (empty if there is no file yet; the directory is made on first save).
    pub fn open(dir: PathBuf) -> std::io::Result<Self> {
        let path = dir.join(FILE_NAME);
        let notes = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: NotesFile = serde_json::from_slice(&bytes).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{} is not a notes file ({e}); fix it or move it away", path.display()),
                    )
                })?;
                file.notes
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Self { dir, notes })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn names(&self) -> Vec<String> {
        self.notes.keys().cloned().collect()
    }

    pub fn get(&self, name: &str) -> Option<&Note> {
        self.notes.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Note)> {
        self.notes.iter()
    }

    /// Add or replace a note; `true` if it is new.
    pub fn put(&mut self, name: &str, text: &str) -> std::io::Result<bool> {
        let now = civil::format(Instant { nanos: 0, ..Instant::now() }, Offset::UTC);
        let mut next = self.notes.clone();
        let created = match next.get_mut(name) {
            Some(note) => {
                note.text = text.to_owned();
                note.updated = now;
                false
            }
            None => {
                next.insert(
                    name.to_owned(),
                    Note { text: text.to_owned(), created: now.clone(), updated: now },
                );
                true
            }
        };
        self.commit(next)?;
        Ok(created)
    }

    /// Delete a note; `false` if there was none.
    pub fn delete(&mut self, name: &str) -> std::io::Result<bool> {
        if !self.notes.contains_key(name) {
            return Ok(false);
        }
        let mut next = self.notes.clone();
        next.remove(name);
        self.commit(next)?;
        Ok(true)
    }

    fn commit(&mut self, notes: BTreeMap<String, Note>) -> std::io::Result<()> {
        let file = NotesFile { version: 1, notes };
        let json = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
        write_atomically(&self.dir, FILE_NAME, &json)?;
        self.notes = file.notes;
        Ok(())
    }
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Note names: 1-64 of `A-Z a-z 0-9 _ - .`, so that `note://NAME` needs no escaping.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(format!("bad note name `{name}`: use 1-64 letters, digits, `_`, `-` or `.`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vmcp-notes-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn persists_across_reopen() {
        let dir = temp_dir("persist");
        let mut s = Store::open(dir.join("sub")).unwrap();
        assert!(s.put("a", "one").unwrap());
        assert!(!s.put("a", "two").unwrap());
        assert!(s.put("b", "three").unwrap());
        assert!(s.delete("b").unwrap());
        assert!(!s.delete("b").unwrap());
        let again = Store::open(dir.join("sub")).unwrap();
        assert_eq!(again.names(), ["a"]);
        assert_eq!(again.get("a").map(|n| n.text.as_str()), Some("two"));
        let leftovers: Vec<_> =
            std::fs::read_dir(dir.join("sub")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, [std::ffi::OsString::from("notes.json")]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_a_corrupt_file() {
        let dir = temp_dir("corrupt");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("notes.json"), "{oops").unwrap();
        let err = Store::open(dir.clone()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn names() {
        for (name, ok) in [
            ("groceries", true),
            ("a.b-c_1", true),
            ("", false),
            ("a/b", false),
            ("..", false),
            ("sp ace", false),
        ] {
            assert_eq!(check_name(name).is_ok(), ok, "{name:?}");
        }
        assert!(check_name(&"x".repeat(65)).is_err());
    }
}
