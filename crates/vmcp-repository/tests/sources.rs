//! Repository sources end to end: a local directory, a local git repository, an HTTP index on
//! 127.0.0.1 and a fixture of the official registry API; incremental sync and bad packages.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use support::*;
use vmcp_config::Home;
use vmcp_repository::sources::{self, AddRequest, SourceKind};
use vmcp_repository::{Index, Progress, SearchQuery};

const NPM: &str = r#"{"methods":[{"type":"npm","package":"x-mcp"}]}"#;

fn add(home: &Home, url: &str, name: &str, kind: SourceKind) -> vmcp_repository::Result<sources::SyncReport> {
    let req = AddRequest { url: url.into(), name: Some(name.into()), kind: Some(kind), allow_insecure: true };
    sources::add_repository(home, &req, &Progress::silent()).map(|(_, r)| r)
}

fn sync(home: &Home, name: &str) -> sources::SyncReport {
    let mut results = sources::sync_repositories(home, Some(name), &Progress::silent()).unwrap();
    results.remove(0).1.unwrap()
}

#[test]
fn local_directory_source_skips_a_malformed_package() {
    let tmp = tempfile::tempdir().unwrap();
    let home = Home::at(tmp.path().join("home"));
    let src = tmp.path().join("src");
    write_package(&src.join("alpha"), "alpha", "1.0.0", &["demo"], NPM);
    write_package(&src.join("beta"), "beta", "2.0.0", &["demo", "db"], NPM);
    std::fs::create_dir_all(src.join("broken")).unwrap();
    std::fs::write(src.join("broken/MANIFEST.md"), "no front matter").unwrap();
    std::fs::write(src.join("broken/install.json"), NPM).unwrap();

    let report = add(&home, src.to_str().unwrap(), "mine", SourceKind::Local).unwrap();
    assert_eq!((report.packages, report.added, report.errors.len()), (2, 2, 1), "{report:?}");
    assert_eq!(report.errors[0].package, "broken");

    let index = Index::load(&home).unwrap();
    let hits = index.search(&SearchQuery { text: "db".into(), ..Default::default() });
    assert_eq!(hits[0].package.name(), "beta");
    assert_eq!(index.find("alpha", Some("mine")).unwrap().repository, "mine");
    assert!(index.find("time", None).unwrap().repository == "builtin", "builtin catalog still present");
}

#[test]
fn git_source_syncs_incrementally() {
    let tmp = tempfile::tempdir().unwrap();
    let home = Home::at(tmp.path().join("home"));
    let src = tmp.path().join("gitrepo");
    write_package(&src.join("servers/alpha"), "alpha", "1.0.0", &[], NPM);
    commit_all(&src, "one");

    let report = add(&home, src.to_str().unwrap(), "team", SourceKind::Git).unwrap();
    assert_eq!((report.packages, report.added), (1, 1));
    let unchanged = sync(&home, "team");
    assert_eq!((unchanged.added, unchanged.updated, unchanged.removed), (0, 0, 0));

    write_package(&src.join("servers/alpha"), "alpha", "1.1.0", &[], NPM);
    write_package(&src.join("servers/gamma"), "gamma", "0.1.0", &[], NPM);
    commit_all(&src, "two");
    let changed = sync(&home, "team");
    assert_eq!((changed.packages, changed.added, changed.updated), (2, 1, 1), "{changed:?}");
    let index = Index::load(&home).unwrap();
    assert_eq!(index.find("alpha", None).unwrap().latest().version, "1.1.0");
}

#[test]
fn http_index_uses_etags_and_per_package_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let home = Home::at(tmp.path().join("home"));
    let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
    let pkg_files = |name: &str, version: &str| {
        let m = format!("---\nname: {name}\nversion: {version}\ndescription: d\n---\n");
        (m, NPM.to_owned())
    };
    let publish = |files: &Arc<Mutex<HashMap<String, Vec<u8>>>>, pkgs: &[(&str, &str)], tamper: bool| {
        let mut f = files.lock().unwrap();
        let mut entries = vec![
            json!({"manifest": {"name": "inline", "version": "1.0.0", "description": "inline pkg"},
                                       "install": {"methods": [{"type": "remote", "url": "https://h/mcp"}]}}),
        ];
        for (name, version) in pkgs {
            let (m, i) = pkg_files(name, version);
            let digest = format!("sha256:{}", sha256_hex(&[m.as_bytes(), &[0], i.as_bytes()].concat()));
            f.insert(
                format!("/pkgs/{name}/MANIFEST.md"),
                if tamper { m.replace("d\n", "evil\n").into_bytes() } else { m.into_bytes() },
            );
            f.insert(format!("/pkgs/{name}/install.json"), i.into_bytes());
            entries.push(json!({"name": name, "path": format!("pkgs/{name}"), "digest": digest}));
        }
        f.insert(
            "/index.json".into(),
            serde_json::to_vec(&json!({"format": 1, "packages": entries})).unwrap(),
        );
    };
    publish(&files, &[("a", "1.0.0"), ("b", "1.0.0")], false);
    let server = HttpFixture::files(files.clone());

    let report = add(&home, &server.base, "web", SourceKind::Http).unwrap();
    assert_eq!((report.packages, report.errors.len()), (3, 0), "{report:?}");
    assert_eq!(server.requests("/pkgs/a/MANIFEST.md"), 1);

    sync(&home, "web");
    assert_eq!(server.requests("/pkgs/a/MANIFEST.md"), 1, "304 on index.json: nothing refetched");

    publish(&files, &[("a", "1.0.0"), ("b", "1.1.0")], false);
    let changed = sync(&home, "web");
    assert_eq!(changed.updated, 1);
    assert_eq!(server.requests("/pkgs/a/MANIFEST.md"), 1, "unchanged digest: not refetched");
    assert_eq!(server.requests("/pkgs/b/MANIFEST.md"), 2);

    publish(&files, &[("c", "1.0.0")], true);
    let tampered = sync(&home, "web");
    assert_eq!(tampered.packages, 1, "{tampered:?}");
    assert!(tampered.errors[0].message.contains("checksum mismatch"), "{:?}", tampered.errors);
}

/// Three pages of `/v0/servers`; `updated_since` returns only servers changed later.
fn registry_fixture() -> (HttpFixture, Arc<Mutex<Vec<Value>>>) {
    let servers: Arc<Mutex<Vec<Value>>> = Arc::default();
    let s2 = servers.clone();
    let fixture = HttpFixture::start(move |req| {
        if req.path != "/v0/servers" {
            return Resp::status(404);
        }
        let all = s2.lock().unwrap().clone();
        let since = req.query.get("updated_since").cloned().unwrap_or_default();
        let all: Vec<Value> = all
            .into_iter()
            .filter(|e| {
                e["_meta"]["io.modelcontextprotocol.registry/official"]["updatedAt"].as_str().unwrap_or("")
                    > since.as_str()
            })
            .collect();
        let start: usize = req.query.get("cursor").map_or(0, |c| c.parse().unwrap());
        let page: Vec<Value> = all.iter().skip(start).take(2).cloned().collect();
        let next = (start + 2 < all.len()).then(|| (start + 2).to_string());
        Resp::ok(
            serde_json::to_vec(
                &json!({"servers": page, "metadata": {"count": page.len(), "nextCursor": next}}),
            )
            .unwrap(),
        )
    });
    (fixture, servers)
}

fn server_entry(name: &str, version: &str, registry_type: &str, status: &str, updated: &str) -> Value {
    json!({
        "server": {
            "$schema": "https://static.modelcontextprotocol.io/schemas/2025-10-17/server.schema.json",
            "name": name, "description": format!("{name} from the registry"), "version": version,
            "packages": [{"registryType": registry_type, "identifier": "weather-mcp", "version": version,
                          "transport": {"type": "stdio"}}]
        },
        "_meta": {"io.modelcontextprotocol.registry/official": {"status": status, "updatedAt": updated, "isLatest": true}}
    })
}

#[test]
fn registry_api_pages_merges_versions_and_syncs_incrementally() {
    let tmp = tempfile::tempdir().unwrap();
    let home = Home::at(tmp.path().join("home"));
    let (fixture, servers) = registry_fixture();
    *servers.lock().unwrap() = vec![
        server_entry("io.github.acme/weather", "1.0.0", "npm", "active", "2000-01-01T00:00:00Z"),
        server_entry("io.github.acme/weather", "1.1.0", "npm", "active", "2000-01-01T00:00:00Z"),
        server_entry("io.github.acme/docker-only", "1.0.0", "oci", "active", "2000-01-01T00:00:00Z"),
        server_entry("io.github.acme/py", "0.5.0", "pypi", "active", "2000-01-01T00:00:00Z"),
        server_entry("io.github.acme/gone", "1.0.0", "npm", "deleted", "2000-01-01T00:00:00Z"),
    ];
    let report = add(&home, &fixture.base, "official", SourceKind::Registry).unwrap();
    assert_eq!((report.packages, report.errors.len()), (2, 1), "{report:?}");
    assert_eq!(fixture.requests("/v0/servers"), 3, "three pages of two");
    let index = Index::load(&home).unwrap();
    let weather = index.find("io.github.acme/weather", None).unwrap();
    assert_eq!(weather.versions(), ["1.1.0", "1.0.0"]);
    assert!(index.find("weather-mcp", None).is_ok(), "found by npm identifier");

    servers.lock().unwrap().push(server_entry(
        "io.github.acme/weather",
        "1.1.0",
        "npm",
        "deleted",
        "2999-01-01T00:00:00Z",
    ));
    let changed = sync(&home, "official");
    assert_eq!(changed.updated, 1, "{changed:?}");
    let log = fixture.log.lock().unwrap();
    assert!(log.last().unwrap().query.contains_key("updated_since"), "incremental request");
    drop(log);
    let index = Index::load(&home).unwrap();
    assert_eq!(index.find("io.github.acme/weather", None).unwrap().versions(), ["1.0.0"]);
}

#[test]
fn unreachable_or_insecure_sources_are_not_added() {
    let tmp = tempfile::tempdir().unwrap();
    let home = Home::at(tmp.path().join("home"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let err = add(&home, &format!("http://{closed}"), "down", SourceKind::Http).unwrap_err();
    assert!(err.to_string().contains("cannot fetch"), "{err}");
    let insecure = AddRequest {
        url: "http://example.invalid".into(),
        name: Some("plain".into()),
        kind: Some(SourceKind::Http),
        allow_insecure: false,
    };
    let err = sources::add_repository(&home, &insecure, &Progress::silent()).unwrap_err();
    assert!(err.to_string().contains("refusing plain http"), "{err}");
    assert!(add(&home, "/no/such/dir", "nodir", SourceKind::Local).is_err());
    let repos = sources::Repositories::load(&home).unwrap();
    assert!(repos.list.is_empty());
    assert!(!home.cache_dir().join("repos/down").exists());
}
