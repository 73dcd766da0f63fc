#!/usr/bin/env python3
"""Run the official MCP conformance suite against vMCP and against its fixture backend.

For each pinned suite run
  * 0.1.16                     (`server --suite all`)
  * 0.2.0-alpha.12, 2025-11-25 (`server --requirements 2025-11-25`)
  * 0.2.0-alpha.12, 2026-07-28 (`server --requirements 2026-07-28`)
and each mode
  * direct: the fixture (fixture_server.py) over Streamable HTTP, no gateway
  * stdio:  vMCP's /mcp, fixture mounted over stdio (name prefixing off)
  * http:   vMCP's /mcp, fixture mounted over Streamable HTTP (name prefixing off)
it parses the suite's JSON results (`-o DIR`) and checks them against
expected-failures.yml:
  * a scenario failing in `direct` is a fixture gap and must be listed for `<suite>/direct`;
  * a scenario that passes directly but fails through vMCP must be listed for `<suite>/<mode>`;
  * a listed entry that no longer fails is stale and fails the run (the list only shrinks).
A scenario fails when any of its checks has status FAILURE (or it produced no results).

Standard library only. Needs the tools of .ci/install-tools.sh ($VMCP_CONFORMANCE,
$VMCP_CONFORMANCE_ALPHA, $VMCP_PY; read from the environment, else from $VMCP_TOOLS/env.sh)
and a built gateway ($VMCP_BIN_DIR/vmcp, default <repo>/target/debug/vmcp).

Usage: run.py [--suite NAME]... [--mode MODE]... [--out DIR] [--jobs N] [--verbose]
Exit status: 0 when every failure is listed and no listed entry is stale, 1 otherwise, 2 on setup errors.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fnmatch
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURE = HERE / "fixture_server.py"
EXPECTED_FILE = HERE / "expected-failures.yml"

MODES = ("direct", "stdio", "http")


@dataclass(frozen=True)
class Suite:
    name: str  # used in expected-failures.yml run selectors
    tool_var: str  # env var holding the suite's argv
    args: tuple[str, ...]
    label: str


SUITES = (
    Suite("0.1.16", "VMCP_CONFORMANCE", ("--suite", "all"), "conformance 0.1.16 (--suite all)"),
    Suite(
        "alpha-2025-11-25",
        "VMCP_CONFORMANCE_ALPHA",
        ("--requirements", "2025-11-25", "--timeout", "20000"),
        "conformance 0.2.0-alpha.12 --requirements 2025-11-25",
    ),
    Suite(
        "alpha-2026-07-28",
        "VMCP_CONFORMANCE_ALPHA",
        ("--requirements", "2026-07-28", "--timeout", "20000"),
        "conformance 0.2.0-alpha.12 --requirements 2026-07-28",
    ),
)

STARTUP_TIMEOUT = 30.0  # fixture / gateway readiness
SUITE_TIMEOUT = 180.0  # one whole suite run
RESULT_DIR_RE = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$")


class SetupError(Exception):
    """The environment is not usable (missing tool, a process that would not start)."""


# ------------------------------------------------------------------ tools ----


def load_tools() -> dict[str, list[str]]:
    """The argv prefixes of the suites and the SDK python, from the environment or env.sh."""
    env = dict(os.environ)
    tools_dir = Path(env.get("VMCP_TOOLS") or REPO / ".tools")
    env_sh = tools_dir / "env.sh"
    needed = ("VMCP_CONFORMANCE", "VMCP_CONFORMANCE_ALPHA", "VMCP_PY")
    if any(not env.get(k) for k in needed) and env_sh.is_file():
        for line in env_sh.read_text().splitlines():
            m = re.match(r"^export ([A-Z0-9_]+)=(.*)$", line.strip())
            if m and not env.get(m.group(1)):
                env[m.group(1)] = " ".join(shlex.split(m.group(2)))
    missing = [k for k in needed if not env.get(k)]
    if missing:
        raise SetupError(f"{', '.join(missing)} not set and not in {env_sh}: run .ci/install-tools.sh")
    tools = {k: env[k].split() for k in needed}
    for k, argv in tools.items():
        for part in argv:
            if part.startswith("/") and not Path(part).exists():
                raise SetupError(f"{k}: {part} does not exist: run .ci/install-tools.sh")
    bin_dir = Path(env.get("VMCP_BIN_DIR") or REPO / "target" / "debug")
    vmcp = bin_dir / "vmcp"
    if not vmcp.is_file():
        raise SetupError(f"{vmcp} is missing: run `cargo build -p vmcp` (or set VMCP_BIN_DIR)")
    tools["VMCP"] = [str(vmcp)]
    return tools


# -------------------------------------------------------------- processes ----

_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(argv: list[str], *, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start argv in its own process group, stdout+stderr to `log`."""
    out = open(log, "wb")  # noqa: SIM115 - closed in stop()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    proc._log_file = out  # type: ignore[attr-defined]
    with _LIVE_LOCK:
        _LIVE.add(proc)
    return proc


def stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL it after `grace` seconds."""
    try:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # The group may outlive its leader (children of vMCP): always sweep it.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            pass
    finally:
        f = getattr(proc, "_log_file", None)
        if f is not None:
            f.close()
        with _LIVE_LOCK:
            _LIVE.discard(proc)


def stop_all() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for p in procs:
        stop(p, grace=2.0)


def wait_for_log(proc: subprocess.Popen, log: Path, pattern: str, what: str, timeout: float = STARTUP_TIMEOUT) -> re.Match:
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        m = rx.search(text)
        if m:
            return m
        if proc.poll() is not None:
            raise SetupError(f"{what} exited with status {proc.returncode}; log {log}:\n{tail(log)}")
        time.sleep(0.05)
    raise SetupError(f"{what} not ready after {timeout:.0f}s; log {log}:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ------------------------------------------------------------- one run ----


@dataclass
class ScenarioResult:
    status: str  # PASS | FAIL
    checks: dict[str, str]  # check id -> worst status (FAILURE > WARNING > others)
    messages: dict[str, str]  # check id -> first error message of a non-passing occurrence


@dataclass
class RunResult:
    suite: str
    mode: str
    out_dir: Path
    scenarios: dict[str, ScenarioResult] = field(default_factory=dict)
    error: str | None = None  # the run could not happen at all
    seconds: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.suite}/{self.mode}"


SEVERITY = {"FAILURE": 3, "WARNING": 2, "SKIPPED": 1, "INFO": 0, "SUCCESS": 0}


def parse_results(results_dir: Path) -> dict[str, ScenarioResult]:
    scenarios: dict[str, ScenarioResult] = {}
    if not results_dir.is_dir():
        return scenarios
    for d in sorted(results_dir.iterdir()):
        m = RESULT_DIR_RE.match(d.name)
        checks_file = d / "checks.json"
        if not m or not checks_file.is_file():
            continue
        name = m.group("scenario")
        try:
            checks = json.loads(checks_file.read_text())
        except (OSError, ValueError) as exc:
            checks = [{"id": "checks-json-unreadable", "status": "FAILURE", "errorMessage": str(exc)}]
        sr = scenarios.setdefault(name, ScenarioResult("PASS", {}, {}))
        for c in checks:
            cid, st = str(c.get("id")), str(c.get("status"))
            prev = sr.checks.get(cid)
            if prev is None or SEVERITY.get(st, 0) > SEVERITY.get(prev, 0):
                sr.checks[cid] = st
            if st in ("FAILURE", "WARNING") and cid not in sr.messages:
                sr.messages[cid] = str(c.get("errorMessage") or "")
            if st == "FAILURE":
                sr.status = "FAIL"
    return scenarios


def run_suite(tools: dict[str, list[str]], suite: Suite, url: str, out: Path) -> None:
    argv = [*tools[suite.tool_var], "server", "--url", url, *suite.args, "-o", str(out / "results")]
    (out / "suite.cmd").write_text(shlex.join(argv) + "\n")
    log = out / "suite.out"
    proc = spawn(argv, log=log, env={"NO_COLOR": "1", "FORCE_COLOR": "0"})
    try:
        proc.wait(SUITE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise SetupError(f"suite did not finish within {SUITE_TIMEOUT:.0f}s; log {log}") from None
    finally:
        stop(proc)
    # Exit status is not used: it mixes scored and unscored scenarios; the JSON is the truth.


def start_fixture_http(tools: dict[str, list[str]], out: Path, name: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = out / f"{name}.log"
    argv = [*tools["VMCP_PY"], str(FIXTURE), "http", "--port", str(port), "--wire-log", str(out / f"{name}.wire.jsonl")]
    proc = spawn(argv, log=log)
    m = wait_for_log(proc, log, r"fixture listening on (http://\S+/mcp)", f"fixture ({name})")
    return proc, m.group(1)


def start_vmcp(tools: dict[str, list[str]], out: Path, server: dict, home: Path) -> tuple[subprocess.Popen, str]:
    # `home` is kept short: vMCP puts its control socket under $VMCP_HOME/run, and a Unix socket
    # path must fit in SUN_LEN (108 bytes), which a pytest tmp_path easily exceeds.
    (home / "registry").mkdir(parents=True, exist_ok=True)
    registry = json.dumps({"servers": [server]}, indent=2) + "\n"
    (home / "registry" / "servers.json").write_text(registry)
    (out / "servers.json").write_text(registry)
    log = out / "vmcp.log"
    argv = [*tools["VMCP"], "start", "--no-stdio", "--http", "127.0.0.1:0"]
    proc = spawn(argv, log=log, env={"VMCP_HOME": str(home), "VMCP_LOG": os.environ.get("VMCP_LOG", "info")})
    m = wait_for_log(proc, log, r"Streamable HTTP front on (http://\S+/mcp)", "vmcp")
    url = m.group(1)
    ready = wait_for_log(proc, log, r"(\d+) of (\d+) servers ready", "vmcp backends")
    if ready.group(1) != ready.group(2):
        raise SetupError(f"vmcp: only {ready.group(1)} of {ready.group(2)} servers ready; log {log}:\n{tail(log)}")
    return proc, url


def run_one(tools: dict[str, list[str]], suite: Suite, mode: str, out_root: Path) -> RunResult:
    out = out_root / suite.name / mode
    out.mkdir(parents=True, exist_ok=True)
    rr = RunResult(suite.name, mode, out)
    started: list[subprocess.Popen] = []
    t0 = time.monotonic()
    home_dir = tempfile.TemporaryDirectory(prefix="vmcp-h-")
    home = Path(home_dir.name)
    try:
        if mode == "direct":
            proc, url = start_fixture_http(tools, out, "fixture")
            started.append(proc)
        elif mode == "stdio":
            server = {
                "id": "conf",
                "command": tools["VMCP_PY"][0],
                "args": [*tools["VMCP_PY"][1:], str(FIXTURE), "stdio", "--wire-log", str(out / "fixture.wire.jsonl")],
                "prefix": "",
            }
            proc, url = start_vmcp(tools, out, server, home)
            started.append(proc)
        elif mode == "http":
            fproc, furl = start_fixture_http(tools, out, "fixture")
            started.append(fproc)
            proc, url = start_vmcp(tools, out, {"id": "conf", "transport": "http", "url": furl, "prefix": ""}, home)
            started.append(proc)
        else:  # pragma: no cover
            raise SetupError(f"unknown mode {mode}")
        run_suite(tools, suite, url, out)
        rr.scenarios = parse_results(out / "results")
        if not rr.scenarios:
            rr.error = f"no results written (see {out / 'suite.out'})"
    except SetupError as exc:
        rr.error = str(exc)
    finally:
        for p in reversed(started):
            stop(p)
        home_dir.cleanup()
        rr.seconds = time.monotonic() - t0
    return rr


# ------------------------------------------------------ expected failures ----


@dataclass
class Expected:
    scenario: str
    check: str | None
    runs: list[str]
    reason: str
    kind: str
    line: int
    used: set[str] = field(default_factory=set)

    def applies(self, run_key: str) -> bool:
        # `direct` runs (fixture gaps) are only matched by patterns that name them.
        direct = run_key.endswith("/direct")
        return any(fnmatch.fnmatchcase(run_key, pat) and (not direct or pat.endswith("/direct")) for pat in self.runs)

    @property
    def label(self) -> str:
        return self.scenario + (f":{self.check}" if self.check else "")


def _scalar(text: str, lineno: int) -> str | list[str]:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [str(_scalar(p, lineno)) for p in inner.split(",")] if inner else []
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    if text[:1] in "[{\"'":
        raise ValueError(f"line {lineno}: unsupported YAML value {text!r}")
    return text


def parse_expected(path: Path) -> list[Expected]:
    """Parse expected-failures.yml (a small YAML subset: a list of flat mappings).

    Values are plain or quoted scalars, flow lists `[a, b]`, or block scalars (`>`, `>-`, `|`, `|-`).
    """
    if not path.exists():
        return []
    raw_entries: list[tuple[int, dict[str, object]]] = []
    lines = path.read_text().splitlines()
    i = 0
    current: dict[str, object] | None = None
    while i < len(lines):
        line = lines[i]
        lineno = i + 1
        i += 1
        stripped = line.split(" #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
        if not stripped.strip():
            continue
        m = re.match(r"^(- |  )([A-Za-z_]+):(?: (.*))?$", stripped)
        if not m:
            raise ValueError(f"{path.name} line {lineno}: cannot parse {line!r}")
        if m.group(1) == "- ":
            current = {}
            raw_entries.append((lineno, current))
        elif current is None:
            raise ValueError(f"{path.name} line {lineno}: key outside an entry")
        key, value = m.group(2), (m.group(3) or "").strip()
        if value in (">", ">-", "|", "|-"):
            block: list[str] = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                block.append(lines[i].strip())
                i += 1
            while block and not block[-1]:
                block.pop()
            current[key] = (" " if value.startswith(">") else "\n").join(block)
        else:
            current[key] = _scalar(value, lineno)
    entries = []
    for lineno, e in raw_entries:
        unknown = set(e) - {"scenario", "runs", "reason", "kind"}
        if unknown or not e.get("scenario") or not e.get("reason") or not e.get("runs"):
            raise ValueError(
                f"{path.name} entry at line {lineno}: needs scenario, runs, reason"
                + (f"; unknown keys {sorted(unknown)}" if unknown else "")
            )
        runs = e["runs"] if isinstance(e["runs"], list) else [str(e["runs"])]
        scenario, _, check = str(e["scenario"]).partition(":")
        entries.append(
            Expected(scenario, check or None, [str(r) for r in runs], str(e["reason"]), str(e.get("kind", "")), lineno)
        )
    return entries


# --------------------------------------------------------------- analysis ----


@dataclass
class Problem:
    run: str
    scenario: str
    text: str


def analyse(results: dict[tuple[str, str], RunResult], expected: list[Expected]) -> tuple[list[Problem], list[str]]:
    """Returns (problems that fail the run, informational notes)."""
    problems: list[Problem] = []
    notes: list[str] = []
    suites = sorted({s for s, _ in results}, key=[x.name for x in SUITES].index)
    for suite in suites:
        direct = results.get((suite, "direct"))
        for mode in MODES:
            rr = results.get((suite, mode))
            if rr is None:
                continue
            if rr.error:
                problems.append(Problem(rr.key, "-", f"run failed: {rr.error}"))
                continue
            if mode == "direct":
                failing = {s: r for s, r in rr.scenarios.items() if r.status == "FAIL"}
                baseline_checks: dict[str, dict[str, str]] = {}
            else:
                if direct is None or direct.error:
                    notes.append(f"{rr.key}: no direct baseline; nothing compared")
                    continue
                failing = {}
                for s, dr in direct.scenarios.items():
                    if dr.status != "PASS":
                        continue
                    vr = rr.scenarios.get(s)
                    if vr is None:
                        failing[s] = ScenarioResult("FAIL", {"(scenario produced no results)": "FAILURE"}, {})
                    elif vr.status == "FAIL":
                        failing[s] = vr
                baseline_checks = {s: r.checks for s, r in direct.scenarios.items()}
                # Informational: check-level regressions hidden inside scenarios that fail both ways,
                # and warnings that only appear through vMCP.
                for s, dr in direct.scenarios.items():
                    vr = rr.scenarios.get(s)
                    if vr is None:
                        continue
                    for cid, st in vr.checks.items():
                        dst = dr.checks.get(cid, "SUCCESS")
                        if SEVERITY.get(st, 0) > SEVERITY.get(dst, 0) and st in ("FAILURE", "WARNING"):
                            if dr.status == "FAIL" or st == "WARNING":
                                notes.append(f"{rr.key} {s}:{cid}: {dst} directly, {st} through vMCP"
                                             f" - {vr.messages.get(cid, '')[:160]}")
                    # Coverage lost: verified directly, but not exercised through vMCP.
                    lost = [c for c, st in dr.checks.items()
                            if st == "SUCCESS" and vr.checks.get(c, "INFO") in ("INFO", "SKIPPED")]
                    if lost and vr.status == "PASS":
                        notes.append(f"{rr.key} {s}: passed directly but not exercised through vMCP: {', '.join(lost)}")
            for s, r in sorted(failing.items()):
                # The checks that make this a failure (through vMCP: those not already failing directly).
                bad = [
                    c for c, st in r.checks.items()
                    if st == "FAILURE" and baseline_checks.get(s, {}).get(c, "SUCCESS") != "FAILURE"
                ]
                whole = [e for e in expected if e.applies(rr.key) and e.scenario == s and e.check is None]
                per_check = {e.check: e for e in expected if e.applies(rr.key) and e.scenario == s and e.check}
                if whole:
                    for e in whole:
                        e.used.add(rr.key)
                    continue
                uncovered = [c for c in bad if c not in per_check] or ([] if per_check else ["(scenario)"])
                for c in bad:
                    if c in per_check:
                        per_check[c].used.add(rr.key)
                if uncovered:
                    what = "fails directly (fixture gap)" if mode == "direct" else "passes directly, fails through vMCP"
                    detail = "; ".join(f"{c}: {r.messages.get(c, '')[:200]}" for c in uncovered)
                    problems.append(Problem(rr.key, s, f"{what}, not in expected-failures.yml: {detail}"))
    ran = {rr.key for rr in results.values() if not rr.error}
    for e in expected:
        for key in sorted(ran):
            if e.applies(key) and key not in e.used:
                problems.append(Problem(key, e.label, f"listed in expected-failures.yml (line {e.line}) but does "
                                        "not fail: remove it (or narrow its runs)"))
    return problems, notes


# ------------------------------------------------------------------ report ----


def report(results: dict[tuple[str, str], RunResult], problems: list[Problem], notes: list[str],
           expected: list[Expected], verbose: bool) -> str:
    out: list[str] = []
    suites = [s for s in SUITES if any(k[0] == s.name for k in results)]
    modes = [m for m in MODES if any(k[1] == m for k in results)]
    out.append("MCP conformance: fixture direct vs. through vMCP (scenarios passed/run; checks failed)")
    head = f"{'suite':<18}" + "".join(f"{m:>18}" for m in modes)
    out.append(head)
    out.append("-" * len(head))
    for s in suites:
        row = f"{s.name:<18}"
        for m in modes:
            rr = results.get((s.name, m))
            if rr is None:
                cell = "-"
            elif rr.error:
                cell = "ERROR"
            else:
                n = len(rr.scenarios)
                ok = sum(1 for r in rr.scenarios.values() if r.status == "PASS")
                fc = sum(1 for r in rr.scenarios.values() for st in r.checks.values() if st == "FAILURE")
                cell = f"{ok}/{n} ({fc}✗) {rr.seconds:4.0f}s"
            row += f"{cell:>18}"
        out.append(row)
    # Per-scenario matrix for every scenario that is not a pass everywhere.
    all_names = sorted({n for rr in results.values() for n in rr.scenarios})
    cols = [(s.name, m) for s in suites for m in modes]
    rows = []
    for n in all_names:
        cells = []
        for c in cols:
            rr = results.get(c)
            r = rr.scenarios.get(n) if rr and not rr.error else None
            cells.append("." if r is None else ("✓" if r.status == "PASS" else "✗"))
        if verbose or "✗" in cells:
            rows.append((n, cells))
    if rows:
        out.append("")
        out.append("scenarios not passing everywhere (✓ pass, ✗ fail, . not run); columns: "
                   + ", ".join(f"{i + 1}={s}/{m}" for i, (s, m) in enumerate(cols)))
        width = max(len(n) for n, _ in rows)
        out.append(f"{'':<{width}}  " + " ".join(f"{i + 1}" for i in range(len(cols))))
        for n, cells in rows:
            out.append(f"{n:<{width}}  " + " ".join(cells))
    listed = [(e, sorted(e.used)) for e in expected if e.used]
    if listed:
        out.append("")
        out.append("expected failures (expected-failures.yml):")
        for e, used in listed:
            out.append(f"  {e.label} [{e.kind or '-'}] in {', '.join(used)}")
    if notes:
        out.append("")
        out.append("notes (not failing the run):")
        out.extend(f"  {n}" for n in notes)
    out.append("")
    if problems:
        out.append(f"FAILED: {len(problems)} problem(s):")
        out.extend(f"  [{p.run}] {p.scenario}: {p.text}" for p in problems)
    else:
        out.append("OK: every failure is listed in expected-failures.yml and no entry is stale")
    return "\n".join(out)


def write_summary(path: Path, results: dict[tuple[str, str], RunResult], problems: list[Problem]) -> None:
    data = {
        "runs": {
            rr.key: {
                "error": rr.error,
                "seconds": round(rr.seconds, 1),
                "scenarios": {n: {"status": r.status, "checks": r.checks, "messages": r.messages}
                              for n, r in sorted(rr.scenarios.items())},
            }
            for rr in results.values()
        },
        "problems": [p.__dict__ for p in problems],
    }
    path.write_text(json.dumps(data, indent=1) + "\n")


# -------------------------------------------------------------------- main ----


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", action="append", choices=[s.name for s in SUITES], help="only this suite run (repeatable)")
    ap.add_argument("--mode", action="append", choices=MODES, help="only this mode (repeatable; direct is always run)")
    ap.add_argument("--out", type=Path, help="keep results and logs here (default: a temporary directory, removed)")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("VMCP_CONFORMANCE_JOBS", "3")),
                    help="runs in parallel (default 3)")
    ap.add_argument("--expected", type=Path, default=EXPECTED_FILE, help="expected-failures file")
    ap.add_argument("--verbose", "-v", action="store_true", help="show every scenario in the matrix")
    args = ap.parse_args(argv)

    try:
        tools = load_tools()
        expected = parse_expected(args.expected)
    except (SetupError, ValueError) as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 2

    suites = [s for s in SUITES if not args.suite or s.name in args.suite]
    modes = [m for m in MODES if not args.mode or m in args.mode or m == "direct"]
    tmp = None
    if args.out is None:
        tmp = tempfile.TemporaryDirectory(prefix="vmcp-conformance-")
        out_root = Path(tmp.name)
    else:
        out_root = args.out.resolve()
        out_root.mkdir(parents=True, exist_ok=True)

    # Always end everything we started, on any exit path.
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def on_signal(signum: int, _frame: object) -> None:
        stop_all()
        raise SystemExit(128 + signum)

    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        for sig in previous:
            signal.signal(sig, on_signal)
    t0 = time.monotonic()
    results: dict[tuple[str, str], RunResult] = {}
    try:
        jobs = [(s, m) for s in suites for m in modes]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {pool.submit(run_one, tools, s, m, out_root): (s.name, m) for s, m in jobs}
            for fut in concurrent.futures.as_completed(futures):
                results[futures[fut]] = fut.result()
        # Only judge entries whose runs were executed.
        ran_keys = {f"{s}/{m}" for s, m in results}
        active = [e for e in expected if any(e.applies(k) for k in ran_keys)]
        problems, notes = analyse(results, active)
        text = report(results, problems, notes, active, args.verbose)
        print(text)
        print(f"\n({time.monotonic() - t0:.0f}s; results and logs in "
              f"{out_root if tmp is None else 'a temporary directory (use --out DIR to keep them)'})")
        write_summary(out_root / "summary.json", results, problems)
        (out_root / "report.txt").write_text(text + "\n")
        return 1 if problems else 0
    finally:
        stop_all()
        if in_main_thread:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
