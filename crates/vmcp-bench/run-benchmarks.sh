#!/usr/bin/env bash
# vMCP's benchmark set (docs/BENCHMARKS.md): builds the release binaries, then measures
#   1. tools/call echo through the stdio gateway vs direct, concurrency 1 and 32;
#   2. tools/list of 1,000 tools through the gateway vs direct;
#   3. the protocol core's micro-benchmarks (criterion);
# and prints every result as a markdown table.
#
# Usage: crates/vmcp-bench/run-benchmarks.sh            (the full set, a few minutes)
#        crates/vmcp-bench/run-benchmarks.sh --quick    (small counts: checks that it all runs)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

quick=false
[ "${1:-}" = "--quick" ] && quick=true

if $quick; then
  call1=(-n 2000 -w 200 --rounds 2)
  call32=(-n 10000 -w 1000 --rounds 2)
  list=(-n 50 -w 5 --rounds 2)
  criterion=(--warm-up-time 0.5 --measurement-time 1)
else
  call1=(-n 20000 -w 2000 --rounds 10)
  call32=(-n 100000 -w 10000 --rounds 10)
  list=(-n 1000 -w 100 --rounds 10)
  criterion=()
fi

echo "==> building release binaries" >&2
cargo build --release --locked -p vmcp -p vmcp-bench >&2

bench=target/release/vmcp-bench
fixture=target/release/vmcp-fixture

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

echo "## Gateway stdio: tools/call"
echo
"$bench" compare -c 1 "${call1[@]}" -- "$fixture"
echo
"$bench" compare -c 32 "${call32[@]}" -- "$fixture"
echo

echo "## Gateway stdio: tools/list with 1,000 tools"
echo
"$bench" compare --method tools/list --label "tools/list 1,000 tools c=1" "${list[@]}" -- "$fixture" --tools 1000
echo

echo "## Protocol core micro-benchmarks"
echo
marker="$(mktemp)"
trap 'rm -f "$marker"' EXIT
cargo bench --locked -p vmcp-protocol --bench envelope -- "${criterion[@]}" >&2
"$bench" criterion-table target/criterion --newer-than "$marker"
