//! `vmcp install` at a terminal (a pseudo-terminal driven by `support/pty_run.py`): a secret is
//! asked without echo, and downloads show a progress bar; without a terminal, plain lines.

mod support;

#[path = "../../vmcp-repository/tests/support/mod.rs"]
mod repo_fixture;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use repo_fixture::*;
use support::VMCP;

const PTY_RUN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/pty_run.py");

/// A home with a local repository holding `name`, a binary package of `size` bytes served by a
/// 127.0.0.1 fixture (slowly when `slow`), with `install_extra` added to its install.json.
struct Setup {
    tmp: tempfile::TempDir,
    _server: HttpFixture,
}

impl Setup {
    fn new(name: &str, size: usize, slow: bool, install_extra: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mut body = script(name);
        body.resize(size.max(body.len()), b'#');
        body.push(b'\n');
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        files.lock().unwrap().insert("/dl/bin".into(), body.clone());
        let server = HttpFixture::start(move |req| {
            let Some(body) = files.lock().unwrap().get(&req.path).cloned() else { return Resp::status(404) };
            let mut r = Resp::ok(body);
            r.chunk_delay = slow.then_some(Duration::from_millis(25));
            r
        });
        let url = format!("{}/dl/bin", server.base);
        let install = binary_install(name, &[("1.0.0", url, sha256_hex(&body))], install_extra);
        let src = tmp.path().join("src");
        write_package(&src.join(name), name, "1.0.0", &[], &install);
        let s = Self { tmp, _server: server };
        let out =
            s.command(VMCP, &["repo", "add", src.to_str().unwrap(), "--name", "local"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        s
    }

    fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = support::repository_cli(program, &self.home(), args);
        cmd.env_remove("VMCP_TEST_TOKEN");
        cmd
    }

    /// `vmcp ARGS` on a pseudo-terminal; types `answer` once `prompt` shows and echo is off.
    fn at_terminal(&self, prompt: &str, answer: &str, args: &[&str]) -> (Output, String) {
        let python = std::env::var("VMCP_PY").unwrap_or_else(|_| "python3".into());
        let mut pty_args = vec![PTY_RUN, prompt, answer, "--", VMCP];
        pty_args.extend_from_slice(args);
        let out = self.command(&python, &pty_args).env("TERM", "xterm").output().unwrap();
        let screen = String::from_utf8_lossy(&out.stdout).into_owned();
        (out, screen)
    }

    fn servers_json(&self) -> String {
        std::fs::read_to_string(self.home().join("registry/servers.json")).unwrap_or_default()
    }
}

#[test]
fn a_required_secret_is_asked_at_the_terminal_without_echo() {
    let env =
        r#","env":[{"name":"VMCP_TEST_TOKEN","required":true,"secret":true,"description":"API token"}]"#;
    let s = Setup::new("secretive", 0, false, env);
    let (out, screen) = s.at_terminal("VMCP_TEST_TOKEN", "hunter2-typed", &["install", "secretive"]);
    assert!(out.status.success(), "{out:?}\n{screen}");
    assert!(screen.contains("VMCP_TEST_TOKEN") && screen.contains("installed secretive 1.0.0"), "{screen}");
    assert!(!screen.contains("hunter2-typed"), "the secret was echoed:\n{screen}");
    let servers: serde_json::Value = serde_json::from_str(&s.servers_json()).unwrap();
    assert_eq!(servers["servers"][0]["environment"]["VMCP_TEST_TOKEN"], "hunter2-typed");
}

#[test]
fn downloads_show_a_progress_bar_at_a_terminal_and_a_plain_line_otherwise() {
    let s = Setup::new("big", 64 * 1024, true, "");
    let (out, screen) = s.at_terminal("-", "", &["install", "big"]);
    assert!(out.status.success(), "{out:?}\n{screen}");
    assert!(screen.contains("downloading") && screen.contains("KiB/64"), "no progress bar:\n{screen}");
    s.command(VMCP, &["uninstall", "big"]).output().unwrap();

    let out = s.command(VMCP, &["install", "big"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(stderr.lines().any(|l| l.starts_with("downloading ") && l.ends_with("...")), "{stderr}");
    assert!(
        !stderr.contains('\r') && !stderr.contains("\x1b["),
        "terminal codes without a terminal: {stderr:?}"
    );
}
