//! The `vmcp-bench` binary against tiny servers made of `sh` and `sed`: a run that completes,
//! a server that dies, a server that hangs, and bad usage.

use std::process::{Command, Output};

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
        &["stdio"],
    ] {
        let out = bench(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", text(&out.stderr));
    }
}
