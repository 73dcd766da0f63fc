//! The command-line front end the `vmcp` binary embeds: clap types for `repo`, `search`,
//! `install`, `update`, `rollback`, `uninstall`, and the functions that run them.
//!
//! Results go to stdout (tables, or JSON with `--json`); progress, warnings and prompts to
//! stderr. `exit_code` maps an error to the CLI's exit status.

mod render;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use vmcp_config::Home;

use crate::error::RepoError;
use crate::index::Index;
use crate::install::{InstallOptions, Installer, Outcome, TerminalPrompter};
use crate::install_spec::MethodKind;
use crate::lockfile::LockFile;
use crate::package::Package;
use crate::progress::Progress;
use crate::search::SearchQuery;
use crate::sources::{self, AddRequest, Repositories, SourceKind};

/// `vmcp repo ...`
#[derive(Debug, clap::Subcommand)]
pub enum RepoCommand {
    /// Add a repository (git URL, HTTP index URL, local directory or registry API) and sync it.
    Add(RepoAddArgs),
    /// List repositories, including the built-in catalog.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a repository and its cache (installed servers stay).
    Remove {
        /// Repository name.
        name: String,
    },
    /// Fetch the latest packages of one repository, or of all.
    Sync {
        /// Repository name; default: all enabled repositories.
        name: Option<String>,
    },
}

/// `vmcp repo add URL`
#[derive(Debug, clap::Args)]
pub struct RepoAddArgs {
    /// A git URL, an https base URL serving index.json, a local directory, or a registry API URL.
    pub url: String,
    /// Name to refer to it by; default: derived from the URL.
    #[arg(long)]
    pub name: Option<String>,
    /// Source type; default: guessed from the URL.
    #[arg(long = "type", value_enum)]
    pub kind: Option<SourceKind>,
    /// Allow plain http:// for this repository and the downloads its packages declare.
    #[arg(long)]
    pub allow_insecure: bool,
}

/// `vmcp search QUERY`
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Words to look for in names, tags and descriptions; empty lists everything.
    pub query: Vec<String>,
    /// Only packages with this tag (repeatable).
    #[arg(long)]
    pub tag: Vec<String>,
    /// Only packages from this repository.
    #[arg(long)]
    pub repo: Option<String>,
    /// Only packages offering this transport.
    #[arg(long, value_parser = ["stdio", "http", "sse"])]
    pub transport: Option<String>,
    /// At most this many results (0 = all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

/// `vmcp install NAME[@VERSION]`
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Package name, optionally with a version or requirement: `time`, `time@2026.10.19`, `x@^1.2`.
    pub package: String,
    /// Take the package from this repository.
    #[arg(long)]
    pub repo: Option<String>,
    /// Install method: npm, pypi, cargo, binary or remote.
    #[arg(long)]
    pub method: Option<MethodKind>,
    /// Server id in servers.json; default: the package's short name.
    #[arg(long)]
    pub id: Option<String>,
    #[command(flatten)]
    pub setup: SetupArgs,
    #[arg(long)]
    pub json: bool,
}

/// The options `install` and `update` share: the server's environment, prompting, plain http.
#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// Set an environment variable or secret for the server (stored literally).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Never prompt; fail if a required secret is missing.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Allow plain http:// downloads.
    #[arg(long)]
    pub allow_insecure: bool,
}

/// `vmcp update [NAME | --all]`
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// Package (or server id), optionally `@VERSION`.
    pub package: Option<String>,
    /// Update every installed package.
    #[arg(long, conflicts_with = "package")]
    pub all: bool,
    #[command(flatten)]
    pub setup: SetupArgs,
    #[arg(long)]
    pub json: bool,
}

/// `vmcp rollback NAME`
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// Package (or server id).
    pub package: String,
    #[arg(long)]
    pub json: bool,
}

/// `vmcp uninstall NAME`
#[derive(Debug, clap::Args)]
pub struct UninstallArgs {
    /// Package (or server id).
    pub package: String,
    #[arg(long)]
    pub json: bool,
}

fn parse_env(raw: &str) -> std::result::Result<(String, String), String> {
    let (k, v) = raw.split_once('=').ok_or("expected KEY=VALUE")?;
    if !crate::name::is_env_name(k) {
        return Err(format!("`{k}` is not a valid environment variable name"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// Exit status for an error: 64 when the operator's input or config is at fault, else 2.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    let usage = err.chain().any(|c| {
        c.downcast_ref::<RepoError>().is_some_and(RepoError::is_usage)
            || c.downcast_ref::<vmcp_config::ConfigError>().is_some()
    });
    if usage { 64 } else { 2 }
}

pub fn run_repo(home: &Home, cmd: RepoCommand) -> Result<()> {
    let progress = Progress::stderr();
    match cmd {
        RepoCommand::Add(a) => {
            let req = AddRequest { url: a.url, name: a.name, kind: a.kind, allow_insecure: a.allow_insecure };
            let (cfg, report) = sources::add_repository(home, &req, &progress)?;
            println!("added repository {} ({}, {})", cfg.name, cfg.kind.as_str(), cfg.url);
            render::sync_report(&report);
        }
        RepoCommand::List { json } => render::repo_list(home, &Repositories::load(home)?, json)?,
        RepoCommand::Remove { name } => {
            let cfg = sources::remove_repository(home, &name, &progress)?;
            println!("removed repository {} ({})", cfg.name, cfg.url);
        }
        RepoCommand::Sync { name } => {
            let results = sources::sync_repositories(home, name.as_deref(), &progress)?;
            let mut failed = Vec::new();
            for (repo, result) in results {
                match result {
                    Ok(report) => render::sync_report(&report),
                    Err(e) => {
                        eprintln!("vmcp: sync of {repo} failed: {e}");
                        failed.push(repo);
                    }
                }
            }
            if !failed.is_empty() {
                bail!("could not sync {}", failed.join(", "));
            }
        }
    }
    Ok(())
}

pub fn run_search(home: &Home, args: SearchArgs) -> Result<()> {
    let index = Index::load(home)?;
    for w in &index.warnings {
        eprintln!("vmcp: warning: {w}");
    }
    let query = SearchQuery {
        text: args.query.join(" "),
        tags: args.tag,
        repository: args.repo,
        transport: args.transport,
        limit: args.limit,
    };
    let hits = index.search(&query);
    if args.json {
        return render::print_json(&render::search_json(&hits));
    }
    if hits.is_empty() {
        eprintln!("no packages match `{}`; try fewer words, or `vmcp repo sync`", query.text);
        return Ok(());
    }
    render::search_table(&hits);
    Ok(())
}

/// Print a package's manifest, versions and install methods; `Ok(false)` if no package has
/// that name (so `vmcp info` can fall back to a mounted server).
pub fn package_info(home: &Home, name: &str, json: bool) -> Result<bool> {
    let index = Index::load(home)?;
    let lock = LockFile::load(home)?;
    let Some((pkg, others)) = lookup(&index, name) else { return Ok(false) };
    let installed = lock.packages.get(pkg.name());
    if json {
        render::print_json(&render::info_json(pkg, installed, &others))?;
    } else {
        render::info_text(pkg, installed, &others);
    }
    Ok(true)
}

/// `vmcp info ID` for a server installed from a package: after the server's own fields, the
/// package (manifest, versions, install methods). Prints nothing when `server_id` was not
/// installed with `vmcp install`, or its package is no longer in any repository.
pub fn installed_package_info(home: &Home, server_id: &str) -> Result<()> {
    let lock = LockFile::load(home)?;
    let Some((name, locked)) = lock.by_server_id(server_id) else { return Ok(()) };
    let index = Index::load(home)?;
    if let Some((pkg, others)) = lookup(&index, name) {
        println!();
        render::info_text(pkg, Some(locked), &others);
    }
    Ok(())
}

/// The package behind an installed server, as `vmcp info ID --json` embeds it; `None` when
/// `name` is not a package any repository knows.
pub fn package_info_json(home: &Home, name: &str) -> Result<Option<serde_json::Value>> {
    let index = Index::load(home)?;
    let lock = LockFile::load(home)?;
    Ok(lookup(&index, name)
        .map(|(pkg, others)| render::info_json(pkg, lock.packages.get(pkg.name()), &others)))
}

/// The package called `name` (or the one `find` resolves it to) and the other repositories
/// that also carry it.
fn lookup<'i>(index: &'i Index, name: &str) -> Option<(&'i Package, Vec<&'i str>)> {
    let mut matches: Vec<&Package> = index.packages().iter().filter(|p| p.name() == name).collect();
    if matches.is_empty() {
        matches.extend(index.find(name, None));
    }
    let (first, rest) = matches.split_first()?;
    Some((*first, rest.iter().map(|p| p.repository.as_str()).collect()))
}

/// An installer changing `registry`: the servers registry the command's vmcp.toml names
/// (`gateway.servers_file`, resolved by the caller as the gateway resolves it).
fn installer<'a>(home: &'a Home, registry: PathBuf, prompter: &'a TerminalPrompter) -> Installer<'a> {
    Installer::new(home, Progress::stderr(), prompter).with_registry_file(registry)
}

pub fn run_install(home: &Home, registry: PathBuf, args: InstallArgs) -> Result<()> {
    let prompter = TerminalPrompter { yes: args.setup.yes };
    let opts = InstallOptions {
        repository: args.repo,
        method: args.method,
        server_id: args.id,
        env: args.setup.env,
        allow_insecure: args.setup.allow_insecure,
    };
    let outcome = installer(home, registry, &prompter)
        .install(&args.package, &opts)
        .with_context(|| format!("cannot install {}", args.package))?;
    render::outcome(&outcome, args.json)
}

pub fn run_update(home: &Home, registry: PathBuf, args: UpdateArgs) -> Result<()> {
    if args.package.is_none() && !args.all {
        bail!(RepoError::usage("name a package to update, or pass --all"));
    }
    let prompter = TerminalPrompter { yes: args.setup.yes };
    let opts = InstallOptions {
        env: args.setup.env,
        allow_insecure: args.setup.allow_insecure,
        ..Default::default()
    };
    let results = installer(home, registry, &prompter).update(args.package.as_deref(), &opts)?;
    if results.is_empty() {
        eprintln!("nothing is installed");
    }
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut failed = Vec::new();
    for (name, result) in results {
        match result {
            Ok(o) => outcomes.push(o),
            Err(e) => failed.push((name, e)),
        }
    }
    if args.json {
        render::print_json(&outcomes)?;
    } else {
        outcomes.iter().try_for_each(|o| render::outcome(o, false))?;
    }
    match failed.len() {
        0 => Ok(()),
        // One failure is the command's error (main prints it); several are each named first.
        1 => {
            let (name, e) = failed.remove(0);
            Err(anyhow::Error::new(e).context(format!("cannot update {name}")))
        }
        n => {
            for (name, e) in &failed {
                eprintln!("vmcp: cannot update {name}: {e}");
            }
            bail!("{n} packages could not be updated")
        }
    }
}

pub fn run_rollback(home: &Home, registry: PathBuf, args: RollbackArgs) -> Result<()> {
    let prompter = TerminalPrompter { yes: true };
    let outcome = installer(home, registry, &prompter)
        .rollback(&args.package)
        .with_context(|| format!("cannot roll back {}", args.package))?;
    render::outcome(&outcome, args.json)
}

pub fn run_uninstall(home: &Home, registry: PathBuf, args: UninstallArgs) -> Result<()> {
    let prompter = TerminalPrompter { yes: true };
    let outcome = installer(home, registry, &prompter)
        .uninstall(&args.package)
        .with_context(|| format!("cannot uninstall {}", args.package))?;
    render::outcome(&outcome, args.json)
}
