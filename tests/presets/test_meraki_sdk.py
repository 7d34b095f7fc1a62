"""`presets.meraki_sdk.install`: the official Meraki SDK on throttlekit, against
the Meraki-like test API on loopback."""

from __future__ import annotations

import asyncio
import importlib.metadata
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import throttlekit as tk
from throttlekit.backends.redis import RedisBackend
from throttlekit.presets import meraki_sdk
from throttlekit.testing import MerakiInventoryProfile, RateLimitedAPI, serve

meraki = pytest.importorskip("meraki")
meraki_aio = pytest.importorskip("meraki.aio")

INVENTORY = MerakiInventoryProfile(organizations=2, networks=2, devices=4)
WORKER = Path(__file__).with_name("meraki_sdk_worker.py")
KEY = "0" * 40


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


def dashboard(url: str, **options: Any) -> Any:
    """Return a quiet sync dashboard for the API at ``url``."""
    settings = {**meraki_sdk.SDK_OPTIONS, **options}
    return meraki.DashboardAPI(
        KEY, base_url=f"{url}/api/v1", suppress_logging=True, **settings
    )


def serials(org: int) -> list[str]:
    """Return the serials of every device of organization ``org``."""
    networks = range(1, INVENTORY.networks + 1)
    return [s for n in networks for s in INVENTORY.device_serials(org, n)]


def test_sync_sdk_calls_get_no_429(fresh: RateLimitedAPI) -> None:
    """Two organizations' sweeps through DashboardAPI from 8 threads get no
    429, each call counted against its organization."""
    sdk = dashboard(fresh.url)
    transport = meraki_sdk.install(sdk, backend=tk.MemoryBackend())
    for org in (1, 2):
        for network in sdk.organizations.getOrganizationNetworks(str(org)):
            sdk.networks.getNetworkDevices(network["id"])
    every = serials(1) + serials(2)
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(sdk.devices.getDevice, every * 2))
    sdk._session.close()

    stats = fresh.stats()
    assert isinstance(transport, tk.ThrottledTransport)
    assert [device["serial"] for device in found] == every * 2
    assert stats.count(429) == 0
    assert [stats.count(200, "1"), stats.count(200, "2")] == [19, 19]


@pytest.mark.anyio
async def test_async_sdk_calls_get_no_429(fresh: RateLimitedAPI) -> None:
    """Concurrent calls through AsyncDashboardAPI get no 429, and identical
    ones in flight together go upstream once."""
    async with meraki_aio.AsyncDashboardAPI(
        KEY,
        base_url=f"{fresh.url}/api/v1",
        suppress_logging=True,
        **meraki_sdk.SDK_OPTIONS,
    ) as sdk:
        transport = meraki_sdk.install(sdk, backend=tk.MemoryBackend())
        networks = await sdk.organizations.getOrganizationNetworks("1")
        await asyncio.gather(
            *(sdk.networks.getNetworkDevices(n["id"]) for n in networks)
        )
        calls = [sdk.devices.getDeviceClients(s) for s in serials(1) * 2]
        answers = await asyncio.gather(*calls)

    stats = fresh.stats()
    assert isinstance(transport, tk.AsyncThrottledTransport)
    assert len(answers) == 16
    assert stats.count(429) == 0
    assert stats.count(200, "1") == 1 + 2 + 8


def test_two_processes_share_one_budget(fresh: RateLimitedAPI, redis_url: str) -> None:
    """Two processes sweeping one organization through the SDK on one Redis
    budget get no 429 between them, every call counted against it."""
    namespace = f"t{uuid.uuid4().hex[:12]}"
    command = [sys.executable, str(WORKER), fresh.url, redis_url, namespace, "1"]
    workers = [
        subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    outputs = [worker.communicate("go\n", timeout=60)[0] for worker in workers]

    stats = fresh.stats()
    assert [worker.returncode for worker in workers] == [0, 0]
    assert [int(out) for out in outputs] == [11, 11]
    assert stats.count(429) == 0
    assert stats.count(200, "1") == 22


def test_sdk_waits_are_refused_unless_kept(fresh: RateLimitedAPI) -> None:
    """A dashboard with the SDK's own 429 waits and retries is refused with
    the options to pass; sdk_retries=True keeps them."""
    sdk = dashboard(fresh.url, wait_on_rate_limit=True, maximum_retries=5)

    with pytest.raises(tk.ConfigurationError) as raised:
        meraki_sdk.install(sdk)
    kept = meraki_sdk.install(sdk, sdk_retries=True)
    sdk._session.close()

    assert str(raised.value) == (
        "the SDK's own waits and retries would stack on throttlekit's; build "
        "the dashboard with wait_on_rate_limit=False, maximum_retries=1 "
        "(**meraki_sdk.SDK_OPTIONS), or pass sdk_retries=True to keep them"
    )
    assert isinstance(kept, tk.ThrottledTransport)


def test_installing_twice_is_refused(fresh: RateLimitedAPI) -> None:
    """A second install on the same dashboard raises instead of stacking."""
    sdk = dashboard(fresh.url)
    meraki_sdk.install(sdk)

    with pytest.raises(tk.ConfigurationError) as raised:
        meraki_sdk.install(sdk)
    sdk._session.close()

    assert str(raised.value) == (
        "dashboard already runs on a throttled transport; install once"
    )


def test_proxy_transports_are_wrapped_too(fresh: RateLimitedAPI) -> None:
    """With a proxy configured, the SDK's client sends through a mounted
    transport; install wraps it as well as the main one."""
    sdk = dashboard(fresh.url, requests_proxy="http://127.0.0.1:9")
    meraki_sdk.install(sdk, max_wait=5)
    mounted = list(sdk._session._client._mounts.values())
    sdk._session.close()

    assert mounted
    assert all(isinstance(t, tk.ThrottledTransport) for t in mounted)
    assert {t.max_wait for t in mounted} == {5.0}


@pytest.mark.parametrize(
    ("thing", "version", "shown"),
    [
        (object(), None, "object with meraki {installed}"),
        (
            SimpleNamespace(_session=SimpleNamespace(_client=object())),
            None,
            "SimpleNamespace with meraki {installed}",
        ),
        ("dashboard", "3.3.0", "DashboardAPI with meraki 3.3.0"),
    ],
    ids=["not-a-dashboard", "not-on-httpx", "too-old"],
)
def test_unsupported_sdks_are_refused(
    thing: Any,
    version: str | None,
    shown: str,
    fresh: RateLimitedAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Anything but a dashboard from meraki 4.3 or later, on httpx, raises
    a ConfigurationError naming the version needed and the one found."""
    if version is not None:
        monkeypatch.setattr(meraki_sdk, "_version", lambda: version)
    target = dashboard(fresh.url) if thing == "dashboard" else thing

    with pytest.raises(tk.ConfigurationError) as raised:
        meraki_sdk.install(target)

    installed = importlib.metadata.version("meraki")
    assert str(raised.value) == (
        "dashboard must be a meraki.DashboardAPI or AsyncDashboardAPI from "
        "meraki>=4.3, whose calls run on httpx; got "
        + shown.format(installed=installed)
    )


def test_sdk_options_turn_the_sdk_waits_off() -> None:
    """SDK_OPTIONS is read-only and names the three SDK settings."""
    assert dict(meraki_sdk.SDK_OPTIONS) == {
        "wait_on_rate_limit": False,
        "maximum_retries": 1,
        "smart_flow_enabled": False,
    }
    with pytest.raises(TypeError):
        meraki_sdk.SDK_OPTIONS["maximum_retries"] = 2  # type: ignore[index]


def test_a_redis_backend_is_accepted(fresh: RateLimitedAPI, redis_url: str) -> None:
    """install passes the backend to the transport it puts under the SDK."""
    backend = RedisBackend.from_url(redis_url, namespace=f"t{uuid.uuid4().hex[:12]}")
    sdk = dashboard(fresh.url)
    transport = meraki_sdk.install(sdk, backend=backend)
    network = sdk.networks.getNetwork("N_2_1")
    sdk._session.close()
    backend.close()

    assert transport.backend is backend
    assert network["organizationId"] == "2"
