"""The interop suite's harness: where the binaries and the real servers are, a temporary
VMCP_HOME with a registry (`Home`), the SDK client on `vmcp start` (`sdk_client`), and the
cleanup that ends every process a test started (by pid or by its unique home, never by name).

Binaries: `$VMCP_BIN_DIR` (default `<repo>/target/debug`) must hold `vmcp` and `vmcp-fixture`
(`cargo build --workspace`). Real servers and clients come from `.ci/install-tools.sh`
(`source .tools/env.sh`): `$VMCP_EVERYTHING`, `$VMCP_TIME`, `$VMCP_PY1`.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from ndjson import Peer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BIN_DIR = Path(os.environ.get("VMCP_BIN_DIR") or REPO / "target" / "debug")
VMCP = BIN_DIR / "vmcp"
FIXTURE = BIN_DIR / "vmcp-fixture"
TEE_SHIM = HERE / "tee_shim.py"


def missing_tools() -> list[str]:
    """What the suite needs and does not find, each with the command that fixes it."""
    problems = []
    for b in (VMCP, FIXTURE):
        if not os.access(b, os.X_OK):
            problems.append(f"{b} is missing: run `cargo build --workspace` (or set VMCP_BIN_DIR)")
    for var in ("VMCP_EVERYTHING", "VMCP_TIME", "VMCP_PY1"):
        v = os.environ.get(var)
        if not v:
            problems.append(f"${var} is not set: run `bash .ci/install-tools.sh` and `source .tools/env.sh`")
            continue
        for word in shlex.split(v):
            if word.startswith("/") and not os.path.exists(word):
                problems.append(f"${var}: {word} does not exist: run `bash .ci/install-tools.sh`")
    return problems


def everything_argv() -> list[str]:
    return shlex.split(os.environ["VMCP_EVERYTHING"])


def time_argv() -> list[str]:
    return [os.environ["VMCP_TIME"], "--local-timezone", "UTC"]


def fixture_argv(name: str, *flags: str) -> list[str]:
    return [str(FIXTURE), "--name", name, *flags]


class Home:
    """A temporary VMCP_HOME with a registry, plus every process started against it."""

    def __init__(self, path: Path):
        self.path = path
        self.servers: list[dict[str, Any]] = []
        self.peers: list[Peer] = []

    # ------------------------------------------------------- registry ----
    def mount(self, id_: str, argv: list[str], *, tee: bool = False, **extra: Any) -> Path | None:
        """Add a stdio server; with `tee`, its stdin lines are copied to the returned log file."""
        log = None
        if tee:
            log = self.path / f"{id_}.stdin.jsonl"
            log.touch()
            argv = [sys.executable, str(TEE_SHIM), str(log), *argv]
        self.servers.append({"id": id_, "command": argv[0], "args": argv[1:], **extra})
        return log

    def everything(self, id_: str = "everything", **kw: Any) -> Path | None:
        return self.mount(id_, everything_argv(), **kw)

    def time(self, id_: str = "time", **kw: Any) -> Path | None:
        return self.mount(id_, time_argv(), **kw)

    def fixture(self, id_: str = "fixture", *flags: str, **kw: Any) -> Path | None:
        return self.mount(id_, fixture_argv(id_, *flags), **kw)

    def write(self) -> None:
        reg = self.path / "registry" / "servers.json"
        reg.parent.mkdir(parents=True, exist_ok=True)
        reg.write_text(json.dumps({"servers": self.servers}, indent=2))

    # ------------------------------------------------------ processes ----
    def env(self) -> dict[str, str]:
        return {**os.environ, "VMCP_HOME": str(self.path), "VMCP_LOG": "info"}

    def sdk_params(self):
        """How the official Python SDK starts the gateway: `vmcp start` over stdio."""
        from mcp import StdioServerParameters

        self.write()
        return StdioServerParameters(
            command=str(VMCP), args=["start"], env={"VMCP_HOME": str(self.path), "VMCP_LOG": "info"}
        )

    def gateway(self) -> Peer:
        """`vmcp start` driven by the raw NDJSON driver."""
        self.write()
        # vMCP shuts its children down in order (stdin, SIGTERM, SIGKILL): let it
        return self.spawn([str(VMCP), "start"], label="vmcp", env=self.env(), exit_grace=10.0)

    def spawn(self, argv: list[str], *, label: str, env: dict[str, str] | None = None, exit_grace: float = 1.0) -> Peer:
        """Any stdio process driven raw (e.g. a server spoken to directly)."""
        safe = "".join(c if c.isalnum() else "_" for c in label)
        p = Peer(argv, env=env, stderr_path=self.path / f"{safe}.stderr", label=label, exit_grace=exit_grace)
        self.peers.append(p)
        return p

    def close(self) -> None:
        for p in self.peers:
            p.close()
        _reap(self.path)


def _reap(home: Path) -> None:
    """Kill whatever still runs for this home: processes with VMCP_HOME=home in their
    environment (gateways the SDK started) or the home's path on their command line (tee shims
    and their copiers). Identified by what this test gave them, never by program name."""
    marker_env = f"VMCP_HOME={home}".encode()
    marker_cmd = f"{home}/".encode()
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if marker_env in env or marker_cmd in cmd:
            try:
                os.kill(int(entry), signal.SIGKILL)
            except ProcessLookupError:
                pass


@asynccontextmanager
async def sdk_client(home: Home, mode: str, **kw: Any) -> AsyncIterator[Any]:
    """The official Python SDK client (mcp 2.x) on `vmcp start`, in `mode`."""
    from mcp import Client

    async with Client(home.sdk_params(), mode=mode, **kw) as client:
        yield client
