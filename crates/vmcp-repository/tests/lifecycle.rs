//! Install, update, rollback and uninstall through the library, with binary packages served by
//! a local HTTP fixture; bad inputs leave nothing half-installed; secrets; id conflicts.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use support::*;
use vmcp_config::{Home, RawServer, RawServersFile, ServersFile};
use vmcp_repository::sources::{self, AddRequest, SourceKind};
use vmcp_repository::{Change, InstallOptions, Installer, LockFile, NoPrompt, Progress};

/// A home with a local repository `team` holding packages served as binaries by `server`.
struct World {
    _tmp: tempfile::TempDir,
    home: Home,
    src: PathBuf,
    server: HttpFixture,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl World {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path().join("home"));
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let server = HttpFixture::files(files.clone());
        Self { _tmp: tmp, home, src, server, files }
    }

    /// Publish `name` with one script download per version; `extra` is appended to install.json.
    fn publish(&self, name: &str, versions: &[&str], extra: &str) {
        let body = |v: &str| script(&format!("{name}-{v}"));
        let downloads = serve_downloads(&self.files, &self.server.base, name, versions, body);
        let install = binary_install(name, &downloads, extra);
        write_package(&self.src.join(name), name, versions[0], &["test"], &install);
    }

    fn add_repo(&self) {
        self.add_repo_with(true);
    }

    fn add_repo_with(&self, allow_insecure: bool) {
        let req = AddRequest {
            url: self.src.to_str().unwrap().into(),
            name: Some("team".into()),
            kind: Some(SourceKind::Local),
            allow_insecure,
        };
        sources::add_repository(&self.home, &req, &Progress::silent()).unwrap();
    }

    fn sync(&self) {
        for (_, r) in sources::sync_repositories(&self.home, Some("team"), &Progress::silent()).unwrap() {
            r.unwrap();
        }
    }

    fn installer(&self) -> Installer<'_> {
        Installer::new(&self.home, Progress::silent(), &NoPrompt)
            .with_env_lookup(|k| (k == "FROM_ENV").then(|| "env-secret".into()))
    }

    fn servers(&self) -> RawServersFile {
        ServersFile::load(&self.home.servers_file()).unwrap().map(|f| f.raw).unwrap_or_default()
    }

    fn entry(&self, id: &str) -> Option<RawServer> {
        self.servers().servers.into_iter().find(|s| s.id == id)
    }

    /// Run the registered command and return its output.
    fn run(&self, id: &str) -> String {
        let e = self.entry(id).expect("entry");
        let cmd = e.command.unwrap();
        assert!(Path::new(&cmd).starts_with(self.home.installed_dir()), "{cmd} is not in the install dir");
        let out = std::process::Command::new(&cmd).args(&e.args).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Nothing installed, registered, staged or left over.
    fn assert_pristine(&self) {
        assert!(LockFile::load(&self.home).unwrap().packages.is_empty());
        assert!(self.servers().servers.is_empty());
        let leftovers: Vec<_> = std::fs::read_dir(self.home.installed_dir())
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).filter(|n| n != ".staging").collect())
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
        let staged =
            std::fs::read_dir(self.home.installed_dir().join(".staging")).map(|d| d.count()).unwrap_or(0);
        assert_eq!(staged, 0);
    }
}

fn opts() -> InstallOptions {
    InstallOptions { allow_insecure: true, ..Default::default() }
}

#[test]
fn install_update_rollback_uninstall() {
    let w = World::new();
    w.publish("echo", &["2.0.0", "1.0.0"], "");
    w.add_repo();
    let i = w.installer();

    let o = i.install("echo@1.0.0", &opts()).unwrap();
    assert_eq!((o.change, o.version.as_str(), o.server_id.as_str()), (Change::Installed, "1.0.0", "echo"));
    assert_eq!(w.run("echo"), "echo-1.0.0");
    let source = w.entry("echo").unwrap().source.unwrap();
    assert_eq!(
        (
            source["package"].as_str(),
            source["version"].as_str(),
            source["repository"].as_str(),
            source["method"].as_str()
        ),
        (Some("echo"), Some("1.0.0"), Some("team"), Some("binary"))
    );
    let lock = LockFile::load(&w.home).unwrap();
    let inst = &lock.packages["echo"].installs["1.0.0"];
    assert!(inst.checksum.as_deref().unwrap().starts_with("sha256:"));
    assert_eq!(i.install("echo@1.0.0", &opts()).unwrap().change, Change::Unchanged);

    let results = i.update(Some("echo"), &opts()).unwrap();
    let o = results.into_iter().next().unwrap().1.unwrap();
    assert_eq!(
        (o.change, o.version.as_str(), o.previous.as_deref()),
        (Change::Updated, "2.0.0", Some("1.0.0"))
    );
    assert_eq!(w.run("echo"), "echo-2.0.0");
    assert!(w.home.installed_dir().join("echo/1.0.0").exists(), "old version kept for rollback");

    let o = i.rollback("echo").unwrap();
    assert_eq!((o.change, o.version.as_str()), (Change::RolledBack, "1.0.0"));
    assert_eq!(w.run("echo"), "echo-1.0.0");
    assert_eq!(LockFile::load(&w.home).unwrap().packages["echo"].previous.as_deref(), Some("2.0.0"));

    let o = i.uninstall("echo").unwrap();
    assert_eq!(o.change, Change::Removed);
    w.assert_pristine();
}

#[test]
fn update_all_keeps_only_current_and_previous() {
    let w = World::new();
    w.publish("echo", &["1.0.0"], "");
    w.add_repo();
    let i = w.installer();
    i.install("echo", &opts()).unwrap();
    for (n, versions) in [(2, ["2.0.0", "1.0.0"].as_slice()), (3, ["3.0.0", "2.0.0", "1.0.0"].as_slice())] {
        w.publish("echo", versions, "");
        w.sync();
        let results = i.update(None, &opts()).unwrap();
        assert_eq!(results[0].1.as_ref().unwrap().version, format!("{n}.0.0"));
    }
    let dirs: Vec<_> = std::fs::read_dir(w.home.installed_dir().join("echo"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    assert!(!w.home.installed_dir().join("echo/1.0.0").exists());
    let o = i.update(Some("echo"), &opts()).unwrap().remove(0).1.unwrap();
    assert_eq!(o.change, Change::Unchanged);
}

#[test]
fn bad_inputs_fail_clearly_and_leave_nothing() {
    let w = World::new();
    w.publish("echo", &["1.0.0"], "");
    w.publish("tampered", &["1.0.0"], "");
    w.publish("needs-token", &["1.0.0"], r#","env":[{"name":"API_TOKEN","required":true,"secret":true}]"#);
    w.files.lock().unwrap().insert("/dl/tampered/1.0.0".into(), script("evil"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let body = script("x");
    let dead = binary_install("dead", &[("1.0.0", format!("http://{closed}/x"), sha256_hex(&body))], "");
    write_package(&w.src.join("dead"), "dead", "1.0.0", &[], &dead);
    write_package(&w.src.join("malformed"), "malformed", "1.0.0", &[], "{ not json");
    w.add_repo();
    let i = w.installer();
    let cases = [
        ("nonexistent", "no package `nonexistent`"),
        ("echo@9.9.9", "no version of echo matches `9.9.9` (available: 1.0.0)"),
        ("malformed", "no package `malformed`"),
        ("../../etc/passwd", "invalid package name"),
        ("echo;rm -rf ~", "invalid package name"),
        ("$(reboot)", "invalid package name"),
        ("tampered", "checksum mismatch"),
        ("dead", "cannot fetch"),
        ("needs-token", "--env API_TOKEN="),
    ];
    for (spec, want) in cases {
        let err = i.install(spec, &opts()).unwrap_err().to_string();
        assert!(err.contains(want), "{spec}: {err}");
        w.assert_pristine();
    }
}

#[test]
fn plain_http_downloads_need_the_operators_permission() {
    let w = World::new();
    w.publish("echo", &["1.0.0"], "");
    w.add_repo_with(false);
    let err = w.installer().install("echo", &InstallOptions::default()).unwrap_err().to_string();
    assert!(err.contains("refusing plain http") && err.contains("--allow-insecure"), "{err}");
    w.assert_pristine();
    w.installer().install("echo", &opts()).unwrap();
}

#[test]
fn secrets_from_the_environment_are_references_flags_are_literals() {
    let w = World::new();
    let env = r#","env":[{"name":"FROM_ENV","required":true,"secret":true},{"name":"FROM_FLAG","required":true,"secret":true},{"name":"OPTIONAL"},{"name":"WITH_DEFAULT","default":"{data_dir}/db"}]"#;
    w.publish("secretive", &["1.0.0"], env);
    w.add_repo();
    let o = InstallOptions { env: vec![("FROM_FLAG".into(), "p@$$word".into())], ..opts() };
    w.installer().install("secretive", &o).unwrap();
    let e = w.entry("secretive").unwrap().environment;
    assert_eq!(e["FROM_ENV"], "${FROM_ENV}");
    assert_eq!(e["FROM_FLAG"], "p@$$$$word");
    assert!(!e.contains_key("OPTIONAL"));
    assert_eq!(e["WITH_DEFAULT"], format!("{}/db", w.home.data_dir().join("secretive").display()));
    assert!(w.home.data_dir().join("secretive").is_dir());
    let everything = std::fs::read_to_string(w.home.servers_file()).unwrap()
        + &std::fs::read_to_string(w.home.root().join("installed/lock.json")).unwrap();
    assert!(!everything.contains("env-secret"), "a value from the environment was written out");
    let expanded = vmcp_config::expand_env(&e["FROM_FLAG"], |_| None).unwrap();
    assert_eq!(expanded, "p@$$word");
}

#[test]
fn server_id_conflicts_are_refused_until_an_id_is_given() {
    let w = World::new();
    w.publish("echo", &["1.0.0"], "");
    w.add_repo();
    let hand_written = RawServer {
        id: "echo".into(),
        transport: "stdio".into(),
        command: Some("/bin/true".into()),
        ..Default::default()
    };
    ServersFile::save(
        &w.home.servers_file(),
        &RawServersFile { version: "1.0.0".into(), servers: vec![hand_written] },
    )
    .unwrap();
    let err = w.installer().install("echo", &opts()).unwrap_err().to_string();
    assert!(err.contains("pass --id"), "{err}");
    let o =
        w.installer().install("echo", &InstallOptions { server_id: Some("echo2".into()), ..opts() }).unwrap();
    assert_eq!(o.server_id, "echo2");
    assert_eq!(w.servers().servers.len(), 2);
    assert_eq!(w.run("echo2"), "echo-1.0.0");
}

#[test]
fn remote_packages_register_a_url_and_uninstall_warns_about_personas() {
    let w = World::new();
    write_package(
        &w.src.join("cloud"),
        "cloud",
        "1.0.0",
        &[],
        r#"{"methods":[{"type":"remote","url":"https://mcp.example/mcp"}]}"#,
    );
    w.add_repo();
    w.installer().install("cloud", &opts()).unwrap();
    let e = w.entry("cloud").unwrap();
    assert_eq!(
        (e.transport.as_str(), e.url.as_deref(), e.command),
        ("http", Some("https://mcp.example/mcp"), None)
    );
    std::fs::create_dir_all(w.home.personas_dir()).unwrap();
    std::fs::write(w.home.personas_dir().join("dev.json"), r#"{"servers":["cloud"]}"#).unwrap();
    let o = w.installer().uninstall("cloud").unwrap();
    assert!(o.warnings.iter().any(|m| m.contains("persona `dev`")), "{:?}", o.warnings);
    w.assert_pristine();
}

#[test]
fn leftovers_of_a_killed_run_are_cleaned_and_a_committed_journal_is_finished() {
    let w = World::new();
    w.publish("echo", &["1.0.0"], "");
    w.add_repo();
    let staged = w.home.installed_dir().join(".staging/echo@1.0.0.999");
    let orphan = w.home.installed_dir().join("echo/1.0.0");
    for d in [&staged, &orphan] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(orphan.join(".vmcp-install.json"), "{}").unwrap();
    let o = w.installer().install("echo", &opts()).unwrap();
    assert_eq!(o.change, Change::Installed);
    assert!(!staged.exists());
    assert_eq!(w.run("echo"), "echo-1.0.0");
}

#[test]
fn concurrent_installs_are_serialized_and_lose_no_entry() {
    let w = World::new();
    let names = ["one", "two", "three", "four"];
    for n in names {
        w.publish(n, &["1.0.0"], "");
    }
    w.add_repo();
    std::thread::scope(|s| {
        for n in names {
            let w = &w;
            s.spawn(move || w.installer().install(n, &opts()).unwrap());
        }
    });
    assert_eq!(w.servers().servers.len(), 4);
    assert_eq!(LockFile::load(&w.home).unwrap().packages.len(), 4);
    for n in names {
        assert_eq!(w.run(n), format!("{n}-1.0.0"));
    }
}
