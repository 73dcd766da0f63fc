use super::*;

fn parse(text: &str) -> Result<ServersFile, ConfigError> {
    ServersFile::parse(Path::new("servers.json"), text)
}

#[test]
fn reads_the_seed_example() {
    let file = parse(
        r#"{"version":"1.0.0","servers":[{"id":"mcp-filesystem","name":"Filesystem Server","transport":"stdio",
        "command":"uvx","args":["mcp-filesystem"],"environment":{"ROOT":"${HOME}/mcp-data"},
        "capabilities":{"tools":[{"name":"read_file"}]},"health_check_interval":30,"timeout":30}]}"#,
    )
    .unwrap();
    let s = &file.servers[0];
    assert_eq!(s.name, "Filesystem Server");
    assert_eq!(s.naming, Naming::Prefixed("mcp-filesystem".into()));
    assert!(matches!(&s.transport, Transport::Stdio { command, .. } if command == "uvx"));
}

#[test]
fn errors_name_the_place_and_the_problem() {
    let cases = [
        (r#"{"servers":[{"id":"a","comand":"x"}]}"#, "1:", "unknown field `comand`"),
        (r#"{"servers":[{"id":"a b","command":"x"}]}"#, "servers[0]", "server id `a b`"),
        (r#"{"servers":[{"id":"a"}]}"#, "servers[0]", "needs a `command`"),
        (
            r#"{"servers":[{"id":"a","command":"x"},{"id":"a","command":"y"}]}"#,
            "servers[1]",
            "duplicate server id",
        ),
        (r#"{"servers":[{"id":"a","transport":"http","url":"ftp://x"}]}"#, "servers[0]", "must start with"),
        (r#"{"servers":[{"id":"a","command":"x","timeout":-1}]}"#, "servers[0]", "positive"),
        (
            r#"{"servers":[{"id":"a","command":"x","transport":"carrier-pigeon"}]}"#,
            "servers[0]",
            "unknown transport",
        ),
        (r#"{"servers": [}"#, "1:", "expected"),
    ];
    for (text, place, msg) in cases {
        let err = parse(text).unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("servers.json:"), "{shown}");
        assert!(err.place.as_deref().unwrap_or("").starts_with(place), "{text}: place {:?}", err.place);
        assert!(shown.contains(msg), "{text}: {shown}");
    }
}

#[test]
fn disabled_servers_are_kept_on_disk_but_not_mounted() {
    let file =
        parse(r#"{"servers":[{"id":"a","command":"x","enabled":false},{"id":"b","command":"y"}]}"#).unwrap();
    assert_eq!(file.servers.len(), 1);
    assert_eq!(file.raw.servers.len(), 2);
}

#[test]
fn empty_prefix_means_bare_names() {
    let file = parse(r#"{"servers":[{"id":"a","command":"x","prefix":""}]}"#).unwrap();
    assert_eq!(file.servers[0].naming, Naming::Bare);
}

#[test]
fn expands_variables() {
    let env = |k: &str| match k {
        "HOME" => Some("/home/u".to_owned()),
        _ => None,
    };
    assert_eq!(expand_env("${HOME}/data", env).unwrap(), "/home/u/data");
    assert_eq!(expand_env("$$HOME and $x", env).unwrap(), "$HOME and $x");
    assert_eq!(expand_env("${MISSING:-fallback}", env).unwrap(), "fallback");
    assert!(expand_env("${MISSING}", env).unwrap_err().contains("MISSING"));
    assert!(expand_env("${HOME", env).is_err());
}
