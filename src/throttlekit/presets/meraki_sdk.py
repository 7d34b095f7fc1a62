"""Run the official Meraki Python SDK's calls through throttlekit.

The SDK (``meraki`` on PyPI) sends its calls through an `httpx.Client`
(``meraki.DashboardAPI``) or an `httpx.AsyncClient`
(``meraki.aio.AsyncDashboardAPI``) since version 4.3. `install` wraps that
client's transport in a `ThrottledTransport` (or its async twin) holding
throttlekit's policies; the SDK's own transport stays inside it, with its
TLS, proxy and connection settings. With a `RedisBackend`, every SDK call
from every process then spends one shared budget per organization.

The SDK also waits and retries on its own, per process; on top of
throttlekit's, those waits would stack. Build the dashboard with
`SDK_OPTIONS` to turn them off:

Example:
    >>> import meraki
    >>> import throttlekit as tk
    >>> from throttlekit.presets import meraki_sdk
    >>> dashboard = meraki.DashboardAPI(
    ...     api_key, suppress_logging=True, **meraki_sdk.SDK_OPTIONS
    ... )  # doctest: +SKIP
    >>> meraki_sdk.install(
    ...     dashboard, backend=tk.RedisBackend.from_url("redis://localhost/0")
    ... )  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Sequence
from datetime import timedelta
from types import MappingProxyType
from typing import Any

import httpx

from .._exceptions import ConfigurationError
from .._flow import Policy
from .._transport import AsyncThrottledTransport, ThrottledTransport
from ..backends._base import Backend
from ._meraki import meraki

__all__ = ["MINIMUM_VERSION", "SDK_OPTIONS", "install"]

#: Keyword arguments for ``meraki.DashboardAPI`` and ``AsyncDashboardAPI``
#: that leave waiting and retrying to throttlekit: no sleep on a 429, one
#: attempt per call, and no per-process limiter ("smart flow").
SDK_OPTIONS = MappingProxyType(
    {"wait_on_rate_limit": False, "maximum_retries": 1, "smart_flow_enabled": False}
)

#: The oldest SDK release built on httpx.
MINIMUM_VERSION = (4, 3)

Transport = ThrottledTransport | AsyncThrottledTransport


def install(
    dashboard: Any,
    policies: Sequence[Policy[httpx.Request, httpx.Response]] | None = None,
    *,
    backend: Backend | None = None,
    max_wait: float | timedelta | None = None,
    sdk_retries: bool = False,
) -> Transport:
    """Put throttlekit under a Meraki SDK dashboard, sync or async.

    Wraps the transport of the dashboard's httpx client, and of any proxy
    the client mounted, so every call the SDK makes passes ``policies``.

    Args:
        dashboard: A ``meraki.DashboardAPI`` or
            ``meraki.aio.AsyncDashboardAPI``, meraki 4.3 or later.
        policies: The policies, outermost first. ``None`` (default):
            ``presets.meraki()``.
        backend: Where budgets live; pass a `RedisBackend` to share them
            between processes. ``None`` (default): the process-wide
            `MemoryBackend`.
        max_wait: Seconds a call may wait in all before `RateLimited` is
            raised. ``None`` (default): no bound.
        sdk_retries: Keep the SDK's own 429 waits, retries and smart flow
            when they are on; default False, which refuses a dashboard not
            built with `SDK_OPTIONS`.

    Returns:
        The transport now under the client (`ThrottledTransport` for a
        sync dashboard, `AsyncThrottledTransport` for an async one).

    Raises:
        ConfigurationError: The SDK is too old or not built as expected,
            throttlekit is installed already, or the SDK's own waits are on
            and ``sdk_retries`` is False.

    Note:
        A call refused by ``max_wait`` reaches the SDK as an httpx error;
        with ``maximum_retries=1`` the SDK raises its ``APIError`` with
        status 503 and the `RateLimited` message as the reason.
    """
    session = _session(dashboard)
    if not sdk_retries:
        _check_waits(session)
    chain = tuple(meraki() if policies is None else policies)
    client = session._client
    kind = (
        AsyncThrottledTransport
        if isinstance(client, httpx.AsyncClient)
        else ThrottledTransport
    )

    def wrap(inner: Any) -> Transport:
        _check_bare(inner)
        return kind(*chain, transport=inner, backend=backend, max_wait=max_wait)

    # httpx sends through a mounted transport (a proxy) when one matches the
    # URL, and through the main one otherwise: all of them pass the policies.
    transport = wrap(client._transport)
    client._mounts = {
        pattern: None if mounted is None else wrap(mounted)
        for pattern, mounted in client._mounts.items()
    }
    client._transport = transport
    return transport


def _session(dashboard: Any) -> Any:
    """Return the dashboard's session, refusing SDKs not built on httpx."""
    session = getattr(dashboard, "_session", None)
    client = getattr(session, "_client", None)
    clients = (httpx.Client, httpx.AsyncClient)
    built = isinstance(client, clients) and hasattr(client, "_transport")
    version = _version()
    if not built or (version is not None and _release(version) < MINIMUM_VERSION):
        needed = ".".join(map(str, MINIMUM_VERSION))
        raise ConfigurationError(
            f"dashboard must be a meraki.DashboardAPI or AsyncDashboardAPI from "
            f"meraki>={needed}, whose calls run on httpx; got "
            f"{type(dashboard).__name__} with meraki {version or 'not installed'}"
        )
    return session


def _check_waits(session: Any) -> None:
    """Refuse a session whose own waits and retries would stack on ours."""
    stacked = [
        f"{name}={wanted!r}"
        for name, wanted in SDK_OPTIONS.items()
        if _setting(session, name) not in (wanted, None)
    ]
    if stacked:
        raise ConfigurationError(
            "the SDK's own waits and retries would stack on throttlekit's; "
            f"build the dashboard with {', '.join(stacked)} "
            "(**meraki_sdk.SDK_OPTIONS), or pass sdk_retries=True to keep them"
        )


def _setting(session: Any, name: str) -> Any:
    value = getattr(session, f"_{name}", None)
    # One attempt or fewer means the SDK does not retry.
    if name == "maximum_retries" and isinstance(value, int) and value <= 1:
        return SDK_OPTIONS[name]
    return value


def _check_bare(transport: object) -> None:
    if isinstance(transport, (ThrottledTransport, AsyncThrottledTransport)):
        raise ConfigurationError(
            "dashboard already runs on a throttled transport; install once"
        )


def _version() -> str | None:
    try:
        return importlib.metadata.version("meraki")
    except importlib.metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:2])
