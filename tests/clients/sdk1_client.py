"""Python SDK 1.x (mcp 1.x, `$VMCP_PY1`) over Streamable HTTP: list, call, read and get.

usage: python sdk1_client.py URL REQUESTS_JSON   prints one JSON object (see conftest.check)
"""

import json
import sys

import anyio
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client


async def main() -> None:
    url, plan = sys.argv[1], json.loads(sys.argv[2])
    out: dict = {"tools": [], "calls": {}, "prompts": {}, "reads": {}}
    with anyio.fail_after(60):
        async with streamablehttp_client(url) as (read, write, _):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                out["protocolVersion"] = init.protocolVersion
                cursor = None
                while True:
                    page = await session.list_tools(cursor=cursor)
                    out["tools"] += [t.name for t in page.tools]
                    cursor = page.nextCursor
                    if not cursor:
                        break
                for name, args in plan["calls"].items():
                    r = await session.call_tool(name, args)
                    out["calls"][name] = r.content[0].text
                for name, args in plan["prompts"].items():
                    p = await session.get_prompt(name, args)
                    out["prompts"][name] = p.messages[0].content.text
                for uri in plan["reads"]:
                    r = await session.read_resource(uri)
                    out["reads"][uri] = r.contents[0].text
    print(json.dumps(out))


anyio.run(main)
