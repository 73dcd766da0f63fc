//! The last line of defence against orphans.
//!
//! `PR_SET_PDEATHSIG` takes a stdio server down with a SIGKILLed gateway, but only the process
//! vMCP started: what a wrapper starts in turn (`npx` -> node, `uvx` -> python, `sh -c`) lives
//! on. So `vmcp start` also starts a small watcher (`vmcp reaper`, in its own process group)
//! that holds a pipe from the gateway. The gateway tells it each child's process group as it
//! starts (`+PGID`) and ends (`-PGID`); when the pipe closes, the gateway is gone, however it
//! died, and the watcher kills every group still listed (SIGTERM, then SIGKILL) and exits.
//!
//! Invariant: a group is listed only while vMCP's child leads it, so a reused pid is never hit.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

static WATCHER: OnceLock<Mutex<std::process::ChildStdin>> = OnceLock::new();

/// Start the watcher: `exe reaper`. Without it, only direct children are covered.
pub fn start(exe: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(exe)
        .arg("reaper")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()?;
    let stdin = child.stdin.take().expect("piped");
    // Not waited for: it outlives the gateway on purpose (a zombie only until the gateway exits).
    std::mem::forget(child);
    let _ = WATCHER.set(Mutex::new(stdin));
    Ok(())
}

fn tell(line: &str) {
    if let Some(w) = WATCHER.get() {
        let mut w = w.lock().unwrap_or_else(|p| p.into_inner());
        let _ = w.write_all(line.as_bytes());
    }
}

/// A child now leads process group `pgid`.
pub fn track(pgid: u32) {
    tell(&format!("+{pgid}\n"));
}

/// Group `pgid` is gone (vMCP killed what was left of it).
pub fn untrack(pgid: u32) {
    tell(&format!("-{pgid}\n"));
}

/// The watcher's side (`vmcp reaper`): follow the list until stdin closes, then kill it all.
pub fn run() {
    // SAFETY: ignoring terminal signals in a single-threaded process.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    let mut groups = BTreeSet::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (op, pgid) = line.split_at(1.min(line.len()));
        let Ok(pgid) = pgid.parse::<libc::pid_t>() else { continue };
        match op {
            "+" if pgid > 1 => groups.insert(pgid),
            "-" => groups.remove(&pgid),
            _ => false,
        };
    }
    if groups.is_empty() {
        return;
    }
    let signal_all = |signal| {
        for pgid in &groups {
            // SAFETY: kill(2) on a process group vMCP created and still listed.
            unsafe { libc::kill(-pgid, signal) };
        }
    };
    signal_all(libc::SIGTERM);
    std::thread::sleep(Duration::from_secs(1));
    signal_all(libc::SIGKILL);
}
