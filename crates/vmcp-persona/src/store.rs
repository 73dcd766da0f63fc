//! The persona store: one JSON file per persona in `config/personas/persona-<name>.json` (the
//! seed's layout).
//!
//! - Every write goes through `vmcp_config::write_atomic` (temporary file, fsync, rename), so a
//!   crash mid-write leaves the old file whole; leftover temporary files start with `.` and are
//!   never read.
//! - Every change is a read-modify-write under an exclusive advisory lock on
//!   `config/personas/.lock` (`fs4`), so concurrent `vmcp persona` processes lose no change.
//! - Readers (`get`, `list`, `snapshot`) take no lock: a rename is atomic.
//!
//! Invariant: nothing but this module writes the personas directory.

use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmcp_config::Home;

use crate::error::IoContext;
use crate::persona::{RawPersona, validate_name};
use crate::{Persona, PersonaError, Personas};

/// Access to the personas directory of one vMCP home.
#[derive(Debug, Clone)]
pub struct PersonaStore {
    dir: PathBuf,
}

impl PersonaStore {
    /// The store of `home` (`config/personas/`). Does no IO; the directory is created on the
    /// first change.
    pub fn open(home: &Home) -> Self {
        Self::at(home.personas_dir())
    }

    /// A store in any directory (tests).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of persona `name`.
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{FILE_PREFIX}{name}.json"))
    }

    /// Every persona, sorted by name. A file that does not load is an error naming it.
    pub fn list(&self) -> Result<Vec<Persona>, PersonaError> {
        self.names()?.iter().map(|n| self.get(n)).collect()
    }

    /// One persona; `NotFound` (with a suggestion) if there is no such file.
    pub fn get(&self, name: &str) -> Result<Persona, PersonaError> {
        validate_name(name)?;
        let path = self.path_of(name);
        match fs::read_to_string(&path) {
            Ok(text) => parse(&path, name, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(self.not_found(name)),
            Err(e) => Err(PersonaError::io(&path, e)),
        }
    }

    /// Create an empty persona (zero permissions).
    pub fn create(&self, name: &str, description: Option<String>) -> Result<Persona, PersonaError> {
        validate_name(name)?;
        let _lock = self.lock()?;
        // Refuse names that differ only in case: they share a file on case-insensitive disks.
        if let Some(existing) = self.names()?.into_iter().find(|n| n.eq_ignore_ascii_case(name)) {
            return Err(PersonaError::AlreadyExists(existing));
        }
        let persona = Persona::from_raw(RawPersona::new(name, description))?;
        self.write(persona.raw())?;
        Ok(persona)
    }

    /// Delete a persona and its keys; returns what was deleted.
    pub fn delete(&self, name: &str) -> Result<Persona, PersonaError> {
        let _lock = self.lock()?;
        let persona = self.get(name)?;
        let path = self.path_of(name);
        fs::remove_file(&path).at(&path)?;
        sync_dir(&self.dir);
        Ok(persona)
    }

    /// Change a persona under the lock: read it, let `change` edit it, validate, write it back
    /// atomically (only if something changed). `change`'s value is returned with the result.
    pub fn update<T>(
        &self,
        name: &str,
        change: impl FnOnce(&mut RawPersona) -> Result<T, PersonaError>,
    ) -> Result<(Persona, T), PersonaError> {
        let _lock = self.lock()?;
        let current = self.get(name)?;
        let mut raw = current.raw().clone();
        let value = change(&mut raw)?;
        if raw == *current.raw() {
            return Ok((current, value));
        }
        raw.name = current.name().to_owned();
        raw.modified = crate::timestamp::now();
        let updated = Persona::from_raw(raw)?;
        self.write(updated.raw())?;
        Ok((updated, value))
    }

    /// Every persona that loads, and the key index, as one immutable snapshot. Files that do
    /// not load are left out and listed in [`Personas::problems`]. A missing directory is an
    /// empty snapshot.
    pub fn snapshot(&self) -> Result<Arc<Personas>, PersonaError> {
        let fingerprint = self.fingerprint();
        let (names, strays) = self.scan()?;
        let mut personas = Vec::new();
        let mut problems = Vec::new();
        for name in names {
            match self.get(&name) {
                Ok(p) => personas.push(p),
                Err(e) => problems.push(e),
            }
        }
        for path in strays {
            problems.push(PersonaError::Corrupt {
                path,
                message: "not a valid persona file name (expected `persona-<name>.json`)".into(),
            });
        }
        Ok(Arc::new(Personas::build(personas, problems, fingerprint)))
    }

    /// A cheap summary of the directory (names, sizes, modification times and inodes of the
    /// persona files): it changes whenever a persona or key changes. Poll it and reload with
    /// [`PersonaStore::snapshot`] when it differs from [`Personas::fingerprint`].
    pub fn fingerprint(&self) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        let Ok(entries) = fs::read_dir(&self.dir) else { return 0 };
        let mut files: Vec<(String, fs::Metadata)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.metadata().ok()?)))
            .filter(|(n, _)| is_persona_file_name(n))
            .collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, meta) in files {
            name.hash(&mut h);
            meta.len().hash(&mut h);
            meta.modified().ok().hash(&mut h);
            #[cfg(unix)]
            std::os::unix::fs::MetadataExt::ino(&meta).hash(&mut h);
        }
        // Never 0, so an empty or missing directory differs from "never read".
        h.finish() | 1
    }

    /// Names of the persona files, sorted.
    fn names(&self) -> Result<Vec<String>, PersonaError> {
        self.scan().map(|(names, _)| names)
    }

    /// One pass over the directory: the persona names (sorted), and the `persona-*.json` files
    /// whose name is not a valid persona name.
    fn scan(&self) -> Result<(Vec<String>, Vec<PathBuf>), PersonaError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
            Err(e) => return Err(PersonaError::io(&self.dir, e)),
        };
        let (mut names, mut strays) = (Vec::new(), Vec::new());
        for entry in entries {
            let entry = entry.at(&self.dir)?;
            let Ok(file) = entry.file_name().into_string() else { continue };
            if !is_persona_file_name(&file) {
                continue;
            }
            match persona_stem(&file).filter(|s| validate_name(s).is_ok()) {
                Some(stem) => names.push(stem.to_owned()),
                None => strays.push(entry.path()),
            }
        }
        names.sort();
        Ok((names, strays))
    }

    fn write(&self, raw: &RawPersona) -> Result<(), PersonaError> {
        let path = self.path_of(&raw.name);
        let mut text = serde_json::to_string_pretty(raw).map_err(|e| PersonaError::io(&path, e.into()))?;
        text.push('\n');
        vmcp_config::write_atomic(&path, text.as_bytes()).at(&path)
    }

    /// Take the store's exclusive lock (blocking), creating the directory (mode 0700) first.
    fn lock(&self) -> Result<DirLock, PersonaError> {
        if !self.dir.exists() {
            fs::create_dir_all(&self.dir).at(&self.dir)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700)).at(&self.dir)?;
            }
        }
        let path = self.dir.join(".lock");
        let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).at(&path)?;
        fs4::FileExt::lock(&file).at(&path)?;
        Ok(DirLock { _file: file })
    }

    fn not_found(&self, name: &str) -> PersonaError {
        let names = self.names().unwrap_or_default();
        let suggestion = closest(name, &names).map(str::to_owned);
        PersonaError::NotFound { name: name.to_owned(), suggestion }
    }
}

/// Held while a change is made; closing the file releases the lock.
struct DirLock {
    _file: File,
}

/// Persona files are `persona-<name>.json`, as in the seed.
const FILE_PREFIX: &str = "persona-";

/// A persona file, not a temporary file (`.<name>.tmp.*`), the lock, or anything else.
fn is_persona_file_name(file: &str) -> bool {
    file.starts_with(FILE_PREFIX) && file.ends_with(".json")
}

/// `persona-NAME.json` -> `NAME`.
fn persona_stem(file: &str) -> Option<&str> {
    file.strip_prefix(FILE_PREFIX)?.strip_suffix(".json")
}

fn parse(path: &Path, name: &str, text: &str) -> Result<Persona, PersonaError> {
    let corrupt = |message: String| PersonaError::Corrupt { path: path.to_owned(), message };
    let raw: RawPersona = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    if raw.name != name {
        return Err(corrupt(format!("the file names persona `{}`; expected `{name}`", raw.name)));
    }
    Persona::from_raw(raw).map_err(|e| corrupt(e.to_string()))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The candidate closest to `name` by edit distance, if close enough to be a typo.
fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

#[cfg(test)]
#[path = "store/tests.rs"]
mod tests;
