//! Table-driven search tests over a small fixed index.

use super::*;
use crate::install_spec::InstallSpec;
use crate::manifest::Manifest;

fn pkg(repo: &str, name: &str, tags: &[&str], desc: &str, remote: bool) -> Package {
    let manifest = Manifest {
        name: name.into(),
        version: "1.0.0".into(),
        title: None,
        description: desc.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        homepage: None,
        license: None,
        readme: String::new(),
    };
    let method = if remote {
        r#"{"type":"remote","url":"https://h/mcp"}"#.to_owned()
    } else {
        format!(r#"{{"type":"npm","package":"{name}"}}"#)
    };
    let spec = InstallSpec::parse(&format!(r#"{{"methods":[{method}]}}"#)).unwrap();
    Package { repository: repo.into(), ..Package::from_parts(manifest, spec).unwrap() }
}

fn index() -> Index {
    Index::from_packages(vec![
        pkg("team", "git", &["vcs"], "Git repositories", false),
        pkg("team", "github", &["git", "api"], "GitHub API", false),
        pkg("team", "gitlab", &["api"], "GitLab API", true),
        pkg("team", "memory", &["knowledge-graph"], "Persistent memory", false),
        pkg("team", "sequential-thinking", &["reasoning"], "Think step by step", false),
        pkg("builtin", "time", &["timezone"], "Current time and conversions", false),
        pkg("builtin", "git", &["vcs"], "Builtin git", false),
        pkg("builtin", "notes", &["memory"], "A notebook", false),
        pkg("builtin", "calendar", &[], "Dates and time zones; remembers memory of events", false),
    ])
}

fn names(hits: &[Hit<'_>]) -> Vec<String> {
    hits.iter().map(|h| format!("{}:{}:{:?}", h.package.repository, h.package.name(), h.kind)).collect()
}

fn search(text: &str) -> Vec<String> {
    names(&index().search(&SearchQuery { text: text.into(), ..Default::default() }))
}

#[test]
fn ranks_exact_then_prefix_then_tag_then_description() {
    assert_eq!(
        search("git"),
        ["team:git:Exact", "builtin:git:Exact", "team:github:Prefix", "team:gitlab:Prefix",]
    );
    assert_eq!(search("memory"), ["team:memory:Exact", "builtin:notes:Tag", "builtin:calendar:Description"]);
    assert_eq!(search("thinking"), ["team:sequential-thinking:Word"]);
    assert_eq!(search("sequential thinking"), ["team:sequential-thinking:Exact"]);
}

#[test]
fn tolerates_typos() {
    assert_eq!(search("memroy"), ["team:memory:Typo", "builtin:notes:Typo"]);
    assert_eq!(search("tiem"), ["builtin:time:Typo"]);
    assert_eq!(search("sequentail"), ["team:sequential-thinking:Typo"]);
    assert!(search("xyz").is_empty(), "short queries need an exact part");
}

#[test]
fn filters_by_tag_repository_and_transport() {
    let idx = index();
    let q = |tags: &[&str], repo: Option<&str>, transport: Option<&str>| {
        names(&idx.search(&SearchQuery {
            text: String::new(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            repository: repo.map(str::to_owned),
            transport: transport.map(str::to_owned),
            limit: 0,
        }))
    };
    assert_eq!(q(&["api"], None, None), ["team:github:Any", "team:gitlab:Any"]);
    assert_eq!(q(&["API"], None, Some("http")), ["team:gitlab:Any"]);
    assert_eq!(q(&[], Some("builtin"), None).len(), 4);
    assert_eq!(q(&["vcs"], Some("builtin"), Some("stdio")), ["builtin:git:Any"]);
}

#[test]
fn limit_truncates_after_ranking() {
    let idx = index();
    let hits = idx.search(&SearchQuery { text: "git".into(), limit: 2, ..Default::default() });
    assert_eq!(names(&hits), ["team:git:Exact", "builtin:git:Exact"]);
}

#[test]
fn bounded_distance_matches_strsim() {
    let words = [
        "",
        "a",
        "ab",
        "ba",
        "time",
        "tiem",
        "memory",
        "memroy",
        "kubernetes",
        "kubernetse",
        "sequential",
        "sqeuential",
        "héllo",
        "hello",
    ];
    for a in words {
        for b in words {
            for k in 0..=3 {
                let want = strsim::osa_distance(a, b);
                assert_eq!(within(a, b, k), (want <= k).then_some(want), "{a:?} {b:?} k={k}");
            }
        }
    }
}
