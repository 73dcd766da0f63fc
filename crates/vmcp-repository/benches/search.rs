//! Search over a generated index of 10,000 packages: exact, prefix, tag, description, typo,
//! multi-word and filtered queries, plus building the index. `cargo bench -p vmcp-repository`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vmcp_config::Home;
use vmcp_repository::sources::{self, CachedIndex, RepoConfig, Repositories, SourceKind, SyncState};
use vmcp_repository::{Index, InstallSpec, Manifest, Package, SearchQuery};

const WORDS: [&str; 24] = [
    "github",
    "slack",
    "postgres",
    "memory",
    "weather",
    "calendar",
    "notion",
    "jira",
    "docker",
    "kubernetes",
    "search",
    "browser",
    "files",
    "email",
    "maps",
    "finance",
    "crypto",
    "music",
    "video",
    "translate",
    "sql",
    "redis",
    "vector",
    "time",
];
const TAGS: [&str; 12] = [
    "api",
    "database",
    "devops",
    "productivity",
    "web",
    "ai",
    "storage",
    "chat",
    "cloud",
    "media",
    "data",
    "tools",
];

/// Deterministic package `i` of the generated index.
fn package(i: usize) -> Package {
    let a = WORDS[i % WORDS.len()];
    let b = WORDS[(i / WORDS.len()) % WORDS.len()];
    let name = format!("{a}-{b}-mcp-{i}");
    let manifest = Manifest {
        name: name.clone(),
        version: format!("{}.{}.{}", i % 7, i % 13, i % 5),
        title: None,
        description: format!(
            "An MCP server that connects {a} with {b} for agents; generated package number {i}."
        ),
        tags: vec![TAGS[i % TAGS.len()].to_owned(), TAGS[(i / 7) % TAGS.len()].to_owned()],
        homepage: None,
        license: Some("MIT".into()),
        readme: String::new(),
    };
    let method = if i.is_multiple_of(10) {
        r#"{"type":"remote","url":"https://example.com/mcp"}"#.to_owned()
    } else {
        format!(r#"{{"type":"npm","package":"{name}"}}"#)
    };
    let spec = InstallSpec::parse(&format!(r#"{{"methods":[{method}]}}"#)).expect("valid spec");
    let mut p = Package::from_parts(manifest, spec).expect("valid package");
    p.repository = format!("repo{}", i % 4);
    p
}

fn bench(c: &mut Criterion) {
    let packages: Vec<Package> = (0..10_000).map(package).collect();
    let index = Index::from_packages(packages.clone());
    let q = |text: &str| SearchQuery { text: text.into(), limit: 20, ..Default::default() };
    let cases = [
        ("exact", q("github-slack-mcp-24")),
        ("prefix", q("kube")),
        ("tag", q("devops")),
        ("description", q("agents")),
        ("typo", q("kubernetse")),
        ("two_words", q("weather calendar")),
        ("no_match", q("zzzzzzzz")),
        (
            "filtered",
            SearchQuery {
                text: "memory".into(),
                tags: vec!["api".into()],
                transport: Some("http".into()),
                limit: 20,
                ..Default::default()
            },
        ),
        ("all_unlimited", SearchQuery { limit: 0, ..Default::default() }),
    ];
    let mut group = c.benchmark_group("search_10k");
    for (name, query) in &cases {
        group.bench_function(*name, |b| b.iter(|| black_box(index.search(black_box(query)).len())));
    }
    group.finish();
    c.bench_function("index_build_10k", |b| b.iter(|| black_box(Index::from_packages(packages.clone()))));
    bench_from_disk(c, packages);
}

/// What `vmcp search` does: read the synced cache of a 10,000-package repository from a home
/// (plus the built-in catalog), build the index, search.
fn bench_from_disk(c: &mut Criterion, packages: Vec<Package>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = Home::at(tmp.path());
    let cached = CachedIndex {
        format: 1,
        repository: "generated".into(),
        synced_at: "2026-01-01T00:00:00Z".into(),
        state: SyncState::default(),
        packages,
        errors: Vec::new(),
    };
    let dir = sources::cache_dir(&home, "generated");
    std::fs::create_dir_all(&dir).expect("cache dir");
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&cached).expect("json")).expect("write cache");
    let mut repos = Repositories::load(&home).expect("repositories");
    repos.list.push(RepoConfig {
        name: "generated".into(),
        url: tmp.path().join("src").to_string_lossy().into_owned(),
        kind: SourceKind::Local,
        enabled: true,
        allow_insecure: false,
    });
    repos.save().expect("save repositories");
    let query = SearchQuery { text: "kubernetse".into(), limit: 20, ..Default::default() };
    c.bench_function("load_and_search_10k", |b| {
        b.iter(|| {
            let index = Index::load(&home).expect("load");
            black_box(index.search(black_box(&query)).len())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
