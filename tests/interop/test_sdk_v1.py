"""Acceptance: the Python SDK 1.x client (`$VMCP_PY1`, mcp 1.x, legacy-only: it never sends
`server/discover`) lists and calls through `vmcp start` with the three real backends mounted.
The client runs in its own interpreter (`v1_client.py`), since 1.x and 2.x cannot share one.
"""

from __future__ import annotations

import json
import os
import subprocess

from harness import HERE, VMCP


def test_sdk_1x_client_lists_and_calls(home):
    home.everything()
    home.time()
    home.fixture("fixture", "--page-size", "3")
    home.write()
    stderr_path = home.path / "v1_client.stderr"
    with open(stderr_path, "wb") as err:
        proc = subprocess.run(
            [os.environ["VMCP_PY1"], str(HERE / "v1_client.py"), str(VMCP)],
            env={**os.environ, "VMCP_HOME": str(home.path)},
            stdout=subprocess.PIPE,
            stderr=err,
            timeout=90,
        )
    stderr = stderr_path.read_text(errors="replace")
    assert proc.returncode == 0, f"SDK 1.x client failed ({proc.returncode}):\n{stderr[-6000:]}"
    out = json.loads(proc.stdout.decode().strip().splitlines()[-1])

    assert out["protocolVersion"] == "2025-11-25" and out["serverName"] == "vmcp", out
    tools = out["tools"]
    assert out["toolPages"] > 1, "the fixture pages by 3: the client must have followed vMCP's cursors"
    assert len(tools) == len(set(tools)), tools
    for name in ("everything__echo", "everything__get-sum", "time__get_current_time", "time__convert_time",
                 "fixture__echo", "fixture__whoami"):
        assert name in tools, (name, tools)

    calls = out["calls"]
    assert calls["fixture__echo"] == {"isError": False, "text": "from sdk 1.x", "structured": None}, calls
    assert calls["everything__echo"]["text"] == "Echo: from sdk 1.x", calls
    assert calls["time__get_current_time"]["structured"]["timezone"] == "UTC", calls
    assert "fixture__greet" in out["prompts"] and "everything__simple-prompt" in out["prompts"], out["prompts"]
    assert out["greet"] == "Hello, v1!" and out["hello"] == "Hello from the fixture!", out
