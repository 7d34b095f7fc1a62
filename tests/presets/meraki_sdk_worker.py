"""One process of a fleet calling the Meraki-like API through the SDK.

Run by test_meraki_sdk.py as ``python meraki_sdk_worker.py API REDIS
NAMESPACE ORG``: it says "ready", waits for a line on stdin, lists the
organization's networks and their devices and calls every device, through
``meraki.DashboardAPI`` with throttlekit installed on a shared
`RedisBackend`, and prints how many calls it made.
"""

from __future__ import annotations

import sys

import meraki

from throttlekit.backends.redis import RedisBackend
from throttlekit.presets import meraki_sdk


def main(api: str, redis_url: str, namespace: str, org: str) -> int:
    """Sweep one organization's devices and print how many calls it made."""
    backend = RedisBackend.from_url(redis_url, namespace=namespace)
    dashboard = meraki.DashboardAPI(
        "0" * 40,
        base_url=f"{api}/api/v1",
        suppress_logging=True,
        **meraki_sdk.SDK_OPTIONS,
    )
    meraki_sdk.install(dashboard, backend=backend)
    print("ready", flush=True)
    sys.stdin.readline()

    calls = 1
    for network in dashboard.organizations.getOrganizationNetworks(org):
        calls += 1
        for device in dashboard.networks.getNetworkDevices(network["id"]):
            dashboard.devices.getDeviceClients(device["serial"])
            calls += 1
    print(calls, flush=True)
    dashboard._session.close()
    backend.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:5]))
