"""Python SDK 1.x (legacy-only) client against `vmcp start`; run by `$VMCP_PY1` (mcp 1.x).

usage: python v1_client.py VMCP_BINARY   (VMCP_HOME in the environment)
Prints one JSON object with what it saw; exits non-zero on any failure.
"""

import json
import os
import sys

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import get_default_environment, stdio_client


async def main() -> None:
    params = StdioServerParameters(
        command=sys.argv[1],
        args=["start"],
        env={**get_default_environment(), "VMCP_HOME": os.environ["VMCP_HOME"], "VMCP_LOG": "info"},
    )
    out: dict = {}
    with anyio.fail_after(60):
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                out["protocolVersion"] = init.protocolVersion
                out["serverName"] = init.serverInfo.name
                tools, cursor, pages = [], None, 0
                while True:
                    page = await session.list_tools(cursor=cursor)
                    pages += 1
                    tools += [t.name for t in page.tools]
                    cursor = page.nextCursor
                    if not cursor or pages > 100:
                        break
                out["tools"], out["toolPages"] = tools, pages
                calls = {}
                for name, args in [
                    ("fixture__echo", {"text": "from sdk 1.x"}),
                    ("everything__echo", {"message": "from sdk 1.x"}),
                    ("time__get_current_time", {"timezone": "UTC"}),
                ]:
                    r = await session.call_tool(name, args)
                    calls[name] = {"isError": r.isError, "text": r.content[0].text,
                                   "structured": r.structuredContent}
                out["calls"] = calls
                out["prompts"] = [p.name for p in (await session.list_prompts()).prompts]
                greet = await session.get_prompt("fixture__greet", {"name": "v1"})
                out["greet"] = greet.messages[0].content.text
                hello = await session.read_resource("fixture://static/hello")
                out["hello"] = hello.contents[0].text
    print(json.dumps(out))


anyio.run(main)
