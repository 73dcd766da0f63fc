//! Test fixtures: a tiny HTTP server on 127.0.0.1:0 (std only), package directories, and a
//! local git repository built with the system `git`. The `vmcp` CLI tests include this same
//! file with `#[path]`, so there is one copy.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A parsed request.
#[derive(Debug, Clone)]
pub struct Req {
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HashMap<String, String>,
}

/// A response; `chunk_delay` sends the body slowly in 1 KiB chunks.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub chunk_delay: Option<Duration>,
}

impl Resp {
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self { status: 200, headers: Vec::new(), body: body.into(), chunk_delay: None }
    }
    pub fn status(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new(), chunk_delay: None }
    }
}

type Handler = dyn Fn(&Req) -> Resp + Send + Sync;

/// The server; stops accepting when dropped.
pub struct HttpFixture {
    pub base: String,
    pub log: Arc<Mutex<Vec<Req>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl HttpFixture {
    pub fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (stop2, log2) = (stop.clone(), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (h, l) = (handler.clone(), log2.clone());
                std::thread::spawn(move || serve(stream, &*h, &l));
            }
        });
        Self { base: format!("http://{addr}"), log, stop, addr }
    }

    /// Serve files from a map of path -> body (with ETags from a content hash).
    pub fn files(files: Arc<Mutex<HashMap<String, Vec<u8>>>>) -> Self {
        Self::start(move |req| {
            let files = files.lock().unwrap();
            let Some(body) = files.get(&req.path) else { return Resp::status(404) };
            let etag = format!("\"{:x}\"", fnv(body));
            if req.headers.get("if-none-match") == Some(&etag) {
                return Resp::status(304);
            }
            let mut r = Resp::ok(body.clone());
            r.headers.push(("ETag".into(), etag));
            r
        })
    }

    pub fn requests(&self, path: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|r| r.path == path).count()
    }
}

impl Drop for HttpFixture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
}

fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Req>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), parse_query(q)),
        None => (target.clone(), HashMap::new()),
    };
    let req = Req { path, query, headers };
    log.lock().unwrap().push(req.clone());
    let resp = handler(&req);
    let mut out = stream;
    let mut head =
        format!("HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n", resp.status, resp.body.len());
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if out.write_all(head.as_bytes()).is_err() {
        return;
    }
    match resp.chunk_delay {
        None => {
            let _ = out.write_all(&resp.body);
        }
        Some(d) => {
            for chunk in resp.body.chunks(1024) {
                if out.write_all(chunk).and_then(|_| out.flush()).is_err() {
                    return;
                }
                std::thread::sleep(d);
            }
        }
    }
    let _ = out.flush();
    let mut sink = [0u8; 64];
    let _ = reader.get_mut().set_read_timeout(Some(Duration::from_millis(50)));
    let _ = reader.read(&mut sink);
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_owned(), percent_decode(v))).collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// sha256 hex of bytes, via the system `sha256sum` so the test does not reuse the code under test.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
}

/// A shell script that prints `text`: the "binary" our fixture packages install.
pub fn script(text: &str) -> Vec<u8> {
    format!("#!/bin/sh\necho {text}\n").into_bytes()
}

/// Write `dir/MANIFEST.md` and `dir/install.json`.
pub fn write_package(dir: &Path, name: &str, version: &str, tags: &[&str], install_json: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let tags = tags.join(", ");
    std::fs::write(
        dir.join("MANIFEST.md"),
        format!("---\nname: {name}\nversion: {version}\ndescription: The {name} test server\ntags: [{tags}]\nlicense: MIT\n---\n# {name}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("install.json"), install_json).unwrap();
}

/// Serve `body(version)` at `BASE/dl/NAME/VERSION` for each version, through `files`; the
/// `(version, url, sha256)` triples are what `binary_install` takes.
pub fn serve_downloads<'v>(
    files: &Mutex<HashMap<String, Vec<u8>>>,
    base: &str,
    name: &str,
    versions: &[&'v str],
    body: impl Fn(&str) -> Vec<u8>,
) -> Vec<(&'v str, String, String)> {
    let mut downloads = Vec::new();
    for v in versions {
        let bytes = body(v);
        let path = format!("/dl/{name}/{v}");
        downloads.push((*v, format!("{base}{path}"), sha256_hex(&bytes)));
        files.lock().unwrap().insert(path, bytes);
    }
    downloads
}

/// install.json for a binary package with one download per `(version, url, sha256)`.
pub fn binary_install(bin: &str, downloads: &[(&str, String, String)], extra: &str) -> String {
    let d: Vec<String> = downloads
        .iter()
        .map(|(v, url, sha)| format!(r#"{{"version":"{v}","url":"{url}","sha256":"{sha}"}}"#))
        .collect();
    let versions: Vec<String> = downloads.iter().map(|(v, _, _)| format!("\"{v}\"")).collect();
    format!(
        r#"{{"versions":[{}],"methods":[{{"type":"binary","bin":"{bin}","downloads":[{}]}}]{extra}}}"#,
        versions.join(","),
        d.join(",")
    )
}

/// Run git in `dir`, panicking on failure.
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Commit everything in `dir` (initialising the repository on first use).
pub fn commit_all(dir: &Path, message: &str) {
    if !dir.join(".git").exists() {
        git(dir, &["init", "-q"]);
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
}
