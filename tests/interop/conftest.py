"""pytest fixtures for the interop suite (the harness itself is in `harness.py`).

A missing binary or tool fails every test with a message saying what to run; nothing is skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Home, missing_tools  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _tools_present() -> None:
    problems = missing_tools()
    if problems:
        pytest.fail("interop tools missing:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path):
    """A temporary VMCP_HOME; every process started through it is ended afterwards."""
    h = Home(tmp_path)
    yield h
    h.close()
