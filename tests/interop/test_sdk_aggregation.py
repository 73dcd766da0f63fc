"""Acceptance 1: the official Python SDK client (mcp 2.x) uses three real backends through
`vmcp start`: server-everything (npm, stdio), mcp-server-time (PyPI) and vmcp-fixture.

In every client mode (`legacy`; `auto`, which negotiates 2026-07-28 with vMCP; and the pinned
`2026-07-28`) it lists tools, prompts, resources and templates of all three through every page
(the fixture pages by 3, so vMCP's composite cursors are followed), then calls, gets and reads
on each backend.
"""

from __future__ import annotations

import json

import anyio
import pytest

from harness import sdk_client

pytestmark = pytest.mark.anyio

EVERYTHING_TOOLS = {
    "echo", "get-annotated-message", "get-env", "get-resource-links", "get-resource-reference",
    "get-structured-content", "get-sum", "get-tiny-image", "gzip-file-as-resource",
    "toggle-simulated-logging", "toggle-subscriber-updates", "trigger-long-running-operation",
    "simulate-research-query",
}
TIME_TOOLS = {"get_current_time", "convert_time"}
FIXTURE_TOOLS = {
    "echo", "add", "slow", "cancelled_requests", "sample", "elicit", "roots", "ping_client",
    "add_tool", "log", "touch", "whoami",
}
EVERYTHING_PROMPTS = {"simple-prompt", "args-prompt", "completable-prompt", "resource-prompt"}
EVERYTHING_DOCS = {
    f"demo://resource/static/document/{d}.md"
    for d in ("architecture", "extension", "features", "how-it-works", "instructions", "startup", "structure")
}

MODES = ["legacy", "auto", "2026-07-28"]
EXPECTED_VERSION = {"legacy": "2025-11-25", "auto": "2026-07-28", "2026-07-28": "2026-07-28"}


async def all_pages(fetch, key: str) -> tuple[list, int]:
    """Every item of a paginated list, and how many pages it took."""
    items, cursor, pages = [], None, 0
    while True:
        page = await fetch(cursor=cursor)
        pages += 1
        items.extend(getattr(page, key))
        cursor = page.next_cursor
        if not cursor:
            return items, pages
        assert pages < 100, "the gateway's cursors never end"


def by_prefix(names: list[str], prefix: str) -> set[str]:
    return {n[len(prefix):] for n in names if n.startswith(prefix)}


@pytest.mark.parametrize("mode", MODES)
async def test_sdk_lists_and_uses_all_three_backends(home, mode):
    home.everything()
    home.time()
    home.fixture("fixture", "--page-size", "3")
    with anyio.fail_after(60):
        async with sdk_client(home, mode) as client:
            assert client.protocol_version == EXPECTED_VERSION[mode]
            assert client.server_info is None or client.server_info.name == "vmcp"

            # ---- lists, all pages ----
            tools, tool_pages = await all_pages(client.list_tools, "tools")
            names = [t.name for t in tools]
            assert len(names) == len(set(names)), f"duplicate tool names: {names}"
            assert tool_pages > 1, "fixture pages by 3: the merged list must come in several pages"
            assert EVERYTHING_TOOLS <= by_prefix(names, "everything__"), names
            assert by_prefix(names, "time__") == TIME_TOOLS, names
            assert by_prefix(names, "fixture__") == FIXTURE_TOOLS, names
            assert all(n.split("__", 1)[0] in {"everything", "time", "fixture"} for n in names), names

            prompts, _ = await all_pages(client.list_prompts, "prompts")
            pnames = [p.name for p in prompts]
            assert by_prefix(pnames, "everything__") == EVERYTHING_PROMPTS, pnames
            assert by_prefix(pnames, "fixture__") == {"greet"}, pnames
            assert not by_prefix(pnames, "time__")  # mcp-server-time has no prompts

            resources, _ = await all_pages(client.list_resources, "resources")
            uris = {str(r.uri) for r in resources}
            assert uris == EVERYTHING_DOCS | {"fixture://static/hello", "fixture://static/blob"}

            templates, _ = await all_pages(client.list_resource_templates, "resource_templates")
            assert {t.uri_template for t in templates} == {
                "demo://resource/dynamic/text/{resourceId}",
                "demo://resource/dynamic/blob/{resourceId}",
                "fixture://items/{id}",
            }

            # ---- calls, one or more per backend ----
            r = await client.call_tool("everything__echo", {"message": f"hi from {mode}"})
            assert not r.is_error and r.content[0].text == f"Echo: hi from {mode}"
            r = await client.call_tool("everything__get-sum", {"a": 1, "b": 2.5})
            assert r.content[0].text == "The sum of 1 and 2.5 is 3.5."

            r = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
            assert not r.is_error
            assert r.structured_content["timezone"] == "UTC", r
            assert json.loads(r.content[0].text)["timezone"] == "UTC"
            r = await client.call_tool(
                "time__convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
            )
            assert r.structured_content["time_difference"] == "+9.0h", r

            r = await client.call_tool("fixture__echo", {"text": f"fixture {mode}"})
            assert not r.is_error and r.content[0].text == f"fixture {mode}"
            r = await client.call_tool("fixture__add", {"a": 2, "b": 40})
            assert r.structured_content == {"sum": 42}

            # ---- prompts ----
            p = await client.get_prompt("everything__simple-prompt")
            assert p.messages[0].content.text == "This is a simple prompt without arguments."
            p = await client.get_prompt("everything__args-prompt", {"city": "Paris"})
            assert p.messages[0].content.text == "What's weather in Paris?"
            p = await client.get_prompt("fixture__greet", {"name": "Ada"})
            assert p.messages[0].content.text == "Hello, Ada!"

            # ---- reads: static resources and templates of both backends that have them ----
            doc = await client.read_resource("demo://resource/static/document/architecture.md")
            assert doc.contents[0].text.startswith("# Everything Server")
            dyn = await client.read_resource("demo://resource/dynamic/text/7")
            assert dyn.contents[0].text.startswith("Resource 7:")
            hello = await client.read_resource("fixture://static/hello")
            assert hello.contents[0].text == "Hello from the fixture!"
            item = await client.read_resource("fixture://items/42")
            assert item.contents[0].text == "item 42"
