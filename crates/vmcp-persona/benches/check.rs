//! The policy decision's cost: one check per routed request, one per listed item.
//!
//! `cargo bench -p vmcp-persona --bench check`. A persona with 50 enabled servers, each with 20
//! tool patterns (10 allow, 10 deny: exact, prefix, suffix and glob), loaded from its file as the
//! gateway loads it. Each check includes the lookup of the persona by name in the snapshot, as
//! the gateway does on every request.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vmcp_persona::{Effect, Kind, PersonaStore, RuleKind};

const SERVERS: usize = 50;

fn pattern(i: usize) -> String {
    match i % 4 {
        0 => format!("tool_{i}"),
        1 => format!("read_{i}_*"),
        2 => format!("*_{i}_admin"),
        _ => format!("get_{i}_*_v?"),
    }
}

fn store() -> (tempfile::TempDir, PersonaStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = PersonaStore::at(dir.path());
    store.create("bench", None).unwrap();
    store
        .update("bench", |p| {
            for s in 0..SERVERS {
                let server = format!("server{s}");
                p.enable(&server)?;
                for i in 0..10 {
                    p.add_rule(&server, RuleKind::Tool, Effect::Allow, &pattern(i))?;
                    p.add_rule(&server, RuleKind::Tool, Effect::Deny, &pattern(100 + i))?;
                }
            }
            Ok(())
        })
        .unwrap();
    (dir, store)
}

fn bench(c: &mut Criterion) {
    let (_dir, store) = store();
    let snapshot = store.snapshot().unwrap();
    let check = |server: &str, name: &str| {
        snapshot.get(black_box("bench")).map(|p| p.check(black_box(server), Kind::Tool, black_box(name)))
    };
    assert_eq!(check("server25", "get_3_file_v2"), Some(Ok(())));
    assert!(matches!(check("server25", "read_101_x"), Some(Err(_))));
    assert!(matches!(check("elsewhere", "tool_0"), Some(Err(_))));

    let mut g = c.benchmark_group("policy_check");
    g.bench_function("allow (last allow pattern)", |b| b.iter(|| check("server25", "get_3_file_v2")));
    g.bench_function("deny by rule", |b| b.iter(|| check("server25", "read_101_x")));
    g.bench_function("deny server not enabled", |b| b.iter(|| check("elsewhere", "tool_0")));
    g.finish();

    // A tools/list of 1,000 tools from 20 of the servers, filtered item by item.
    let tools: Vec<(String, String)> = (0..1000)
        .map(|i| (format!("server{}", i % 20), format!("read_{}_tool{i}", [1, 5, 9][i % 3])))
        .collect();
    let visible = |tools: &[(String, String)]| {
        let p = snapshot.get("bench").unwrap();
        tools.iter().filter(|(s, n)| p.check(s, Kind::Tool, n).is_ok()).count()
    };
    assert_eq!(visible(&tools), 1000);
    c.bench_function("list_filter/1000 tools", |b| b.iter(|| visible(black_box(&tools))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
