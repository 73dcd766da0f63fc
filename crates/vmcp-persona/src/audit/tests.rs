//! The audit log's lines, concurrent writers, and the gateway's writer thread.

use super::*;

#[test]
fn lines_parse_and_carry_the_fields() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(&Home::at(dir.path())).unwrap();
    log.record(&AuditEvent::Denied {
        caller: "127.0.0.1:5000",
        persona: "limited",
        method: "tools/call",
        server: "server2",
        name: "tool2",
        decision: Decision::Deny,
        reason: Denied::ServerNotAllowed.into(),
    })
    .unwrap();
    log.record(&AuditEvent::AuthFailed { caller: "127.0.0.1:5001", reason: "unknown_key" }).unwrap();
    log.record(&AuditEvent::Changed { who: "cli", persona: "limited", action: "enable", detail: "server1" })
        .unwrap();
    let text = std::fs::read_to_string(dir.path().join("logs/audit.log")).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["event"], "denied");
    assert_eq!(lines[0]["reason"], "server_not_allowed");
    assert_eq!(lines[0]["decision"], "deny");
    assert_eq!(lines[0]["server"], "server2");
    assert_eq!(lines[1]["event"], "auth_failed");
    assert_eq!(lines[2]["event"], "changed");
    assert_eq!(lines[2]["who"], "cli");
    for l in &lines {
        assert!(l["time"].as_str().unwrap().ends_with('Z'));
    }
}

#[test]
fn concurrent_writers_never_interleave_lines() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let detail = "x".repeat(3000);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (home, detail) = (&home, &detail);
            s.spawn(move || {
                // Each thread opens its own file description, as separate processes would.
                let log = AuditLog::open(home).unwrap();
                let who = format!("writer{t}");
                for _ in 0..50 {
                    log.record(&AuditEvent::Changed { who: &who, persona: "p", action: "a", detail })
                        .unwrap();
                }
            });
        }
    });
    let text = std::fs::read_to_string(dir.path().join("logs/audit.log")).unwrap();
    assert_eq!(text.lines().count(), 200);
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["detail"].as_str().unwrap().len(), 3000);
    }
}

fn denied(name: &str) -> AuditEvent<'_> {
    AuditEvent::Denied {
        caller: "127.0.0.1:5000",
        persona: "limited",
        method: "tools/call",
        server: "server2",
        name,
        decision: Decision::Deny,
        reason: Denied::NotPermitted.into(),
    }
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn the_writer_thread_appends_every_line_in_order_and_flush_waits_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(&Home::at(dir.path())).unwrap();
    let path = log.path().to_owned();
    let writer = AuditWriter::start(log).unwrap();
    let names: Vec<String> = (0..2000).map(|i| format!("tool{i}")).collect();
    for n in &names {
        writer.record(&denied(n)).unwrap();
    }
    assert!(writer.flush(Duration::from_secs(30)));
    let got = lines(&path);
    assert_eq!(got.len(), names.len());
    for (l, n) in got.iter().zip(&names) {
        assert_eq!(l["event"], "denied");
        assert_eq!(l["name"], n.as_str());
    }
}

#[test]
fn lines_recorded_just_before_the_writer_is_dropped_are_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(&Home::at(dir.path())).unwrap();
    let path = log.path().to_owned();
    let writer = AuditWriter::start(log).unwrap();
    for i in 0..100 {
        writer.record(&denied(&format!("last{i}"))).unwrap();
    }
    drop(writer);
    let got = lines(&path);
    assert_eq!(got.len(), 100);
    assert_eq!(got[99]["name"], "last99");
}

/// A disk slower than the refusals: `record` never waits, at most the budget waits in memory,
/// and what did not fit is counted in one `dropped` line once the writer catches up.
#[test]
fn a_writer_that_falls_behind_keeps_a_bounded_queue_and_says_how_many_lines_it_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(&Home::at(dir.path())).unwrap();
    let path = log.path().to_owned();
    let len = line(&denied("queued")).unwrap().len();
    let (entered_tx, entered) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let mut first = true;
    let sink = move |bytes: &[u8]| {
        if std::mem::take(&mut first) {
            entered_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        }
        log.write_once(bytes)
    };
    let writer = AuditWriter::spawn(path.clone(), 3 * len, sink).unwrap();
    writer.record(&denied("stuck")).unwrap();
    entered.recv().unwrap(); // the writer holds "stuck" and waits on the disk
    for _ in 0..10 {
        writer.record(&denied("queued")).unwrap();
    }
    go.send(()).unwrap();
    assert!(writer.flush(Duration::from_secs(30)));
    let got = lines(&path);
    let names: Vec<&str> = got.iter().filter_map(|l| l["name"].as_str()).collect();
    assert_eq!(names, ["stuck", "queued", "queued", "queued"], "the budget held three lines");
    let last = got.last().unwrap();
    assert_eq!(last["event"], "dropped");
    assert_eq!(last["count"], 7);
    // Caught up: the next line is written again, with no new `dropped` line.
    writer.record(&denied("after")).unwrap();
    assert!(writer.flush(Duration::from_secs(30)));
    let got = lines(&path);
    assert_eq!(got.len(), 6);
    assert_eq!(got[5]["name"], "after");
}

/// A disk that refuses a write (full, say) and then recovers: the lines it refused are not lost
/// without a trace, a `dropped` line counts them once the writer can write again.
#[test]
fn lines_a_failed_write_lost_are_counted_once_writing_works_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(&Home::at(dir.path())).unwrap();
    let path = log.path().to_owned();
    let mut fail = true;
    let sink = move |bytes: &[u8]| {
        if std::mem::take(&mut fail) {
            return Err(std::io::Error::other("no space left on device"));
        }
        log.write_once(bytes)
    };
    let writer = AuditWriter::spawn(path.clone(), QUEUE_BYTES, sink).unwrap();
    writer.record(&denied("lost")).unwrap();
    assert!(writer.flush(Duration::from_secs(30)));
    writer.record(&denied("after")).unwrap();
    assert!(writer.flush(Duration::from_secs(30)));
    let got = lines(&path);
    let dropped: Vec<_> = got.iter().filter(|l| l["event"] == "dropped").collect();
    assert_eq!(dropped.len(), 1, "{got:?}");
    assert_eq!(dropped[0]["count"], 1, "{got:?}");
    assert!(got.iter().any(|l| l["name"] == "after"), "{got:?}");
}

/// A write the disk cut short (it filled up mid-write) leaves part of a line at the end of the
/// file. The next write starts on a fresh line: the lines after it, and the `dropped` line that
/// counts the torn batch, parse.
#[test]
fn a_write_cut_short_leaves_the_lines_after_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(&Home::at(dir.path())).unwrap();
    let path = log.path().to_owned();
    let mut first = true;
    let sink = move |bytes: &[u8]| {
        if std::mem::take(&mut first) {
            // Half of it reaches the file, then the disk is full.
            return log.write_once(&bytes[..bytes.len() / 2]);
        }
        log.write_once(bytes)
    };
    let writer = AuditWriter::spawn(path.clone(), QUEUE_BYTES, sink).unwrap();
    writer.record(&denied("torn")).unwrap();
    assert!(writer.flush(Duration::from_secs(30)));
    writer.record(&denied("after")).unwrap();
    assert!(writer.flush(Duration::from_secs(30)));
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "the torn line, then whole lines: {text}");
    assert!(serde_json::from_str::<serde_json::Value>(lines[0]).is_err(), "{text}");
    // Both whole, in either order: the `dropped` line goes out with whichever batch follows the
    // torn write, the writer's next wake-up (the flush) or the `after` line.
    let rest: Vec<serde_json::Value> = lines[1..].iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(rest.iter().any(|l| l["name"] == "after"), "{text}");
    assert!(rest.iter().any(|l| l["event"] == "dropped" && l["count"] == 1), "{text}");
}
