"""Acceptance "unknown fields", on the raw wire: vmcp-fixture `--unknown-fields` puts vendor
members no spec defines (an object, an integer past 2^64, a float written `1.50`) in every tool,
every `tools/call` result and its capabilities; through vMCP they must arrive byte for byte.

(The Rust tests cover this through the Rust SDK; here nothing parses and re-serializes the
messages on our side either.) Backend era x front era: the fixture is run legacy and modern,
and vMCP's front is spoken to in both eras.
"""

from __future__ import annotations

import json

import pytest

from harness import fixture_argv
from rawjson import member, requalify
from wirecompare import Direct, Front, assert_same_result, owned

VENDOR_MEMBERS = (
    '"x-fixture":{"vendor":"vmcp-fixture","note":"defined by no spec"},'
    '"x-fixture-big":12345678901234567890,"x-fixture-float":1.50'
)
VENDOR_CAPABILITY = '{"enabled":true}'
VENDOR_EXPERIMENTAL = '{"big":12345678901234567890,"float":1.50}'

CALLS = [
    {"name": "echo", "arguments": {"text": "vendor fields"}},
    {"name": "add", "arguments": {"a": 1.5, "b": 2}},
    {"name": "echo", "arguments": {}},  # a tool error (isError) result, decorated too
]


@pytest.mark.parametrize("backend_era", ["legacy", "modern"])
@pytest.mark.parametrize("front_era", ["legacy", "modern"])
def test_vendor_fields_arrive_unchanged(home, backend_era, front_era):
    flags = ("--unknown-fields", "--era", backend_era)
    log = home.fixture("fixture", *flags, tee=True)
    home.fixture("plain")  # a second backend without vendor fields: merging must keep them
    front = Front(home.gateway(), front_era)

    # capabilities (initialize / server/discover result)
    caps = member(front.hello.result_raw, "capabilities")
    assert member(caps, "x-fixture-capability") == VENDOR_CAPABILITY, caps
    assert member(member(caps, "experimental") or "{}", "x-fixture") == VENDOR_EXPERIMENTAL, caps

    eras = {s["id"]: s["era"] for s in front.ok("vmcp/servers/list", {}).msg["result"]["servers"]}
    assert eras["fixture"] == backend_era, eras
    direct = Direct(home.spawn(fixture_argv("fixture", *flags), label="fixture (direct)"), log, backend_era)

    # tools: each item as the fixture wrote it, only the name qualified
    got = owned(front.items("tools/list", "tools"), "name", "fixture", None)
    want = [requalify(t, "name", "fixture__" + json.loads(member(t, "name"))) for t in direct.items("tools/list", "tools")]
    assert got == want
    assert got and all(VENDOR_MEMBERS in t for t in got), got[:2]

    # results
    for params in CALLS:
        via = front.ok("tools/call", {**params, "name": "fixture__" + params["name"]})
        ref = direct.ok("tools/call", params)
        assert VENDOR_MEMBERS in via.result_raw, via.raw
        assert_same_result(front, backend_era, via, ref, f"tools/call {json.dumps(params)}")
