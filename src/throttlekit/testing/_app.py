"""The rate-limited test API as an ASGI application.

Routes:

- ``GET /_stats``: the responses given so far, counted by status and by
  organization, as JSON (see `ServerStats`);
- ``POST /_reset``: forget every bucket and count, as if just started;
- any other path: an API call, answered by the profile's limiter.

The app needs no web framework; any ASGI server runs it, and
`httpx.ASGITransport` runs it without a socket, which together with an
injected clock makes the limiter's behaviour testable without waiting.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ._bucket import Number, exact
from ._profiles import ApiRequest, MerakiProfile, Profile, Verdict

__all__ = ["RateLimitedApp", "ServerStats"]

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STATS_PATH = "/_stats"
RESET_PATH = "/_reset"


@dataclass(frozen=True)
class ServerStats:
    """Responses the test API has given since it started or was reset.

    Attributes:
        responses: Responses by status code.
        organizations: Responses by organization id, then by status code.
    """

    responses: Mapping[int, int]
    organizations: Mapping[str, Mapping[int, int]]

    @property
    def total(self) -> int:
        """All API responses given."""
        return sum(self.responses.values())

    def count(self, status: int, organization: str | None = None) -> int:
        """Return how many responses had ``status``.

        Args:
            status: The status code, such as 429.
            organization: Count only this organization's responses. ``None``
                (default): count them all.
        """
        if organization is None:
            return self.responses.get(status, 0)
        return self.organizations.get(organization, {}).get(status, 0)

    def to_json(self) -> dict[str, Any]:
        """Return the counts as JSON data, status codes as strings."""
        return {
            "responses": _keyed(self.responses),
            "organizations": {
                org: _keyed(counts) for org, counts in self.organizations.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServerStats:
        """Rebuild stats from `to_json` data."""
        return cls(
            responses=_unkeyed(data["responses"]),
            organizations={
                org: _unkeyed(counts) for org, counts in data["organizations"].items()
            },
        )


class RateLimitedApp:
    """An ASGI app that answers like a rate-limited API.

    Args:
        profile: How requests are limited and answered. ``None`` (default):
            `MerakiProfile()`, 10/s with burst 10 per organization and 100/s
            per source address.
        latency: Seconds to wait before answering an API call, refused or
            not; default 0. Control routes answer at once.
        clock: Returns the current time in seconds; default the monotonic
            clock in nanoseconds, read exactly. Inject a fake clock in tests.
        sleep: Awaitable sleep used for ``latency``; `asyncio.sleep` by
            default.

    Example:
        >>> import httpx
        >>> from throttlekit.testing import FakeClock, RateLimitedApp
        >>> clock = FakeClock()
        >>> app = RateLimitedApp(clock=clock.now)
        >>> client = httpx.AsyncClient(
        ...     transport=httpx.ASGITransport(app), base_url="http://api"
        ... )
    """

    def __init__(
        self,
        profile: Profile | None = None,
        *,
        latency: float = 0.0,
        clock: Callable[[], Number] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if not (isinstance(latency, (int, float)) and latency >= 0):
            raise ValueError(f"latency must be seconds >= 0, got {latency!r}")

        self.profile: Profile = profile if profile is not None else MerakiProfile()
        self.latency = float(latency)
        self._clock = clock if clock is not None else _monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every bucket and count."""
        with self._lock:
            self._limiter = self.profile.limiter()
            self._responses: Counter[int] = Counter()
            self._organizations: dict[str, Counter[int]] = {}

    def stats(self) -> ServerStats:
        """Return the responses given since the start or the last reset."""
        with self._lock:
            return ServerStats(
                responses=dict(self._responses),
                organizations={
                    org: dict(counts) for org, counts in self._organizations.items()
                },
            )

    def decide(self, request: ApiRequest) -> Verdict:
        """Answer an API call now, charging its buckets and counting it."""
        with self._lock:
            now = exact(self._clock(), "clock()")
            verdict = self._limiter.decide(request, now)

            self._responses[verdict.status] += 1
            if verdict.organization is not None:
                counts = self._organizations.setdefault(verdict.organization, Counter())
                counts[verdict.status] += 1
        return verdict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return

        await _drain(receive)
        verdict = await self._answer(scope)
        await _respond(send, verdict)

    async def _answer(self, scope: Scope) -> Verdict:
        path: str = scope["path"]
        method: str = scope["method"]
        if path in (STATS_PATH, RESET_PATH):
            return self._control(method, path)

        verdict = self.decide(ApiRequest(method, path, _client(scope)))
        if self.latency > 0:
            await self._sleep(self.latency)
        return verdict

    def _control(self, method: str, path: str) -> Verdict:
        allowed = "GET" if path == STATS_PATH else "POST"
        if method != allowed:
            body = {"errors": [f"{path} accepts {allowed} only"]}
            return Verdict(405, body, (("allow", allowed),))

        if path == RESET_PATH:
            self.reset()
            return Verdict(200, {"reset": True})
        return Verdict(200, self.stats().to_json())


def _monotonic() -> Fraction:
    return Fraction(time.monotonic_ns(), 1_000_000_000)


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _drain(receive: Receive) -> None:
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = bool(message.get("more_body", False))


async def _respond(send: Send, verdict: Verdict) -> None:
    payload = json.dumps(verdict.body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in verdict.headers]

    await send(
        {"type": "http.response.start", "status": verdict.status, "headers": headers}
    )
    await send({"type": "http.response.body", "body": payload})


def _keyed(counts: Mapping[int, int]) -> dict[str, int]:
    return {str(status): n for status, n in sorted(counts.items())}


def _unkeyed(counts: Mapping[str, int]) -> dict[int, int]:
    return {int(status): int(n) for status, n in counts.items()}
