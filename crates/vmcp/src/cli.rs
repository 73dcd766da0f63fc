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
        #[command(flatten)]
        config: ConfigFile,
        /// Serve Streamable HTTP (and legacy SSE) on HOST:PORT, overriding the config.
        #[arg(long, value_name = "HOST:PORT")]
        http: Option<String>,
        /// Serve WebSocket on HOST:PORT, overriding the config.
        #[arg(long, value_name = "HOST:PORT")]
        ws: Option<String>,
        /// Do not serve stdio (run until SIGTERM/SIGINT).
        #[arg(long)]
        no_stdio: bool,
        #[command(flatten)]
        identity: Identity,
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
        #[command(flatten)]
        config: ConfigFile,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one server's configuration.
    Info {
        /// Server id.
        id: String,
        #[command(flatten)]
        config: ConfigFile,
        #[arg(long)]
        json: bool,
    },
    /// Add a stdio server to the registry: `vmcp mount ID -- COMMAND [ARGS...]`.
    Mount {
        id: String,
        #[command(flatten)]
        config: ConfigFile,
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
    Unmount {
        id: String,
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Package repositories: add, list, remove, sync.
    Repo {
        #[command(subcommand)]
        command: vmcp_repository::cli::RepoCommand,
    },
    /// Search the repositories (the built-in catalog works offline).
    Search(vmcp_repository::cli::SearchArgs),
    /// Install a server from a repository and register it.
    Install {
        #[command(flatten)]
        config: ConfigFile,
        #[command(flatten)]
        args: vmcp_repository::cli::InstallArgs,
    },
    /// Update installed servers (the old version is kept for rollback).
    Update {
        #[command(flatten)]
        config: ConfigFile,
        #[command(flatten)]
        args: vmcp_repository::cli::UpdateArgs,
    },
    /// Go back to the previously installed version.
    Rollback {
        #[command(flatten)]
        config: ConfigFile,
        #[command(flatten)]
        args: vmcp_repository::cli::RollbackArgs,
    },
    /// Remove an installed server and its registry entry.
    Uninstall {
        #[command(flatten)]
        config: ConfigFile,
        #[command(flatten)]
        args: vmcp_repository::cli::UninstallArgs,
    },
    /// Personas: named access sets (`vmcp persona create|list|show|delete`,
    /// `vmcp persona NAME enable|disable SERVER`, `allow|deny SERVER:PATTERN`, `token ...`).
    Persona {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// Configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run a server built into vmcp (used by the built-in default).
    #[command(hide = true)]
    Builtin { name: String },
    /// Watch a gateway and kill its servers' process groups when it dies (started by `start`).
    #[command(hide = true)]
    Reaper,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check vmcp.toml and servers.json; exit 64 naming the file, place and problem.
    Validate {
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Print where vMCP keeps its files.
    Paths {
        #[command(flatten)]
        config: ConfigFile,
    },
}

/// `--config FILE`: the vmcp.toml a command follows, and so the servers registry it reads or
/// changes (`gateway.servers_file`, relative to that file's directory). The gateway and every
/// registry command take the same option, so they agree on one registry.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigFile {
    /// Config file (default: $VMCP_HOME/config/vmcp.toml); its `servers_file` names the registry.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigFile {
    pub fn path(&self) -> Option<&std::path::Path> {
        self.config.as_deref()
    }
}

/// Who callers are: the stdio user's persona, and authentication on the network fronts.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Identity {
    /// Act as this persona on stdio (default: the local user, with full access).
    #[arg(long, env = "VMCP_PERSONA")]
    pub persona: Option<String>,
    /// Network fronts require a persona's API key (`Authorization: Bearer vmcp_...`).
    #[arg(long, env = "VMCP_API_KEYS")]
    pub api_keys: bool,
    /// OAuth 2.1 resource-server mode: accept JWTs from this issuer (`iss`).
    #[arg(long, env = "VMCP_OAUTH_ISSUER", value_name = "URL")]
    pub oauth_issuer: Option<String>,
    /// Where the issuer's signing keys are (JWKS; default: ISSUER/.well-known/jwks.json).
    #[arg(long, env = "VMCP_OAUTH_JWKS_URL", value_name = "URL", requires = "oauth_issuer")]
    pub oauth_jwks_url: Option<String>,
    /// The audience a token must be for (default: the resource URL).
    #[arg(long, env = "VMCP_OAUTH_AUDIENCE", requires = "oauth_issuer")]
    pub oauth_audience: Option<String>,
    /// This gateway's resource URL as clients know it (e.g. https://mcp.example.com/mcp).
    #[arg(long, env = "VMCP_OAUTH_RESOURCE", value_name = "URL", requires = "oauth_issuer")]
    pub oauth_resource: Option<String>,
    /// The claim that names the persona.
    #[arg(long, env = "VMCP_OAUTH_PERSONA_CLAIM", default_value = "vmcp_persona")]
    pub oauth_persona_claim: String,
    /// Allow network fronts without authentication on non-loopback addresses (dangerous:
    /// anyone who can reach the port gets full access).
    #[arg(long)]
    pub allow_unauthenticated_network: bool,
}
