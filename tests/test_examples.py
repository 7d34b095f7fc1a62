"""The small examples run offline, as their docstrings say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_header_pacing_example_gets_no_429() -> None:
    """The header-paced example finishes its calls with no 429 counted."""
    out = run("header_pacing_local.py", "30")

    assert "30 calls in" in out
    assert "429 responses counted by the server: 0" in out


def test_meraki_like_example_runs() -> None:
    """The Meraki-like example runs to the end with no 429 counted."""
    out = run("meraki_like_local.py")

    assert "0 with 429" in out
