"""Acceptance 1 (raw wire): the same requests through vMCP and straight to each real server give
the same `result` text, apart from the names vMCP qualified.

No SDK here: requests are written as NDJSON lines and results are compared as the exact text
of the response's `"result"` member (sliced out of the line, never re-serialized).

How the direct reference is made, per backend:
- each backend behind vMCP runs through `tee_shim.py`, so the test sees the handshake vMCP
  itself used with it; the direct copy of the server gets the same handshake (the same
  `server/discover` probe and `initialize` params, so e.g. server-everything registers the same
  capability-dependent tools);
- **era**: mcp-server-time is dual-era, and vMCP's `server/discover` probe makes it modern
  (`vmcp/servers/list` says `"era": "modern"`). A modern result differs from a legacy one
  (`resultType`, `_meta`, key order in schemas), so its direct reference is made in the same era:
  `server/discover`, then every request with the 2026-07-28 `_meta` envelope;
- lists through vMCP are merged across servers and paged with vMCP's own cursors, so lists are
  compared per server: the sequence of that server's items (by name prefix or URI scheme),
  each item's text equal to the direct item with only its `name` rewritten to `{id}__{name}`;
- single-server requests (`tools/call`, `prompts/get`, `resources/read`, and
  `completion/complete` routed by prompt name or template URI) compare the whole result text.

The gateway's front is driven in both eras. Through the modern front, a legacy backend's
result gains exactly the members 2026-07-28 requires (`resultType`, and `ttlMs`/`cacheScope`
on reads); the test checks their values and that every other byte is the backend's.
"""

from __future__ import annotations

import json

import pytest

from harness import everything_argv, fixture_argv, time_argv
from rawjson import member, requalify
from wirecompare import LISTS, Direct, Front, assert_same_result, owned

BACKENDS = {
    # id: (argv, URI prefix of its resources/templates)
    "everything": (everything_argv, "demo://"),
    "time": (time_argv, None),
    "fixture": (lambda: fixture_argv("fixture", "--page-size", "3"), "fixture://"),
}

# (method, params as sent straight to the backend); `qualified()` makes what vMCP gets
SINGLE = {
    "everything": [
        ("tools/call", {"name": "echo", "arguments": {"message": "raw wire ✓ \"quoted\""}}),
        ("tools/call", {"name": "get-sum", "arguments": {"a": 1, "b": 2.5}}),
        ("tools/call", {"name": "get-annotated-message", "arguments": {"messageType": "error", "includeImage": True}}),
        ("tools/call", {"name": "get-resource-links", "arguments": {"count": 3}}),
        ("tools/call", {"name": "get-tiny-image", "arguments": {}}),
        ("prompts/get", {"name": "simple-prompt"}),
        ("prompts/get", {"name": "args-prompt", "arguments": {"city": "Paris", "state": "IDF"}}),
        ("resources/read", {"uri": "demo://resource/static/document/architecture.md"}),
        ("completion/complete", {"ref": {"type": "ref/prompt", "name": "completable-prompt"},
                                 "argument": {"name": "department", "value": "E"}}),
        ("completion/complete", {"ref": {"type": "ref/resource", "uri": "demo://resource/dynamic/text/{resourceId}"},
                                 "argument": {"name": "resourceId", "value": "1"}}),
    ],
    "time": [
        ("tools/call", {"name": "convert_time",
                        "arguments": {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}}),
        ("tools/call", {"name": "get_current_time", "arguments": {"timezone": "Not/AZone"}}),  # isError result
    ],
    "fixture": [
        ("tools/call", {"name": "echo", "arguments": {"text": "raw wire"}}),
        ("tools/call", {"name": "add", "arguments": {"a": 12345678901, "b": 1}}),
        ("prompts/get", {"name": "greet", "arguments": {"name": "Ada"}}),
        ("resources/read", {"uri": "fixture://static/hello"}),
        ("resources/read", {"uri": "fixture://static/blob"}),
        ("resources/read", {"uri": "fixture://items/42"}),
        ("completion/complete", {"ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "name", "value": "al"}}),
        ("completion/complete", {"ref": {"type": "ref/resource", "uri": "fixture://items/{id}"},
                                 "argument": {"name": "id", "value": "1"}}),
    ],
}


def qualified(server_id: str, method: str, params: dict) -> dict:
    """The request as sent to vMCP: tool and prompt names (also a completion's prompt ref)
    qualified; URIs stay as they are."""
    if method in ("tools/call", "prompts/get"):
        return {**params, "name": f"{server_id}__{params['name']}"}
    if method == "completion/complete" and params["ref"]["type"] == "ref/prompt":
        return {**params, "ref": {**params["ref"], "name": f"{server_id}__{params['ref']['name']}"}}
    return params


@pytest.mark.parametrize("front_era", ["legacy", "modern"])
def test_raw_results_through_vmcp_equal_direct_results(home, front_era):
    logs = {
        "everything": home.everything(tee=True),
        "time": home.time(tee=True),
        "fixture": home.fixture("fixture", "--page-size", "3", tee=True),
    }
    front = Front(home.gateway(), front_era)

    eras = {s["id"]: s["era"] for s in front.ok("vmcp/servers/list", {}).msg["result"]["servers"]}
    # mcp-server-time is dual-era and vMCP's probe makes it modern; the other two are legacy
    assert eras == {"everything": "legacy", "time": "modern", "fixture": "legacy"}, eras

    merged = {method: front.items(method, key) for method, key, _ in LISTS}
    for method, _key, field in LISTS:  # every merged item belongs to one of the three servers
        total = sum(len(owned(merged[method], field, s, BACKENDS[s][1])) for s in BACKENDS)
        assert total == len(merged[method]), f"{method}: items of no known server: {merged[method]}"

    for sid, (argv, uri_prefix) in BACKENDS.items():
        direct = Direct(home.spawn(argv(), label=f"{sid} (direct)"), logs[sid], eras[sid])

        for method, key, field in LISTS:
            want = direct.items(method, key)
            if field == "name":
                want = [requalify(it, "name", f"{sid}__{json.loads(member(it, 'name'))}") for it in want]
            got = owned(merged[method], field, sid, uri_prefix)
            if method == "tools/list":
                assert want, f"{sid} lists no tools directly"
            assert got == want, (
                f"{sid} {method}: items through vMCP differ from direct\n"
                f" through vMCP: {json.dumps(got)[:3000]}\n direct:       {json.dumps(want)[:3000]}"
            )

        for method, params in SINGLE[sid]:
            what = f"{sid} {method} {json.dumps(params)}"
            via = front.ok(method, qualified(sid, method, params))
            ref = direct.ok(method, params)
            if sid == "time" and via.result_raw != ref.result_raw:
                # convert_time puts today's date in its answer: should midnight (UTC) fall
                # between the two calls, ask both once more
                via = front.ok(method, qualified(sid, method, params))
                ref = direct.ok(method, params)
            assert_same_result(front, eras[sid], via, ref, what)
