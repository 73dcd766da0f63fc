//! `compare`: one workload sent straight to a backend and through `vmcp start` in front of that
//! same backend, in the same run.
//!
//! vMCP gets a throwaway `VMCP_HOME` whose `registry/servers.json` mounts the backend command
//! with `"prefix": ""`, so tool names are the same on both paths. Both sides are started,
//! handshaken, probed and warmed up first; then the measured requests run in alternating slices
//! (direct, vMCP, vMCP, direct, ...) so that drift in machine load hits both sides alike.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::report::Summary;
use crate::server::{Servers, Spawn};
use crate::workload::{UsageError, Workload};

/// The figures of both sides.
pub struct Comparison {
    pub direct: Summary,
    pub vmcp: Summary,
    /// CPU time per measured request, where the run could read it.
    pub cpu: Option<CpuPerRequest>,
}

/// CPU time per measured request in µs (from `/proc/PID/stat`, 10 ms ticks): vMCP's own cost,
/// which does not depend on how the machine shares its cores the way throughput does.
pub struct CpuPerRequest {
    pub gateway_us: f64,
    pub backend_direct_us: f64,
    pub backend_vmcp_us: f64,
}

/// Where the compared programs are and where vMCP keeps its files for the run.
pub struct Setup<'a> {
    pub vmcp: &'a Path,
    pub home: &'a Path,
    pub command: &'a [String],
    pub rounds: u32,
}

pub async fn run(work: &Workload, setup: &Setup<'_>, servers: &mut Servers) -> anyhow::Result<Comparison> {
    let command = resolve_command(setup.command)?;
    write_registry(setup.home, &command)?;
    let direct = servers.spawn(&Spawn {
        label: "direct".into(),
        command: command.clone(),
        env: Vec::new(),
        show_stderr: work.show_stderr,
    })?;
    let (command, env) = vmcp_start(setup.vmcp, setup.home, &[]);
    let through =
        servers.spawn(&Spawn { label: "vMCP".into(), command, env, show_stderr: work.show_stderr })?;
    for i in [direct, through] {
        let server = servers.get(i);
        let version = server.handshake(work.startup_timeout).await?;
        eprintln!("vmcp-bench: {} ready (protocol {version})", server.label());
        server.probe(work).await?;
    }
    for i in [direct, through] {
        servers.get(i).drive(work, work.warmup, None).await?;
    }
    let (mut d, mut v) = (Summary::new(), Summary::new());
    for (slice, direct_first) in slices(work.requests, setup.rounds) {
        let order = if direct_first {
            [(direct, &mut d), (through, &mut v)]
        } else {
            [(through, &mut v), (direct, &mut d)]
        };
        for (i, summary) in order {
            let stretch = servers.get(i).drive(work, slice, Some(&mut summary.hist)).await?;
            summary.add(stretch);
        }
    }
    Ok(Comparison { direct: d, vmcp: v, cpu: None })
}

/// The measured requests split into `rounds` alternating slices (at most one per request; the
/// first `requests % rounds` one request longer), each with whether the direct side goes first.
pub fn slices(requests: u64, rounds: u32) -> impl Iterator<Item = (u64, bool)> {
    let rounds = u64::from(rounds).min(requests);
    (0..rounds).map(move |round| (requests / rounds + u64::from(round < requests % rounds), round % 2 == 0))
}

/// The vmcp binary: `--vmcp`, else `vmcp` next to this binary (both built in target/release).
pub fn vmcp_path(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p,
        None => std::env::current_exe()
            .context("cannot locate vmcp-bench itself")?
            .with_file_name(format!("vmcp{}", std::env::consts::EXE_SUFFIX)),
    };
    if !path.is_file() {
        return Err(UsageError(format!(
            "no vmcp binary at {}; build it with `cargo build --release -p vmcp` or pass --vmcp PATH",
            path.display()
        ))
        .into());
    }
    Ok(path)
}

/// `vmcp start ARGS` on the run's throwaway home: its command line and environment.
pub fn vmcp_start(vmcp: &Path, home: &Path, args: &[&str]) -> (Vec<String>, Vec<(String, String)>) {
    let argv =
        [vmcp.display().to_string(), "start".into()].into_iter().chain(args.iter().map(|a| a.to_string()));
    (argv.collect(), vec![("VMCP_HOME".into(), home.display().to_string())])
}

/// A command given as a path is made absolute: vMCP runs it from its own working directory.
pub fn resolve_command(command: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out = command.to_vec();
    if let Some(program) = out.first_mut()
        && program.contains('/')
    {
        let abs = std::fs::canonicalize(&*program).map_err(|e| {
            UsageError(format!("backend command `{program}`: {e}; build it first (`cargo build --release`)"))
        })?;
        *program = abs.display().to_string();
    }
    Ok(out)
}

/// `registry/servers.json` with the backend mounted under bare names.
fn write_registry(home: &Path, command: &[String]) -> anyhow::Result<()> {
    let (program, args) = command.split_first().context("no backend command given")?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let server =
        serde_json::json!({ "id": "bench", "command": program, "args": args, "cwd": cwd, "prefix": "" });
    crate::network::write_home(home, serde_json::json!([server]), None)
}
