"""Acceptance "live traffic through vMCP": progress, server-to-client requests (sampling,
elicitation, MRTR), cancellation, list_changed, resource updates and logs between the official
Python SDK client and real backends behind `vmcp start`, in both client eras.

Backends whose stdin we need to see run through `tee_shim.py`, which logs every line vMCP
wrote to them: that is how "the backend received `notifications/cancelled` for the id it got
the call under" is checked on the backend's side of the gateway.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated, ToolsListChanged
from mcp_types import (
    CreateMessageResult,
    ElicitResult,
    ResourceListChangedNotification,
    ResourceUpdatedNotification,
    TextContent,
    ToolListChangedNotification,
)

from harness import sdk_client
from ndjson import LEGACY

pytestmark = pytest.mark.anyio

BOTH = ["legacy", "auto"]  # auto negotiates 2026-07-28 with vMCP
DEADLINE = 60


def sent_lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


async def eventually(what: str, probe, timeout: float = 15):
    """Poll `probe()` (sync or async) until it returns something truthy; fail after `timeout`."""
    with anyio.move_on_after(timeout):
        while True:
            v = probe()
            if hasattr(v, "__await__"):
                v = await v
            if v:
                return v
            await anyio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ------------------------------------------------------------------ progress ----
@pytest.mark.parametrize("mode", BOTH)
async def test_progress_reaches_the_sdk_progress_callback(home, mode):
    log = home.everything(tee=True)
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, _message: str | None) -> None:
        seen.append((progress, total))

    with anyio.fail_after(DEADLINE):
        async with sdk_client(home, mode) as client:
            r = await client.call_tool(
                "everything__trigger-long-running-operation", {"duration": 0.4, "steps": 4}, progress_callback=on_progress
            )
            assert r.content[0].text == "Long running operation completed. Duration: 0.4 seconds, Steps: 4."
            # progress notifications precede the response on the wire; the SDK runs the callbacks
            # in tasks of their own, so give the last one a moment
            await eventually("four progress callbacks", lambda: len(seen) == 4)
    # The SDK dispatches progress by its own token (its request id): the callback running at all
    # means vMCP put the client's token back. The backend got a token vMCP chose.
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    call = next(m for m in sent_lines(log) if m.get("method") == "tools/call")
    assert "progressToken" in call["params"]["_meta"], call


def test_progress_tokens_of_any_json_form_come_back_unchanged(home):
    """Raw client: a string token and an integer past 2^64 (server-everything itself drops
    such ids, so vMCP must map them) come back byte for byte."""
    home.everything()
    gw = home.gateway()
    gw.initialize()
    for token_text in ('"client-token-✓"', "123456789012345678901234567890"):
        id_ = gw.new_id()
        gw.send_raw(
            '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"everything__trigger-long-running-operation",'
            '"arguments":{"duration":0.2,"steps":2},"_meta":{"progressToken":%s}}}' % (id_, token_text)
        )
        done = gw.response(id_)
        assert "result" in done.msg, done.raw
        token = json.loads(token_text)
        for step in (1, 2):
            m = gw.notification("notifications/progress", lambda p: p["params"]["progress"] == step)
            assert m.msg["params"]["progressToken"] == token and f'"progressToken":{token_text}' in m.raw, m.raw
    gw.ok("ping")
    stray = [m.raw for m in gw.drain() if m.method == "notifications/progress"]
    assert stray == [], stray


# ------------------------------------------------- server-to-client requests ----
def sampling_answer(asked: list):
    async def sampling(_ctx, params):
        asked.append(params)
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text="sampled by pytest"), model="interop-model",
            stop_reason="endTurn",
        )

    return sampling


def elicitation_answer(asked: list):
    async def elicitation(_ctx, params):
        asked.append(params)
        return ElicitResult(action="accept", content={"name": "Ada", "check": True, "answer": "42"})

    return elicitation


@pytest.mark.parametrize(
    "mode",
    ["legacy", "auto"],
)
async def test_sampling_and_elicitation_from_everything_reach_the_sdk_callbacks(home, mode):
    """server-everything (legacy) sends `sampling/createMessage` and `elicitation/create` while
    a call is in flight; vMCP relays them to the client whose call caused them (a legacy client
    as server-to-client requests; a 2026-07-28 client can only get them as an
    InputRequiredResult), and the client's answers come back in the tool results."""
    home.everything()
    sampled, elicited = [], []
    with anyio.fail_after(DEADLINE):
        async with sdk_client(
            home, mode, sampling_callback=sampling_answer(sampled), elicitation_callback=elicitation_answer(elicited)
        ) as client:
            assert client.protocol_version == (LEGACY if mode == "legacy" else "2026-07-28")
            r = await client.call_tool("everything__trigger-sampling-request", {"prompt": "ping?", "maxTokens": 7})
            e = await client.call_tool("everything__trigger-elicitation-request", {})
    assert not r.is_error, r
    assert len(sampled) == 1
    assert sampled[0].messages[0].content.text == "Resource trigger-sampling-request context: ping?"
    assert sampled[0].max_tokens == 7 and sampled[0].system_prompt == "You are a helpful test server."
    text = r.content[0].text
    assert text.startswith("LLM sampling result:"), text
    answer = json.loads(text.split(":", 1)[1])
    assert answer["model"] == "interop-model" and answer["content"]["text"] == "sampled by pytest", answer

    assert not e.is_error, e
    assert len(elicited) == 1 and "name" in elicited[0].requested_schema["properties"]
    assert e.content[1].text == "User inputs:\n- Name: Ada\n- Agreed to terms: true", e.content


@pytest.mark.parametrize("mode", BOTH)
async def test_input_requests_of_a_modern_backend_reach_the_sdk_callbacks(home, mode):
    """vmcp-fixture in 2026-07-28 answers `sample`/`elicit` with an InputRequiredResult.
    legacy client: vMCP turns each input request into an ordinary server-to-client request and
    retries the backend call itself; modern client: the InputRequiredResult passes through, the
    SDK answers it and its retry reaches the same backend."""
    home.fixture("modern", "--era", "modern")
    sampled, elicited = [], []
    with anyio.fail_after(DEADLINE):
        async with sdk_client(
            home, mode, sampling_callback=sampling_answer(sampled), elicitation_callback=elicitation_answer(elicited)
        ) as client:
            r = await client.call_tool("modern__sample", {"prompt": "what is 6 x 7?"})
            e = await client.call_tool("modern__elicit", {"message": "the answer?"})
    assert not r.is_error and r.content[0].text == "sampled by pytest", r
    assert [p.messages[0].content.text for p in sampled] == ["what is 6 x 7?"]
    assert not e.is_error and json.loads(e.content[0].text)["content"]["answer"] == "42", e
    assert [p.message for p in elicited] == ["the answer?"]


# -------------------------------------------------------------- cancellation ----
async def cancel_after_first_progress(client, tool: str, args: dict) -> None:
    """Start `tool`, wait until the backend reports progress (so it is really running), then
    cancel the caller's scope: the SDK sends `notifications/cancelled` for its request."""
    started = anyio.Event()

    async def on_progress(*_):
        started.set()

    async def call():
        await client.call_tool(tool, args, progress_callback=on_progress)
        raise AssertionError(f"{tool} finished although it was cancelled")

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await started.wait()
        tg.cancel_scope.cancel()


def cancelled_at_backend(log: Path, tool: str):
    """(call id, cancelled ids) as the backend received them, from its stdin log."""
    lines = sent_lines(log)
    calls = [m for m in lines if m.get("method") == "tools/call" and m["params"]["name"] == tool]
    cancels = [m["params"]["requestId"] for m in lines if m.get("method") == "notifications/cancelled"]
    return calls, cancels


@pytest.mark.parametrize("mode", BOTH)
async def test_a_cancelled_call_stops_at_the_backend(home, mode):
    ev_log = home.everything(tee=True)
    fx_log = home.fixture("fixture", tee=True)
    modern_log = home.fixture("modern", "--era", "modern", tee=True)
    with anyio.fail_after(DEADLINE):
        async with sdk_client(home, mode) as client:
            # server-everything: the backend gets notifications/cancelled with the id it got the call under
            await cancel_after_first_progress(
                client, "everything__trigger-long-running-operation", {"duration": 2, "steps": 20}
            )
            calls, cancels = await eventually(
                "notifications/cancelled at server-everything",
                lambda: (lambda c: c if c[1] else None)(cancelled_at_backend(ev_log, "trigger-long-running-operation")),
            )
            assert len(calls) == 1, calls
            assert cancels == [calls[0]["id"]], f"backend got the call as {calls[0]['id']!r}, cancels {cancels}"

            # vmcp-fixture's `slow` stops when cancelled and records the id it saw cancelled;
            # one fixture speaks legacy, the other 2026-07-28 (stdio cancellation is the same
            # notification in both eras)
            for sid, log in (("fixture", fx_log), ("modern", modern_log)):
                await cancel_after_first_progress(client, f"{sid}__slow", {"ms": 30000})

                async def recorded():
                    r = await client.call_tool(f"{sid}__cancelled_requests", {})
                    return json.loads(r.content[0].text)

                stopped = await eventually(f"{sid}__slow to stop", recorded)
                calls, cancels = cancelled_at_backend(log, "slow")
                assert len(calls) == 1 and cancels == [calls[0]["id"]] and stopped == [calls[0]["id"]], (
                    sid, calls, cancels, stopped,
                )
            # the gateway and the backends still serve
            r = await client.call_tool("everything__echo", {"message": "still here"})
            assert r.content[0].text == "Echo: still here"


# -------------------------------------------------------------- list_changed ----
async def test_resources_list_changed_reaches_a_legacy_client(home):
    home.everything()
    changed = anyio.Event()

    async def on_message(msg):
        if isinstance(msg, ResourceListChangedNotification):
            changed.set()

    with anyio.fail_after(DEADLINE):
        async with sdk_client(home, "legacy", message_handler=on_message) as client:
            await client.call_tool(
                "everything__gzip-file-as-resource",
                {"name": "interop.gz", "data": "data:text/plain;base64,SGVsbG8gd29ybGQ=", "outputType": "resourceLink"},
            )
            await changed.wait()
            uris = {str(r.uri) for r in (await client.list_resources()).resources}
    assert "demo://resource/session/interop.gz" in uris, uris


async def test_resources_list_changed_reaches_a_modern_listener(home):
    home.everything()
    with anyio.fail_after(DEADLINE):
        async with sdk_client(home, "auto") as client:
            assert client.protocol_version == "2026-07-28"
            async with client.listen(resources_list_changed=True) as sub:
                assert sub.honored.resources_list_changed
                await client.call_tool(
                    "everything__gzip-file-as-resource",
                    {"name": "modern.gz", "data": "data:text/plain;base64,SGVsbG8gd29ybGQ=", "outputType": "resource"},
                )
                event = await anext(sub)
                assert isinstance(event, ResourcesListChanged), event
            uris = {str(r.uri) for r in (await client.list_resources(cache_mode="refresh")).resources}
    assert "demo://resource/session/modern.gz" in uris, uris


@pytest.mark.parametrize("mode", BOTH)
async def test_tools_list_changed_from_the_fixture_reaches_the_client(home, mode):
    home.fixture("fixture")
    changed = anyio.Event()

    async def on_message(msg):
        if isinstance(msg, ToolListChangedNotification):
            changed.set()

    with anyio.fail_after(DEADLINE):
        async with sdk_client(home, mode, message_handler=on_message) as client:
            if mode == "legacy":
                changed = anyio.Event()  # only what comes after the call counts
                await client.call_tool("fixture__add_tool", {"name": "added_by_pytest"})
                await changed.wait()
            else:
                async with client.listen(tools_list_changed=True) as sub:
                    await client.call_tool("fixture__add_tool", {"name": "added_by_pytest"})
                    event = await anext(sub)
                    assert isinstance(event, ToolsListChanged), event
            names = [t.name for t in (await client.list_tools(cache_mode="refresh")).tools]
            assert "fixture__added_by_pytest" in names, names
            r = await client.call_tool("fixture__added_by_pytest", {})
            assert r.content[0].text == "added_by_pytest was added at runtime"


# ------------------------------------------------------- resource updates ----
@pytest.mark.parametrize("mode", BOTH)
async def test_resource_updates_reach_a_subscriber(home, mode):
    """legacy: `resources/subscribe`; modern: `subscriptions/listen` with resourceSubscriptions.
    server-everything's `toggle-subscriber-updates` sends `resources/updated` for subscribed
    URIs at once (then every 5 s until toggled off)."""
    home.everything()
    uri = "demo://resource/dynamic/text/1"
    updated = anyio.Event()

    async def on_message(msg):
        if isinstance(msg, ResourceUpdatedNotification) and str(msg.params.uri) == uri:
            updated.set()

    with anyio.fail_after(DEADLINE):
        async with sdk_client(home, mode, message_handler=on_message) as client:
            if mode == "legacy":
                await client.subscribe_resource(uri)
                await client.call_tool("everything__toggle-subscriber-updates", {})
                await updated.wait()
            else:
                async with client.listen(resource_subscriptions=[uri]) as sub:
                    assert list(sub.honored.resource_subscriptions or []) == [uri], sub.honored
                    await client.call_tool("everything__toggle-subscriber-updates", {})
                    event = await anext(sub)
                    assert event == ResourceUpdated(uri=uri), event
            await client.call_tool("everything__toggle-subscriber-updates", {})  # off again


# ------------------------------------------------------------------- logging ----
@pytest.mark.parametrize(
    "mode, backend_era",
    [("legacy", "legacy"), ("legacy", "modern"), ("auto", "legacy"), ("auto", "modern")],
)
async def test_backend_log_messages_reach_the_client(home, mode, backend_era):
    """The fixture's `log` tool sends `notifications/message` while the call is in flight (it does
    so straight to this SDK client in every one of these combinations). Legacy clients opt in with
    `logging/setLevel`, modern ones with `_meta["io.modelcontextprotocol/logLevel"]`."""
    home.fixture("f", "--era", backend_era)
    logs = []

    async def on_log(params):
        logs.append(params)

    opt_in = {} if mode == "legacy" else {"log_level": "debug"}
    with anyio.fail_after(DEADLINE):
        async with sdk_client(home, mode, logging_callback=on_log, **opt_in) as client:
            if mode == "legacy":
                await client.set_logging_level("debug")
            await client.call_tool("f__log", {"level": "warning", "message": "disk almost full"})
            # the backend writes the log line before its response; allow the relay a moment
            await eventually("the log message", lambda: logs, timeout=3)
    assert [(p.level, p.data) for p in logs] == [("warning", "disk almost full")], logs


# ------------------------------------------------------- era hygiene (raw) ----
def test_a_legacy_client_gets_no_modern_only_notifications(home):
    """A legacy (2025-11-25) client must only see notifications of its own protocol. vMCP listens
    to a modern backend's changes itself (`subscriptions/listen` on the backend); the backend's
    acknowledgment of that listen is vMCP's business, not the client's."""
    home.fixture("modern", "--era", "modern")
    gw = home.gateway()
    gw.initialize()
    # a change on the backend's listen stream: once its list_changed reached us, the
    # acknowledgment (which the backend sends first) has long been relayed, if it ever is
    gw.ok("tools/call", {"name": "modern__add_tool", "arguments": {"name": "fresh"}})
    gw.notification("notifications/tools/list_changed")
    gw.ok("ping")
    modern_only = [m.raw for m in gw.seen if m.method == "notifications/subscriptions/acknowledged"]
    assert modern_only == [], modern_only
