//! The audit log, `logs/audit.log`: one JSON object per line for every denied request, every
//! failed authentication and every change to personas or keys.
//!
//! Each line is written with a single `write` on a file opened with `O_APPEND`, so lines from
//! concurrent writers (the gateway and CLI processes) never interleave.
//! Invariant: no secret is ever written: a key appears only as its public id, a bearer token or
//! JWT never.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use vmcp_config::Home;

use crate::error::IoContext;
use crate::rules::Denied;
use crate::{PersonaError, timestamp};

/// What one audit line records. Every variant gets `time` (RFC 3339 UTC) and `event`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditEvent<'a> {
    /// A request refused by policy (3002 / 3003).
    Denied {
        /// Who called: `local`, a peer address, or `token:<id>` / `jwt:<sub>`.
        caller: &'a str,
        persona: &'a str,
        /// The JSON-RPC method, e.g. `tools/call`.
        method: &'a str,
        server: &'a str,
        /// The tool or prompt name, resource URI or template; empty for server-level methods.
        name: &'a str,
        decision: Decision,
        reason: Reason,
    },
    /// A request refused before any persona was known (401).
    AuthFailed {
        caller: &'a str,
        /// `missing`, `unknown_key`, `expired_key`, `unknown_persona`, `jwt_expired`, ... never
        /// the credential.
        reason: &'a str,
    },
    /// A persona or one of its keys changed.
    Changed {
        /// Who made the change: `cli` for the command line.
        who: &'a str,
        persona: &'a str,
        /// `create`, `delete`, `enable`, `disable`, `allow`, `deny`, `token_create`, ...
        action: &'a str,
        /// What changed, e.g. `files:read_* (tool)` or a key id; never a key.
        detail: &'a str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    ServerNotAllowed,
    NotPermitted,
}

impl From<Denied> for Reason {
    fn from(d: Denied) -> Self {
        match d {
            Denied::ServerNotAllowed => Reason::ServerNotAllowed,
            Denied::NotPermitted => Reason::NotPermitted,
        }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    #[serde(flatten)]
    event: &'a AuditEvent<'a>,
}

/// An open audit log. Cheap to share (`Arc<AuditLog>`); `record` takes `&self`.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
}

impl AuditLog {
    /// Open (creating `logs/` and the file, mode 0600) `logs/audit.log` of `home` for appending.
    pub fn open(home: &Home) -> Result<Self, PersonaError> {
        Self::open_at(&home.logs_dir().join("audit.log"))
    }

    pub fn open_at(path: &Path) -> Result<Self, PersonaError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).at(path)?;
        Ok(Self { path: path.to_owned(), file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one line for `event`, stamped with the current time.
    pub fn record(&self, event: &AuditEvent<'_>) -> Result<(), PersonaError> {
        let line = Line { time: timestamp::now(), event };
        let mut bytes = serde_json::to_vec(&line).map_err(|e| PersonaError::io(&self.path, e.into()))?;
        bytes.push(b'\n');
        // One `write` call: with O_APPEND the kernel places the whole buffer at the end at once.
        let written = (&self.file).write(&bytes).at(&self.path)?;
        if written != bytes.len() {
            return Err(PersonaError::io(&self.path, std::io::Error::other("short write to the audit log")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_and_carry_the_fields() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&Home::at(dir.path())).unwrap();
        log.record(&AuditEvent::Denied {
            caller: "127.0.0.1:5000",
            persona: "limited",
            method: "tools/call",
            server: "server2",
            name: "tool2",
            decision: Decision::Deny,
            reason: Denied::ServerNotAllowed.into(),
        })
        .unwrap();
        log.record(&AuditEvent::AuthFailed { caller: "127.0.0.1:5001", reason: "unknown_key" }).unwrap();
        log.record(&AuditEvent::Changed {
            who: "cli",
            persona: "limited",
            action: "enable",
            detail: "server1",
        })
        .unwrap();
        let text = std::fs::read_to_string(dir.path().join("logs/audit.log")).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["event"], "denied");
        assert_eq!(lines[0]["reason"], "server_not_allowed");
        assert_eq!(lines[0]["decision"], "deny");
        assert_eq!(lines[0]["server"], "server2");
        assert_eq!(lines[1]["event"], "auth_failed");
        assert_eq!(lines[2]["event"], "changed");
        assert_eq!(lines[2]["who"], "cli");
        for l in &lines {
            assert!(l["time"].as_str().unwrap().ends_with('Z'));
        }
    }

    #[test]
    fn concurrent_writers_never_interleave_lines() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let detail = "x".repeat(3000);
        std::thread::scope(|s| {
            for t in 0..4 {
                let (home, detail) = (&home, &detail);
                s.spawn(move || {
                    // Each thread opens its own file description, as separate processes would.
                    let log = AuditLog::open(home).unwrap();
                    let who = format!("writer{t}");
                    for _ in 0..50 {
                        log.record(&AuditEvent::Changed { who: &who, persona: "p", action: "a", detail })
                            .unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(dir.path().join("logs/audit.log")).unwrap();
        assert_eq!(text.lines().count(), 200);
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["detail"].as_str().unwrap().len(), 3000);
        }
    }
}
