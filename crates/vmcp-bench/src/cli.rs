//! The command-line grammar (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "vmcp-bench",
    version,
    about = "Load tool for MCP servers over stdio: pipelined requests, latency percentiles, direct vs through vMCP"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Drive one stdio MCP server: `vmcp-bench stdio [OPTIONS] -- COMMAND [ARGS...]`.
    Stdio {
        #[command(flatten)]
        load: Load,
        /// The server command and its arguments.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Run the same workload against the server directly and through `vmcp start`, and print the
    /// overhead as a markdown table.
    Compare {
        #[command(flatten)]
        load: Load,
        /// The vmcp binary (default: `vmcp` next to this binary, i.e. target/release/vmcp).
        #[arg(long, value_name = "PATH")]
        vmcp: Option<PathBuf>,
        /// Measured requests are split into this many slices per side, run alternately (direct,
        /// vMCP, vMCP, direct, ...) so that a change in machine load hits both sides alike.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        rounds: u32,
        /// Workload name for the table's first column (default: derived from the options).
        #[arg(long)]
        label: Option<String>,
        /// The backend command and its arguments; vMCP mounts this same command.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Print criterion's saved results (`cargo bench`) as a markdown table.
    CriterionTable {
        /// criterion's output directory.
        #[arg(default_value = "target/criterion")]
        dir: PathBuf,
        /// Only benchmarks saved after this file was last modified (e.g. a marker touched before
        /// `cargo bench`).
        #[arg(long, value_name = "FILE")]
        newer_than: Option<PathBuf>,
    },
}

/// The workload and its limits, shared by both subcommands.
#[derive(Debug, Clone, Args)]
pub struct Load {
    /// Requests outstanding at once on the one stdio pipe.
    #[arg(long, short = 'c', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub concurrency: u32,
    /// Measured requests.
    #[arg(long, short = 'n', default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: u64,
    /// Unmeasured requests sent first (per side).
    #[arg(long, short = 'w', default_value_t = 1_000)]
    pub warmup: u64,
    /// What each request does.
    #[arg(long, value_enum, default_value_t = Method::ToolsCall)]
    pub method: Method,
    /// Tool name for `tools/call`.
    #[arg(long, default_value = "echo")]
    pub tool: String,
    /// Tool arguments for `tools/call`, a JSON object.
    #[arg(long, default_value = r#"{"text":"hello"}"#)]
    pub args: String,
    /// Seconds one request may take before the run fails.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Seconds the server may take to answer `initialize`.
    #[arg(long, default_value_t = 30.0)]
    pub startup_timeout: f64,
    /// Count JSON-RPC error answers instead of stopping at the first one.
    #[arg(long)]
    pub allow_errors: bool,
    /// Pass the servers' stderr through (otherwise its last lines are shown only on failure).
    #[arg(long)]
    pub show_stderr: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    #[value(name = "tools/call")]
    ToolsCall,
    #[value(name = "tools/list")]
    ToolsList,
    /// The server's own `ping` (through vMCP: answered by the gateway, no backend hop).
    #[value(name = "ping")]
    Ping,
}
