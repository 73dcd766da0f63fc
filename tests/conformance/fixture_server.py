#!/usr/bin/env python3
"""vMCP's conformance fixture backend.

A server built on the official Python SDK (mcp 2.3.0, `MCPServer`) that
implements what the server scenarios of the official conformance suite
(@modelcontextprotocol/conformance 0.1.16 and 0.2.0-alpha.12) expect:
the `test_*` tools, the `test://` resources and the `test_*` prompts, in
both protocol eras (2025-11-25 handshake and 2026-07-28 stateless).

The suite ships no fixture of its own; tests/conformance/run.py runs the suite
against this server directly and through vMCP, and compares the results.

Usage:
    fixture_server.py stdio
    fixture_server.py http --port P [--host 127.0.0.1]

HTTP binds to loopback only. When listening it prints
`fixture listening on http://HOST:PORT/mcp` on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import sys
import time
import warnings
from typing import Any

import mcp_types as types
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

# The fixture deliberately uses legacy-era features (logging, sampling, roots).
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

MODERN = "2026-07-28"

# 1x1 red PNG and a minimal WAV, as the suite's reference fixture uses.
TEST_IMAGE_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
TEST_AUDIO_BASE64 = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="

# SEP-1613 / SEP-2106: a raw JSON Schema 2020-12 input schema whose keywords must survive.
JSON_SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}

# SEP-2243: a tool parameter mirrored into an `Mcp-Param-Region` HTTP header.
X_MCP_HEADER_SCHEMA = {
    "type": "object",
    "properties": {
        "region": {"type": "string", "x-mcp-header": "Region", "description": "Deployment region"},
        "query": {"type": "string"},
    },
    "required": ["region"],
}

SEP1034_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
    "required": [],
}

SEP1330_SCHEMA = {
    "type": "object",
    "properties": {
        "untitledSingle": {
            "type": "string",
            "description": "Select one option",
            "enum": ["option1", "option2", "option3"],
        },
        "titledSingle": {
            "type": "string",
            "description": "Select one option with titles",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "description": "Select one option (legacy)",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "description": "Select multiple options",
            "minItems": 1,
            "maxItems": 3,
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "description": "Select multiple options with titles",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
    "required": [],
}


# ----------------------------------------------------------------- helpers --


def text_result(text: str, *, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=is_error)


def is_modern(ctx: Context) -> bool:
    return ctx.protocol_version == MODERN


def elicit_request(message: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "method": "elicitation/create",
        "params": {
            "message": message,
            "requestedSchema": {"type": "object", "properties": properties, "required": required},
        },
    }


def sampling_request(prompt: str, max_tokens: int = 100) -> dict[str, Any]:
    return {
        "method": "sampling/createMessage",
        "params": {
            "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
            "maxTokens": max_tokens,
        },
    }


ROOTS_REQUEST: dict[str, Any] = {"method": "roots/list", "params": {}}


def input_required(requests: dict[str, dict[str, Any]], state: str | None = None) -> types.InputRequiredResult:
    payload: dict[str, Any] = {"resultType": "input_required", "inputRequests": requests}
    if state is not None:
        payload["requestState"] = state
    return types.InputRequiredResult.model_validate(payload)


def response_dict(ctx: Context, key: str) -> dict[str, Any] | None:
    """The client's answer to input request `key`, as a plain dict (or None)."""
    responses = ctx.input_responses or {}
    answer = responses.get(key)
    if answer is None:
        return None
    if hasattr(answer, "model_dump"):
        return answer.model_dump(mode="json", by_alias=True, exclude_none=True)
    return answer if isinstance(answer, dict) else None


def elicited_content(ctx: Context, key: str) -> dict[str, Any] | None:
    answer = response_dict(ctx, key)
    if answer is None or answer.get("action") != "accept":
        return None
    content = answer.get("content")
    return content if isinstance(content, dict) else None


def caps_dict(ctx: Context) -> dict[str, Any]:
    caps = ctx.client_capabilities
    if caps is None:
        return {}
    return caps.model_dump(mode="json", by_alias=True, exclude_none=True)


# ----------------------------------------------------------- event store ----


class InMemoryEventStore(EventStore):
    """Event store for SSE resumability (SEP-1699), HTTP mode only."""

    def __init__(self) -> None:
        self._events: list[tuple[str, int, Any]] = []
        self._next = 0

    async def store_event(self, stream_id: str, message: Any) -> str:
        self._next += 1
        self._events.append((stream_id, self._next, message))
        return str(self._next)

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        try:
            last = int(last_event_id)
        except ValueError:
            return None
        stream = next((s for s, n, _ in self._events if n == last), None)
        if stream is None:
            return None
        for s, n, message in self._events:
            if s == stream and n > last and message is not None:
                await send_callback(EventMessage(message, str(n)))
        return stream


# -------------------------------------------------------------- wire log ----


class WireLog:
    """Server middleware appending every inbound message (and its outcome) to a JSON-lines file.

    Enabled with `--wire-log FILE` (or $VMCP_FIXTURE_WIRE_LOG); run.py keeps one per run so a
    failure seen only through vMCP can be traced to what vMCP actually sent the backend.
    """

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the server

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        record: dict[str, Any] = {
            "t": round(time.time(), 3),
            "id": ctx.request_id,
            "method": ctx.method,
            "era": ctx.protocol_version,
            "params": ctx.params,
        }
        headers = getattr(ctx.request, "headers", None)
        if headers is not None:
            record["headers"] = {k: v for k, v in headers.items() if k.lower().startswith("mcp") or k.lower() in (
                "accept", "content-type", "last-event-id", "authorization", "host", "origin")}
        try:
            result = await call_next(ctx)
        except BaseException as exc:
            record["raised"] = repr(exc)
            self._write(record)
            raise
        if hasattr(result, "model_dump"):
            record["result"] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        else:
            record["result"] = result
        self._write(record)
        return result



# ------------------------------------------------------ tasks extension ----
# io.modelcontextprotocol/tasks (SEP-2663, 2026-07-28 only), as the suite's tasks-* scenarios
# expect it: the server alone decides to run a task-supporting tool as a task for a request that
# declared the extension; tasks/get inlines the result; input is gathered with inputRequests on
# tasks/get and answered with tasks/update. The SDK (2.3.0) ships no runtime for it.

TASKS_EXT = "io.modelcontextprotocol/tasks"
TASK_TTL_MS = 300_000
TASK_POLL_MS = 100
TERMINAL = ("completed", "failed", "cancelled")
# tool name -> taskSupport ("required" tools cannot run without the extension)
TASK_TOOLS = {
    "slow_compute": "optional",
    "failing_job": "required",
    "protocol_error_job": "optional",
    "confirm_delete": "optional",
    "multi_input": "optional",
    "test_tool_with_task": "required",
}


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"


def declared_tasks(ctx: Any) -> bool:
    caps = ctx.session.client_capabilities
    return bool(caps is not None and caps.extensions and TASKS_EXT in caps.extensions)


def missing_tasks_capability(what: str) -> MCPError:
    return MCPError(
        code=types.MISSING_REQUIRED_CLIENT_CAPABILITY,
        message=f"{what} requires the {TASKS_EXT} extension, which this request did not declare",
        data={"requiredCapabilities": {"extensions": {TASKS_EXT: {}}}},
    )


class TaskIdParams(types.RequestParams):
    task_id: str
    input_responses: dict[str, Any] | None = None


class TaskRecord:
    def __init__(self, task_id: str, tool: str) -> None:
        self.task_id = task_id
        self.tool = tool
        self.status = "working"
        self.status_message: str | None = None
        self.created = self.updated = now_iso()
        self.result: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.pending: dict[str, dict[str, Any]] = {}
        self.answers: dict[str, Any] = {}
        self.changed = asyncio.Event()
        self.runner: asyncio.Task | None = None

    def set(self, status: str, **fields: Any) -> None:
        if self.status in TERMINAL:
            return
        self.status = status
        self.updated = now_iso()
        for k, v in fields.items():
            setattr(self, k, v)

    def envelope(self) -> dict[str, Any]:
        env: dict[str, Any] = {
            "taskId": self.task_id,
            "status": self.status,
            "createdAt": self.created,
            "lastUpdatedAt": self.updated,
            "ttlMs": TASK_TTL_MS,
            "pollIntervalMs": TASK_POLL_MS,
        }
        if self.status_message:
            env["statusMessage"] = self.status_message
        return env

    def detailed(self) -> dict[str, Any]:
        d = {"resultType": "complete", **self.envelope()}
        if self.status == "completed" and self.result is not None:
            d["result"] = self.result
        elif self.status == "failed" and self.error is not None:
            d["error"] = self.error
        elif self.status == "input_required":
            d["inputRequests"] = dict(self.pending)
        return d


class TasksExtension(Extension):
    identifier = TASKS_EXT

    def __init__(self) -> None:
        self.tasks: dict[str, TaskRecord] = {}
        self._next = 0
        self._modern = frozenset({MODERN})

    def methods(self) -> list[MethodBinding]:
        return [
            MethodBinding("tasks/get", TaskIdParams, self.tasks_get, self._modern),
            MethodBinding("tasks/update", TaskIdParams, self.tasks_update, self._modern),
            MethodBinding("tasks/cancel", TaskIdParams, self.tasks_cancel, self._modern),
        ]

    # -- tasks/* --

    def _lookup(self, ctx: Any, method: str, params: TaskIdParams) -> TaskRecord:
        if not declared_tasks(ctx):
            raise missing_tasks_capability(method)
        headers = getattr(ctx.request, "headers", None)
        if headers is not None:  # Streamable HTTP: a present Mcp-Name must name this task (SEP-2663)
            name = headers.get("mcp-name")
            if name is not None and name.strip(" \t") != params.task_id:
                raise MCPError(code=types.HEADER_MISMATCH, message="Mcp-Name header does not match params.taskId")
        record = self.tasks.get(params.task_id)
        if record is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown task: {params.task_id}")
        return record

    async def tasks_get(self, ctx: Any, params: TaskIdParams) -> dict[str, Any]:
        return self._lookup(ctx, "tasks/get", params).detailed()

    async def tasks_update(self, ctx: Any, params: TaskIdParams) -> dict[str, Any]:
        record = self._lookup(ctx, "tasks/update", params)
        for key, answer in (params.input_responses or {}).items():
            if key in record.pending:  # unknown keys are ignored
                record.answers[key] = answer
                del record.pending[key]
        record.changed.set()
        return {"resultType": "complete"}

    async def tasks_cancel(self, ctx: Any, params: TaskIdParams) -> dict[str, Any]:
        record = self._lookup(ctx, "tasks/cancel", params)
        if record.status not in TERMINAL:
            record.set("cancelled", pending={})
            if record.runner is not None:
                record.runner.cancel()
        return {"resultType": "complete"}

    # -- tools/call --

    async def intercept_tool_call(self, params: Any, ctx: Any, call_next: Any) -> Any:
        support = TASK_TOOLS.get(params.name)
        if support is None or ctx.protocol_version != MODERN:
            return await call_next(ctx)
        if not declared_tasks(ctx):
            if support == "required":
                raise missing_tasks_capability(f"tools/call {params.name}")
            return await call_next(ctx)  # optional: falls through to synchronous execution
        args = params.arguments or {}
        if params.name == "test_tool_with_task":
            # MRTR first (synchronous), then escalate to a task on the final round.
            answer = (params.input_responses or {}).get("user_name")
            content = getattr(answer, "content", None) if answer is not None else None
            if not isinstance(content, dict) or not isinstance(content.get("name"), str):
                return input_required(
                    {"user_name": elicit_request("What is your name?", {"name": {"type": "string"}}, ["name"])}
                )
            args = {"name": content["name"]}
        self._next += 1
        record = TaskRecord(f"task-{self._next}-{os.getpid()}", params.name)
        self.tasks[record.task_id] = record
        record.runner = asyncio.get_running_loop().create_task(self._run(record, args))
        return {"resultType": "task", **record.envelope()}

    async def _run(self, record: TaskRecord, args: dict[str, Any]) -> None:
        def done(text: str, is_error: bool = False) -> None:
            record.set("completed", result={"content": [{"type": "text", "text": text}], "isError": is_error})

        async def ask(requests: dict[str, dict[str, Any]]) -> None:
            record.set("input_required", pending=dict(requests), status_message="waiting for input")
            while record.pending:
                record.changed.clear()
                await record.changed.wait()
            record.set("working", status_message=None)

        try:
            tool = record.tool
            if tool == "slow_compute":
                await asyncio.sleep(float(args.get("seconds", 1)))
                done(f"Computed {args.get('label', 'result')}")
            elif tool == "failing_job":
                await asyncio.sleep(0.2)
                done("failing_job: the job failed (tool execution error)", is_error=True)
            elif tool == "protocol_error_job":
                await asyncio.sleep(0.1)
                record.set("failed", error={"code": types.INTERNAL_ERROR, "message": "protocol_error_job crashed"})
            elif tool == "confirm_delete":
                await ask({"confirm": elicit_request(f"Delete {args.get('filename')}?",
                                                     {"confirm": {"type": "boolean"}}, ["confirm"])})
                done(f"Deleted {args.get('filename')}")
            elif tool == "multi_input":
                await ask({
                    "first": elicit_request("First input", {"name": {"type": "string"}}, ["name"]),
                    "second": elicit_request("Second input", {"name": {"type": "string"}}, ["name"]),
                })
                done(f"Inputs accepted: {sorted(record.answers)}")
            elif tool == "test_tool_with_task":
                await asyncio.sleep(0.1)
                done(f"Hello, {args.get('name')}! (completed as a task)")
        except asyncio.CancelledError:
            record.set("cancelled", pending={})
        except Exception as exc:  # noqa: BLE001 - a crash is a protocol-level failure of the task
            record.set("failed", error={"code": types.INTERNAL_ERROR, "message": str(exc)})


def add_task_tools(mcp: MCPServer) -> None:
    """The tasks-* fixtures; run synchronously unless TasksExtension turns the call into a task."""

    @mcp.tool(description="Sync-only greeting (tasks fixtures)")
    def greet(name: str) -> types.CallToolResult:
        return text_result(f"Hello, {name}!")

    @mcp.tool(description="Task-supporting: sleeps `seconds`, then returns a result")
    async def slow_compute(seconds: float = 1, label: str = "result") -> types.CallToolResult:
        await asyncio.sleep(min(float(seconds), 5.0))
        return text_result(f"Computed {label}")

    @mcp.tool(description="Task-required: always ends in a tool execution error")
    def failing_job() -> types.CallToolResult:
        return text_result("failing_job: the job failed (tool execution error)", is_error=True)

    @mcp.tool(description="Task-supporting: ends in a protocol-level error")
    def protocol_error_job() -> types.CallToolResult:
        raise MCPError(code=types.INTERNAL_ERROR, message="protocol_error_job crashed")

    @mcp.tool(description="Task-supporting: asks for confirmation (elicitation) before deleting")
    def confirm_delete(filename: str) -> types.CallToolResult:
        return text_result(f"Deleted {filename}")

    @mcp.tool(description="Task-supporting: asks two questions at once")
    def multi_input() -> types.CallToolResult:
        return text_result("Inputs accepted")

    @mcp.tool(description="Task-required: MRTR for user_name, then completes as a task")
    def test_tool_with_task() -> types.CallToolResult:
        return text_result("test_tool_with_task needs the tasks extension")


class FixtureServer(MCPServer):
    """MCPServer that also advertises `execution.taskSupport` for the task-supporting tools."""

    async def list_tools(self) -> list[types.Tool]:
        tools = await super().list_tools()
        for tool in tools:
            if tool.name in TASK_TOOLS:
                tool.execution = types.ToolExecution(task_support=TASK_TOOLS[tool.name])
        return tools


# ------------------------------------------------------------------ server --


def build_server(wire_log: str | None = None) -> MCPServer:
    mcp = FixtureServer(
        name="vmcp-conformance-fixture",
        version="1.0.0",
        instructions="Conformance fixture backend for vMCP.",
        warn_on_duplicate_tools=False,
        middleware=[WireLog(wire_log)] if wire_log else None,
        extensions=[TasksExtension()],
    )
    add_task_tools(mcp)

    # ---- content tools (both eras) ----

    @mcp.tool(description="Tests simple text content response")
    def test_simple_text() -> types.CallToolResult:
        return text_result("This is a simple text response for testing.")

    @mcp.tool(description="Tests image content response")
    def test_image_content() -> types.CallToolResult:
        return types.CallToolResult(
            content=[types.ImageContent(type="image", data=TEST_IMAGE_BASE64, mime_type="image/png")]
        )

    @mcp.tool(description="Tests audio content response")
    def test_audio_content() -> types.CallToolResult:
        return types.CallToolResult(
            content=[types.AudioContent(type="audio", data=TEST_AUDIO_BASE64, mime_type="audio/wav")]
        )

    @mcp.tool(description="Tests embedded resource content response")
    def test_embedded_resource() -> types.CallToolResult:
        return types.CallToolResult(
            content=[
                types.EmbeddedResource(
                    type="resource",
                    resource=types.TextResourceContents(
                        uri="test://embedded-resource",
                        mime_type="text/plain",
                        text="This is an embedded resource content.",
                    ),
                )
            ]
        )

    @mcp.tool(description="Tests response with multiple content types (text, image, resource)")
    def test_multiple_content_types() -> types.CallToolResult:
        return types.CallToolResult(
            content=[
                types.TextContent(type="text", text="Multiple content types test:"),
                types.ImageContent(type="image", data=TEST_IMAGE_BASE64, mime_type="image/png"),
                types.EmbeddedResource(
                    type="resource",
                    resource=types.TextResourceContents(
                        uri="test://mixed-content-resource",
                        mime_type="application/json",
                        text=json.dumps({"test": "data", "value": 123}),
                    ),
                ),
            ]
        )

    @mcp.tool(description="Tests tool that emits log messages during execution")
    async def test_tool_with_logging(ctx: Context) -> types.CallToolResult:
        for i, text in enumerate(("Tool execution started", "Tool processing data", "Tool execution completed")):
            if i:
                await asyncio.sleep(0.05)
            await ctx.info(text)
        return text_result("Tool with logging executed successfully")

    @mcp.tool(description="Emits log messages; they must only be sent when the request opted in (2026-07-28)")
    async def test_logging_tool(ctx: Context) -> types.CallToolResult:
        await ctx.info("Logging tool: first message")
        await asyncio.sleep(0.02)
        await ctx.warning("Logging tool: second message")
        return text_result("Logging tool complete")

    @mcp.tool(description="Tests tool that reports progress notifications")
    async def test_tool_with_progress(ctx: Context) -> types.CallToolResult:
        for step in (0, 50, 100):
            await ctx.report_progress(progress=step, total=100, message=f"Completed step {step} of 100")
            if step != 100:
                await asyncio.sleep(0.05)
        meta = ctx.request_context.meta
        token = meta.progress_token if meta is not None and meta.progress_token is not None else 0
        return text_result(str(token))

    @mcp.tool(description="Tests error response handling")
    def test_error_handling() -> types.CallToolResult:
        return text_result("This tool intentionally returns an error for testing", is_error=True)

    @mcp.tool(description="Tests SSE stream disconnection and client reconnection (SEP-1699)")
    async def test_reconnection(ctx: Context) -> types.CallToolResult:
        await ctx.close_sse_stream()
        await asyncio.sleep(0.2)
        return text_result(
            "Reconnection test completed successfully. If you received this, "
            "the client properly reconnected after stream closure."
        )

    @mcp.tool(description="Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)")
    def json_schema_2020_12_tool(
        name: str | None = None,
        address: dict[str, Any] | None = None,
        contactMethod: str | None = None,  # noqa: N803 - wire name
        phone: str | None = None,
        email: str | None = None,
    ) -> types.CallToolResult:
        args = {k: v for k, v in dict(name=name, address=address, contactMethod=contactMethod, phone=phone,
                                        email=email).items() if v is not None}
        return text_result(f"JSON Schema 2020-12 tool called with: {json.dumps(args)}")

    @mcp.tool(description="Echoes a parameter that clients mirror into the Mcp-Param-Region header (SEP-2243)")
    def test_x_mcp_header(region: str, query: str | None = None) -> types.CallToolResult:
        return text_result(f"region={region}" + (f" query={query}" if query is not None else ""))

    # ---- server->client requests (legacy era); MRTR in the modern era ----

    @mcp.tool(description="Tests server-initiated sampling (LLM completion request)")
    async def test_sampling(prompt: str, ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        if is_modern(ctx):
            answer = response_dict(ctx, "sampling")
            if answer is None:
                return input_required({"sampling": sampling_request(prompt)})
            return text_result(f"LLM response: {(answer.get('content') or {}).get('text', 'No response')}")
        try:
            result = await ctx.session.create_message(
                messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))],
                max_tokens=100,
                related_request_id=ctx.request_context.request_id,
            )
            content = result.content
            text = getattr(content, "text", None) or "No response"
            return text_result(f"LLM response: {text}")
        except Exception as exc:  # noqa: BLE001 - report the failure as content
            return text_result(f"Sampling not supported or error: {exc}")

    async def legacy_elicit(ctx: Context, message: str, schema: dict[str, Any], prefix: str) -> types.CallToolResult:
        try:
            result = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_context.request_id)
            return text_result(f"{prefix}: action={result.action}, content={json.dumps(result.content or {})}")
        except Exception as exc:  # noqa: BLE001
            return text_result(f"Elicitation not supported or error: {exc}")

    async def elicit_either_era(
        ctx: Context, key: str, message: str, schema: dict[str, Any], prefix: str
    ) -> types.CallToolResult | types.InputRequiredResult:
        if is_modern(ctx):
            answer = response_dict(ctx, key)
            if answer is None:
                return input_required({key: elicit_request(message, schema["properties"], schema["required"])})
            return text_result(
                f"{prefix}: action={answer.get('action')}, content={json.dumps(answer.get('content') or {})}"
            )
        return await legacy_elicit(ctx, message, schema, prefix)

    @mcp.tool(description="Tests server-initiated elicitation (user input request)")
    async def test_elicitation(message: str, ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        schema = {
            "type": "object",
            "properties": {"response": {"type": "string", "description": "User's response"}},
            "required": ["response"],
        }
        return await elicit_either_era(ctx, "user_response", message, schema, "User response")

    @mcp.tool(description="Tests elicitation with default values per SEP-1034")
    async def test_elicitation_sep1034_defaults(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        return await elicit_either_era(
            ctx, "defaults", "Please review and update the form fields with defaults", SEP1034_SCHEMA,
            "Elicitation completed",
        )

    @mcp.tool(description="Tests elicitation with enum schema improvements per SEP-1330")
    async def test_elicitation_sep1330_enums(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        return await elicit_either_era(
            ctx, "enums", "Please select options from the enum fields", SEP1330_SCHEMA, "Elicitation completed"
        )

    # ---- 2026-07-28 diagnostics (server-stateless) ----

    @mcp.tool(description="Needs the sampling capability; rejects with -32021 when the request did not declare it")
    def test_missing_capability(ctx: Context) -> types.CallToolResult:
        if "sampling" not in caps_dict(ctx):
            raise MCPError(
                code=types.MISSING_REQUIRED_CLIENT_CAPABILITY,
                message="Client did not declare the sampling capability required by test_missing_capability",
                data={"requiredCapabilities": {"sampling": {}}},
            )
        return text_result("sampling capability present")

    @mcp.tool(description="Streams progress, then asks for input through an InputRequiredResult (never a request)")
    async def test_streaming_elicitation(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        await ctx.report_progress(progress=0, total=1, message="about to ask")
        content = elicited_content(ctx, "stream_answer")
        if content is None:
            return input_required(
                {"stream_answer": elicit_request("Continue?", {"ok": {"type": "boolean"}}, ["ok"])}
            )
        return text_result(f"streamed: {json.dumps(content)}")

    added = {"tool": 0, "prompt": 0}

    @mcp.tool(description="Adds a tool and notifies tools/list_changed listeners (SEP-2575)")
    async def test_trigger_tool_change(ctx: Context) -> types.CallToolResult:
        added["tool"] += 1
        name = f"test_added_tool_{added['tool']}"

        def added_tool() -> types.CallToolResult:
            return text_result(name)

        mcp.add_tool(added_tool, name=name, description="Tool added by test_trigger_tool_change")
        await ctx.notify_tools_changed()
        if not is_modern(ctx):
            await ctx.session.send_tool_list_changed()
        return text_result(f"added {name}")

    @mcp.tool(description="Adds a prompt and notifies prompts/list_changed listeners (SEP-2575)")
    async def test_trigger_prompt_change(ctx: Context) -> types.CallToolResult:
        added["prompt"] += 1
        name = f"test_added_prompt_{added['prompt']}"

        def added_prompt() -> str:
            return name

        mcp.prompt(name=name, description="Prompt added by test_trigger_prompt_change")(added_prompt)
        await ctx.notify_prompts_changed()
        if not is_modern(ctx):
            await ctx.session.send_prompt_list_changed()
        return text_result(f"added {name}")

    # ---- 2026-07-28 multi round-trip requests (SEP-2322) ----

    @mcp.tool(description="MRTR: asks for the user's name via an elicitation input request")
    def test_input_required_result_elicitation(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        content = elicited_content(ctx, "user_name")
        if content is None or not isinstance(content.get("name"), str):
            return input_required(
                {"user_name": elicit_request("What is your name?", {"name": {"type": "string"}}, ["name"])}
            )
        return text_result(f"Hello, {content['name']}!")

    @mcp.tool(description="MRTR: asks for an LLM completion via a sampling input request")
    def test_input_required_result_sampling(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        answer = response_dict(ctx, "capital_question")
        if answer is None or "content" not in answer:
            return input_required({"capital_question": sampling_request("What is the capital of France?")})
        return text_result(f"Sampling result: {(answer.get('content') or {}).get('text', '')}")

    @mcp.tool(description="MRTR: asks for the client's roots via a roots/list input request")
    def test_input_required_result_list_roots(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        answer = response_dict(ctx, "client_roots")
        if answer is None or not isinstance(answer.get("roots"), list):
            return input_required({"client_roots": ROOTS_REQUEST})
        uris = [r.get("uri") for r in answer["roots"] if isinstance(r, dict)]
        return text_result(f"Found {len(uris)} root(s): {', '.join(str(u) for u in uris)}")

    @mcp.tool(description="MRTR: round-trips an integrity-protected requestState")
    def test_input_required_result_request_state(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        content = elicited_content(ctx, "confirm")
        if content is None or ctx.request_state != "awaiting-confirm":
            return input_required(
                {"confirm": elicit_request("Please confirm", {"ok": {"type": "boolean"}}, ["ok"])}, "awaiting-confirm"
            )
        return text_result(f"state-ok: confirmed={json.dumps(content.get('ok'))}")

    @mcp.tool(description="MRTR: elicitation, sampling and roots/list in one InputRequiredResult")
    def test_input_required_result_multiple_inputs(
        ctx: Context,
    ) -> types.CallToolResult | types.InputRequiredResult:
        name = elicited_content(ctx, "user_name")
        greeting = response_dict(ctx, "greeting")
        roots = response_dict(ctx, "client_roots")
        if ctx.request_state == "multi" and name is not None and greeting is not None and roots is not None:
            text = (greeting.get("content") or {}).get("text", "")
            return text_result(f"name={name.get('name')} greeting={text} roots={len(roots.get('roots') or [])}")
        return input_required(
            {
                "user_name": elicit_request("What is your name?", {"name": {"type": "string"}}, ["name"]),
                "greeting": sampling_request("Generate a greeting", 50),
                "client_roots": ROOTS_REQUEST,
            },
            "multi",
        )

    @mcp.tool(description="MRTR: two rounds of input with an evolving requestState")
    def test_input_required_result_multi_round(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        state = ctx.request_state or ""
        if state.startswith("round-2:"):
            color = elicited_content(ctx, "step2")
            if color is not None:
                return text_result(f"Done: name={state[len('round-2:'):]} color={color.get('color')}")
        elif state == "round-1":
            name = elicited_content(ctx, "step1")
            if name is not None:
                return input_required(
                    {
                        "step2": elicit_request(
                            "Step 2: What is your favorite color?", {"color": {"type": "string"}}, ["color"]
                        )
                    },
                    f"round-2:{name.get('name')}",
                )
        return input_required(
            {"step1": elicit_request("Step 1: What is your name?", {"name": {"type": "string"}}, ["name"])},
            "round-1",
        )

    @mcp.tool(description="MRTR: requestState is sealed; a tampered echo is rejected")
    def test_input_required_result_tampered_state(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        # The SDK's RequestStateBoundary seals the state (AES-GCM) and rejects a tampered echo with -32602.
        content = elicited_content(ctx, "confirm")
        if content is None or ctx.request_state != "tamper-check":
            return input_required(
                {"confirm": elicit_request("Please confirm", {"ok": {"type": "boolean"}}, ["ok"])}, "tamper-check"
            )
        return text_result("state verified")

    @mcp.tool(description="MRTR: only asks for input kinds the request declared in clientCapabilities")
    def test_input_required_result_capabilities(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        caps = caps_dict(ctx)
        if ctx.input_responses:
            return text_result("inputs received")
        requests: dict[str, dict[str, Any]] = {}
        if "elicitation" in caps:
            requests["user_name"] = elicit_request("What is your name?", {"name": {"type": "string"}}, ["name"])
        if "sampling" in caps:
            requests["greeting"] = sampling_request("Generate a greeting", 50)
        if "roots" in caps:
            requests["client_roots"] = ROOTS_REQUEST
        if not requests:
            return text_result("client declared no input capabilities")
        return input_required(requests)

    # ---- resources ----

    @mcp.resource("test://static-text", name="static-text", title="Static Text Resource",
                  description="A static text resource for testing", mime_type="text/plain")
    def static_text() -> str:
        return "This is the content of the static text resource."

    @mcp.resource("test://static-binary", name="static-binary", title="Static Binary Resource",
                  description="A static binary resource (image) for testing", mime_type="image/png")
    def static_binary() -> bytes:
        return base64.b64decode(TEST_IMAGE_BASE64)

    @mcp.resource("test://template/{id}/data", name="template", title="Resource Template",
                  description="A resource template with parameter substitution", mime_type="application/json")
    def template(id: str) -> str:  # noqa: A002 - template variable name
        return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})

    @mcp.resource("test://watched-resource", name="watched-resource", title="Watched Resource",
                  description="A resource that can be subscribed to", mime_type="text/plain")
    def watched() -> str:
        return "Watched resource content"

    subscriptions: set[str] = set()

    async def on_subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
        subscriptions.add(str(params.uri))
        return types.EmptyResult()

    async def on_unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        subscriptions.discard(str(params.uri))
        return types.EmptyResult()

    async def on_set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        return types.EmptyResult()

    low = mcp._lowlevel_server  # noqa: SLF001 - the SDK has no public hook for these legacy handlers
    low.add_request_handler("resources/subscribe", types.SubscribeRequestParams, on_subscribe)
    low.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, on_unsubscribe)
    low.add_request_handler("logging/setLevel", types.SetLevelRequestParams, on_set_level)

    # ---- prompts ----

    @mcp.prompt(title="Simple Test Prompt", description="A simple prompt without arguments")
    def test_simple_prompt() -> list[dict[str, Any]]:
        return [{"role": "user", "content": {"type": "text", "text": "This is a simple prompt for testing."}}]

    @mcp.prompt(title="Prompt With Arguments", description="A prompt with required arguments")
    def test_prompt_with_arguments(arg1: str, arg2: str) -> list[dict[str, Any]]:
        return [
            {
                "role": "user",
                "content": {"type": "text", "text": f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"},
            }
        ]

    @mcp.prompt(title="Prompt With Embedded Resource", description="A prompt that includes an embedded resource")
    def test_prompt_with_embedded_resource(resourceUri: str) -> list[dict[str, Any]]:  # noqa: N803 - wire name
        return [
            {
                "role": "user",
                "content": {
                    "type": "resource",
                    "resource": {
                        "uri": resourceUri,
                        "mimeType": "text/plain",
                        "text": "Embedded resource content for testing.",
                    },
                },
            },
            {"role": "user", "content": {"type": "text", "text": "Please process the embedded resource above."}},
        ]

    @mcp.prompt(title="Prompt With Image", description="A prompt that includes image content")
    def test_prompt_with_image() -> list[dict[str, Any]]:
        return [
            {"role": "user", "content": {"type": "image", "data": TEST_IMAGE_BASE64, "mimeType": "image/png"}},
            {"role": "user", "content": {"type": "text", "text": "Please analyze the image above."}},
        ]

    @mcp.prompt(description="MRTR on prompts/get: asks for context before rendering")
    def test_input_required_result_prompt(ctx: Context) -> Any:
        content = elicited_content(ctx, "user_context")
        if content is None:
            return input_required(
                {
                    "user_context": elicit_request(
                        "What context should the prompt use?", {"context": {"type": "string"}}, ["context"]
                    )
                }
            )
        return [{"role": "user", "content": {"type": "text", "text": f"Context: {content.get('context')}"}}]

    # ---- completion ----

    @mcp.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> types.Completion:
        return types.Completion(values=[], total=0, has_more=False)

    # Raw input schemas that the function signatures cannot express.
    tm = mcp._tool_manager  # noqa: SLF001
    tm.get_tool("json_schema_2020_12_tool").parameters = JSON_SCHEMA_2020_12
    tm.get_tool("test_x_mcp_header").parameters = X_MCP_HEADER_SCHEMA
    return mcp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="transport", required=True)
    stdio = sub.add_parser("stdio", help="serve MCP on stdin/stdout")
    http = sub.add_parser("http", help="serve Streamable HTTP on HOST:PORT/mcp")
    http.add_argument("--port", type=int, required=True)
    http.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "localhost", "::1"])
    for p in (stdio, http):
        p.add_argument("--wire-log", default=os.environ.get("VMCP_FIXTURE_WIRE_LOG"),
                       help="append every inbound message to this JSON-lines file")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="fixture %(levelname)s %(name)s: %(message)s")
    mcp = build_server(args.wire_log)
    if args.transport == "stdio":
        mcp.run("stdio")
        return 0

    import anyio
    import uvicorn

    app = mcp.streamable_http_app(event_store=InMemoryEventStore(), retry_interval=100, host=args.host)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)

    async def serve() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            while not server.started:
                await anyio.sleep(0.01)
            print(f"fixture listening on http://{args.host}:{args.port}/mcp", file=sys.stderr, flush=True)

    anyio.run(serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
