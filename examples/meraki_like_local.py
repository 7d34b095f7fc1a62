"""Call a Meraki-like API from many threads, then from asyncio, with no 429s.

Runs offline: it starts throttlekit's rate-limited test API on 127.0.0.1
(10 requests/second per organization, burst 10, like the Meraki Dashboard
API) and checks the server's own count of 429 responses at the end.

    pip install 'throttlekit[testing]'
    python examples/meraki_like_local.py
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx

import throttlekit as tk
from throttlekit.testing import serve


def per_organization() -> tk.RateLimit:
    """Return the policy: 10/s per organization, burst 8.

    The server's burst is 10; leaving 2 tokens unused absorbs up to 0.2 s
    of network jitter, so a request that reaches the server late never
    finds the bucket empty.
    """
    return tk.RateLimit("10/second", burst=8, key=tk.keys.path_param("organizations"))


def sync_calls(base_url: str, org: str, calls: int) -> None:
    """Make ``calls`` calls from 8 threads sharing one client."""
    transport = tk.ThrottledTransport(per_organization())
    with httpx.Client(transport=transport, base_url=base_url) as client:

        def get(i: int) -> int:
            response = client.get(f"/api/v1/organizations/{org}/networks")
            return response.status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(get, range(calls)))
    print(f"sync:  {calls} calls, statuses {sorted(set(statuses))}")


async def async_calls(base_url: str, org: str, calls: int) -> None:
    """Make ``calls`` concurrent calls from one event loop."""
    transport = tk.AsyncThrottledTransport(per_organization())
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        path = f"/api/v1/organizations/{org}/devices"
        responses = await asyncio.gather(*(client.get(path) for _ in range(calls)))
    statuses = sorted({response.status_code for response in responses})
    print(f"async: {calls} calls, statuses {statuses}")


def main() -> None:
    """Run both clients against the local API and print its counts."""
    with serve() as api:
        print(f"test API at {api.url}")
        sync_calls(api.url, org="111", calls=30)
        asyncio.run(async_calls(api.url, org="222", calls=20))

        stats = api.stats()
        print(f"server answered {stats.total} calls, {stats.count(429)} with 429")


if __name__ == "__main__":
    main()
