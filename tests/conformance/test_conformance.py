"""pytest entry point for the conformance comparison (tests/conformance/run.py).

One test per pinned suite run, each comparing the fixture tested directly with the fixture
behind vMCP (mounted over stdio and over Streamable HTTP). The full report of a failing run
is the assertion message; logs are kept under pytest's tmp_path.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402


@pytest.mark.parametrize("suite", [s.name for s in run.SUITES])
def test_conformance_through_vmcp(suite: str, tmp_path: Path) -> None:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = run.main(["--suite", suite, "--out", str(tmp_path)])
    output = buf.getvalue()
    if rc == 2:
        pytest.fail(f"conformance run could not start:\n{output}", pytrace=False)
    assert rc == 0, (
        f"conformance suite {suite}: a scenario fails through vMCP (or directly) without an entry in "
        f"tests/conformance/expected-failures.yml, or an entry there is stale. Logs: {tmp_path}\n\n{output}"
    )
