//! Per-message cost of the passthrough core: what vMCP does to every line it relays.
//!
//! - `Message::parse` of a `tools/call` request (client -> vMCP) and of `tools/list` results of
//!   21 KB and 1,000 tools (backend -> vMCP; the parse validates the whole payload);
//! - `splice::edit_object` renaming one tool (what a prefixed mount does per listed tool);
//! - `splice::elements` over a 1,000-item array, and the whole per-list merge pass (find the
//!   array, split it, read each item's name), as `tools/list` through vMCP does;
//! - `LineCodec` framing of one large line, and `message::request` building.
//!
//! Run: `cargo bench -p vmcp-protocol --bench envelope`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio_util::codec::Decoder;
use vmcp_protocol::splice::{self, Op};
use vmcp_protocol::{LineCodec, Message, message};

const CALL: &str = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"},"_meta":{"progressToken":7}}}"#;

/// One generated tool of about 460 bytes, the shape `vmcp-fixture --tools N` lists.
fn tool(i: usize) -> String {
    format!(
        r#"{{"name":"gen_{i:04}","description":"Generated tool {i:04} for list and routing benchmarks","inputSchema":{{"type":"object","properties":{{"query":{{"type":"string","description":"What generated tool {i:04} should look up"}},"limit":{{"type":"integer","minimum":1,"maximum":100,"default":10}},"verbose":{{"type":"boolean","description":"Include details in the answer"}},"tags":{{"type":"array","items":{{"type":"string"}}}}}},"required":["query"]}},"annotations":{{"readOnlyHint":true}}}}"#
    )
}

/// A `tools/list` result object with `n` tools.
fn list_result(n: usize) -> String {
    let tools: Vec<String> = (0..n).map(tool).collect();
    format!(r#"{{"tools":[{}]}}"#, tools.join(","))
}

/// The fewest tools whose list result reaches `bytes`.
fn tools_for(bytes: usize) -> usize {
    (1..).find(|&n| list_result(n).len() >= bytes).unwrap_or(1)
}

fn response(result: &str) -> String {
    message::response("17", result)
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("Message::parse");
    g.throughput(Throughput::Bytes(CALL.len() as u64));
    g.bench_function("tools/call request", |b| {
        b.iter(|| Message::parse(black_box(CALL.as_bytes())).unwrap())
    });
    for (label, n) in [("tools/list result 21 KB", tools_for(21_000)), ("tools/list result 1000 tools", 1000)]
    {
        let line = response(&list_result(n));
        g.throughput(Throughput::Bytes(line.len() as u64));
        g.bench_function(BenchmarkId::new(label, format!("{} bytes", line.len())), |b| {
            b.iter(|| Message::parse(black_box(line.as_bytes())).unwrap())
        });
    }
    g.finish();
}

fn edit(c: &mut Criterion) {
    let item = tool(1);
    let renamed = splice::quote("server__gen_0001");
    let mut g = c.benchmark_group("splice::edit_object");
    g.throughput(Throughput::Bytes(item.len() as u64));
    g.bench_function(BenchmarkId::new("rename a tool", format!("{} bytes", item.len())), |b| {
        b.iter(|| splice::edit_object(black_box(&item), &[("name", Op::Replace(&renamed))]).unwrap())
    });
    g.bench_function("set id in a tools/call request", |b| {
        b.iter(|| splice::edit_object(black_box(CALL), &[("id", Op::Replace("1001"))]).unwrap())
    });
    g.finish();
}

fn lists(c: &mut Criterion) {
    let result = list_result(1000);
    let array = splice::get(&result, "tools").unwrap().to_owned();
    let mut g = c.benchmark_group("tools/list 1000 tools");
    g.throughput(Throughput::Bytes(array.len() as u64));
    g.bench_function(BenchmarkId::new("splice::elements", format!("{} bytes", array.len())), |b| {
        b.iter(|| splice::elements(black_box(&array)).unwrap().len())
    });
    // What `lists::answer` does per backend page: find the array, split it, read each name, copy.
    g.bench_function("merge pass (get, elements, name per item, copy)", |b| {
        b.iter(|| {
            let mut out = String::with_capacity(result.len() + 64);
            for item in splice::get(black_box(&result), "tools").and_then(splice::elements).unwrap() {
                let name = splice::get(item, "name").and_then(splice::as_str).unwrap();
                black_box(&name);
                out.push_str(item);
                out.push(',');
            }
            out
        })
    });
    // `splice::get` reads every member of the object: a key after the array (`nextCursor`) costs
    // a full pass over the 1,000 tools, which `lists::page` pays per backend page.
    let page = format!(r#"{},"nextCursor":"c2"}}"#, result.trim_end_matches('}'));
    g.bench_function(BenchmarkId::new("splice::get nextCursor", format!("{} bytes", page.len())), |b| {
        b.iter(|| splice::get(black_box(&page), "nextCursor").map(str::len))
    });
    g.finish();
}

fn framing(c: &mut Criterion) {
    let line = format!("{}\n", response(&list_result(1000)));
    let mut g = c.benchmark_group("LineCodec");
    g.throughput(Throughput::Bytes(line.len() as u64));
    g.bench_function(BenchmarkId::new("decode one line", format!("{} bytes", line.len())), |b| {
        b.iter(|| {
            let mut codec = LineCodec::new(16 * 1024 * 1024);
            let mut buf = BytesMut::from(black_box(line.as_bytes()));
            codec.decode(&mut buf).unwrap().unwrap()
        })
    });
    g.finish();
}

fn build(c: &mut Criterion) {
    let params = r#"{"name":"echo","arguments":{"text":"hello"}}"#;
    c.bench_function("message::request tools/call", |b| {
        b.iter(|| message::request(black_box("1001"), "tools/call", Some(black_box(params))))
    });
}

criterion_group!(benches, parse, edit, lists, framing, build);
criterion_main!(benches);
