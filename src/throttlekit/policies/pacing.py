"""`HeaderPacing`: pace from what the server's headers say, and pause the
whole fleet when it says stop."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from .. import keys as _keys
from .._core import pacing
from .._core.backoff import AdaptiveRate
from .._core.headers import MAX_RETRY_AFTER, parse_headers
from .._exceptions import RateLimited
from .._flow import Cancel, Context, Flow, Send, Sleep
from .._validate import seconds
from ..backends._base import Reservation

__all__ = ["HeaderPacing"]

logger = logging.getLogger("throttlekit.pacing")

_LONGEST = 366 * 86400.0
# Pauses that begin while a call waits are waited out at most this often;
# each one is a fresh 429 from the server, so more means it keeps refusing.
_RECHECKS = 3


class HeaderPacing:
    """Spread each key's remaining quota, and pause every process on a 429.

    Servers say how much budget is left and when it resets
    (``X-RateLimit-*``, the IETF ``RateLimit`` fields and their relatives),
    and, when refused, how long to stay away (``Retry-After``). This policy
    reads every response and keeps what it learns in the backend, per key,
    so every process sharing the backend acts on it:

    - the remaining quota is spread evenly over the time to the reset, rather
      than spent at once or stalled on until the reset;
    - a 429, or a 503 with ``Retry-After``, pauses the key until the server's
      time; every request on it, in every process, waits for that instead of
      finding the 429 itself, and resumes spread over ``spread`` seconds;
    - a 429 with no hint pauses for ``default_pause``, doubling while 429s
      repeat, up to ``max_pause``.

    The response itself is returned unchanged; retrying it is `Retry`'s job.

    Args:
        key: Which line a request joins: a key function from
            `throttlekit.keys`, a string, or ``None`` (default) for the host.
        default_pause: Seconds to pause on a 429 without a hint; default 1.
        max_pause: Cap on that pause as it doubles, seconds; default 60.
        spread: Seconds over which waiters resume after a pause; default 0.5.
        max_retry_after: Longest server-requested wait a request sleeps
            through, seconds; default one hour. A request that would have to
            wait longer raises `RateLimited` carrying the delay instead.
        adaptive: Learn the rate the server tolerates (see `AdaptiveRate`),
            for servers that do not announce their limit or share it with
            others: each 429 event cuts it, starting from the rate the fleet
            actually got through, and calm wins it back up to the ceiling.
            ``None`` (default): off. Costs one backend call per response.
        name: Prefix of the line names; default ``"pace"``.

    Example:
        >>> import throttlekit as tk
        >>> transport = tk.ThrottledTransport(tk.HeaderPacing())
    """

    def __init__(
        self,
        *,
        key: _keys.KeyFunc | str | None = None,
        default_pause: float | timedelta = 1.0,
        max_pause: float | timedelta = 60.0,
        spread: float | timedelta = 0.5,
        max_retry_after: float | timedelta = MAX_RETRY_AFTER,
        adaptive: AdaptiveRate | None = None,
        name: str = "pace",
    ) -> None:
        self.key = _keys.host() if key is None else _keys.resolve(key)
        self.config = pacing.PacingConfig(
            default_pause=_required("default_pause", default_pause),
            max_pause=_required("max_pause", max_pause),
            spread=_required("spread", spread),
            adaptive=_adaptive(adaptive),
        )
        self.max_retry_after = _required("max_retry_after", max_retry_after)
        self.name = name
        self._random: Callable[[], float] = random.random
        self._struck: set[str] = set()

    def __repr__(self) -> str:
        return f"HeaderPacing(name={self.name!r})"

    def flow(self, call: Any, ctx: Context) -> Flow[Any]:
        """Wait for the key's line, send, and learn from the response."""
        key = self.key(call)
        if key is None:
            return (yield Send(call))

        line = f"{self.name}|{key}"
        max_wait = min(ctx.remaining, self.max_retry_after)
        sends = ctx.sends
        place = yield Pace(line, self._random(), self.config, max_wait)
        ctx.note(line)

        try:
            if place.wait > 0:
                yield Sleep(place.wait)
                yield from self._wait_out_pause(line, ctx)
            response = yield Send(call)
        except BaseException:
            if ctx.sends == sends:
                yield Cancel(place)
            raise

        if isinstance(response, httpx.Response):
            taught = self._lesson(line, call, response)
            if taught is not None:
                yield Learn(line, taught, self.config)
        return response

    def _wait_out_pause(self, line: str, ctx: Context) -> Flow[None]:
        """Wait for a pause that began while this call waited its turn.

        A place is taken before the call sleeps; a 429 seen meanwhile by
        any process pauses the key, and the call must not walk into it.
        """
        for _ in range(_RECHECKS):
            left = yield Paused(line)
            if left <= 0:
                return
            wait = left + self._random() * self.config.spread
            if wait > min(ctx.remaining, self.max_retry_after):
                raise RateLimited(line, wait, reason="paused at the server's request")
            yield Sleep(wait)

    def _lesson(
        self, line: str, request: Any, response: httpx.Response
    ) -> pacing.Lesson | None:
        # Keep the server's delay as it is, however long (the parser still
        # bounds it to a year): a pause past max_retry_after must make later
        # requests fail fast with the true delay, not sleep a shortened one.
        info = parse_headers(
            response.status_code,
            response.headers.multi_items(),
            time.time(),
            max_retry_after=_LONGEST,
        )
        taught = pacing.lesson(info)
        if info.rate_limited:
            logger.debug(
                "%s refused %s %s: pause %s",
                line,
                getattr(request, "method", "call"),
                getattr(getattr(request, "url", None), "path", ""),
                taught.pause,
            )
        if self.config.adaptive is not None:
            return taught  # every answer counts towards the learned rate
        if taught.unannounced:
            self._struck.add(line)
        elif taught.calm and taught.pause is None and taught.interval is None:
            # A plain success teaches nothing, unless it ends a run of
            # unannounced 429s; skip the backend round trip otherwise.
            if line not in self._struck:
                return None
            self._struck.discard(line)
        return taught


@dataclass(frozen=True)
class Pace:
    """Take a place on a key's pacing line; the result is a `Reservation`."""

    key: str
    jitter: float
    config: pacing.PacingConfig
    max_wait: float

    def run(self, ctx: Context) -> Reservation:
        return ctx.backend.pace(self.key, self.jitter, self.config, _bound(self))

    async def arun(self, ctx: Context) -> Reservation:
        return await ctx.backend.apace(self.key, self.jitter, self.config, _bound(self))


@dataclass(frozen=True)
class Paused:
    """Ask how long a key stays paused; the result is seconds, 0 if not."""

    key: str

    def run(self, ctx: Context) -> float:
        return ctx.backend.paused(self.key)

    async def arun(self, ctx: Context) -> float:
        return await ctx.backend.apaused(self.key)


@dataclass(frozen=True)
class Learn:
    """Teach a key's pacing line what a response said."""

    key: str
    lesson: pacing.Lesson
    config: pacing.PacingConfig

    def run(self, ctx: Context) -> None:
        ctx.backend.learn(self.key, self.lesson, self.config)

    async def arun(self, ctx: Context) -> None:
        await ctx.backend.alearn(self.key, self.lesson, self.config)


def _bound(effect: Pace) -> float | None:
    return None if math.isinf(effect.max_wait) else effect.max_wait


def _adaptive(adaptive: AdaptiveRate | None) -> AdaptiveRate | None:
    if adaptive is not None and not isinstance(adaptive, AdaptiveRate):
        raise TypeError(f"adaptive must be an AdaptiveRate or None, got {adaptive!r}")
    return adaptive


def _required(name: str, value: float | timedelta) -> float:
    checked = seconds(name, value)
    if checked is None or math.isinf(checked):
        raise ValueError(f"{name} must be finite seconds >= 0, got {value!r}")
    return checked
