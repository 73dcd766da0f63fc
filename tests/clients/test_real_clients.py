"""Real MCP clients over the network fronts of one `vmcp start` (see conftest.py): each lists,
calls, reads and gets, on the legacy backend (server-everything) and on the modern ones
(mcp-server-time, vmcp-fixture)."""

from __future__ import annotations

import json
import os
import urllib.request

import anyio
import pytest
from conftest import CALLS, PROMPTS, READS, check, run_json, tool

PLAN = json.dumps({
    "calls": {k: v[0] for k, v in CALLS.items()},
    "prompts": {k: v[0] for k, v in PROMPTS.items()},
    "reads": list(READS),
})


async def exercise(client) -> dict:
    """List, call, read and get with an mcp 2.x `Client`."""
    out: dict = {"tools": [], "calls": {}, "prompts": {}, "reads": {}}
    cursor = None
    while True:
        page = await client.list_tools(cursor=cursor)
        out["tools"] += [t.name for t in page.tools]
        cursor = page.next_cursor
        if not cursor:
            break
    for name, (args, _) in CALLS.items():
        r = await client.call_tool(name, args)
        assert not r.is_error, r
        out["calls"][name] = r.content[0].text
    for name, (args, _) in PROMPTS.items():
        out["prompts"][name] = (await client.get_prompt(name, args)).messages[0].content.text
    for uri in READS:
        out["reads"][uri] = (await client.read_resource(uri)).contents[0].text
    return out


def test_backends_span_both_eras(gateway):
    """The premise of the suite: one legacy backend and modern ones behind the same gateway."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "vmcp/servers/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})
    req = urllib.request.Request(gateway.http, data=body.encode(), method="POST", headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "vmcp/servers/list"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read().decode()
    if not text.lstrip().startswith("{"):  # answered as SSE: the last data line is the response
        text = [line[6:] for line in text.splitlines() if line.startswith("data: ")][-1]
    data = json.loads(text)
    eras = {s["id"]: s["era"] for s in data["result"]["servers"]}
    assert eras == {"everything": "legacy", "time": "modern", "fixture": "modern"}, data


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy", "2026-07-28"])
async def test_python_sdk2_streamable_http(gateway, mode):
    from mcp import Client

    with anyio.fail_after(60):
        async with Client(gateway.http, mode=mode) as client:
            want = "2025-11-25" if mode == "legacy" else "2026-07-28"
            assert client.protocol_version == want
            out = await exercise(client)
    check(out, f"python sdk 2.x ({mode})")


@pytest.mark.anyio
async def test_python_sdk2_legacy_sse_client(gateway):
    from mcp import Client
    from mcp.client.sse import sse_client

    with anyio.fail_after(60):
        async with Client(sse_client(f"{gateway.base}/sse"), mode="legacy") as client:
            out = await exercise(client)
    check(out, "python sdk legacy SSE client")


def test_python_sdk1_streamable_http(gateway):
    out = run_json([*tool("VMCP_PY1"), str(os.path.join(os.path.dirname(__file__), "sdk1_client.py")), gateway.http, PLAN])
    assert out["protocolVersion"].startswith("2025-"), out
    check(out, "python sdk 1.x")


def test_typescript_sdk_websocket_client(gateway):
    node = tool("VMCP_NODE22")
    modules = tool("VMCP_NODE_MODULES")[0]
    out = run_json([*node, os.path.join(os.path.dirname(__file__), "ws_client.cjs"), gateway.ws, PLAN],
                   env={"NODE_PATH": modules})
    check(out, "typescript sdk WebSocket client")


def test_inspector_cli(gateway, tmp_path):
    inspector = [*tool("VMCP_INSPECTOR"), "--cli", gateway.http, "--transport", "http"]
    env = {"MCP_CATALOG_PATH": str(tmp_path / "catalog.json"), "HOME": str(tmp_path)}

    def cli(*args: str) -> dict:
        return run_json([*inspector, *args], env=env)

    out: dict = {"tools": [t["name"] for t in cli("--method", "tools/list")["tools"]], "calls": {}, "prompts": {}, "reads": {}}
    for name, (args, _) in CALLS.items():
        pairs = [f"{k}={v}" for k, v in args.items()]
        out["calls"][name] = cli("--method", "tools/call", "--tool-name", name, "--tool-arg", *pairs)["content"][0]["text"]
    for name, (args, _) in PROMPTS.items():
        extra = ["--prompt-args", *[f"{k}={v}" for k, v in args.items()]] if args else []
        out["prompts"][name] = cli("--method", "prompts/get", "--prompt-name", name, *extra)["messages"][0]["content"]["text"]
    for uri in READS:
        out["reads"][uri] = cli("--method", "resources/read", "--uri", uri)["contents"][0]["text"]
    check(out, "inspector cli")
