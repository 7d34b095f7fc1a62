"""`presets.meraki` against the Meraki-like test API on loopback: no 429s,
and every network and device call counted against its organization."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import throttlekit as tk
from throttlekit import presets
from throttlekit.testing import MerakiInventoryProfile, RateLimitedAPI, serve

INVENTORY = MerakiInventoryProfile(organizations=2, networks=3, devices=3)
ORGS = (1, 2)


@pytest.fixture(scope="module")
def api() -> Iterator[RateLimitedAPI]:
    """Run one server process for the module's tests."""
    with serve(INVENTORY) as server:
        yield server


@pytest.fixture
def fresh(api: RateLimitedAPI) -> RateLimitedAPI:
    """Return the module's server with its state reset."""
    api.reset()
    return api


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def device_paths(org: int) -> list[str]:
    """Return two calls per device of ``org``: its details and its clients."""
    serials = [
        serial
        for network in range(1, INVENTORY.networks + 1)
        for serial in INVENTORY.device_serials(org, network)
    ]
    return [f"/devices/{s}" for s in serials] + [
        f"/devices/{s}/clients" for s in serials
    ]


def test_a_threaded_sweep_gets_no_429(fresh: RateLimitedAPI) -> None:
    """Listing each organization's networks and devices, then calling every
    device from 8 threads, gets no 429, and every call counts against its
    organization; the lists taught every owner, so no lookup was sent."""
    transport = tk.ThrottledTransport(*presets.meraki(), backend=tk.MemoryBackend())
    base = f"{fresh.url}/api/v1"
    with httpx.Client(transport=transport, base_url=base, trust_env=False) as http:
        for org in ORGS:
            for network in http.get(f"/organizations/{org}/networks").json():
                http.get(f"/networks/{network['id']}/devices").raise_for_status()
        paths = [path for org in ORGS for path in device_paths(org)]
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda p: http.get(p).status_code, paths))

    stats = fresh.stats()
    assert statuses == [200] * 36
    assert stats.count(429) == 0
    assert [stats.count(200, str(org)) for org in ORGS] == [22, 22]


@pytest.mark.anyio
async def test_async_calls_before_any_list_look_owners_up(
    fresh: RateLimitedAPI,
) -> None:
    """Concurrent device calls with nothing known yet look their owners up
    and still get no 429; every call, lookups included, counts against its
    organization."""
    transport = tk.AsyncThrottledTransport(
        *presets.meraki(), backend=tk.MemoryBackend()
    )
    base = f"{fresh.url}/api/v1"
    async with httpx.AsyncClient(
        transport=transport, base_url=base, trust_env=False
    ) as http:
        paths = [p for p in device_paths(1) if p.endswith("/clients")]
        responses = await asyncio.gather(*(http.get(p) for p in paths))

    stats = fresh.stats()
    assert [r.status_code for r in responses] == [200] * 9
    assert {r.request.extensions[presets.ORGANIZATION] for r in responses} == {"1"}
    assert stats.count(429) == 0
    assert stats.count(200) == stats.count(200, "1")
    # 9 calls and 9 device lookups; one lookup per network, unless a call
    # misses its network's owner between its lookup and its remembering.
    assert 9 + 9 + 3 <= stats.count(200, "1") <= 9 + 9 + 9
