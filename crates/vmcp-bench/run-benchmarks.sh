#!/usr/bin/env bash
# vMCP's benchmark set (docs/BENCHMARKS.md): builds the release binaries, then measures, in one run:
#   0. the machine's floor for a hop: a one-byte round trip to another process over pipes;
#   1. tools/call echo over stdio, straight to vmcp-fixture and through `vmcp start`, c=1 and c=32;
#   2. tools/list of 1,000 tools over stdio, direct vs through vMCP;
#   3. tools/call echo over Streamable HTTP, straight to the fast HTTP backend
#      (`vmcp-bench serve-http`) and through vMCP's HTTP front with it mounted over HTTP, c=1 and c=32;
#   4. 1,000 concurrent legacy HTTP sessions through vMCP (and one more past max_sessions);
#   5. the idle gateway's resident memory with two backends (stdio fixture + HTTP backend);
#   6. the protocol core's micro-benchmarks (criterion);
# and prints every result as markdown, with the machine it ran on.
#
# Usage: crates/vmcp-bench/run-benchmarks.sh            (the full set, a few minutes)
#        crates/vmcp-bench/run-benchmarks.sh --quick    (small counts: checks that it all runs)
# Honors CARGO_TARGET_DIR.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

quick=false
[ "${1:-}" = "--quick" ] && quick=true

if $quick; then
  call1=(-n 2000 -w 200 --rounds 2)
  call32=(-n 10000 -w 1000 --rounds 2)
  list=(-n 50 -w 5 --rounds 2)
  http1=(-n 1000 -w 100 --rounds 2)
  http32=(-n 5000 -w 500 --rounds 2)
  sessions=(--sessions 200 --calls 3)
  criterion=(--warm-up-time 0.5 --measurement-time 1)
else
  call1=(-n 20000 -w 2000 --rounds 10)
  call32=(-n 100000 -w 10000 --rounds 10)
  list=(-n 1000 -w 100 --rounds 10)
  http1=(-n 10000 -w 1000 --rounds 10)
  http32=(-n 50000 -w 5000 --rounds 10)
  sessions=(--sessions 1000 --calls 10)
  criterion=()
fi

echo "==> building release binaries" >&2
cargo build --release --locked -p vmcp -p vmcp-bench -p vmcp-servers >&2

target="${CARGO_TARGET_DIR:-target}"
bench="$target/release/vmcp-bench"
fixture="$target/release/vmcp-fixture"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

echo "## The machine's floor for one more process in the path"
echo
"$bench" wake-floor
echo

echo "## Gateway stdio: tools/call"
echo
"$bench" compare -c 1 "${call1[@]}" -- "$fixture"
echo
"$bench" compare -c 32 "${call32[@]}" -- "$fixture"
echo

echo '## Gateway stdio: tools/call, modern era (2026-07-28: `_meta` on every request, no session)'
echo
"$bench" compare --modern -c 1 "${call1[@]}" -- "$fixture" --era modern
echo
"$bench" compare --modern -c 32 "${call32[@]}" -- "$fixture" --era modern
echo

echo "## Gateway stdio: tools/list with 1,000 tools"
echo
"$bench" compare --method tools/list --label "tools/list 1,000 tools c=1" "${list[@]}" -- "$fixture" --tools 1000
echo

echo "## Streamable HTTP: tools/call"
echo
"$bench" http-compare -c 1 "${http1[@]}"
echo
"$bench" http-compare -c 32 "${http32[@]}"
echo

echo "## Streamable HTTP: many concurrent sessions"
echo
"$bench" sessions "${sessions[@]}"
echo

echo "## Idle memory with two backends"
echo
"$bench" idle-memory -- "$fixture"
echo

echo "## Protocol core micro-benchmarks"
echo
marker="$(mktemp)"
trap 'rm -f "$marker"' EXIT
cargo bench --locked -p vmcp-protocol --bench envelope -- "${criterion[@]}" >&2
"$bench" criterion-table "$target/criterion" --newer-than "$marker"
