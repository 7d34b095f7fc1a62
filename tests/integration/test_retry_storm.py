"""A fleet retrying an upstream that is down stays within its retry budget."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import fleet

RATIO, CAP = fleet.BUDGET_RATIO, fleet.BUDGET_CAP


class Upstream:
    """An HTTP server on loopback that answers 503 while down, 200 while
    up, and counts every request it gets."""

    def __init__(self) -> None:
        self.down = True
        self.requests = 0
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with upstream._lock:
                    upstream.requests += 1
                    status = 503 if upstream.down else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # one line per request would drown the test's output

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/items"
        self._thread = threading.Thread(target=self.server.serve_forever)
        self._thread.start()

    def take_count(self) -> int:
        """Return the requests counted since the last call, and start over."""
        with self._lock:
            counted, self.requests = self.requests, 0
        return counted

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.stop()


def test_outage_attempts_stay_within_the_budget_which_refills_after(
    upstream: Upstream, redis_url: str
) -> None:
    """4 processes x 8 threads sharing a RetryBudget through Redis send at
    most N + N * ratio + cap attempts for N calls while the upstream answers
    503 to everything; once it is back, first attempts refill the budget, so
    the next outage again gets at least the cap's worth of retries.

    The bound is the budget's definition: it starts full at ``cap`` tokens,
    each first attempt earns ``ratio`` of one (never past the cap), and each
    retry spends one.
    """
    calls, refill, again = 200, int(CAP / RATIO), 20

    down = fleet.run_fleet("retry_budget", upstream.url, redis_url, calls=calls)
    during = upstream.take_count()

    upstream.down = False
    back = fleet.run_fleet("retry_budget", upstream.url, redis_url, calls=refill)
    after = upstream.take_count()

    upstream.down = True
    second = fleet.run_fleet("retry_budget", upstream.url, redis_url, calls=again)
    retried = upstream.take_count() - again

    assert down.statuses == {503: calls}, down
    assert calls + CAP <= during <= calls + calls * RATIO + CAP
    assert back.statuses == {200: refill}, back
    assert after == refill
    assert second.statuses == {503: again}, second
    assert CAP <= retried <= again * RATIO + CAP
