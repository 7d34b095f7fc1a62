"""Tools for testing code that uses throttlekit.

`FakeClock` replaces real time: give its `now` to a backend as the clock and
its `sleep` / `asleep` to a transport, and waits pass instantly while the
arithmetic stays exact.

`RateLimitedAPI` (or `serve`) runs a rate-limited HTTP API on 127.0.0.1 that
answers like the Meraki Dashboard API (`MerakiProfile`) and counts its
responses, so a test can check that a client never got a 429. It needs the
``testing`` extra: ``pip install 'throttlekit[testing]'``.
`MerakiInventoryProfile` adds networks and devices charged to their
organization, as the real API charges them. `RateLimitedApp`
is the same API as an ASGI app, to run without a socket through
`httpx.ASGITransport`, on a fake clock if need be.

Example:
    >>> import httpx, throttlekit as tk
    >>> from throttlekit.testing import serve
    >>> with serve() as api:
    ...     per_org = tk.keys.path_param("organizations")
    ...     transport = tk.ThrottledTransport(
    ...         tk.RateLimit("10/second", burst=8, key=per_org)
    ...     )
    ...     with httpx.Client(transport=transport, base_url=api.url) as client:
    ...         client.get("/api/v1/organizations/1/networks")
    ...     assert api.stats().count(429) == 0
"""

from ._app import RateLimitedApp, ServerStats
from ._clock import FakeClock
from ._inventory import MerakiInventoryProfile
from ._profiles import (
    ApiRequest,
    HeaderProfile,
    Limiter,
    MerakiProfile,
    Profile,
    Verdict,
)
from ._server import RateLimitedAPI, serve

__all__ = [
    "ApiRequest",
    "FakeClock",
    "HeaderProfile",
    "Limiter",
    "MerakiInventoryProfile",
    "MerakiProfile",
    "Profile",
    "RateLimitedAPI",
    "RateLimitedApp",
    "ServerStats",
    "Verdict",
    "serve",
]
