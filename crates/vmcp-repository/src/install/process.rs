//! Running install tools (npm, pip, uv, cargo) without a shell: argv only, stdin closed,
//! output captured to the install log, and the log's tail in the error when a step fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{IoContext, RepoError, Result};
use crate::progress::Progress;

/// Find an executable on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// Run one step, appending its output to `log`.
pub fn run(step: &str, mut cmd: Command, log: &Path, progress: &Progress) -> Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(log).at(log)?;
    let _ = writeln!(file, "$ {}", describe(&cmd));
    let out = file.try_clone().at(log)?;
    let err = file.try_clone().at(log)?;
    let spinner = progress.spinner(step);
    let status =
        cmd.stdin(Stdio::null()).stdout(Stdio::from(out)).stderr(Stdio::from(err)).status().map_err(|e| {
            RepoError::Install { step: step.to_owned(), message: format!("cannot start: {e}"), log: None }
        })?;
    drop(spinner);
    if status.success() {
        return Ok(());
    }
    let tail = tail_of(log, 12);
    Err(RepoError::Install {
        step: step.to_owned(),
        message: format!(
            "exited with {status}{}",
            if tail.is_empty() { String::new() } else { format!(":\n{tail}") }
        ),
        log: Some(log.to_owned()),
    })
}

/// The program and arguments, for the log (never environment values).
fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn tail_of(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_reports_failure_with_the_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("install.log");
        let mut ok = Command::new("sh");
        ok.args(["-c", "echo hello"]);
        run("say hello", ok, &log, &Progress::silent()).unwrap();
        let mut bad = Command::new("sh");
        bad.args(["-c", "echo boom >&2; exit 3"]);
        let err = run("explode", bad, &log, &Progress::silent()).unwrap_err().to_string();
        assert!(err.contains("explode failed") && err.contains("boom"), "{err}");
        assert!(std::fs::read_to_string(&log).unwrap().contains("hello"));
        assert!(which("sh").is_some() && which("no-such-tool-xyz").is_none());
    }
}
