//! `gateway.servers_file` in vmcp.toml, through the real binary: `mount`, `unmount`, `list`,
//! `config`, `start`, `install`, `update`, `rollback`, `uninstall` and the recovery of an
//! interrupted change all use the configured registry, never `registry/servers.json`; a broken
//! vmcp.toml stops each of them with an error naming the file.

mod support;

#[path = "../../vmcp-repository/tests/support/mod.rs"]
mod repo_fixture;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use support::{FIXTURE, Gateway, VMCP, succeeded};

const CONFIG: &str = "[gateway]\nservers_file = \"elsewhere/servers.json\"\n";

/// A home whose vmcp.toml sets `servers_file`, a local package source and a download server.
struct World {
    home: support::Home,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    server: repo_fixture::HttpFixture,
}

impl World {
    fn new(config: &str) -> Self {
        let home = support::Home::new();
        home.write_config(config);
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let server = repo_fixture::HttpFixture::files(files.clone());
        Self { home, files, server }
    }

    fn path(&self) -> &Path {
        self.home.path()
    }

    /// Where `servers_file = "elsewhere/servers.json"` points: next to vmcp.toml.
    fn configured(&self) -> PathBuf {
        self.path().join("config/elsewhere/servers.json")
    }

    fn default_file(&self) -> PathBuf {
        self.path().join("registry/servers.json")
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        support::repository_cli(VMCP, self.path(), args)
    }

    fn vmcp(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run vmcp")
    }

    /// Run and expect success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.vmcp(args))
    }

    /// Run in the directory `cwd` and expect success; returns stdout.
    fn ok_in(&self, cwd: &Path, args: &[&str]) -> String {
        succeeded(args, self.command(args).current_dir(cwd).output().expect("run vmcp"))
    }

    fn entry(&self, id: &str) -> Option<Value> {
        entry_in(&self.configured(), id)
    }

    /// Run the registered server's command and return what it prints.
    fn run_server(&self, id: &str) -> String {
        run_server_in(&self.configured(), id)
    }

    /// Publish `echo` with the given versions (newest first) in the local source `src`.
    fn publish(&self, versions: &[&str]) {
        let body = |v: &str| repo_fixture::script(&format!("echo-{v}"));
        let downloads = repo_fixture::serve_downloads(&self.files, &self.server.base, "echo", versions, body);
        let install = repo_fixture::binary_install("echo", &downloads, "");
        repo_fixture::write_package(&self.src().join("echo"), "echo", versions[0], &["test"], &install);
    }

    fn src(&self) -> PathBuf {
        self.path().join("src")
    }

    fn assert_default_file_absent(&self, after: &str) {
        assert!(!self.default_file().exists(), "{after} created {}", self.default_file().display());
    }
}

/// Server `id`'s entry in the registry `file` (`None` if absent; the file must exist).
fn entry_in(file: &Path, id: &str) -> Option<Value> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let registry: Value = serde_json::from_str(&text).unwrap();
    registry["servers"].as_array()?.iter().find(|s| s["id"] == id).cloned()
}

/// Run the command server `id` has in the registry `file` and return what it prints.
fn run_server_in(file: &Path, id: &str) -> String {
    support::run_entry(&entry_in(file, id).expect("server entry"))
}

#[test]
fn mount_list_config_and_start_use_the_configured_servers_file() {
    let w = World::new(CONFIG);
    let out = w.ok(&["mount", "echoer", "--", FIXTURE, "--name", "echoer"]);
    assert!(out.contains(&w.configured().display().to_string()), "{out}");
    assert_eq!(w.entry("echoer").unwrap()["command"], FIXTURE);
    w.assert_default_file_absent("mount");

    let listed: Value = serde_json::from_str(&w.ok(&["list", "--json"])).unwrap();
    assert_eq!(listed["builtin_default"], false);
    assert_eq!(listed["servers"][0]["id"], "echoer");
    let paths = w.ok(&["config", "paths"]);
    assert!(paths.contains(&format!("servers       {}\n", w.configured().display())), "{paths}");
    let validated = w.ok(&["config", "validate"]);
    assert!(
        validated.contains(&format!("ok: {} (1 servers enabled)", w.configured().display())),
        "{validated}"
    );

    // The gateway serves what `mount` wrote, not the built-in default.
    let mut gw = Gateway::spawn(w.path(), &["start"]);
    gw.initialize(json!({}));
    let names = gw.tool_names();
    assert!(names.iter().any(|n| n.starts_with("echoer__")), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("clock__")), "built-in default served: {names:?}");
    drop(gw);

    w.ok(&["unmount", "echoer"]);
    assert!(w.entry("echoer").is_none());
    w.assert_default_file_absent("unmount");
}

#[test]
fn install_update_rollback_uninstall_and_recovery_use_the_configured_servers_file() {
    let w = World::new(CONFIG);
    w.publish(&["1.0.0"]);
    w.ok(&["repo", "add", w.src().to_str().unwrap(), "--name", "local"]);
    let out = w.ok(&["install", "echo", "--yes"]);
    assert!(out.contains("installed echo 1.0.0"), "{out}");
    assert_eq!(w.run_server("echo"), "echo-1.0.0");
    w.assert_default_file_absent("install");

    w.publish(&["2.0.0", "1.0.0"]);
    w.ok(&["repo", "sync", "local"]);
    let lock_path = w.path().join("installed/lock.json");
    let before = (std::fs::read(w.configured()).unwrap(), std::fs::read(&lock_path).unwrap());
    w.ok(&["update", "echo"]);
    assert_eq!(w.run_server("echo"), "echo-2.0.0");
    w.assert_default_file_absent("update");

    // An update killed right after its commit point: the journal is on disk, the registry and
    // the lock are still the old ones. The next locked command finishes it, in the same file.
    let (entry, lock): (Value, Value) =
        (w.entry("echo").unwrap(), serde_json::from_slice(&std::fs::read(&lock_path).unwrap()).unwrap());
    let journal = json!({"lock": lock, "servers_file": w.configured(),
        "servers": [{"op": "upsert", "entry": entry}], "remove_dirs": []});
    std::fs::write(w.configured(), &before.0).unwrap();
    std::fs::write(&lock_path, &before.1).unwrap();
    std::fs::write(w.path().join("installed/journal.json"), journal.to_string()).unwrap();
    assert_eq!(w.run_server("echo"), "echo-1.0.0");
    let out = w.vmcp(&["repo", "sync", "local"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("finished an interrupted change"), "{stderr}");
    assert_eq!(w.run_server("echo"), "echo-2.0.0");
    assert!(!w.path().join("installed/journal.json").exists());
    w.assert_default_file_absent("recovery");

    assert!(w.ok(&["rollback", "echo"]).contains("rolled back echo 2.0.0 -> 1.0.0"));
    assert_eq!(w.run_server("echo"), "echo-1.0.0");
    w.ok(&["uninstall", "echo"]);
    assert!(w.entry("echo").is_none());
    w.assert_default_file_absent("uninstall");
}

#[test]
fn a_broken_vmcp_toml_stops_every_registry_command_naming_the_file() {
    let w = World::new("[gateway]\nservers_fil = \"elsewhere/servers.json\"\n");
    let commands: [&[&str]; 10] = [
        &["mount", "a", "--", "/bin/cat"],
        &["unmount", "a"],
        &["install", "time", "--yes"],
        &["update", "--all"],
        &["rollback", "time"],
        &["uninstall", "time"],
        &["list"],
        &["start"],
        &["config", "validate"],
        &["config", "paths"],
    ];
    for args in commands {
        let out = w.vmcp(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(
            stderr.contains("vmcp: ")
                && stderr.contains("config/vmcp.toml:2:1")
                && stderr.contains("unknown field `servers_fil`"),
            "{args:?}: {stderr}"
        );
        w.assert_default_file_absent(&args.join(" "));
    }
}

/// A vmcp.toml outside the home, `elsewhere.toml`, whose `servers_file = "reg/servers.json"`
/// means `reg/servers.json` next to it.
struct Elsewhere {
    dir: tempfile::TempDir,
}

impl Elsewhere {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("elsewhere.toml"), "[gateway]\nservers_file = \"reg/servers.json\"\n")
            .unwrap();
        Self { dir }
    }

    fn config(&self) -> String {
        self.dir.path().join("elsewhere.toml").display().to_string()
    }

    fn registry(&self) -> PathBuf {
        self.dir.path().join("reg/servers.json")
    }
}

#[test]
fn mount_unmount_list_and_start_with_config_use_that_files_servers_file() {
    // The home's own vmcp.toml names no servers_file: its registry is registry/servers.json.
    let w = World::new("");
    let other = Elsewhere::new();
    let config = other.config();
    let out = w.ok(&["mount", "--config", &config, "echoer", "--", FIXTURE, "--name", "echoer"]);
    assert!(out.contains(&other.registry().display().to_string()), "{out}");
    assert_eq!(entry_in(&other.registry(), "echoer").unwrap()["command"], FIXTURE);
    w.assert_default_file_absent("mount --config");

    let paths = w.ok(&["config", "paths", "--config", &config]);
    assert!(paths.contains(&format!("config        {config}\n")), "{paths}");
    assert!(paths.contains(&format!("servers       {}\n", other.registry().display())), "{paths}");
    let listed: Value = serde_json::from_str(&w.ok(&["list", "--json", "-c", &config])).unwrap();
    assert_eq!(listed["servers"][0]["id"], "echoer", "{listed}");
    let info: Value =
        serde_json::from_str(&w.ok(&["info", "echoer", "--json", "--config", &config])).unwrap();
    assert_eq!(info["target"], FIXTURE);
    // Without --config the home's registry (none yet: the built-in default) is untouched.
    let home_list: Value = serde_json::from_str(&w.ok(&["list", "--json"])).unwrap();
    assert_eq!(home_list["builtin_default"], true, "{home_list}");

    // A gateway started with the same --config serves what mount wrote.
    let mut gw = Gateway::spawn(w.path(), &["start", "--config", &config]);
    gw.initialize(json!({}));
    let names = gw.tool_names();
    assert!(names.iter().any(|n| n.starts_with("echoer__")), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("clock__")), "built-in default served: {names:?}");
    drop(gw);

    // A relative --config is relative to the working directory, its servers_file to the file.
    w.ok_in(other.dir.path(), &["unmount", "echoer", "--config", "elsewhere.toml"]);
    assert!(entry_in(&other.registry(), "echoer").is_none());
    w.assert_default_file_absent("unmount --config");
}

#[test]
fn install_update_rollback_uninstall_with_config_change_that_files_servers_file() {
    let w = World::new("");
    let other = Elsewhere::new();
    let config = other.config();
    w.publish(&["1.0.0"]);
    w.ok(&["repo", "add", w.src().to_str().unwrap(), "--name", "local"]);
    let out = w.ok(&["install", "echo", "--yes", "--config", &config]);
    assert!(out.contains("installed echo 1.0.0"), "{out}");
    assert_eq!(run_server_in(&other.registry(), "echo"), "echo-1.0.0");
    w.assert_default_file_absent("install --config");

    w.publish(&["2.0.0", "1.0.0"]);
    w.ok(&["repo", "sync", "local"]);
    w.ok(&["update", "echo", "--config", &config]);
    assert_eq!(run_server_in(&other.registry(), "echo"), "echo-2.0.0");
    assert!(w.ok(&["rollback", "echo", "-c", &config]).contains("rolled back echo 2.0.0 -> 1.0.0"));
    assert_eq!(run_server_in(&other.registry(), "echo"), "echo-1.0.0");
    w.assert_default_file_absent("update/rollback --config");
    w.ok(&["uninstall", "echo", "--config", &config]);
    assert!(entry_in(&other.registry(), "echo").is_none());
    w.assert_default_file_absent("uninstall --config");
}

#[test]
fn a_missing_or_broken_config_file_stops_every_command_that_takes_it() {
    let w = World::new("");
    let other = Elsewhere::new();
    let missing = other.dir.path().join("nope.toml").display().to_string();
    let broken = other.dir.path().join("broken.toml");
    std::fs::write(&broken, "[gateway]\nservers_file = 3\n").unwrap();
    let broken = broken.display().to_string();
    let directory = other.dir.path().display().to_string();
    let cases = [
        (missing.as_str(), "does not exist"),
        (broken.as_str(), "broken.toml:2:16"),
        (directory.as_str(), "cannot read"),
    ];
    for (config, says) in cases {
        let commands: [&[&str]; 11] = [
            &["mount", "a", "--config", config, "--", "/bin/cat"],
            &["unmount", "a", "--config", config],
            &["install", "time", "--yes", "--config", config],
            &["update", "--all", "--config", config],
            &["rollback", "time", "--config", config],
            &["uninstall", "time", "--config", config],
            &["list", "--config", config],
            &["info", "time", "--config", config],
            &["start", "--config", config],
            &["config", "validate", "--config", config],
            &["config", "paths", "--config", config],
        ];
        for args in commands {
            let out = w.vmcp(args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
            assert!(stderr.contains(config) && stderr.contains(says), "{args:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stdout));
            w.assert_default_file_absent(&args.join(" "));
            assert!(!other.registry().exists(), "{args:?} wrote {}", other.registry().display());
            assert!(!w.path().join("installed").exists(), "{args:?} touched installed/");
        }
    }
}
