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
        how: Comparing,
        /// The backend command and its arguments; vMCP mounts this same command.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// tools/call over Streamable HTTP straight to a fast HTTP backend and through
    /// `vmcp start --http` with that backend mounted over HTTP; one legacy session (and one
    /// keep-alive connection) per unit of concurrency.
    HttpCompare {
        #[command(flatten)]
        how: Comparing,
    },
    /// Open many legacy sessions on vMCP's HTTP front at once (its `max_sessions` set to that
    /// number), call through all of them concurrently, then try one session more.
    Sessions {
        #[command(flatten)]
        load: Load,
        #[command(flatten)]
        vmcp: VmcpArgs,
        /// Sessions to open.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        sessions: u64,
        /// Calls made through each session (one at a time per session, all sessions at once).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        calls: u64,
    },
    /// Resident memory of an idle `vmcp start` (stdio and HTTP fronts) with two backends: this
    /// stdio COMMAND and the fast HTTP backend.
    IdleMemory {
        #[command(flatten)]
        load: Load,
        #[command(flatten)]
        vmcp: VmcpArgs,
        /// Seconds to let the gateway sit idle before reading its memory.
        #[arg(long, default_value_t = 2.0)]
        settle: f64,
        /// The stdio backend command and its arguments.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// The machine's floor for a hop: round trips of one byte to a `cat` process over pipes
    /// (two wake-ups each), the least one more process in a request's path can cost.
    WakeFloor {
        /// Measured round trips.
        #[arg(short = 'n', long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
        round_trips: u64,
        /// Unmeasured round trips first.
        #[arg(short = 'w', long, default_value_t = 2_000)]
        warmup: u64,
    },
    /// Serve the fast Streamable HTTP backend of the network benchmarks (prints
    /// `listening on http://ADDR/mcp`; runs until stdin closes or a signal).
    ServeHttp {
        /// Where to listen (port 0: a free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Generated tools added to `echo` in `tools/list`.
        #[arg(long, default_value_t = 0)]
        tools: usize,
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

/// Where the vmcp binary is.
#[derive(Debug, Clone, Args)]
pub struct VmcpArgs {
    /// The vmcp binary (default: `vmcp` next to this binary, i.e. target/release/vmcp).
    #[arg(long, value_name = "PATH")]
    pub vmcp: Option<PathBuf>,
}

/// What `compare` and `http-compare` share: the workload, the vmcp binary, how the two sides
/// alternate and the table row's name.
#[derive(Debug, Clone, Args)]
pub struct Comparing {
    #[command(flatten)]
    pub load: Load,
    #[command(flatten)]
    pub vmcp: VmcpArgs,
    /// Measured requests are split into this many slices per side, run alternately (direct,
    /// vMCP, vMCP, direct, ...) so that a change in machine load hits both sides alike.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Workload name for the table's first column (default: derived from the options).
    #[arg(long)]
    pub label: Option<String>,
}

/// The workload and its limits, shared by the load subcommands.
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
    /// Speak the modern era (2026-07-28): no `initialize`, the version and capabilities in every
    /// request's `_meta` (stdio runs only; give the server its own modern flag, e.g.
    /// `-- vmcp-fixture --era modern`).
    #[arg(long)]
    pub modern: bool,
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
