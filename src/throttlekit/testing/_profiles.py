"""Profiles: how the rate-limited test server decides each request.

A profile is the server's configuration, plain numbers that can be sent to
a server process. It builds a limiter, the state that decides requests; the
server builds a new limiter to reset. `MerakiProfile` mimics the Cisco
Meraki Dashboard API; `HeaderProfile` announces its limit in the IETF
RateLimit header fields. Others plug in the same way, through `Profile` and
`build_profile`.

Status 429 and ``Retry-After`` follow RFC 6585 section 4 and RFC 9110
section 10.2.3 (``Retry-After`` as whole seconds).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, Protocol

from ._bucket import TokenBucket

__all__ = [
    "ApiRequest",
    "HeaderProfile",
    "Limiter",
    "MerakiProfile",
    "Profile",
    "Verdict",
    "build_profile",
    "organization_of",
]

ORGANIZATION_LIMITED = (
    "Too many requests for this organization; "
    "wait the seconds given in Retry-After, then try again."
)
HEADER_LIMITED = (
    "Quota used up for this window; "
    "wait the seconds given in Retry-After, then try again."
)
CLIENT_LIMITED = (
    "Too many requests from this source address; "
    "wait the seconds given in Retry-After, then try again."
)


@dataclass(frozen=True)
class ApiRequest:
    """What a limiter sees of a request.

    Attributes:
        method: The HTTP method, upper case.
        path: The URL path, without the query string.
        client: The source address.
    """

    method: str
    path: str
    client: str


@dataclass(frozen=True)
class Verdict:
    """How the server answers a request.

    Attributes:
        status: The HTTP status code.
        body: The JSON body: an object, or an array for list endpoints.
        headers: Extra response headers, names in lower case.
        organization: The organization the request counts against, if any.
    """

    status: int
    body: Mapping[str, Any] | list[Any]
    headers: tuple[tuple[str, str], ...] = ()
    organization: str | None = None


class Limiter(Protocol):
    """The state that decides requests for one run of the server."""

    def decide(self, request: ApiRequest, now: Fraction) -> Verdict:
        """Answer ``request`` arriving at ``now`` (seconds), charging it."""
        ...


class Profile(Protocol):
    """A server configuration: builds limiters, travels as plain data."""

    def limiter(self) -> Limiter:
        """Return a fresh limiter; its buckets start full on first use."""
        ...

    def spec(self) -> dict[str, Any]:
        """Return the profile as JSON data that `build_profile` accepts."""
        ...


@dataclass(frozen=True)
class MerakiProfile:
    """Limits like the Meraki Dashboard API's.

    Each organization (the path segment after ``/organizations/``) has a
    token bucket, and so has each source address; a request needs a token
    from both, and takes one only when both have one. A refused request gets
    429, a ``Retry-After`` in whole seconds (at least 1) and a JSON body
    ``{"errors": [...]}``.

    Args:
        org_rate: Requests per second per organization; default 10.
        org_burst: Requests an idle organization admits at once; default 10.
        client_rate: Requests per second per source address; default 100.
        client_burst: Requests an idle source address admits at once.
            ``None`` (default): equal to ``client_rate``.

    Note:
        Paths without an organization, such as ``/networks/N/clients``, count
        against the source address only; the real API maps them to their
        organization.
    """

    org_rate: float = 10.0
    org_burst: float = 10.0
    client_rate: float = 100.0
    client_burst: float | None = None

    def __post_init__(self) -> None:
        _check_rate("org_rate", self.org_rate)
        _check_burst("org_burst", self.org_burst)
        _check_rate("client_rate", self.client_rate)
        if self.client_burst is not None:
            _check_burst("client_burst", self.client_burst)

    def limiter(self) -> MerakiLimiter:
        """Return a fresh limiter; its buckets start full on first use."""
        return MerakiLimiter(self)

    def spec(self) -> dict[str, Any]:
        """Return the profile as JSON data that `build_profile` accepts."""
        return {"profile": "meraki", **asdict(self)}


@dataclass
class MerakiLimiter:
    """The buckets of a `MerakiProfile`, one per organization and address."""

    profile: MerakiProfile
    organizations: dict[str, TokenBucket] = field(default_factory=dict)
    clients: dict[str, TokenBucket] = field(default_factory=dict)

    def decide(self, request: ApiRequest, now: Fraction) -> Verdict:
        """Admit ``request`` when both its buckets hold a token."""
        org = organization_of(request.path)
        buckets = self._buckets(org, request.client, now)

        waits = [(why, bucket.wait(now)) for why, bucket in buckets]
        refused = [(why, wait) for why, wait in waits if wait > 0]
        if refused:
            why = refused[0][0]
            return _too_many(why, max(wait for _, wait in refused), org)

        for _, bucket in buckets:
            bucket.take(now)
        body = {"organizationId": org, "method": request.method, "path": request.path}
        return Verdict(200, body, organization=org)

    def _buckets(
        self, org: str | None, client: str, now: Fraction
    ) -> list[tuple[str, TokenBucket]]:
        profile = self.profile
        found = []
        if org is not None:
            rate, burst = profile.org_rate, profile.org_burst
            bucket = _bucket_for(self.organizations, org, rate, burst, now)
            found.append((ORGANIZATION_LIMITED, bucket))

        rate = profile.client_rate
        burst = rate if profile.client_burst is None else profile.client_burst
        bucket = _bucket_for(self.clients, client, rate, burst, now)
        found.append((CLIENT_LIMITED, bucket))
        return found


@dataclass(frozen=True)
class HeaderProfile:
    """A server that announces its limit in headers, as many APIs do.

    Each source address gets ``quota`` requests per fixed window of
    ``window`` seconds, the window starting at its first request. Every
    answer carries the IETF fields ``RateLimit-Policy: "default";q=…;w=…``
    and ``RateLimit: "default";r=…;t=…`` (remaining, and whole seconds until
    the window resets, rounded up); a refused request gets 429 with
    ``Retry-After`` in whole seconds and a JSON body ``{"errors": [...]}``.

    Args:
        quota: Requests per window per source address; default 50.
        window: The window's length in seconds; default 5.
    """

    quota: int = 50
    window: float = 5.0

    def __post_init__(self) -> None:
        _check_rate("quota", self.quota)
        _check_rate("window", self.window)

    def limiter(self) -> HeaderLimiter:
        """Return a fresh limiter; every window starts on first use."""
        return HeaderLimiter(self)

    def spec(self) -> dict[str, Any]:
        """Return the profile as JSON data that `build_profile` accepts."""
        return {"profile": "headers", **asdict(self)}


@dataclass
class HeaderLimiter:
    """The fixed windows of a `HeaderProfile`, one per source address."""

    profile: HeaderProfile
    windows: dict[str, tuple[Fraction, int]] = field(default_factory=dict)

    def decide(self, request: ApiRequest, now: Fraction) -> Verdict:
        """Admit ``request`` while its window has quota left."""
        length = Fraction(self.profile.window)
        start, used = self.windows.get(request.client, (now, 0))
        if now >= start + length:
            start, used = now, 0

        left = start + length - now
        if used >= self.profile.quota:
            headers = (*self._fields(0, left), ("retry-after", str(retry_after(left))))
            return Verdict(429, {"errors": [HEADER_LIMITED]}, headers)

        used += 1
        self.windows[request.client] = (start, used)
        body = {"method": request.method, "path": request.path}
        return Verdict(200, body, self._fields(self.profile.quota - used, left))

    def _fields(self, remaining: int, left: Fraction) -> tuple[tuple[str, str], ...]:
        quota, window = self.profile.quota, self.profile.window
        return (
            ("ratelimit-policy", f'"default";q={quota};w={window:g}'),
            ("ratelimit", f'"default";r={remaining};t={math.ceil(left)}'),
        )


_PROFILES: dict[str, Callable[..., Profile]] = {
    "meraki": MerakiProfile,
    "headers": HeaderProfile,
}


def build_profile(spec: Mapping[str, Any]) -> Profile:
    """Rebuild a profile from the data its `spec` method returned.

    Raises:
        ValueError: The profile's name is unknown.
    """
    options = dict(spec)
    name = options.pop("profile", None)
    factory = _PROFILES.get(str(name))
    if factory is None:
        known = ", ".join(sorted(_PROFILES))
        raise ValueError(f"unknown profile {name!r}; known: {known}")
    return factory(**options)


def organization_of(path: str) -> str | None:
    """Return the path segment after ``organizations``, or ``None``."""
    segments = [segment for segment in path.split("/") if segment]
    for before, value in itertools.pairwise(segments):
        if before == "organizations":
            return value
    return None


def retry_after(wait: Fraction) -> int:
    """Return ``Retry-After`` for a wait: whole seconds, rounded up, >= 1."""
    return max(1, math.ceil(wait))


def _too_many(message: str, wait: Fraction, org: str | None) -> Verdict:
    headers = (("retry-after", str(retry_after(wait))),)
    return Verdict(429, {"errors": [message]}, headers, org)


def _bucket_for(
    table: dict[str, TokenBucket],
    key: str,
    rate: float,
    burst: float,
    now: Fraction,
) -> TokenBucket:
    # Buckets are made on first use, full, as the real API's are for a
    # caller it has not seen for a while.
    bucket = table.get(key)
    if bucket is None:
        bucket = table[key] = TokenBucket(rate, burst, now)
    return bucket


def _check_rate(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")


def _check_burst(name: str, value: float) -> None:
    _check_rate(name, value)
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value!r}")
