//! What filtering one listing through the policy costs the gateway.
//!
//! `cargo bench -p vmcp-gateway --bench policy`. A JWT caller (so its expiry is read) acting as a
//! persona with 50 enabled servers, each with 20 tool patterns, as in vmcp-persona's `check`
//! bench; a tools/list of 1,000 tools from 20 of the servers. Per item: the per-request check
//! for every item (lock, lookup, expiry, rules). Per listing: one `Policy::view`, then the rules
//! only.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use vmcp_gateway::policy::{Caller, Identity, Kind, PersonaBook, Policy, Subject};
use vmcp_persona::oauth::Verified;
use vmcp_persona::{Effect, PersonaStore, RuleKind};

fn pattern(i: usize) -> String {
    match i % 4 {
        0 => format!("tool_{i}"),
        1 => format!("read_{i}_*"),
        2 => format!("*_{i}_admin"),
        _ => format!("get_{i}_*_v?"),
    }
}

fn caller(dir: &std::path::Path) -> Caller {
    let store = PersonaStore::at(dir);
    store.create("bench", None).unwrap();
    store
        .update("bench", |p| {
            for s in 0..50 {
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
    let book = Arc::new(PersonaBook::new(store.snapshot().unwrap(), None));
    let jwt = Verified { persona: "bench".into(), subject: "alice".into(), expires: u64::MAX / 2 };
    Caller::with_jwt(Identity::LocalUser, &jwt, book)
}

fn subject((server, name): &(String, String)) -> Subject<'_> {
    Subject { server, kind: Kind::Tool, name }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let caller = caller(dir.path());
    let tools: Vec<(String, String)> = (0..1000)
        .map(|i| (format!("server{}", i % 20), format!("read_{}_tool{i}", [1, 5, 9][i % 3])))
        .collect();
    let per_item =
        |tools: &[(String, String)]| tools.iter().filter(|t| Policy::visible(&caller, subject(t))).count();
    let per_listing = |tools: &[(String, String)]| {
        let view = Policy::view(&caller);
        tools.iter().filter(|t| view.visible(subject(t))).count()
    };
    assert_eq!(per_item(&tools), 1000);
    assert_eq!(per_listing(&tools), 1000);

    let mut g = c.benchmark_group("list_policy/1000 tools");
    g.bench_function("check per item", |b| b.iter(|| per_item(black_box(&tools))));
    g.bench_function("one view per listing", |b| b.iter(|| per_listing(black_box(&tools))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
