//! `compare`: one workload sent straight to a backend and through `vmcp start` in front of that
//! same backend, in the same run.
//!
//! vMCP gets a throwaway `VMCP_HOME` whose `registry/servers.json` mounts the backend command
//! with `"prefix": ""`, so tool names are the same on both paths. Both sides are started,
//! handshaken, probed and warmed up first; then the measured requests run in alternating slices
//! (direct, vMCP, vMCP, direct, ...) so that drift in machine load hits both sides alike.

use std::path::{Path, PathBuf};

use anyhow::Context;

use hdrhistogram::Histogram;

use crate::report::Summary;
use crate::server::{Servers, Spawn, Stretch};
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
    let (start, env) = vmcp_start(setup.vmcp, setup.home, &[]);
    let through =
        servers.spawn(&Spawn { label: "vMCP".into(), command: start, env, show_stderr: work.show_stderr })?;
    for i in [direct, through] {
        let server = servers.get(i);
        let version = server.open(work).await?;
        eprintln!("vmcp-bench: {} ready (protocol {version})", server.label());
        server.probe(work).await?;
    }
    for i in [direct, through] {
        servers.get(i).drive(work, work.warmup, None).await?;
    }
    let gateway = servers.get(through).pid();
    let backends = [servers.get(direct).pid(), gateway.and_then(|g| backend_of(g, &command[0]))];
    let ids = [direct, through];
    measure(work.requests, setup.rounds, gateway, backends, async |side, slice, hist| {
        servers.get(ids[side]).drive(work, slice, Some(hist)).await
    })
    .await
}

/// The measured part of a comparison: `requests` in alternating slices ([`slices`]), each run by
/// `drive(side, slice, hist)` (side 0 direct, 1 through vMCP), with the CPU time of `gateway`
/// and of that side's backend, `backends[side]`, read around it.
pub async fn measure(
    requests: u64,
    rounds: u32,
    gateway: Option<u32>,
    backends: [Option<u32>; 2],
    mut drive: impl AsyncFnMut(usize, u64, &mut Histogram<u64>) -> anyhow::Result<Stretch>,
) -> anyhow::Result<Comparison> {
    let cpu = |pid: Option<u32>| pid.and_then(crate::procs::cpu_secs);
    let mut used = CpuUsed::default();
    let mut summaries = [Summary::new(), Summary::new()];
    for (slice, direct_first) in slices(requests, rounds) {
        for side in if direct_first { [0, 1] } else { [1, 0] } {
            let before = (cpu(gateway), cpu(backends[side]));
            let stretch = drive(side, slice, &mut summaries[side].hist).await?;
            summaries[side].add(stretch);
            used.add(side, before, (cpu(gateway), cpu(backends[side])));
        }
    }
    let cpu = (gateway.is_some() && backends.iter().all(Option::is_some)).then(|| used.per_request(requests));
    let [direct, vmcp] = summaries;
    Ok(Comparison { direct, vmcp, cpu })
}

/// CPU seconds used during the measured slices of a comparison.
#[derive(Default)]
struct CpuUsed {
    /// vMCP, while the vMCP side ran.
    gateway: f64,
    /// The backend while the direct side ran.
    backend_direct: f64,
    /// The backend while the vMCP side ran.
    backend_vmcp: f64,
}

impl CpuUsed {
    /// Count one slice of `side` (0 direct, 1 through vMCP) from the (gateway, backend) CPU
    /// seconds read before and after it; a slice with a reading missing counts nothing.
    fn add(&mut self, side: usize, before: (Option<f64>, Option<f64>), after: (Option<f64>, Option<f64>)) {
        if let ((Some(g0), Some(b0)), (Some(g1), Some(b1))) = (before, after) {
            if side == 0 {
                self.backend_direct += b1 - b0;
            } else {
                self.gateway += g1 - g0;
                self.backend_vmcp += b1 - b0;
            }
        }
    }

    fn per_request(&self, requests: u64) -> CpuPerRequest {
        let us = |secs: f64| secs * 1e6 / requests.max(1) as f64;
        CpuPerRequest {
            gateway_us: us(self.gateway),
            backend_direct_us: us(self.backend_direct),
            backend_vmcp_us: us(self.backend_vmcp),
        }
    }
}

/// The backend vMCP spawned: its child running `program` (not the reaper).
fn backend_of(gateway: u32, program: &str) -> Option<u32> {
    let name = program.rsplit('/').next().unwrap_or(program);
    crate::procs::children(gateway)
        .into_iter()
        .find(|&c| crate::procs::cmdline(c).split(' ').next() == Some(name))
}

/// The measured requests split into `rounds` alternating slices (at most one per request; the
/// first `requests % rounds` one request longer), each with whether the direct side goes first.
fn slices(requests: u64, rounds: u32) -> impl Iterator<Item = (u64, bool)> {
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
