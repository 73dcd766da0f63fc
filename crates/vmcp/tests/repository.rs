//! `vmcp repo|search|info|install|update|rollback|uninstall` through the real binary, against a
//! local git repository, an HTTP index and an official-registry API fixture on 127.0.0.1;
//! bad input; and an install killed mid-download.

mod support;

#[path = "../../vmcp-repository/tests/support/mod.rs"]
mod repo_fixture;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use repo_fixture::*;
use serde_json::{Value, json};
use support::{VMCP, eventually_within, succeeded};

/// How long to wait for a download or npm to get somewhere (not a timing goal).
const SLOW_WAIT: Duration = Duration::from_secs(30);

/// A temporary home plus a package source directory and a download server.
struct World {
    tmp: tempfile::TempDir,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    slow: Arc<AtomicBool>,
    /// While set, npm tarball requests get no answer.
    hold: Arc<AtomicBool>,
    server: HttpFixture,
}

impl World {
    fn new() -> Self {
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let (slow, hold) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (f, s, h) = (files.clone(), slow.clone(), hold.clone());
        let server = HttpFixture::start(move |req| {
            let key = match req.query.get("cursor") {
                Some(c) => format!("{}?cursor={c}", req.path),
                None => req.path.clone(),
            };
            while h.load(Ordering::SeqCst) && req.path.ends_with(".tgz") {
                std::thread::sleep(Duration::from_millis(10));
            }
            let Some(body) = f.lock().unwrap().get(&key).cloned() else { return Resp::status(404) };
            let mut r = Resp::ok(body);
            if s.load(Ordering::SeqCst) && req.path.starts_with("/dl/") {
                r.chunk_delay = Some(Duration::from_millis(50));
            }
            r
        });
        Self { tmp: tempfile::tempdir().unwrap(), files, slow, hold, server }
    }

    fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    fn src(&self) -> PathBuf {
        self.tmp.path().join("src")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = support::repository_cli(VMCP, &self.home(), args);
        cmd.env("npm_config_registry", format!("{}/npm/", self.server.base))
            .env("npm_config_cache", self.tmp.path().join("npm-cache"))
            .env("npm_config_update_notifier", "false");
        cmd
    }

    fn vmcp(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run vmcp")
    }

    /// Run and expect success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.vmcp(args))
    }

    /// Run and expect exit `code`; returns the error: stderr from its `vmcp: ` line on (progress
    /// lines may come first).
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.vmcp(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "vmcp {args:?}: {stderr}");
        let start = stderr.find("\nvmcp: ").map(|i| i + 1).filter(|_| !stderr.starts_with("vmcp: "));
        let error = &stderr[start.unwrap_or(0)..];
        assert!(error.starts_with("vmcp: "), "{stderr}");
        error.to_owned()
    }

    /// A package `name` in the git source with one script download per version.
    fn publish(&self, dir: &Path, name: &str, versions: &[&str], body: impl Fn(&str) -> Vec<u8>) {
        let downloads = serve_downloads(&self.files, &self.server.base, name, versions, body);
        write_package(
            &dir.join(name),
            name,
            versions[0],
            &["test", "cli"],
            &binary_install(name, &downloads, ""),
        );
    }

    fn servers(&self) -> Value {
        let text = std::fs::read_to_string(self.home().join("registry/servers.json"))
            .unwrap_or_else(|_| "{}".into());
        serde_json::from_str(&text).unwrap()
    }

    fn entry(&self, id: &str) -> Option<Value> {
        self.servers()["servers"].as_array()?.iter().find(|s| s["id"] == id).cloned()
    }

    /// Start the registered server's command and return what it prints.
    fn run_server(&self, id: &str) -> String {
        let e = self.entry(id).expect("server entry");
        // The program, or the script an interpreter (node) runs, is the installed one.
        let installed = |p: &Value| {
            p.as_str().is_some_and(|p| Path::new(p).starts_with(self.home().join("installed/servers")))
        };
        assert!(installed(&e["command"]) || installed(&e["args"][0]), "{e}");
        support::run_entry(&e)
    }

    fn state(&self) -> (String, String) {
        let read = |p: &str| std::fs::read_to_string(self.home().join(p)).unwrap_or_default();
        (read("registry/servers.json"), read("installed/lock.json"))
    }
}

fn script_for(name: &str) -> impl Fn(&str) -> Vec<u8> + '_ {
    move |v: &str| script(&format!("{name}-{v}"))
}

fn registry_page(servers: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({"servers": servers, "metadata": {"count": servers.len()}})).unwrap()
}

fn registry_server(name: &str, version: &str, package: &str) -> Value {
    json!({"server": {"name": name, "description": format!("{name} (registry)"), "version": version,
        "packages": [{"registryType": "npm", "identifier": package, "version": version, "transport": {"type": "stdio"}}],
        "remotes": [{"type": "streamable-http", "url": "https://remote.example/mcp"}]},
        "_meta": {"io.modelcontextprotocol.registry/official": {"status": "active", "isLatest": true}}})
}

#[test]
fn sources_search_info_install_update_rollback_uninstall() {
    let w = World::new();
    let git_src = w.src().join("git");
    w.publish(&git_src, "echo", &["1.0.0"], script_for("echo"));
    commit_all(&git_src, "v1");
    w.files.lock().unwrap().insert(
        "/web/index.json".into(),
        serde_json::to_vec(
            &json!({"format": 1, "packages": [{"manifest": {"name": "webby", "version": "0.1.0",
            "description": "Served from an HTTP index", "tags": ["web"]},
            "install": {"methods": [{"type": "remote", "url": "https://webby.example/mcp"}]}}]}),
        )
        .unwrap(),
    );
    let page = registry_page(&[registry_server("io.github.acme/weather", "1.0.0", "weather-mcp")]);
    w.files.lock().unwrap().insert("/v0/servers".into(), page);

    let out = w.ok(&["repo", "add", git_src.to_str().unwrap(), "--name", "team"]);
    assert!(out.contains("added repository team (git") && out.contains("1 packages (1 new"), "{out}");
    w.ok(&["repo", "add", &format!("{}/web", w.server.base), "--name", "web", "--type", "http"]);
    w.ok(&["repo", "add", &w.server.base, "--name", "official", "--type", "registry"]);
    let repos: Value = serde_json::from_str(&w.ok(&["repo", "list", "--json"])).unwrap();
    let names: Vec<&str> = repos.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["team", "web", "official", "builtin"]);

    let hits: Value = serde_json::from_str(&w.ok(&["search", "ecoh", "--json"])).unwrap();
    assert_eq!((hits[0]["name"].as_str(), hits[0]["match"].as_str()), (Some("echo"), Some("typo")));
    let hits: Value =
        serde_json::from_str(&w.ok(&["search", "--transport", "http", "--repo", "official", "--json"]))
            .unwrap();
    assert_eq!(hits[0]["name"], "io.github.acme/weather");
    let table = w.ok(&["search", "time"]);
    assert!(
        table.starts_with("NAME") && table.lines().any(|l| l.starts_with("time ") && l.contains("builtin")),
        "{table}"
    );
    let info = w.ok(&["info", "echo"]);
    assert!(
        info.contains("versions:   1.0.0") && info.contains("binary") && info.contains("installed:  no"),
        "{info}"
    );

    let out = w.ok(&["install", "echo", "--yes"]);
    assert!(out.contains("installed echo 1.0.0 (binary) as server `echo`"), "{out}");
    assert_eq!(w.run_server("echo"), "echo-1.0.0");
    assert_eq!(
        w.entry("echo").unwrap()["source"],
        json!({"package": "echo", "version": "1.0.0", "repository": "team", "method": "binary"})
    );

    w.publish(&git_src, "echo", &["2.0.0", "1.0.0"], script_for("echo"));
    commit_all(&git_src, "v2");
    assert!(w.ok(&["repo", "sync", "team"]).contains("1 updated"));
    let out = w.ok(&["update", "echo"]);
    assert!(out.contains("updated echo 1.0.0 -> 2.0.0"), "{out}");
    assert_eq!(w.run_server("echo"), "echo-2.0.0");
    assert!(w.ok(&["update", "--all"]).contains("already installed"));
    let out = w.ok(&["rollback", "echo"]);
    assert!(out.contains("rolled back echo 2.0.0 -> 1.0.0"), "{out}");
    assert_eq!(w.run_server("echo"), "echo-1.0.0");
    let info: Value = serde_json::from_str(&w.ok(&["info", "echo", "--json"])).unwrap();
    assert_eq!(
        info["package"]["installed"],
        json!({"server_id": "echo", "current": "1.0.0", "previous": "2.0.0"})
    );

    w.ok(&["install", "webby"]);
    assert_eq!(w.entry("webby").unwrap()["url"], "https://webby.example/mcp");
    // A persona made with the persona CLI reaches the server: uninstall warns.
    w.ok(&["persona", "create", "dev"]);
    w.ok(&["persona", "dev", "enable", "echo"]);
    let out = w.vmcp(&["uninstall", "echo"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("uninstalled echo"),
        "{out:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("persona `dev` still references server `echo`"), "{stderr}");
    assert!(w.entry("echo").is_none() && !w.home().join("installed/servers/echo").exists());
    w.ok(&["repo", "remove", "web"]);
    assert!(!w.ok(&["repo", "list"]).contains("web "));
    // A failed update is reported once: the command's error, not a second copy before it.
    let out = w.vmcp(&["update", "webby"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.matches("cannot update webby").count() == 1, "{stderr}");
}

#[test]
fn bad_input_gets_a_clear_error_and_leaves_nothing() {
    let w = World::new();
    let src = w.src().join("local");
    w.publish(&src, "echo", &["1.0.0"], script_for("echo"));
    w.publish(&src, "tampered", &["1.0.0"], script_for("tampered"));
    w.files.lock().unwrap().insert("/dl/tampered/1.0.0".into(), script("evil"));
    write_package(
        &src.join("broken"),
        "broken",
        "1.0.0",
        &[],
        "{\"methods\": [{\"type\": \"shell\", \"cmd\": \"curl | sh\"}]}",
    );
    // Hostile packages inside a repository: a name that climbs out of installed/servers, an npm
    // package that is a shell command, and a MANIFEST.md without front matter.
    let npm = |package: &str| format!(r#"{{"methods": [{{"type": "npm", "package": "{package}"}}]}}"#);
    write_package(&src.join("climber"), "../../climber", "1.0.0", &[], &npm("climber"));
    write_package(&src.join("injector"), "injector", "1.0.0", &[], &npm("x; touch /tmp/pwned"));
    write_package(&src.join("shapeless"), "shapeless", "1.0.0", &[], &npm("shapeless"));
    std::fs::write(src.join("shapeless/MANIFEST.md"), "# shapeless\nno front matter\n").unwrap();
    let out = w.vmcp(&["repo", "add", src.to_str().unwrap(), "--name", "local"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 packages (2 new, 0 updated, 0 removed, 4 invalid")
    );
    assert!(stderr.starts_with("syncing local (local)..."), "no sync progress: {stderr}");
    for skipped in ["broken", "injector", "shapeless"] {
        assert!(stderr.contains(&format!("skipped {skipped}")), "{skipped}: {stderr}");
    }
    assert!(stderr.contains("invalid package name `../../climber`"), "{stderr}");

    let before = w.state();
    for (args, code, want) in [
        (vec!["install", "nope"], 64, "no package `nope`"),
        (vec!["install", "echo@7.0.0"], 64, "available: 1.0.0"),
        (vec!["install", "broken"], 64, "no package `broken`"),
        (vec!["install", "../../etc/passwd"], 64, "invalid package name"),
        (vec!["install", "echo;reboot"], 64, "invalid package name"),
        (vec!["install", "tampered"], 2, "checksum mismatch"),
        (vec!["install", "echo", "--method", "npm"], 64, "no `npm` install method"),
        (
            vec!["repo", "add", "http://127.0.0.1:9/nothing", "--name", "down", "--type", "http"],
            2,
            "cannot fetch",
        ),
        (
            vec!["repo", "add", "https://example.invalid/x.git", "--name", "../x"],
            64,
            "invalid repository name",
        ),
        (vec!["install", "injector"], 64, "no package `injector`"),
        (vec!["install", "shapeless"], 64, "no package `shapeless`"),
        (vec!["update"], 64, "--all"),
        (vec!["rollback", "echo"], 64, "not installed"),
    ] {
        let stderr = w.fails(&args, code);
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert_eq!(w.state(), before, "{args:?} changed state");
    }
    // Plain http needs the operator's word, even to 127.0.0.1.
    let url = format!("{}/dl/echo/1.0.0", w.server.base);
    let out = w
        .command(&["repo", "add", &url, "--name", "plain", "--type", "http"])
        .env_remove("VMCP_ALLOW_INSECURE_LOCALHOST")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("refusing plain http") && stderr.contains("--allow-insecure"), "{stderr}");
    assert_eq!(w.state(), before);
    assert!(!w.ok(&["repo", "list"]).contains("plain"));
    let installed: Vec<_> =
        std::fs::read_dir(w.home().join("installed/servers")).unwrap().filter_map(|e| e.ok()).collect();
    assert!(installed.iter().all(|e| e.file_name() == ".staging"), "{installed:?}");
}

#[test]
fn a_missing_required_secret_fails_before_installing() {
    let w = World::new();
    let src = w.src().join("local");
    let body = script("secret");
    w.files.lock().unwrap().insert("/dl/s".into(), body.clone());
    let install = binary_install(
        "secretive",
        &[("1.0.0", format!("{}/dl/s", w.server.base), sha256_hex(&body))],
        r#","env":[{"name":"VMCP_TEST_TOKEN","required":true,"secret":true,"description":"API token"}]"#,
    );
    write_package(&src.join("secretive"), "secretive", "1.0.0", &[], &install);
    w.ok(&["repo", "add", src.to_str().unwrap(), "--name", "local"]);
    let stderr = w.fails(&["install", "secretive", "--yes"], 64);
    assert!(stderr.contains("--env VMCP_TEST_TOKEN=") && stderr.contains("API token"), "{stderr}");
    assert_eq!(w.state().0, "");
    w.ok(&["install", "secretive", "--yes", "--env", "VMCP_TEST_TOKEN=s3cret"]);
    assert_eq!(w.entry("secretive").unwrap()["environment"]["VMCP_TEST_TOKEN"], "s3cret");
    w.ok(&["uninstall", "secretive"]);
    let out =
        w.command(&["install", "secretive", "--yes"]).env("VMCP_TEST_TOKEN", "from-env").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!printed.contains("from-env"), "secret value printed: {printed}");
    assert_eq!(w.entry("secretive").unwrap()["environment"]["VMCP_TEST_TOKEN"], "${VMCP_TEST_TOKEN}");
    assert!(!w.state().0.contains("from-env") && !w.state().1.contains("from-env"));
}

/// Wait for a partial download under the staging directory.
fn wait_for_partial_download(home: &Path) {
    let staging = home.join("installed/servers/.staging");
    eventually_within("a partial download", SLOW_WAIT, || {
        let partial = std::fs::read_dir(&staging)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path().join("bin/slow.part"));
        partial.and_then(|p| std::fs::metadata(p).ok()).is_some_and(|m| m.len() > 4096)
    });
}

/// Run `args` against a slow download and `kill -9` it once part of the file has arrived.
fn kill_mid_download(w: &World, args: &[&str]) {
    w.slow.store(true, Ordering::SeqCst);
    let mut child = w.command(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for_partial_download(&w.home());
    child.kill().unwrap();
    child.wait().unwrap();
    w.slow.store(false, Ordering::SeqCst);
}

#[test]
fn an_install_or_update_killed_mid_download_leaves_the_previous_state_and_a_rerun_succeeds() {
    let w = World::new();
    let src = w.src().join("local");
    let big = |v: &str| {
        let mut b = script(&format!("slow-{v}"));
        b.extend(std::iter::repeat_n(b'#', 400 * 1024));
        b.push(b'\n');
        b
    };
    w.publish(&src, "slow", &["1.0.0"], big);
    w.ok(&["repo", "add", src.to_str().unwrap(), "--name", "local"]);
    let empty = w.state();
    kill_mid_download(&w, &["install", "slow"]);
    assert_eq!(w.state(), empty, "a killed install changed servers.json or lock.json");
    w.ok(&["install", "slow"]);
    w.publish(&src, "slow", &["2.0.0", "1.0.0"], big);
    w.ok(&["repo", "sync"]);
    let before = w.state();

    kill_mid_download(&w, &["update", "slow"]);

    assert_eq!(w.state(), before, "a killed update changed servers.json or lock.json");
    assert_eq!(w.run_server("slow"), "slow-1.0.0");
    assert!(!w.home().join("installed/servers/slow/2.0.0").exists());

    let out = w.ok(&["update", "slow"]);
    assert!(out.contains("updated slow 1.0.0 -> 2.0.0"), "{out}");
    assert_eq!(w.run_server("slow"), "slow-2.0.0");
    let staged =
        std::fs::read_dir(w.home().join("installed/servers/.staging")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(staged, 0, "staging not cleaned");
}

/// `index.json` with one inline binary package `forecast` offering `versions` (newest first).
fn serve_http_index(w: &World, versions: &[&str]) {
    let downloads = serve_downloads(&w.files, &w.server.base, "forecast", versions, script_for("forecast"));
    let install: Value = serde_json::from_str(&binary_install("forecast", &downloads, "")).unwrap();
    let manifest = json!({"name": "forecast", "version": versions[0], "description": "Weather forecasts",
        "tags": ["weather"], "license": "MIT"});
    let index = json!({"format": 1, "packages": [{"manifest": manifest, "install": install}]});
    w.files.lock().unwrap().insert("/web/index.json".into(), serde_json::to_vec(&index).unwrap());
}

#[test]
fn an_http_index_goes_through_sync_search_info_install_update_rollback_uninstall() {
    let w = World::new();
    serve_http_index(&w, &["1.0.0"]);
    let web = format!("{}/web", w.server.base);
    let out = w.vmcp(&["repo", "add", &web, "--name", "web", "--type", "http"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("syncing web"), "no sync progress: {out:?}");

    let hits: Value = serde_json::from_str(&w.ok(&["search", "forcast", "--repo", "web", "--json"])).unwrap();
    assert_eq!((hits[0]["name"].as_str(), hits[0]["match"].as_str()), (Some("forecast"), Some("typo")));
    assert!(w.ok(&["info", "forecast"]).contains("versions:   1.0.0"));
    assert!(w.ok(&["install", "forecast", "--yes"]).contains("installed forecast 1.0.0 (binary)"));
    assert_eq!(w.run_server("forecast"), "forecast-1.0.0");

    serve_http_index(&w, &["2.0.0", "1.0.0"]);
    assert!(w.ok(&["repo", "sync", "web"]).contains("1 updated"));
    let info = w.ok(&["info", "forecast"]);
    assert!(info.contains("versions:   2.0.0, 1.0.0"), "{info}");
    assert!(w.ok(&["update", "forecast"]).contains("updated forecast 1.0.0 -> 2.0.0"));
    assert_eq!(w.run_server("forecast"), "forecast-2.0.0");
    assert!(w.ok(&["rollback", "forecast"]).contains("rolled back forecast 2.0.0 -> 1.0.0"));
    assert_eq!(w.run_server("forecast"), "forecast-1.0.0");
    assert!(w.ok(&["uninstall", "forecast"]).contains("uninstalled forecast"));
    assert!(w.entry("forecast").is_none() && !w.home().join("installed/servers/forecast").exists());
    assert!(!w.state().1.contains("forecast"), "lock.json still names forecast");
}

/// An npm tarball for `weather-mcp@version` whose `postinstall` would create `mark`.
fn npm_tarball(w: &World, version: &str, mark: &Path) -> (Vec<u8>, Value) {
    let dir = w.tmp.path().join(format!("npm-src-{version}"));
    std::fs::create_dir_all(dir.join("package")).unwrap();
    let postinstall = format!("node -e \"require('fs').writeFileSync('{}', 'ran')\"", mark.display());
    let meta = json!({"name": "weather-mcp", "version": version, "bin": {"weather-mcp": "index.js"},
        "scripts": {"postinstall": postinstall}});
    std::fs::write(dir.join("package/package.json"), meta.to_string()).unwrap();
    std::fs::write(dir.join("package/index.js"), format!("console.log('weather-{version}')\n")).unwrap();
    let tgz = dir.join("package.tgz");
    let status =
        Command::new("tar").arg("czf").arg(&tgz).arg("-C").arg(&dir).arg("package").status().unwrap();
    assert!(status.success());
    (std::fs::read(tgz).unwrap(), meta)
}

/// Publish `versions` of `weather-mcp` on the fixture's npm registry (`/npm/`).
fn publish_npm(w: &World, versions: &[&str], mark: &Path) {
    let mut all = serde_json::Map::new();
    for v in versions {
        let (tgz, mut meta) = npm_tarball(w, v, mark);
        let path = format!("/npm/weather-mcp/-/weather-mcp-{v}.tgz");
        meta["dist"] = json!({"tarball": format!("{}{path}", w.server.base)});
        all.insert((*v).to_owned(), meta);
        w.files.lock().unwrap().insert(path, tgz);
    }
    let packument = json!({"name": "weather-mcp", "dist-tags": {"latest": versions[0]}, "versions": all});
    w.files.lock().unwrap().insert("/npm/weather-mcp".into(), serde_json::to_vec(&packument).unwrap());
}

/// The registry API: `weather` at `versions` on the first page, a remote-only server on the
/// second (reached through `nextCursor`).
fn serve_registry(w: &World, versions: &[&str]) {
    let first: Vec<Value> = versions
        .iter()
        .map(|v| {
            let mut s = registry_server("io.github.acme/weather", v, "weather-mcp");
            s["server"].as_object_mut().unwrap().remove("remotes");
            s
        })
        .collect();
    let page = json!({"servers": first, "metadata": {"nextCursor": "p2"}});
    let second = json!({"name": "io.github.acme/clock", "description": "A clock in the cloud", "version": "0.1.0",
        "remotes": [{"type": "streamable-http", "url": "https://clock.example/mcp"}]});
    let mut files = w.files.lock().unwrap();
    files.insert("/v0/servers".into(), serde_json::to_vec(&page).unwrap());
    let page = json!({"servers": [{"server": second}], "metadata": {"count": 1}});
    files.insert("/v0/servers?cursor=p2".into(), serde_json::to_vec(&page).unwrap());
}

impl World {
    /// A world whose repository `official` is the registry API fixture, serving `weather` 1.0.0
    /// from the local npm registry; and the file its `postinstall` script would create.
    fn with_registry_api() -> (Self, PathBuf) {
        let w = World::new();
        let mark = w.tmp.path().join("postinstall-ran");
        publish_npm(&w, &["1.0.0"], &mark);
        serve_registry(&w, &["1.0.0"]);
        w.ok(&["repo", "add", &w.server.base, "--name", "official", "--type", "registry"]);
        (w, mark)
    }
}

/// The official registry's API fixture with an npm package on a local npm registry: the whole
/// lifecycle, and the package's `postinstall` script never runs.
#[test]
fn a_registry_api_source_installs_from_npm_without_running_package_scripts() {
    let (w, mark) = World::with_registry_api();
    assert_eq!(
        w.server
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.query.get("cursor").is_some_and(|c| c == "p2"))
            .count(),
        1
    );
    let hits: Value = serde_json::from_str(&w.ok(&["search", "--repo", "official", "--json"])).unwrap();
    let names: Vec<&str> = hits.as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["io.github.acme/clock", "io.github.acme/weather"]);
    let info = w.ok(&["info", "io.github.acme/weather"]);
    assert!(info.contains("npm") && info.contains("weather-mcp"), "{info}");

    let out = w.ok(&["install", "io.github.acme/weather", "--yes"]);
    assert!(out.contains("installed io.github.acme/weather 1.0.0 (npm) as server `weather`"), "{out}");
    assert_eq!(w.run_server("weather"), "weather-1.0.0");

    publish_npm(&w, &["2.0.0", "1.0.0"], &mark);
    serve_registry(&w, &["2.0.0", "1.0.0"]);
    w.ok(&["repo", "sync", "official"]);
    let incremental = w.server.log.lock().unwrap().iter().any(|r| r.query.contains_key("updated_since"));
    assert!(incremental, "the second sync did not ask for changes only");
    assert!(w.ok(&["update", "weather"]).contains("updated io.github.acme/weather 1.0.0 -> 2.0.0"));
    assert_eq!(w.run_server("weather"), "weather-2.0.0");
    assert!(w.ok(&["rollback", "weather"]).contains("-> 1.0.0"));
    assert_eq!(w.run_server("weather"), "weather-1.0.0");
    w.ok(&["uninstall", "weather"]);
    assert!(w.entry("weather").is_none());
    assert!(!w.home().join("installed/servers/io.github.acme+weather").exists());
    assert!(!mark.exists(), "the package's postinstall script ran");
}

/// Processes whose environment mentions `needle` (npm rewrites its command line, so look at
/// what the test gave it: the npm cache under the test's own directory).
fn processes_mentioning(needle: &str, except: u32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()).is_some_and(|pid| pid != except)
        })
        .filter_map(|e| std::fs::read(e.path().join("environ")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

/// `kill -9` of vmcp in the middle of `npm install`: npm dies with it, nothing changed, and
/// the same command then succeeds.
#[test]
fn an_install_killed_during_npm_install_takes_npm_with_it_and_a_rerun_succeeds() {
    let (w, _mark) = World::with_registry_api();
    let before = w.state();
    let npm_cache = format!("npm_config_cache={}", w.tmp.path().join("npm-cache").display());

    w.hold.store(true, Ordering::SeqCst);
    let mut vmcp = w
        .command(&["install", "io.github.acme/weather"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let tarball = "/npm/weather-mcp/-/weather-mcp-1.0.0.tgz";
    eventually_within("npm downloading the tarball", SLOW_WAIT, || w.server.requests(tarball) > 0);
    assert!(!processes_mentioning(&npm_cache, vmcp.id()).is_empty(), "npm is not running");
    vmcp.kill().unwrap();
    vmcp.wait().unwrap();
    eventually_within("npm to die with vmcp", SLOW_WAIT, || processes_mentioning(&npm_cache, 0).is_empty());
    w.hold.store(false, Ordering::SeqCst);

    assert_eq!(w.state(), before, "a killed install changed servers.json or lock.json");
    assert!(!w.home().join("installed/servers/io.github.acme+weather").exists());
    assert!(
        w.ok(&["install", "io.github.acme/weather"]).contains("installed io.github.acme/weather 1.0.0 (npm)")
    );
    assert_eq!(w.run_server("weather"), "weather-1.0.0");
}

/// `NAME@REQ` resolves a semver requirement; `--repo` picks the repository when several carry
/// the package (otherwise the first one listed wins).
#[test]
fn install_resolves_a_version_requirement_and_honours_repo() {
    let w = World::new();
    let (a, b) = (w.src().join("a"), w.src().join("b"));
    w.publish(&a, "echo", &["2.0.0", "1.1.0", "1.0.0"], script_for("echo"));
    w.publish(&b, "echo", &["3.0.0"], script_for("echo"));
    w.ok(&["repo", "add", a.to_str().unwrap(), "--name", "a"]);
    w.ok(&["repo", "add", b.to_str().unwrap(), "--name", "b"]);
    assert!(w.ok(&["info", "echo"]).contains("also in:    b"));

    assert!(w.ok(&["install", "echo@^1", "--yes"]).contains("installed echo 1.1.0"));
    assert_eq!(w.run_server("echo"), "echo-1.1.0");
    w.ok(&["uninstall", "echo"]);
    assert!(w.ok(&["install", "echo", "--repo", "b", "--yes"]).contains("installed echo 3.0.0"));
    assert_eq!(w.entry("echo").unwrap()["source"]["repository"], "b");
    assert_eq!(w.run_server("echo"), "echo-3.0.0");
    let lock: Value = serde_json::from_str(&w.state().1).unwrap();
    let installed = &lock["packages"]["echo"]["installs"]["3.0.0"];
    assert_eq!((installed["repository"].as_str(), installed["method"].as_str()), (Some("b"), Some("binary")));
    let body = script("echo-3.0.0");
    assert_eq!(installed["checksum"], format!("sha256:{}", sha256_hex(&body)));
    assert!(installed["installed_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{installed}");
    let before = w.state();
    let err = w.fails(&["install", "echo", "--repo", "c"], 64);
    assert!(err.contains("`c`"), "{err}");
    assert!(w.fails(&["install", "echo@^9"], 64).contains("available"));
    assert_eq!(w.state(), before);
}
