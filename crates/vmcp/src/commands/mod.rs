//! One module per command family; `run` picks the one the command line asked for.

mod builtin;
mod config;
mod servers;
mod start;

use crate::cli::{Cli, Command, ConfigCommand};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Start { config, http, ws, no_stdio } => {
            start::run(config.as_deref(), start::Fronts { http, ws, no_stdio })
        }
        Command::List { config, json } => servers::list(config.as_deref(), json),
        Command::Info { id, config, json } => servers::info(config.as_deref(), &id, json),
        Command::Mount { id, env, prefix, command } => servers::mount(&id, &env, prefix, &command),
        Command::Unmount { id } => servers::unmount(&id),
        Command::Config { command: ConfigCommand::Validate { config } } => {
            config::validate(config.as_deref())
        }
        Command::Config { command: ConfigCommand::Paths } => config::paths(),
        Command::Builtin { name } => builtin::run(&name),
    }
}
