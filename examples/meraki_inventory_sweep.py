"""Sweep the inventory of many Meraki organizations from several processes
that share one budget per organization through Redis, with no 429s.

Runs offline: it starts throttlekit's Meraki-like test API on 127.0.0.1
(10 calls/second per organization with a burst of 10, 100 per second per
address), holding a made-up inventory of organizations, networks and
devices. It lists every organization's networks, then splits the networks
between processes; each process, with a few threads, lists each network's
devices and asks for every device's details and clients. Network and device
calls carry no organization id: the preset learns their owners from the
lists, keeps them in Redis, and charges every call to its organization, so
processes working on one organization share its 10 calls a second.

    pip install 'throttlekit[redis,testing]'
    python examples/meraki_inventory_sweep.py
    python examples/meraki_inventory_sweep.py --redis-url redis://localhost:6379/0
    python examples/meraki_inventory_sweep.py --sdk   # needs: pip install meraki

Without ``--redis-url`` it starts a throwaway ``redis-server`` on a free
port if one is installed; failing that, it sweeps from one process with an
in-memory budget.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import httpx
import redis

import throttlekit as tk
from throttlekit import presets
from throttlekit.backends.redis import RedisBackend
from throttlekit.presets import meraki_sdk
from throttlekit.testing import MerakiInventoryProfile, serve

NAMESPACE = "meraki-sweep"
Backend = tk.MemoryBackend | RedisBackend
API_KEY = "0" * 40  # the test API accepts any key


class HttpxApi:
    """The few Meraki calls the sweep makes, through httpx."""

    def __init__(self, url: str, backend: Backend) -> None:
        self.backend = backend
        transport = tk.ThrottledTransport(*presets.meraki(), backend=backend)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        self.http = httpx.Client(
            transport=transport, base_url=url, headers=headers, trust_env=False
        )

    def get(self, path: str) -> Any:
        response = self.http.get(path)
        response.raise_for_status()
        return response.json()

    def organizations(self) -> Any:
        return self.get("/organizations")

    def networks(self, org: str) -> Any:
        return self.get(f"/organizations/{org}/networks")

    def devices(self, network: str) -> Any:
        return self.get(f"/networks/{network}/devices")

    def device(self, serial: str) -> None:
        self.get(f"/devices/{serial}")
        self.get(f"/devices/{serial}/clients")

    def close(self) -> None:
        self.http.close()
        self.backend.close()


class SdkApi:
    """The same calls through the official SDK, with throttlekit under it."""

    def __init__(self, url: str, backend: Backend) -> None:
        import meraki  # only with --sdk: pip install meraki

        self.sdk = meraki.DashboardAPI(
            API_KEY, base_url=url, suppress_logging=True, **meraki_sdk.SDK_OPTIONS
        )
        meraki_sdk.install(self.sdk, backend=backend)
        self.backend = backend

    def organizations(self) -> Any:
        return self.sdk.organizations.getOrganizations()

    def networks(self, org: str) -> Any:
        return self.sdk.organizations.getOrganizationNetworks(org)

    def devices(self, network: str) -> Any:
        return self.sdk.networks.getNetworkDevices(network)

    def device(self, serial: str) -> None:
        self.sdk.devices.getDevice(serial)
        self.sdk.devices.getDeviceClients(serial)

    def close(self) -> None:
        self.sdk._session.close()
        self.backend.close()


def connect(url: str, redis_url: str | None, sdk: bool) -> HttpxApi | SdkApi:
    """Return an API client sharing budgets through ``redis_url``, or
    through this process's memory when it is None."""
    backend: Backend = (
        tk.default_backend()
        if redis_url is None
        else RedisBackend.from_url(redis_url, namespace=NAMESPACE)
    )
    return SdkApi(url, backend) if sdk else HttpxApi(url, backend)


def sweep_networks(
    url: str, redis_url: str | None, networks: list[str], threads: int, sdk: bool
) -> None:
    """Sweep ``networks`` from ``threads`` threads; one process's share."""
    api = connect(url, redis_url, sdk)

    def sweep(network: str) -> None:
        for device in api.devices(network):
            api.device(device["serial"])

    try:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(sweep, networks))
    finally:
        api.close()


def list_networks(url: str, redis_url: str | None, sdk: bool) -> list[str]:
    """List every organization's networks, interleaved across organizations
    so that every process works on every organization at once."""
    api = connect(url, redis_url, sdk)
    try:
        per_org = [api.networks(org["id"]) for org in api.organizations()]
    finally:
        api.close()
    rows = [[n["id"] for n in networks] for networks in per_org]
    longest = max(map(len, rows), default=0)
    return [row[i] for i in range(longest) for row in rows if i < len(row)]


def run(url: str, redis_url: str | None, args: argparse.Namespace) -> None:
    """List the networks, then sweep them from ``args.processes`` processes;
    from this one alone without Redis, since only Redis shares budgets."""
    networks = list_networks(url, redis_url, args.sdk)
    if redis_url is None:
        sweep_networks(url, None, networks, args.threads, args.sdk)
        return

    processes = args.processes
    shares = [networks[p::processes] for p in range(processes)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [
            pool.submit(sweep_networks, url, redis_url, share, args.threads, args.sdk)
            for share in shares
        ]
        for future in futures:
            future.result()


@contextlib.contextmanager
def redis_for(given: str | None) -> Iterator[str | None]:
    """Yield the Redis URL to share: the given one, a throwaway server's,
    or None when there is neither."""
    if given is not None:
        yield given
        return
    executable = shutil.which("redis-server")
    if executable is None:
        yield None
        return
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        command = [executable, "--port", str(port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", folder]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            yield wait_for_redis(port)
        finally:
            server.terminate()
            server.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_redis(port: int) -> str:
    """Return the server's URL once it answers PING."""
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=1)
    deadline = time.monotonic() + 10
    try:
        while True:
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    return url
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {port} did not answer")
            time.sleep(0.05)
    finally:
        client.close()


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--organizations", type=int, default=4)
    parser.add_argument("--networks", type=int, default=3, help="per organization")
    parser.add_argument("--devices", type=int, default=5, help="per network")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4, help="per process")
    parser.add_argument("--redis-url", help="default: a throwaway redis-server")
    parser.add_argument("--sdk", action="store_true", help="use the Meraki SDK")
    return parser.parse_args()


def main() -> None:
    """Serve the inventory, sweep it, and print what the server counted."""
    args = parse()
    inventory = MerakiInventoryProfile(args.organizations, args.networks, args.devices)
    with serve(inventory) as api, redis_for(args.redis_url) as redis_url:
        networks = args.organizations * args.networks
        print(
            f"test API at {api.url}: {args.organizations} organizations, "
            f"{networks} networks, {networks * args.devices} devices"
        )
        if redis_url is None:
            print("no --redis-url and no redis-server: one process, in-memory budget")
        else:
            print(f"Redis at {redis_url}: {args.processes} processes share it")

        started = time.monotonic()
        run(f"{api.url}/api/v1", redis_url, args)
        wall = time.monotonic() - started
        stats = api.stats()

    busiest = max(sum(counts.values()) for counts in stats.organizations.values())
    print(f"calls: {stats.total}")
    print(f"429s: {stats.count(429)}")
    print(f"wall time: {wall:.1f} s")
    print(f"busiest organization: {busiest} calls (its limit: 10/s, burst 10)")


if __name__ == "__main__":
    main()
