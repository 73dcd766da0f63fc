//! One module per command family; `run` picks the one the command line asked for.

mod builtin;
mod config;
mod control;
mod identity;
mod persona;
mod servers;
mod start;

use vmcp_config::Home;

use crate::cli::{Cli, Command, ConfigCommand};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Start { config, http, ws, no_stdio, identity } => {
            start::run(config.path(), start::Fronts { http, ws, no_stdio, identity })
        }
        Command::Persona { args } => persona::run(&args),
        Command::List { config, json } => servers::list(config.path(), json),
        Command::Info { id, config, json } => servers::info(config.path(), &id, json),
        Command::Mount { id, config, env, prefix, command } => {
            servers::mount(config.path(), &id, &env, prefix, &command)
        }
        Command::Unmount { id, config } => servers::unmount(config.path(), &id),
        Command::Config { command: ConfigCommand::Validate { config } } => config::validate(config.path()),
        Command::Config { command: ConfigCommand::Paths { config } } => config::paths(config.path()),
        Command::Builtin { name } => builtin::run(&name),
        Command::Reaper => {
            vmcp_gateway::upstream::reaper::run();
            Ok(())
        }
        Command::Status { json } => control::status(json),
        Command::Stop => control::stop(),
        Command::Repo { command } => vmcp_repository::cli::run_repo(&Home::from_env(), command),
        Command::Search(args) => vmcp_repository::cli::run_search(&Home::from_env(), args),
        Command::Install { config, args } => {
            let (home, registry) = config::registry(config.path())?;
            vmcp_repository::cli::run_install(&home, registry, args)
        }
        Command::Update { config, args } => {
            let (home, registry) = config::registry(config.path())?;
            vmcp_repository::cli::run_update(&home, registry, args)
        }
        Command::Rollback { config, args } => {
            let (home, registry) = config::registry(config.path())?;
            vmcp_repository::cli::run_rollback(&home, registry, args)
        }
        Command::Uninstall { config, args } => {
            let (home, registry) = config::registry(config.path())?;
            vmcp_repository::cli::run_uninstall(&home, registry, args)
        }
    }
}
