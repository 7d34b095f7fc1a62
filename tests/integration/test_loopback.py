"""Throttled clients against the Meraki-like test API on loopback.

The server runs in its own process with a true token bucket of 10/s and
burst 10 per organization. The clients pace at the same rate with burst 8:
the two tokens left over absorb up to 0.2 s of network and scheduling jitter,
so the server should never have to refuse a call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import throttlekit as tk
from throttlekit.testing import RateLimitedAPI, serve

CALLS = 40
THREADS = 8
CLIENT_BURST = 8
# The client's own schedule: the first CLIENT_BURST calls at once, then one
# every 0.1 s. Waiting is what the limiter guarantees, not machine speed.
MIN_SECONDS = (CALLS - CLIENT_BURST) / 10


@pytest.fixture(scope="module")
def api() -> Iterator[RateLimitedAPI]:
    """Run the default Meraki-like server for the module's tests."""
    with serve() as server:
        yield server


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio."""
    return "asyncio"


def per_org() -> tk.RateLimit:
    """Return 10/s per organization with a little headroom below burst 10."""
    return tk.RateLimit(
        "10/second", burst=CLIENT_BURST, key=tk.keys.path_param("organizations")
    )


def test_threads_through_the_sync_transport_get_no_429(api: RateLimitedAPI) -> None:
    """Eight threads making 40 calls to one organization are never refused."""
    transport = tk.ThrottledTransport(per_org(), backend=tk.MemoryBackend())
    path = "/api/v1/organizations/sync/networks"

    start = time.monotonic()
    with (
        httpx.Client(transport=transport, base_url=api.url, trust_env=False) as c,
        ThreadPoolExecutor(THREADS) as pool,
    ):
        statuses = list(pool.map(lambda _: c.get(path).status_code, range(CALLS)))
    elapsed = time.monotonic() - start

    stats = api.stats()
    assert statuses == [200] * CALLS
    assert stats.organizations["sync"] == {200: CALLS}
    assert elapsed >= MIN_SECONDS - 0.05


@pytest.mark.anyio
async def test_tasks_through_the_async_transport_get_no_429(
    api: RateLimitedAPI,
) -> None:
    """Forty concurrent tasks calling one organization are never refused."""
    transport = tk.AsyncThrottledTransport(per_org(), backend=tk.MemoryBackend())
    path = "/api/v1/organizations/async/networks"

    start = time.monotonic()
    async with httpx.AsyncClient(
        transport=transport, base_url=api.url, trust_env=False
    ) as client:
        responses = await asyncio.gather(*(client.get(path) for _ in range(CALLS)))
    elapsed = time.monotonic() - start

    stats = await asyncio.to_thread(api.stats)
    assert [r.status_code for r in responses] == [200] * CALLS
    assert stats.organizations["async"] == {200: CALLS}
    assert elapsed >= MIN_SECONDS - 0.05
