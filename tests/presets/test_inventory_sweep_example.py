"""examples/meraki_inventory_sweep.py runs offline and gets no 429."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "examples" / "meraki_inventory_sweep.py"
SMALL = ["--organizations", "2", "--networks", "2", "--devices", "2"]


@pytest.mark.parametrize("client", ["httpx", "sdk"])
def test_the_sweep_shares_redis_and_gets_no_429(client: str, redis_url: str) -> None:
    """Two processes sweep two organizations through one Redis: 23 calls,
    none refused."""
    if client == "sdk" and importlib.util.find_spec("meraki") is None:
        pytest.skip("the Meraki SDK is not installed")
    options = ["--processes", "2", "--threads", "2", "--redis-url", redis_url]
    options += ["--sdk"] if client == "sdk" else []

    done = subprocess.run(
        [sys.executable, str(SCRIPT), *SMALL, *options],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )

    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr
    assert lines[1] == f"Redis at {redis_url}: 2 processes share it"
    assert lines[2:4] == ["calls: 23", "429s: 0"]
