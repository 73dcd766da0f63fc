//! The command line: config validation, the registry commands, and the built-in default.

mod support;

use serde_json::json;
use support::*;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_broken_config_names_the_file_the_place_and_the_problem_and_exits_64() {
    let home = Home::new();
    home.write_config("[gateway]\nrequest_timeout = 30\nmax_mesage_size = 1\n");
    let out = home.vmcp(&["config", "validate"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("vmcp: ")
            && err.contains("vmcp.toml:3:1")
            && err.contains("unknown field `max_mesage_size`"),
        "{err}"
    );

    let home = Home::new();
    std::fs::create_dir_all(home.path().join("registry")).unwrap();
    std::fs::write(
        home.path().join("registry/servers.json"),
        r#"{"servers":[{"id":"a","transport":"stdio"}]}"#,
    )
    .unwrap();
    for args in [&["config", "validate"][..], &["start"][..], &["list"][..]] {
        let out = home.vmcp(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("servers.json: servers[0]: transport `stdio` needs a `command`"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    let home = Home::new();
    assert_eq!(home.vmcp(&["frobnicate"]).status.code(), Some(64));
    assert_eq!(home.vmcp(&["--help"]).status.code(), Some(0));
    let out = home.vmcp(&["info", "nope"]);
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn mount_list_info_unmount_round_trip() {
    let home = Home::new();
    let out =
        home.vmcp(&["mount", "echoer", "--env", "TOKEN=${SECRET_TOKEN}", "--", FIXTURE, "--name", "echoer"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = home.vmcp(&["list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["servers"][0]["id"], "echoer");
    assert_eq!(listed["servers"][0]["environment"], json!(["TOKEN"]), "values (secrets) are never printed");
    let out = home.vmcp(&["info", "echoer"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(FIXTURE));
    let out = home.vmcp(&["info", "echoe"]);
    assert!(stderr(&out).contains("did you mean `echoer`"), "{}", stderr(&out));
    assert!(home.vmcp(&["config", "validate"]).status.success());
    assert!(home.vmcp(&["unmount", "echoer"]).status.success());
    assert_eq!(home.vmcp(&["unmount", "echoer"]).status.code(), Some(64));
}

#[test]
fn with_no_config_at_all_the_built_in_servers_are_served() {
    let home = Home::new();
    let mut gw = Gateway::spawn(home.path(), &["start"]);
    gw.initialize(json!({}));
    let names = gw.tool_names();
    for expected in ["clock__now", "notes__add_note", "utils__echo"] {
        assert!(names.contains(&expected.to_owned()), "{expected} missing from {names:?}");
    }
    let now = gw.call_text("clock__now", json!({}));
    assert!(now.contains('T'), "{now}");
    gw.ok(
        "tools/call",
        json!({ "name": "notes__add_note", "arguments": { "name": "todo", "text": "buy milk" } }),
    );
    let read = gw.ok("resources/read", json!({ "uri": "note://todo" }));
    assert!(read.to_string().contains("buy milk"), "{read}");
}

#[test]
fn child_processes_get_only_their_configured_environment() {
    let home = Home::new().server(json!({
        "id": "env", "command": FIXTURE, "args": ["--name", "env"],
        "environment": { "GIVEN": "${VMCP_TEST_GIVEN}" }
    }));
    home.write_servers();
    let mut child = std::process::Command::new(VMCP);
    child
        .arg("start")
        .env("VMCP_HOME", home.path())
        .env("VMCP_TEST_GIVEN", "yes")
        .env("VMCP_TEST_SECRET", "must-not-leak")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut gw = Gateway::from_command(child);
    gw.initialize(json!({}));
    let who: serde_json::Value = serde_json::from_str(&gw.call_text("env__whoami", json!({}))).unwrap();
    let names: Vec<&str> = who["env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(names.contains(&"GIVEN") && names.contains(&"PATH"), "{names:?}");
    assert!(!names.contains(&"VMCP_TEST_SECRET") && !names.contains(&"VMCP_TEST_GIVEN"), "{names:?}");
}

#[test]
fn mount_and_unmount_take_effect_on_a_running_gateway() {
    let home = Home::new().fixture("first", &[]);
    let mut gw = home.start();
    gw.initialize(json!({}));
    assert!(gw.tool_names().contains(&"first__echo".to_owned()));

    let out = home.vmcp(&["mount", "second", "--", FIXTURE, "--name", "second"]);
    assert!(out.status.success(), "{}", stderr(&out));
    gw.notification("notifications/tools/list_changed");
    assert_eq!(gw.call_text("second__echo", json!({ "text": "new" })), "new");

    let out = home.vmcp(&["unmount", "first"]);
    assert!(out.status.success(), "{}", stderr(&out));
    gw.notification("notifications/tools/list_changed");
    let names = gw.tool_names();
    assert!(!names.iter().any(|n| n.starts_with("first__")), "{names:?}");
    assert_eq!(
        gw.call("tools/call", json!({ "name": "first__echo", "arguments": {} }))["error"]["code"],
        -32602
    );
}

#[test]
fn status_list_and_stop_talk_to_the_running_gateway() {
    let home = Home::new().fixture("live", &[]);
    home.write_servers();
    let out = home.vmcp(&["status"]);
    assert_eq!(out.status.code(), Some(3), "not running yet");
    let mut server = Server::start(home.path(), &["--http", "127.0.0.1:0"]);
    let out = home.vmcp(&["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["running"], true);
    assert_eq!(status["servers"][0]["id"], "live");
    assert_eq!(status["servers"][0]["status"], "ready");
    let out = home.vmcp(&["list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ready"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = home.vmcp(&["stop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = server.child.wait().unwrap();
    assert!(status.success(), "the gateway exits cleanly on stop: {status:?}");
    assert_eq!(home.vmcp(&["status"]).status.code(), Some(3));
}

#[test]
fn config_validate_checks_each_servers_resilience_block() {
    let cases = [
        (json!({ "strategy": "fastest" }), "servers[1]: resilience: unknown variant `fastest`"),
        (json!({ "weights": [1, 2] }), "servers[1]: resilience.weights: has 2 entries for 3 replicas"),
        (
            json!({ "breaker": { "failure_threshold": 0 } }),
            "servers[1]: resilience.breaker.failure_threshold: must be at least 1",
        ),
        (
            json!({ "health": { "interval": -1 } }),
            "servers[1]: resilience.health.interval: must be a positive",
        ),
    ];
    for (resilience, want) in cases {
        let home = Home::new()
            .fixture("fine", &[])
            .server(json!({ "id": "pool", "command": FIXTURE, "replicas": 3, "resilience": resilience }));
        home.write_servers();
        let out = home.vmcp(&["config", "validate"]);
        assert_eq!(out.status.code(), Some(64), "{want}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("servers.json: ") && err.contains(want), "want `{want}` in: {err}");
    }
    let home = Home::new().server(json!({ "id": "pool", "command": FIXTURE, "replicas": 3,
        "resilience": { "strategy": "weighted", "weights": [1, 2, 7], "breaker": { "failure_threshold": 2 } } }));
    home.write_servers();
    let out = home.vmcp(&["config", "validate"]);
    assert!(out.status.success(), "a valid block passes: {}", stderr(&out));
}

#[test]
fn concurrent_mounts_lose_no_change() {
    let home = Home::new();
    home.vmcp_concurrently(8, |i| vec!["mount".into(), format!("s{i}"), "--".into(), "/bin/cat".into()]);
    let text = std::fs::read_to_string(home.path().join("registry/servers.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["servers"].as_array().unwrap().len(), 8, "every concurrent mount is kept: {text}");
    // The first mount created the file, with the format's version (as `vmcp install` writes it).
    assert_eq!(v["version"], "1.0.0", "{text}");
}
