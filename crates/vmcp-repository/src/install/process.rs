//! Running install tools (npm, pip, uv, cargo) without a shell: argv only, stdin closed,
//! output captured to the install log, the log's tail in the error when a step fails, and the
//! tool killed when vmcp dies.

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
    die_with_parent(&mut cmd);
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

/// A `kill -9` of vmcp takes the install tool with it (`PR_SET_PDEATHSIG`), so an interrupted
/// install leaves no npm or pip writing into a staging directory the next run deletes.
fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // vmcp may have died between fork and prctl.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
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
