//! Spawning and stopping a stdio server's process.
//!
//! Invariants:
//! - a child gets only its configured environment plus a minimal base (`BASE_ENV`), never the
//!   gateway's whole environment (no leaked secrets);
//! - a child dies with the gateway, even on SIGKILL (`PR_SET_PDEATHSIG`), and lives in its own
//!   process group so an orderly stop reaches its own children too; the `reaper` watcher takes
//!   that group down when the gateway dies without an orderly stop;
//! - orderly stop: close stdin, then SIGTERM to the group, then SIGKILL after the grace period.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// Variables a child inherits from the gateway when set: enough to find programs and a home.
pub const BASE_ENV: &[&str] =
    &["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM"];

/// What to run.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    pub command: String,
    pub args: Vec<String>,
    pub cwd: Option<std::path::PathBuf>,
    /// Already expanded.
    pub env: BTreeMap<String, String>,
    pub limits: Limits,
}

/// Resource limits applied to the child (`setrlimit` before exec), from the server's
/// `resilience.limits`: `{"cpu_seconds": 60, "memory_mb": 512, "open_files": 256}`.
///
/// Memory is `RLIMIT_DATA` (heap and private writable mappings): it stops a runaway allocator
/// without breaking runtimes that reserve large virtual ranges (JITs), as `RLIMIT_AS` would.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub cpu_seconds: Option<u64>,
    pub memory_mb: Option<u64>,
    pub open_files: Option<u64>,
}

impl Limits {
    /// Read `resilience.limits` of a server entry.
    pub fn from_resilience(resilience: Option<&serde_json::Value>) -> Result<Limits, String> {
        match resilience.and_then(|r| r.get("limits")) {
            None => Ok(Limits::default()),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("resilience.limits: {e}")),
        }
    }
}

/// Build the child's environment: the base variables the gateway has, then the configured ones.
pub fn child_env(
    configured: &BTreeMap<String, String>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut env: BTreeMap<String, String> =
        BASE_ENV.iter().filter_map(|k| lookup(k).map(|v| ((*k).to_owned(), v))).collect();
    for (k, v) in configured {
        env.insert(k.clone(), vmcp_config::expand_env(v, &lookup)?);
    }
    Ok(env)
}

/// Start the process with piped stdio.
pub fn spawn(spec: &ChildSpec) -> std::io::Result<Child> {
    let mut cmd = Command::new(&spec.command);
    cmd.args(&spec.args)
        .env_clear()
        .envs(&spec.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    let parent = std::process::id() as libc::pid_t;
    let limits = spec.limits;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            #[cfg(target_os = "linux")]
            {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The gateway may have died between fork and prctl.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                let set = |resource, value: Option<u64>| -> std::io::Result<()> {
                    if let Some(v) = value {
                        let lim = libc::rlimit { rlim_cur: v as libc::rlim_t, rlim_max: v as libc::rlim_t };
                        if libc::setrlimit(resource, &lim) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                };
                set(libc::RLIMIT_CPU, limits.cpu_seconds)?;
                set(libc::RLIMIT_DATA, limits.memory_mb.map(|m| m * 1024 * 1024))?;
                set(libc::RLIMIT_NOFILE, limits.open_files)?;
            }
            #[cfg(not(target_os = "linux"))]
            let _ = parent;
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    if let Some(pid) = child.id() {
        super::reaper::track(pid);
    }
    Ok(child)
}

/// Signal a process group (the child's pid is its group id, see `spawn`).
pub fn signal_group(pgid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals the process group created at spawn.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), signal);
    }
}

/// Stop a child whose stdin the caller has already closed: wait, SIGTERM, wait, SIGKILL.
/// Members of its group that outlive it (grandchildren) are killed as well.
pub async fn stop(mut child: Child, grace: Duration) {
    let Some(pgid) = child.id() else { return };
    if tokio::time::timeout(grace / 2, child.wait()).await.is_err() {
        signal_group(pgid, libc::SIGTERM);
        if tokio::time::timeout(grace / 2, child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
    signal_group(pgid, libc::SIGKILL);
    super::reaper::untrack(pgid);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_env_is_base_plus_configured() {
        let gateway_env = |k: &str| match k {
            "PATH" => Some("/bin".to_owned()),
            "HOME" => Some("/home/u".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("hunter2".to_owned()),
            "API_TOKEN" => Some("t0k".to_owned()),
            _ => None,
        };
        let configured = BTreeMap::from([("TOKEN".to_owned(), "${API_TOKEN}".to_owned())]);
        let env = child_env(&configured, gateway_env).unwrap();
        let keys: Vec<&str> = env.keys().map(String::as_str).collect();
        assert_eq!(keys, ["HOME", "PATH", "TOKEN"]);
        assert_eq!(env["TOKEN"], "t0k");
        let missing = BTreeMap::from([("X".to_owned(), "${NOPE}".to_owned())]);
        assert!(child_env(&missing, gateway_env).unwrap_err().contains("NOPE"));
    }
}
