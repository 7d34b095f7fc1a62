"""`meraki`: the policies for the Cisco Meraki Dashboard API, ready made.

Meraki limits each organization to 10 calls a second with a burst of 10,
shared by every application calling it, and each source address to 100 a
second; over the limit it answers 429 with ``Retry-After``. The preset is
the order of docs/concepts.md with Meraki's numbers filled in:

1. `MerakiOrganizations`, so network and device calls know their
   organization (its lookups then pass everything below);
2. `Dedupe`, so concurrent identical reads spend one call;
3. `Retry` with a fleet-wide `RetryBudget`;
4. `Concurrency`, when asked for;
5. `HeaderPacing` per organization: the fleet-wide pause on a 429, and an
   adaptive rate below ``org_rate * share`` that learns how much other
   applications leave;
6. `RateLimit` per client, ``client_rate`` a second;
7. `RateLimit` per organization, ``org_rate * share`` a second, with a
   burst ``headroom`` below the server's, so network jitter never finds
   the server's bucket empty (see docs/demo.md).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import httpx

from .. import keys as _keys
from .._core.backoff import AdaptiveRate
from .._core.rates import Limit
from .._flow import Policy
from .._validate import seconds
from ..policies import (
    Concurrency,
    Dedupe,
    HeaderPacing,
    RateLimit,
    Retry,
    RetryBudget,
)
from ._meraki_map import MerakiOrganizations, meraki_org_key

__all__ = ["meraki"]

MerakiPolicy = Policy[httpx.Request, httpx.Response]

# The adaptive rate never falls below this share of its ceiling: a 429
# pauses the organization anyway, and climbing back from lower takes long.
_FLOOR = 0.1


def meraki(
    *,
    share: float = 1.0,
    headroom: float = 0.2,
    org_rate: float = 10.0,
    client_rate: float = 100.0,
    client_key: _keys.KeyFunc | str | None = None,
    concurrency: int | None = None,
    attempts: int = 6,
    dedupe: bool | Dedupe = True,
    map_ttl: float | timedelta | None = 86400.0,
) -> list[MerakiPolicy]:
    """Return the policies for the Meraki Dashboard API, in order.

    Pass them to a transport, or to `meraki_sdk.install` for the official
    SDK. Every process sharing a backend should build them alike.

    Args:
        share: The share of each organization's rate this fleet may use,
            in ``(0, 1]``; default 1. Below 1 leaves the rest to other
            applications calling the same organizations.
        headroom: The share of each server burst left unused, in
            ``[0, 1)``; default 0.2, a burst of 8 against Meraki's 10.
            Since Meraki's burst is one second of its rate, it absorbs up
            to ``headroom`` seconds of network jitter.
        org_rate: Calls per second the API allows each organization, and
            its burst; default 10.
        client_rate: Calls per second the API allows each source address,
            and its burst; default 100.
        client_key: The per-client budget's key: a key function, a string,
            or ``None`` (default) for the API's host, one budget for the
            whole fleet. Hosts calling from different addresses may pass
            ``tk.keys.constant("<address>")`` to get one each.
        concurrency: Calls in flight at once per client key, at least 1;
            ``None`` (default) for no cap.
        attempts: Attempts per call, the first included; default 6.
        dedupe: Merge concurrent identical reads: ``True`` (default) for a
            new `Dedupe`, ``False`` for none, or your own `Dedupe`.
        map_ttl: Seconds a network's or device's organization is
            remembered (`MerakiOrganizations`); default one day. ``None``
            learns none: those calls share the ``"unmapped"`` budget.

    Returns:
        A new list of policies; its budgets are named ``"meraki:org"``,
        ``"meraki:client"`` and ``"pace"`` followed by their keys.

    Raises:
        TypeError: An argument has the wrong type; the message names it.
        ValueError: An argument is out of range; the message names it.

    Example:
        >>> import httpx, throttlekit as tk
        >>> transport = tk.ThrottledTransport(*tk.presets.meraki(share=0.8))
        >>> client = httpx.Client(transport=transport)
    """
    _check(share, headroom, org_rate, client_rate, concurrency)
    ttl = _ttl(map_ttl)

    org = org_rate * share
    per_org = meraki_org_key()
    per_client = _keys.host() if client_key is None else _keys.resolve(client_key)
    org_limit = _limit(org, headroom, per_org, "meraki:org")

    policies: list[MerakiPolicy] = []
    if ttl is not None:
        policies.append(MerakiOrganizations(ttl=ttl, charge=[org_limit]))
    policies += _first(dedupe, attempts, concurrency, per_client)
    policies += [
        HeaderPacing(key=per_org, adaptive=AdaptiveRate(org, floor=org * _FLOOR)),
        _limit(client_rate, headroom, per_client, "meraki:client"),
        org_limit,
    ]
    return policies


def _first(
    dedupe: bool | Dedupe,
    attempts: int,
    concurrency: int | None,
    per_client: _keys.KeyFunc,
) -> list[MerakiPolicy]:
    """Return the policies that come before the budgets."""
    policies: list[MerakiPolicy] = []
    if isinstance(dedupe, Dedupe):
        policies.append(dedupe)
    elif dedupe is True:
        policies.append(Dedupe())
    elif dedupe is not False:
        raise TypeError(f"dedupe must be a bool or a Dedupe, got {dedupe!r}")

    policies.append(Retry(attempts, budget=RetryBudget()))
    if concurrency is not None:
        policies.append(Concurrency(concurrency, key=per_client))
    return policies


def _limit(rate: float, headroom: float, key: _keys.KeyFunc, name: str) -> RateLimit:
    """Return a budget of ``rate`` a second, its burst ``headroom`` below
    the server's (which equals its rate), and at least 1."""
    burst = max(1.0, rate * (1.0 - headroom))
    return RateLimit(Limit(rate, 1.0, burst), key=key, name=name)


def _check(
    share: float,
    headroom: float,
    org_rate: float,
    client_rate: float,
    concurrency: int | None,
) -> None:
    """Refuse bad arguments, naming the parameter."""
    if not 0 < _number("share", share) <= 1:
        raise ValueError(f"share must be in (0, 1], got {share!r}")
    if not 0 <= _number("headroom", headroom) < 1:
        raise ValueError(f"headroom must be in [0, 1), got {headroom!r}")
    for name, rate in (("org_rate", org_rate), ("client_rate", client_rate)):
        if not (_number(name, rate) > 0 and math.isfinite(rate)):
            raise ValueError(f"{name} must be positive and finite, got {rate!r}")
    bad = isinstance(concurrency, bool) or not isinstance(concurrency, int)
    if concurrency is not None and (bad or concurrency < 1):
        raise ValueError(
            f"concurrency must be an int >= 1 or None, got {concurrency!r}"
        )


def _ttl(map_ttl: float | timedelta | None) -> float | None:
    ttl = seconds("map_ttl", map_ttl)
    if ttl is not None and not 0 < ttl < math.inf:
        raise ValueError(
            f"map_ttl must be positive and finite seconds, got {map_ttl!r}"
        )
    return ttl


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    return float(value)
