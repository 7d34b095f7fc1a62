"""Servers we did not write, started on loopback for the integration tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HeaderServer:
    """Flask-Limiter under gunicorn on a free loopback port."""

    def __init__(self, limit: str, strategy: str = "fixed-window") -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "LIMIT": limit, "STRATEGY": strategy}
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            *("--bind", f"127.0.0.1:{self.port}"),
            *("--workers", "1", "--threads", "32"),
            *("--chdir", str(HERE), "--log-level", "warning"),
            "servers.flask_limited:app",
        ]
        self.process = subprocess.Popen(command, env=env)
        self._wait_until_up()

    def stats(self) -> dict[int, int]:
        answer = httpx.get(f"{self.url}/_stats", trust_env=False)
        return {int(status): n for status, n in answer.json().items()}

    def reset(self) -> None:
        httpx.post(f"{self.url}/_reset", trust_env=False).raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("gunicorn exited before it answered")
            try:
                self.stats()
                return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn did not answer within 20 s")


@pytest.fixture
def header_server(request: pytest.FixtureRequest) -> Iterator[HeaderServer]:
    """A Flask-Limiter API; parametrize indirectly with its limit string."""
    limit = getattr(request, "param", "100 per 5 second")
    server = HeaderServer(limit)
    try:
        yield server
    finally:
        server.stop()
