"""A raw NDJSON stdio driver: start a process, write JSON-RPC lines, read lines back.

No SDK in between: what the peer wrote is kept as the exact line (`Message.raw`), and the
parsed form (`Message.msg`) is only used to route (ids, methods). Every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rawjson import member

WAIT = 30.0
"""How long a test waits for a message it expects (a failure bound, not a timing goal)."""

PROTOCOL_META = "io.modelcontextprotocol/protocolVersion"
CAPS_META = "io.modelcontextprotocol/clientCapabilities"
MODERN = "2026-07-28"
LEGACY = "2025-11-25"


def compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Message:
    raw: str
    msg: dict

    @property
    def result_raw(self) -> str:
        """The exact text of the `result` member."""
        r = member(self.raw, "result")
        if r is None:
            raise AssertionError(f"not a result: {self.raw[:2000]}")
        return r

    @property
    def method(self) -> str | None:
        return self.msg.get("method")


class Peer:
    """One process spoken to over stdin/stdout. Call `close()` (fixtures do) to end it."""

    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        stderr_path: Path,
        label: str,
        exit_grace: float = 1.0,
    ):
        self.label = label
        self.exit_grace = exit_grace
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "ab")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            start_new_session=True,  # own process group: close() can end it and its children
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._backlog: list[Message] = []
        self._next_id = 0
        self.auto_replies: dict[str, Callable[[dict], dict]] = {}
        self.seen: list[Message] = []
        threading.Thread(target=self._read, daemon=True).start()

    # ---------------------------------------------------------------- io ----
    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self._lines.put(line.decode("utf-8").rstrip("\n"))
        self._lines.put(None)

    def send_raw(self, line: str) -> None:
        assert self.proc.stdin
        self.proc.stdin.write(line.encode("utf-8") + b"\n")
        self.proc.stdin.flush()

    def send(self, obj: dict) -> None:
        self.send_raw(compact(obj))

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def _context(self) -> str:
        backlog = "\n".join(m.raw[:500] for m in self._backlog[-20:])
        return f"\n--- {self.label}: unclaimed messages ---\n{backlog}\n--- {self.label}: stderr (tail) ---\n{self.stderr_text()[-4000:]}"

    def wait_for(self, what: str, pred: Callable[[Message], bool], timeout: float = WAIT) -> Message:
        """The first message (backlog first) matching `pred`; others stay in the backlog.
        Server-to-client requests with an auto-reply are answered on the way."""
        for i, m in enumerate(self._backlog):
            if pred(m):
                return self._backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.label}: timed out after {timeout}s waiting for {what}{self._context()}")
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self._lines.put(None)
                raise AssertionError(f"{self.label}: stdout closed while waiting for {what}{self._context()}")
            try:
                msg = json.loads(line)
            except ValueError:
                raise AssertionError(f"{self.label} wrote a non-JSON line {line!r}{self._context()}") from None
            m = Message(line, msg)
            self.seen.append(m)
            if isinstance(msg, dict) and "id" in msg and msg.get("method") in self.auto_replies:
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": self.auto_replies[msg["method"]](msg)})
                continue
            if pred(m):
                return m
            self._backlog.append(m)

    def response(self, id_: Any, timeout: float = WAIT) -> Message:
        return self.wait_for(
            f"the response to id {id_!r}",
            lambda m: isinstance(m.msg, dict) and m.msg.get("id") == id_ and "method" not in m.msg,
            timeout,
        )

    def notification(self, method: str, pred: Callable[[dict], bool] = lambda _: True, timeout: float = WAIT) -> Message:
        return self.wait_for(
            method,
            lambda m: m.method == method and "id" not in m.msg and pred(m.msg),
            timeout,
        )

    def request(self, method: str, params: dict | None = None, *, timeout: float = WAIT) -> Message:
        """Send a request and return its response (error or result)."""
        id_ = self.new_id()
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return self.response(id_, timeout)

    def ok(self, method: str, params: dict | None = None, *, timeout: float = WAIT) -> Message:
        """Send a request and return its response, failing on a JSON-RPC error."""
        r = self.request(method, params, timeout=timeout)
        if "result" not in r.msg:
            raise AssertionError(f"{self.label}: {method} {compact(params)[:300]} failed: {r.raw[:2000]}{self._context()}")
        return r

    def drain(self) -> list[Message]:
        """Take the backlog."""
        out, self._backlog = self._backlog, []
        return out

    # ------------------------------------------------------------ eras ----
    def initialize(self, capabilities: dict | None = None, *, params: dict | None = None) -> Message:
        """Legacy handshake (initialize + notifications/initialized)."""
        p = params or {
            "protocolVersion": LEGACY,
            "capabilities": capabilities or {},
            "clientInfo": {"name": "vmcp-interop-raw", "version": "0"},
        }
        r = self.ok("initialize", p)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return r

    # ------------------------------------------------------------ end ----
    def close(self) -> None:
        """Close stdin, give the process `exit_grace` seconds to exit on its own, then end its
        process group (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=self.exit_grace)
            except subprocess.TimeoutExpired:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                continue
        self.proc.wait()
        self._stderr.close()


def modern_meta(capabilities: dict | None = None) -> dict:
    return {PROTOCOL_META: MODERN, CAPS_META: capabilities or {}}


class ModernPeer:
    """Stamps the 2026-07-28 `_meta` envelope on every request sent through `peer`."""

    def __init__(self, peer: Peer, meta: dict | None = None):
        self.peer = peer
        self.meta = meta or modern_meta()

    def params(self, params: dict | None) -> dict:
        p = dict(params or {})
        p["_meta"] = {**p.get("_meta", {}), **self.meta}
        return p

    def ok(self, method: str, params: dict | None = None, **kw) -> Message:
        return self.peer.ok(method, self.params(params), **kw)

    def request(self, method: str, params: dict | None = None, **kw) -> Message:
        return self.peer.request(method, self.params(params), **kw)
