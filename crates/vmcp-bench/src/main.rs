//! `vmcp-bench`: the project's load tool. Drives MCP servers over stdio with pipelined requests
//! and prints latency percentiles and throughput as markdown tables; `compare` measures the same
//! workload directly and through `vmcp start`; `criterion-table` prints `cargo bench` results.
//!
//! Exit codes: 0 on success (and on a broken pipe), 2 on a runtime error (a server that died,
//! timed out or answered with errors), 64 on bad usage, 130 when interrupted.

mod child;
mod cli;
mod compare;
mod criterion;
mod envelope;
mod http_backend;
mod http_load;
mod network;
mod procs;
mod report;
mod server;
mod wake;
mod workload;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::report::Summary;
use crate::server::{Servers, Spawn};
use crate::workload::{UsageError, Workload};

const EXIT_RUNTIME: u8 = 2;
const EXIT_USAGE: u8 = 64;
const EXIT_INTERRUPTED: u8 = 130;

/// The run was stopped by Ctrl-C.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
struct Interrupted;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let outcome = match cli.command {
        Command::ServeHttp { listen, tools } => http_backend::serve(listen, tools),
        command => run(command),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("vmcp-bench: {}", chain.join(": "));
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else if e.downcast_ref::<Interrupted>().is_some() {
                ExitCode::from(EXIT_INTERRUPTED)
            } else {
                ExitCode::from(EXIT_RUNTIME)
            }
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    // One thread: the load loop is a single task, and the machine's cores belong to the servers.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut servers = Servers::default();
        let outcome = tokio::select! {
            outcome = run_command(command, &mut servers) => outcome,
            () = stop_signal() => Err(Interrupted.into()),
        };
        servers.shutdown(outcome.is_ok()).await;
        let table = outcome?;
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(table.as_bytes())?;
        stdout.flush()?;
        Ok(())
    })
}

/// Run one subcommand; returns the table to print.
async fn run_command(command: Command, servers: &mut Servers) -> anyhow::Result<String> {
    match command {
        Command::Stdio { load, command } => {
            let work = Workload::from_load(&load)?;
            let summary = single(&work, &command, servers).await?;
            Ok(report::single(work.label(), &command.join(" "), &summary))
        }
        Command::Compare { how: cli::Comparing { load, vmcp, rounds, label }, command } => {
            let work = Workload::from_load(&load)?;
            let (vmcp, home) = vmcp_and_home(vmcp, servers)?;
            let setup = compare::Setup { vmcp: &vmcp, home: &home, command: &command, rounds };
            let result = compare::run(&work, &setup, servers).await?;
            Ok(report::compared(label.as_deref().unwrap_or(work.label()), &result))
        }
        Command::HttpCompare { how: cli::Comparing { load, vmcp, rounds, label } } => {
            let work = Workload::legacy_only(&load)?;
            let (vmcp, home) = vmcp_and_home(vmcp, servers)?;
            let setup = network::Setup { vmcp: &vmcp, home: &home, startup_timeout: work.startup_timeout };
            let result = network::compare(&work, &setup, rounds).await?;
            let label = label.unwrap_or_else(|| format!("HTTP {}", work.label()));
            Ok(report::compared(&label, &result))
        }
        Command::Sessions { load, vmcp, sessions, calls } => {
            let work = Workload::legacy_only(&load)?;
            let (vmcp, home) = vmcp_and_home(vmcp, servers)?;
            let setup = network::Setup { vmcp: &vmcp, home: &home, startup_timeout: work.startup_timeout };
            let n = usize::try_from(sessions)?;
            let outcome = network::sessions(&work, &setup, n, calls).await?;
            let table = network::sessions_table(&outcome, calls);
            if outcome.opened < n || outcome.call_errors > 0 {
                print!("{table}");
                anyhow::bail!(
                    "{} of {n} sessions opened, {} calls failed",
                    outcome.opened,
                    outcome.call_errors
                );
            }
            Ok(table)
        }
        Command::IdleMemory { load, vmcp, settle, command } => {
            let work = Workload::legacy_only(&load)?;
            let settle = std::time::Duration::try_from_secs_f64(settle)
                .map_err(|_| UsageError("--settle must be a number of seconds".into()))?;
            let (vmcp, home) = vmcp_and_home(vmcp, servers)?;
            let setup = network::Setup { vmcp: &vmcp, home: &home, startup_timeout: work.startup_timeout };
            network::idle_memory(&work, &setup, &command, settle, servers).await
        }
        Command::WakeFloor { round_trips, warmup } => {
            tokio::task::spawn_blocking(move || wake::floor(round_trips, warmup)).await?
        }
        Command::ServeHttp { .. } => anyhow::bail!("serve-http runs on its own runtime"),
        Command::CriterionTable { dir, newer_than } => criterion::table(&dir, newer_than.as_deref()),
    }
}

/// The vmcp binary and a throwaway home for it, kept until every server is stopped.
fn vmcp_and_home(
    vmcp: cli::VmcpArgs,
    servers: &mut Servers,
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let vmcp = compare::vmcp_path(vmcp.vmcp)?;
    let home = servers.keep_dir(tempfile::Builder::new().prefix("vmcp-bench-home-").tempdir()?);
    Ok((vmcp, home))
}

/// `stdio`: one server, handshake, probe, warm-up, then the measured requests.
async fn single(work: &Workload, command: &[String], servers: &mut Servers) -> anyhow::Result<Summary> {
    let spec = Spawn {
        label: "server".into(),
        command: command.to_vec(),
        env: Vec::new(),
        show_stderr: work.show_stderr,
    };
    let index = servers.spawn(&spec)?;
    let server = servers.get(index);
    let version = server.open(work).await?;
    eprintln!("vmcp-bench: server ready (protocol {version})");
    server.probe(work).await?;
    server.drive(work, work.warmup, None).await?;
    let mut summary = Summary::new();
    let stretch = server.drive(work, work.requests, Some(&mut summary.hist)).await?;
    summary.add(stretch);
    Ok(summary)
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
