"""Helpers for comparing raw wire results through vMCP with the same requests sent straight to
a backend: `Direct` (a backend spoken to in the era and with the handshake vMCP used with it),
`Front` (vMCP's stdio front in either era) and `assert_same_result`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ndjson import LEGACY, MODERN, Message, ModernPeer, Peer, modern_meta
from rawjson import elements, member, without_members

LISTS = [
    ("tools/list", "tools", "name"),
    ("prompts/list", "prompts", "name"),
    ("resources/list", "resources", "uri"),
    ("resources/templates/list", "resourceTemplates", "uriTemplate"),
]
ERA_MEMBERS = {"resultType", "ttlMs", "cacheScope"}


class Direct:
    """A backend spoken to directly, in the era and with the handshake vMCP used with it."""

    def __init__(self, peer: Peer, tee_log: Path, era: str):
        self.peer = peer
        self.era = era
        sent = [json.loads(line) for line in tee_log.read_text().splitlines() if line.strip()]
        discover = next((m for m in sent if m.get("method") == "server/discover"), None)
        init = next((m for m in sent if m.get("method") == "initialize"), None)
        # everything asks its client for roots; vMCP answered for its client, so do we
        peer.auto_replies["roots/list"] = lambda _m: {"roots": []}
        if era == "modern":
            assert discover is not None, "vMCP speaks modern to this backend, so it must have probed it"
            peer.ok("server/discover", discover["params"])
            self.modern = ModernPeer(peer, modern_meta())
        else:
            assert init is not None, f"vMCP never sent initialize to this backend: {sent[:3]}"
            if discover is not None:  # vMCP's era probe: replay it, it must fail the same way
                r = peer.request("server/discover", discover["params"])
                assert "error" in r.msg, f"a legacy backend answered server/discover: {r.raw}"
            peer.initialize(params=init["params"])

    def ok(self, method: str, params: dict | None = None) -> Message:
        if self.era == "modern":
            return self.modern.ok(method, params)
        return self.peer.ok(method, params)

    def items(self, method: str, key: str) -> list[str]:
        """All items of a list, every page, each as its exact text."""
        out, cursor = [], None
        for _ in range(100):
            r = self.ok(method, {"cursor": cursor} if cursor else {})
            out += elements(member(r.result_raw, key))
            nxt = member(r.result_raw, "nextCursor")
            cursor = json.loads(nxt) if nxt else None
            if not cursor:
                return out
        raise AssertionError(f"{method}: cursors never end")


class Front:
    """vMCP's stdio front, legacy (initialize) or modern (`_meta` on every request); `hello` is
    the initialize or server/discover response."""

    def __init__(self, gw: Peer, era: str):
        self.gw, self.era = gw, era
        if era == "modern":
            self.modern = ModernPeer(gw)
            self.hello = self.modern.ok("server/discover")
            assert MODERN in self.hello.msg["result"]["supportedVersions"], self.hello.raw[:500]
        else:
            self.hello = gw.initialize()
            assert self.hello.msg["result"]["protocolVersion"] == LEGACY, self.hello.raw[:500]

    def ok(self, method: str, params: dict | None = None) -> Message:
        return self.modern.ok(method, params) if self.era == "modern" else self.gw.ok(method, params)

    def items(self, method: str, key: str) -> list[str]:
        out, cursor = [], None
        for _ in range(100):
            r = self.ok(method, {"cursor": cursor} if cursor else {})
            out += elements(member(r.result_raw, key))
            cursor = r.msg["result"].get("nextCursor")
            if not cursor:
                return out
        raise AssertionError(f"{method}: vMCP's cursors never end")


def owned(items: list[str], field: str, server_id: str, uri_prefix: str | None) -> list[str]:
    """The items of one server in a merged list: tools/prompts by `{id}__`, resources and
    templates by URI scheme (vMCP does not rename URIs)."""
    out = []
    for it in items:
        value = json.loads(member(it, field))
        if field == "name" and value.startswith(f"{server_id}__"):
            out.append(it)
        elif field != "name" and uri_prefix and value.startswith(uri_prefix):
            out.append(it)
    return out


def assert_same_result(front: Front, backend_era: str, via: Message, direct: Message, what: str) -> None:
    got, want = via.result_raw, direct.result_raw
    if front.era == "modern" and backend_era == "legacy":
        # 2026-07-28 requires `resultType` on every result (and `ttlMs`/`cacheScope` on reads):
        # vMCP adds them to a legacy backend's result. Check them, then cut exactly them out.
        got_obj, want_obj = json.loads(got), json.loads(want)
        added = (ERA_MEMBERS & set(got_obj)) - set(want_obj)
        assert got_obj.get("resultType") == "complete", f"{what}: no resultType: {got[:500]}"
        if "ttlMs" in added:
            assert isinstance(got_obj["ttlMs"], int) and got_obj["ttlMs"] >= 0, got_obj["ttlMs"]
        if "cacheScope" in added:
            assert got_obj["cacheScope"] in ("public", "private"), got_obj["cacheScope"]
        got = without_members(got, added)
    assert got == want, f"{what}: result text differs\n through vMCP: {got[:3000]}\n direct:       {want[:3000]}"
