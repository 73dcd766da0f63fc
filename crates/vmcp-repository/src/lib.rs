//! vMCP's package manager for MCP servers: repositories (git, HTTP index, local directory, the
//! official registry API, a built-in catalog), search, and install / update / rollback /
//! uninstall into `installed/servers/`, registering each server in `registry/servers.json`.
//!
//! Flow: `sources::sync` fetches and validates packages into `cache/repos/NAME/index.json`;
//! `Index::load` merges them with the built-in catalog; `Installer` resolves a version, builds it
//! in a staging directory, and commits `installed/lock.json` and `servers.json` through a
//! journal. Every mutating command holds `HomeLock`. `cli` holds the clap front end.

pub mod cli;
mod error;
mod home_lock;
mod index;
pub mod install;
mod install_spec;
mod journal;
mod lockfile;
mod manifest;
mod name;
pub mod net;
mod package;
pub mod progress;
mod search;
pub mod sources;
pub mod versions;

pub use error::{RepoError, Result};
pub use home_lock::HomeLock;
pub use index::Index;
pub use install::{Change, InstallOptions, Installer, NoPrompt, Outcome, Prompter, TerminalPrompter};
pub use install_spec::{
    BinaryMethod, CargoMethod, Download, EnvVar, InstallSpec, Method, MethodKind, NpmMethod, PypiMethod,
    RemoteMethod,
};
pub use lockfile::{InstalledVersion, Launch, LockFile, LockedPackage};
pub use manifest::Manifest;
pub use name::PackageName;
pub use package::{Package, Release};
pub use progress::Progress;
pub use search::{Hit, MatchKind, SearchQuery};
