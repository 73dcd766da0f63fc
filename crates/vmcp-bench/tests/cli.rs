//! The `vmcp-bench` binary against tiny servers made of `sh` and `sed`: a run that completes,
//! a server that dies, a server that hangs, and bad usage; and its own HTTP backend
//! (`serve-http`) spoken to with raw HTTP/1.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};

/// Answers every request that has a numeric id with an empty-ish result (and echoes
/// notifications back, which the bench ignores).
const SED_SERVER: &str = r#"exec sed -u -E 's/^\{"jsonrpc":"2\.0","id":([0-9]+),.*$/{"jsonrpc":"2.0","id":\1,"result":{"protocolVersion":"2025-11-25","content":[]}}/'"#;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmcp-bench")).args(args).output().expect("vmcp-bench runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn pipelined_run_prints_a_table() {
    let out = bench(&["stdio", "-c", "8", "-n", "500", "-w", "50", "--", "sh", "-c", SED_SERVER]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(stdout.starts_with("| workload | path | p50 µs |"), "{stdout}");
    assert!(stdout.contains("| tools/call echo c=8 | sh -c "), "{stdout}");
}

#[test]
fn a_server_that_dies_is_named_with_its_exit_status_and_stderr() {
    let out = bench(&["stdio", "--", "sh", "-c", "read line; echo 'no luck' >&2; exit 3"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("initialize failed: server `server` closed its stdout"), "{stderr}");
    assert!(stderr.contains("exit status: 3") && stderr.contains("no luck"), "{stderr}");
}

#[test]
fn a_server_that_stops_answering_times_out() {
    let init = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25"}}"#;
    let script = format!("read line; echo '{init}'; exec sleep 30");
    let out = bench(&["stdio", "--timeout", "0.3", "--", "sh", "-c", &script]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("gave no answer within 300ms"), "{stderr}");
}

#[test]
fn bad_usage_exits_64() {
    for args in [
        &["stdio", "--args", "{oops", "--", "true"][..],
        &["stdio", "--concurrency", "0", "--", "true"],
        &["compare", "--vmcp", "/nonexistent/vmcp", "--", "true"],
        &["http-compare", "--vmcp", "/nonexistent/vmcp"],
        &["sessions", "--sessions", "0"],
        &["idle-memory", "--settle", "-1", "--", "true"],
        &["stdio"],
    ] {
        let out = bench(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", text(&out.stderr));
    }
}

/// One HTTP/1.1 POST on a fresh connection; returns the whole response (head and body).
fn post(addr: &str, session: Option<&str>, body: &str) -> String {
    let mut conn = TcpStream::connect(addr).expect("connect to serve-http");
    let session = session.map(|s| format!("Mcp-Session-Id: {s}\r\n")).unwrap_or_default();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\n{session}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serve_http_answers_initialize_list_and_echo() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmcp-bench"))
        .args(["serve-http", "--tools", "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve-http starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let addr = first.trim().strip_prefix("listening on http://").and_then(|a| a.strip_suffix("/mcp"));
    let addr = addr.unwrap_or_else(|| panic!("unexpected first line: {first:?}")).to_owned();

    let init = post(
        &addr,
        None,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}}"#,
    );
    assert!(init.starts_with("HTTP/1.1 200"), "{init}");
    assert!(init.to_ascii_lowercase().contains("mcp-session-id: bench-0"), "{init}");
    assert!(init.contains(r#""protocolVersion":"2025-06-18""#), "{init}");

    let note = post(&addr, Some("bench-0"), r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    assert!(note.starts_with("HTTP/1.1 202"), "{note}");

    let list = post(&addr, Some("bench-0"), r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
    assert_eq!(list.matches(r#""name":""#).count(), 4, "echo and three generated tools: {list}");

    let call = r#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"echo","arguments":{"text":"h\u00e9 \"q\""}}}"#;
    let echo = post(&addr, Some("bench-0"), call);
    assert!(
        echo.ends_with(
            r#"{"jsonrpc":"2.0","id":"x","result":{"content":[{"type":"text","text":"h\u00e9 \"q\""}]}}"#
        ),
        "the text comes back verbatim: {echo}"
    );

    let discover = post(&addr, None, r#"{"jsonrpc":"2.0","id":3,"method":"server/discover"}"#);
    assert!(discover.contains(r#""code":-32601"#), "{discover}");

    drop(child.stdin.take()); // stdin EOF stops it
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
