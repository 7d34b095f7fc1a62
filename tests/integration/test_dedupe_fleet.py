"""Eight processes asking for the same GET at once cost one upstream call.

Each process builds its own `RedisBackend` and ``Dedupe(shared=...)``,
reports that it is ready, and sends its GET when the test says go. The
upstream is a real HTTP server on loopback that counts requests and holds
its answers until every other process has joined a leader in Redis, so how
fast the processes start changes nothing.

Run as a script, this module is one of those processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import redis

import throttlekit as tk
from throttlekit.backends.redis import RedisBackend

PROCESSES = 8
PATH = "/api/v1/organizations/7/devices"


class CountingServer:
    """An HTTP server on 127.0.0.1 that counts GETs and answers each with
    its number and the caller's Authorization, once `release` is set."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever)
        self._thread.start()

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                authorization = self.headers.get("Authorization", "")
                with server._lock:
                    server.requests.append(authorization)
                    number = len(server.requests)
                server.release.wait(30)

                body = f"call {number} for {authorization}".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep the test output clean

        return Handler


@pytest.fixture
def upstream() -> Iterator[CountingServer]:
    server = CountingServer()
    yield server
    server.stop()


def ask_together(
    server: CountingServer, redis_url: str, tokens: list[str], leaders: int
) -> list[dict[str, object]]:
    """Start one process per token, let them GET at once, and return what
    each got.

    The server's answers wait until ``leaders`` requests arrived and the
    other processes joined them in Redis (or 15 s passed, for a broken
    implementation that never gets there).
    """
    namespace = f"fleet{uuid.uuid4().hex[:12]}"
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, redis_url, namespace, server.url, token],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for token in tokens
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()

    raw = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        joined = sum(
            int(raw.hget(key, "j") or 0) for key in raw.scan_iter(f"{namespace}:*:dc")
        )
        if len(server.requests) == leaders and joined == len(tokens) - leaders:
            break
        time.sleep(0.01)
    raw.close()
    server.release.set()

    results = []
    for worker in workers:
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0
        results.append(json.loads(out))
    return results


def test_eight_processes_cost_one_upstream_call(
    upstream: CountingServer, redis_url: str
) -> None:
    """8 processes asking for the same GET at once send it upstream once,
    and every process gets the same body."""
    results = ask_together(upstream, redis_url, ["Bearer fleet"] * PROCESSES, 1)

    assert upstream.requests == ["Bearer fleet"]
    assert [r["body"] for r in results] == ["call 1 for Bearer fleet"] * PROCESSES
    assert sorted(r["deduplicated"] for r in results) == [False] + [True] * 7


def test_each_authorization_costs_one_upstream_call(
    upstream: CountingServer, redis_url: str
) -> None:
    """8 processes with two Authorization values send one request per value,
    and each process gets the answer to its own credential."""
    tokens = ["Bearer alpha", "Bearer omega"] * (PROCESSES // 2)

    results = ask_together(upstream, redis_url, tokens, 2)

    assert sorted(upstream.requests) == ["Bearer alpha", "Bearer omega"]
    answers = {t: f"call {upstream.requests.index(t) + 1} for {t}" for t in tokens}
    assert [r["body"] for r in results] == [answers[t] for t in tokens]
    assert sorted(r["deduplicated"] for r in results) == [False] * 2 + [True] * 6


def _ask(redis_url: str, namespace: str, url: str, authorization: str) -> None:
    """Wait for "go" on stdin, GET the shared path, print what came back."""
    backend = RedisBackend.from_url(redis_url, namespace=namespace)
    transport = tk.ThrottledTransport(tk.Dedupe(shared=backend), backend=backend)
    with httpx.Client(transport=transport, base_url=url, trust_env=False) as client:
        print("ready", flush=True)
        sys.stdin.readline()
        response = client.get(PATH, headers={"Authorization": authorization})
    backend.close()

    result = {
        "body": response.text,
        "deduplicated": response.extensions[tk.policies.dedupe.DEDUPLICATED],
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    _ask(*sys.argv[1:5])
