//! The command-line grammar (clap derive). Commands live in `commands/`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "vmcp", version, about = "vMCP: one MCP endpoint in front of many MCP servers")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (stdio front on this process's stdin/stdout).
    Start {
        /// Config file (default: $VMCP_HOME/config/vmcp.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Serve Streamable HTTP (and legacy SSE) on HOST:PORT, overriding the config.
        #[arg(long, value_name = "HOST:PORT")]
        http: Option<String>,
        /// Serve WebSocket on HOST:PORT, overriding the config.
        #[arg(long, value_name = "HOST:PORT")]
        ws: Option<String>,
        /// Do not serve stdio (run until SIGTERM/SIGINT).
        #[arg(long)]
        no_stdio: bool,
    },
    /// Show whether a gateway is running, and its servers' live status (exit 3 if not running).
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Stop the running gateway (SIGTERM; it drains and stops its servers).
    Stop,
    /// List the configured servers (with live status when a gateway is running).
    List {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one server's configuration.
    Info {
        /// Server id.
        id: String,
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Add a stdio server to the registry: `vmcp mount ID -- COMMAND [ARGS...]`.
    Mount {
        id: String,
        /// Environment for the server, `KEY=VALUE` (values may use `${VAR}`).
        #[arg(long = "env", short = 'e')]
        env: Vec<String>,
        /// Name prefix for its tools and prompts (`""` for bare names; default: the id).
        #[arg(long)]
        prefix: Option<String>,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Remove a server from the registry.
    Unmount { id: String },
    /// Package repositories: add, list, remove, sync.
    Repo {
        #[command(subcommand)]
        command: vmcp_repository::cli::RepoCommand,
    },
    /// Search the repositories (the built-in catalog works offline).
    Search(vmcp_repository::cli::SearchArgs),
    /// Install a server from a repository and register it.
    Install(vmcp_repository::cli::InstallArgs),
    /// Update installed servers (the old version is kept for rollback).
    Update(vmcp_repository::cli::UpdateArgs),
    /// Go back to the previously installed version.
    Rollback(vmcp_repository::cli::RollbackArgs),
    /// Remove an installed server and its registry entry.
    Uninstall(vmcp_repository::cli::UninstallArgs),
    /// Configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run a server built into vmcp (used by the built-in default).
    #[command(hide = true)]
    Builtin { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check vmcp.toml and servers.json; exit 64 naming the file, place and problem.
    Validate {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print where vMCP keeps its files.
    Paths,
}
