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
use support::{FIXTURE, Gateway, VMCP};

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

    fn vmcp(&self, args: &[&str]) -> Output {
        std::process::Command::new(VMCP)
            .args(args)
            .env("VMCP_HOME", self.path())
            .env("VMCP_ALLOW_INSECURE_LOCALHOST", "1")
            .env_remove("VMCP_LOG")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run vmcp")
    }

    /// Run and expect success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.vmcp(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "vmcp {args:?} failed ({}):\n{stderr}", out.status);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn registry(&self) -> Value {
        let text = std::fs::read_to_string(self.configured()).expect("the configured registry");
        serde_json::from_str(&text).unwrap()
    }

    fn entry(&self, id: &str) -> Option<Value> {
        self.registry()["servers"].as_array()?.iter().find(|s| s["id"] == id).cloned()
    }

    /// Run the registered server's command and return what it prints.
    fn run_server(&self, id: &str) -> String {
        let e = self.entry(id).expect("server entry");
        let out = std::process::Command::new(e["command"].as_str().unwrap()).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
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
