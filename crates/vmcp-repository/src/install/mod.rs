//! Install and update: resolve a version, build it in a staging directory, rename it into
//! `installed/servers/KEY/VERSION`, then commit lock and registry together through the journal.
//!
//! Invariant: nothing outside `installed/servers/.staging` changes before the journal commit;
//! a failure or a kill before it leaves the previous state exactly as it was.

mod binary;
mod cargo;
mod entry;
mod lifecycle;
mod npm;
mod plan;
pub mod process;
mod pypi;
pub mod secrets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use vmcp_config::Home;

use crate::error::{IoContext, RepoError, Result};
use crate::home_lock::{HomeLock, INSTALL_MARKER, staging_dir};
use crate::index::Index;
use crate::install_spec::{Method, MethodKind};
use crate::journal::{self, Journal, ServerOp};
use crate::lockfile::{InstalledVersion, Launch, LockFile, LockedPackage};
use crate::name::{PackageName, split_spec};
use crate::net::Net;
use crate::package::{Package, Release};
use crate::progress::Progress;
use crate::sources::Repositories;
use crate::versions::VersionReq;

use plan::Plan;
pub use secrets::{NoPrompt, Prompter, TerminalPrompter};

/// Operator choices for install and update.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    pub repository: Option<String>,
    pub method: Option<MethodKind>,
    /// The id in servers.json; default: the package's short name.
    pub server_id: Option<String>,
    /// `--env KEY=VALUE` pairs.
    pub env: Vec<(String, String)>,
    pub allow_insecure: bool,
}

/// What a command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Installed,
    Updated,
    Unchanged,
    RolledBack,
    Removed,
}

/// The result of one install, update, rollback or uninstall.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub package: String,
    pub server_id: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    pub method: MethodKind,
    pub change: Change,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Inputs of one build.
pub(crate) struct Build<'a> {
    pub staging: &'a Path,
    pub final_dir: &'a Path,
    pub version: &'a str,
    pub upstream_version: &'a str,
    /// Launch arguments with templates expanded.
    pub args: Vec<String>,
    pub log: &'a Path,
    pub progress: &'a Progress,
    pub net: &'a Net,
}

/// What a method produced.
pub(crate) struct Built {
    pub launch: Launch,
    pub checksum: Option<String>,
}

/// Reads a variable from the caller's environment.
pub(crate) type EnvLookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Runs the package-manager commands against one home.
pub struct Installer<'a> {
    pub(crate) home: &'a Home,
    pub(crate) progress: Progress,
    pub(crate) prompter: &'a dyn Prompter,
    pub(crate) lookup: EnvLookup<'a>,
    /// The servers registry to change; `None`: the home's (`Home::registry_file`).
    pub(crate) registry: Option<PathBuf>,
}

impl<'a> Installer<'a> {
    pub fn new(home: &'a Home, progress: Progress, prompter: &'a dyn Prompter) -> Self {
        Self { home, progress, prompter, lookup: Box::new(|k| std::env::var(k).ok()), registry: None }
    }

    /// Change this servers registry instead of the home's (`vmcp install --config FILE`).
    pub fn with_registry_file(mut self, path: PathBuf) -> Self {
        self.registry = Some(path);
        self
    }

    /// The servers registry this installer changes.
    pub(crate) fn registry_file(&self) -> Result<PathBuf> {
        match &self.registry {
            Some(path) => Ok(path.clone()),
            None => Ok(self.home.registry_file()?),
        }
    }

    /// Replace how the caller's environment is read (tests).
    pub fn with_env_lookup(mut self, lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        self.lookup = Box::new(lookup);
        self
    }

    /// `vmcp install NAME[@VERSION]`: install, or switch an installed package to that version.
    pub fn install(&self, spec: &str, opts: &InstallOptions) -> Result<Outcome> {
        let (name, req) = parse_spec(spec)?;
        let _lock = HomeLock::acquire(self.home, &self.progress)?;
        let servers_file = self.registry_file()?;
        let index = Index::load(self.home)?;
        let pkg = index.find(name.as_str(), opts.repository.as_deref())?;
        let version = resolve(pkg, &req)?;
        self.switch_to(&servers_file, pkg, &version, opts, None)
    }

    /// `vmcp update [NAME[@VERSION]]`: each target's result, in name order (`None` = all).
    pub fn update(
        &self,
        spec: Option<&str>,
        opts: &InstallOptions,
    ) -> Result<Vec<(String, Result<Outcome>)>> {
        let _lock = HomeLock::acquire(self.home, &self.progress)?;
        let servers_file = self.registry_file()?;
        let index = Index::load(self.home)?;
        let lock = LockFile::load(self.home)?;
        // Loaded once: each update changes only its own package's entry, so the others' entries
        // stay as read here (the commit itself re-reads the lock through its `Plan`).
        let targets: Vec<(&str, &LockedPackage, VersionReq)> = match spec {
            Some(s) => {
                let (name, req) = parse_spec(s)?;
                let (pkg, locked) = lifecycle::find_locked(&lock, name.as_str())?;
                vec![(pkg, locked, req)]
            }
            None => lock.packages.iter().map(|(k, l)| (k.as_str(), l, VersionReq::Latest)).collect(),
        };
        Ok(targets
            .into_iter()
            .map(|(name, locked, req)| {
                let result = self.update_one(&servers_file, &index, name, locked, &req, opts);
                (name.to_owned(), result)
            })
            .collect())
    }

    fn update_one(
        &self,
        servers_file: &Path,
        index: &Index,
        name: &str,
        locked: &LockedPackage,
        req: &VersionReq,
        opts: &InstallOptions,
    ) -> Result<Outcome> {
        let current = locked
            .current_install()
            .ok_or_else(|| RepoError::usage(format!("lock entry of `{name}` is incomplete")))?;
        let repo = opts.repository.clone().unwrap_or_else(|| current.repository.clone());
        let pkg = index.find(name, Some(&repo))?;
        let version = resolve(pkg, req)?;
        self.switch_to(servers_file, pkg, &version, opts, Some(current.method))
    }

    /// Make `version` of `pkg` the installed one, registered in the registry at `servers_file`.
    fn switch_to(
        &self,
        servers_file: &Path,
        pkg: &Package,
        version: &str,
        opts: &InstallOptions,
        prefer: Option<MethodKind>,
    ) -> Result<Outcome> {
        let plan = Plan::new(self.home, servers_file, pkg, version, opts)?;
        if let Some(done) = plan.unchanged() {
            return Ok(done);
        }
        let method = choose_method(pkg, plan.release, opts.method, prefer)?;
        let env = self.collect_env(&plan, opts)?;
        let (installed, built_now) = match plan.reusable() {
            Some(i) => (i.clone(), false),
            None => {
                (self.build(pkg, plan.release, method, &plan.final_dir, &|s| plan.expand(s), opts)?, true)
            }
        };
        let made_data = plan.uses_data(method) && !plan.data_dir.exists();
        let committed = (|| {
            if plan.uses_data(method) {
                std::fs::create_dir_all(&plan.data_dir).at(&plan.data_dir)?;
            }
            self.commit_switch(&plan, &installed, env)
        })();
        if committed.is_err() {
            if built_now {
                let _ = journal::remove_dir(&plan.final_dir);
            }
            if made_data {
                let _ = std::fs::remove_dir(&plan.data_dir);
            }
        }
        committed?;
        let change = if plan.previous.is_some() { Change::Updated } else { Change::Installed };
        Ok(outcome(pkg.name(), &plan.server_id, version, plan.previous.clone(), installed.method, change))
    }

    /// The server's environment, asked for before anything is built.
    fn collect_env(&self, plan: &Plan<'_>, opts: &InstallOptions) -> Result<BTreeMap<String, String>> {
        let empty = BTreeMap::new();
        let expand = |s: &str| plan.expand(s);
        let inputs = secrets::EnvInputs {
            given: &opts.env,
            existing: plan.existing.as_ref().map_or(&empty, |e| &e.environment),
            lookup: &*self.lookup,
            expand: &expand,
        };
        secrets::collect(plan.pkg.name(), &plan.release.install.env, &inputs, self.prompter)
    }

    fn commit_switch(
        &self,
        plan: &Plan<'_>,
        installed: &InstalledVersion,
        env: BTreeMap<String, String>,
    ) -> Result<()> {
        let pkg = plan.pkg;
        let (next, remove_dirs) = next_lock(&plan.lock, pkg.name(), &plan.server_id, installed.clone());
        let source = entry::source_json(pkg.name(), installed);
        let title = pkg.manifest.display_name();
        let entry =
            entry::build(plan.existing.as_ref(), &plan.server_id, title, &installed.launch, env, source);
        let servers = vec![ServerOp::Upsert { entry: Box::new(entry) }];
        let servers_file = Some(plan.servers_file.clone());
        journal::commit(self.home, &Journal { lock: next, servers_file, servers, remove_dirs })
    }

    /// Run the method in a fresh staging directory and rename the result into place.
    fn build(
        &self,
        pkg: &Package,
        release: &Release,
        method: &Method,
        final_dir: &Path,
        expand: &dyn Fn(&str) -> String,
        opts: &InstallOptions,
    ) -> Result<InstalledVersion> {
        let mut installed = skeleton(pkg, release, method);
        if let Method::Remote(r) = method {
            installed.launch.url = Some(r.url.clone());
            return Ok(installed);
        }
        let version = release.version.as_str();
        let args: Vec<String> =
            method.args().unwrap_or(&release.install.args).iter().map(|a| expand(a)).collect();
        let key = final_dir.parent().and_then(|p| p.file_name()).map(|k| k.to_string_lossy().into_owned());
        let key = key.unwrap_or_default();
        let staging = staging_dir(self.home).join(format!("{key}@{version}.{}", std::process::id()));
        std::fs::create_dir_all(&staging).at(&staging)?;
        let log = self.log_path(&key, version)?;
        let net = Net::new(opts.allow_insecure || self.repo_allows_insecure(&pkg.repository));
        let upstream_version = installed.upstream_version.clone();
        let b = Build {
            staging: &staging,
            final_dir,
            version,
            upstream_version: &upstream_version,
            args,
            log: &log,
            progress: &self.progress,
            net: &net,
        };
        let result = run_method(method, &b).and_then(|built| {
            installed.launch = built.launch;
            installed.checksum = built.checksum;
            installed.dir = Some(final_dir.to_owned());
            finish_staging(&staging, final_dir, &installed)
        });
        if result.is_err() {
            let _ = journal::remove_dir(&staging);
        }
        result.map(|()| installed)
    }

    fn log_path(&self, key: &str, version: &str) -> Result<PathBuf> {
        let dir = self.home.logs_dir();
        std::fs::create_dir_all(&dir).at(&dir)?;
        let log = dir.join(format!("install-{key}-{version}.log"));
        let _ = std::fs::remove_file(&log);
        Ok(log)
    }

    fn repo_allows_insecure(&self, repo: &str) -> bool {
        Repositories::load(self.home)
            .ok()
            .and_then(|r| r.get(repo).map(|c| c.allow_insecure))
            .unwrap_or(false)
    }
}

/// The lock record of a version before it is built.
fn skeleton(pkg: &Package, release: &Release, method: &Method) -> InstalledVersion {
    InstalledVersion {
        version: release.version.clone(),
        repository: pkg.repository.clone(),
        method: method.kind(),
        package: method.identifier().to_owned(),
        upstream_version: method.upstream_version(&release.version).to_owned(),
        checksum: None,
        installed_at: vmcp_config::civil::now_utc(),
        dir: None,
        launch: Launch {
            transport: method.transport().to_owned(),
            command: None,
            args: Vec::new(),
            url: None,
        },
    }
}

fn run_method(method: &Method, b: &Build<'_>) -> Result<Built> {
    match method {
        Method::Npm(m) => npm::install(m, b),
        Method::Pypi(m) => pypi::install(m, b),
        Method::Cargo(m) => cargo::install(m, b),
        Method::Binary(m) => binary::install(m, b),
        Method::Remote(_) => Err(RepoError::usage("remote servers have nothing to build")),
    }
}

/// Mark the staging directory as a finished install and rename it to its final place.
fn finish_staging(staging: &Path, final_dir: &Path, installed: &InstalledVersion) -> Result<()> {
    let marker = staging.join(INSTALL_MARKER);
    let text = serde_json::to_vec_pretty(installed).map_err(|e| RepoError::io(&marker, e.into()))?;
    std::fs::write(&marker, text).at(&marker)?;
    if let Some(parent) = final_dir.parent() {
        std::fs::create_dir_all(parent).at(parent)?;
    }
    journal::remove_dir(final_dir)?;
    std::fs::rename(staging, final_dir).at(final_dir)
}

pub(crate) fn parse_spec(spec: &str) -> Result<(PackageName, VersionReq)> {
    let (name, version) = split_spec(spec.trim());
    Ok((PackageName::parse(name)?, VersionReq::parse(version)?))
}

fn resolve(pkg: &Package, req: &VersionReq) -> Result<String> {
    let available = pkg.versions();
    req.resolve(&available).map(str::to_owned).ok_or_else(|| {
        RepoError::usage(format!(
            "no version of {} matches `{req}` (available: {})",
            pkg.name(),
            available.join(", ")
        ))
    })
}

/// The explicit method, else the preferred one if it can run, else the first that can.
fn choose_method<'r>(
    pkg: &Package,
    release: &'r Release,
    explicit: Option<MethodKind>,
    prefer: Option<MethodKind>,
) -> Result<&'r Method> {
    let find = |k: MethodKind| release.install.methods.iter().find(|m| m.kind() == k);
    if let Some(kind) = explicit {
        let kinds: Vec<&str> = release.install.methods.iter().map(|m| m.kind().as_str()).collect();
        let m = find(kind).ok_or_else(|| {
            RepoError::usage(format!(
                "{} has no `{kind}` install method (available: {})",
                pkg.name(),
                kinds.join(", ")
            ))
        })?;
        return runnable(m).map(|()| m);
    }
    if let Some(m) = prefer.and_then(find).filter(|m| runnable(m).is_ok()) {
        return Ok(m);
    }
    let mut why = Vec::new();
    for m in &release.install.methods {
        match runnable(m) {
            Ok(()) => return Ok(m),
            Err(e) => why.push(e.to_string()),
        }
    }
    Err(RepoError::usage(format!("no install method of {} can run here: {}", pkg.name(), why.join("; "))))
}

/// Whether the method's tools are on this machine.
fn runnable(m: &Method) -> Result<()> {
    use process::which;
    let need = |tools: &[&str], what: &str| {
        if tools.iter().all(|t| which(t).is_some()) {
            Ok(())
        } else {
            Err(RepoError::usage(format!("{} needs {what} on PATH", m.kind())))
        }
    };
    match m {
        Method::Npm(_) => need(&["npm", "node"], "`npm` and `node`"),
        Method::Pypi(_) if which("uv").is_some() => Ok(()),
        Method::Pypi(_) => need(&["python3"], "`uv` or `python3`"),
        Method::Cargo(_) => need(&["cargo"], "`cargo`"),
        Method::Binary(_) | Method::Remote(_) => Ok(()),
    }
}

/// The lock after making `installed` current; also the version directories that fall out
/// (only the current and the previous version are kept).
fn next_lock(
    lock: &LockFile,
    package: &str,
    server_id: &str,
    installed: InstalledVersion,
) -> (LockFile, Vec<PathBuf>) {
    let mut next = lock.clone();
    let version = installed.version.clone();
    let entry = next.packages.entry(package.to_owned()).or_insert_with(|| LockedPackage {
        server_id: server_id.to_owned(),
        current: version.clone(),
        previous: None,
        installs: Default::default(),
    });
    entry.server_id = server_id.to_owned();
    entry.installs.insert(version.clone(), installed);
    if entry.current != version {
        entry.previous = Some(std::mem::replace(&mut entry.current, version));
    }
    let keep = [Some(entry.current.clone()), entry.previous.clone()];
    let dropped: Vec<String> =
        entry.installs.keys().filter(|v| !keep.contains(&Some((*v).clone()))).cloned().collect();
    let mut remove = Vec::new();
    for v in dropped {
        if let Some(dir) = entry.installs.remove(&v).and_then(|i| i.dir) {
            remove.push(dir);
        }
    }
    (next, remove)
}

fn outcome(
    package: &str,
    server_id: &str,
    version: &str,
    previous: Option<String>,
    method: MethodKind,
    change: Change,
) -> Outcome {
    Outcome {
        package: package.to_owned(),
        server_id: server_id.to_owned(),
        version: version.to_owned(),
        previous,
        method,
        change,
        warnings: Vec::new(),
    }
}

pub use lifecycle::persona_references;
