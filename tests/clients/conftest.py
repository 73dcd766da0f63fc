"""One `vmcp start` shared by the real-clients suite, and what every client must see through it.

The gateway serves Streamable HTTP (both eras) with the legacy HTTP+SSE front, and WebSocket, in
front of three backends mounted over stdio:
  * everything: @modelcontextprotocol/server-everything (legacy era);
  * time:       mcp-server-time under mcp 2.x (modern era, 2026-07-28);
  * fixture:    vmcp-fixture --era modern (a modern backend that has prompts and resources).
Each client lists, calls, reads and gets on a legacy and on a modern backend; `check` says what it
must have seen. A missing tool fails the suite with what to run; nothing is skipped.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BIN_DIR = Path(os.environ.get("VMCP_BIN_DIR") or REPO / "target" / "debug")
STARTUP = 60.0

# What each client does, and what it must get back.
CALLS = {
    "everything__echo": ({"message": "hi"}, "Echo: hi"),
    "time__get_current_time": ({"timezone": "UTC"}, '"timezone": "UTC"'),
    "fixture__echo": ({"text": "through vmcp"}, "through vmcp"),
}
PROMPTS = {
    "everything__simple-prompt": ({}, "This is a simple prompt without arguments."),
    "fixture__greet": ({"name": "Ada"}, "Hello, Ada!"),
}
READS = {
    "demo://resource/static/document/architecture.md": "# Everything Server",
    "fixture://static/hello": "Hello from the fixture!",
}


def check(out: dict, client: str) -> None:
    """`out` = {"tools": [names], "calls": {tool: text}, "prompts": {name: text}, "reads": {uri: text}}."""
    tools = set(out.get("tools", []))
    for name in CALLS:
        assert name in tools, f"{client}: {name} missing from tools/list ({sorted(tools)[:20]} ...)"
    for name, (_, want) in CALLS.items():
        got = out.get("calls", {}).get(name)
        assert got is not None and want in got, f"{client}: tools/call {name}: {got!r}, want {want!r}"
    for name, (_, want) in PROMPTS.items():
        got = out.get("prompts", {}).get(name)
        assert got == want, f"{client}: prompts/get {name}: {got!r}, want {want!r}"
    for uri, want in READS.items():
        got = out.get("reads", {}).get(uri)
        assert got is not None and got.startswith(want), f"{client}: resources/read {uri}: {got!r:.80}"


def tool(var: str) -> list[str]:
    v = os.environ.get(var)
    if not v:
        pytest.fail(f"${var} is not set: run `bash .ci/install-tools.sh` and `source .tools/env.sh`", pytrace=False)
    argv = shlex.split(v)
    for word in argv:
        if word.startswith("/") and not os.path.exists(word):
            pytest.fail(f"${var}: {word} does not exist: run `bash .ci/install-tools.sh`", pytrace=False)
    return argv


@dataclass
class Gateway:
    proc: subprocess.Popen
    home: Path
    log: Path
    http: str  # http://127.0.0.1:PORT/mcp
    ws: str  # ws://127.0.0.1:PORT

    @property
    def base(self) -> str:
        return self.http.rsplit("/", 1)[0]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _wait(proc: subprocess.Popen, log: Path, pattern: str) -> re.Match:
    deadline = time.monotonic() + STARTUP
    rx = re.compile(pattern)
    while time.monotonic() < deadline:
        m = rx.search(log.read_text(errors="replace"))
        if m:
            return m
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"vmcp: no `{pattern}` in its log:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="session")
def gateway():
    vmcp, fixture = BIN_DIR / "vmcp", BIN_DIR / "vmcp-fixture"
    for b in (vmcp, fixture):
        if not os.access(b, os.X_OK):
            pytest.fail(f"{b} is missing: run `cargo build --workspace` (or set VMCP_BIN_DIR)", pytrace=False)
    everything = tool("VMCP_EVERYTHING")
    time_server = tool("VMCP_TIME")
    # Short: vMCP's control socket lives under $VMCP_HOME/run and must fit in SUN_LEN.
    tmp = tempfile.TemporaryDirectory(prefix="vmcp-c-")
    home = Path(tmp.name)
    (home / "registry").mkdir()
    servers = [
        {"id": "everything", "command": everything[0], "args": everything[1:]},
        {"id": "time", "command": time_server[0], "args": [*time_server[1:], "--local-timezone", "UTC"]},
        {"id": "fixture", "command": str(fixture), "args": ["--name", "fixture", "--era", "modern"]},
    ]
    (home / "registry" / "servers.json").write_text(json.dumps({"servers": servers}, indent=2))
    log = home / "vmcp.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(vmcp), "start", "--no-stdio", "--http", "127.0.0.1:0", "--ws", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "VMCP_HOME": str(home), "VMCP_LOG": "info"}, start_new_session=True,
        )
    try:
        http = _wait(proc, log, r"Streamable HTTP front on (http://\S+/mcp)").group(1)
        ws = _wait(proc, log, r"WebSocket front on (ws://\S+?)/?\s").group(1)
        ready = _wait(proc, log, r"(\d+) of (\d+) servers ready")
        assert ready.group(1) == ready.group(2) == "3", log.read_text(errors="replace")[-3000:]
        yield Gateway(proc, home, log, http, ws)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        tmp.cleanup()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def run_json(argv: list[str], *, timeout: float = 60, env: dict | None = None) -> dict:
    """Run a client script that prints one JSON object; fail with its output otherwise."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    assert r.returncode == 0, f"{shlex.join(argv)} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    try:  # the whole output (pretty-printed), else its last line
        return json.loads(r.stdout)
    except ValueError:
        pass
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError(f"{shlex.join(argv)} printed no JSON:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}") from None


sys.path.insert(0, str(HERE))
