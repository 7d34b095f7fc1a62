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
from .._flow import Cancel, Context, Flow, Send, Sleep
from .._transport import default_backend
from .._validate import seconds
from ..backends._base import Backend, Reservation

__all__ = ["HeaderPacing", "PacingStatistics"]

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
            actually got through since the last cut, and calm wins it back
            a few percent at a time up to the ceiling. ``None`` (default):
            off. Costs one backend call per response.
        name: Prefix of the line names; default ``"pace"``.

    Example:
        >>> import throttlekit as tk
        >>> transport = tk.ThrottledTransport(tk.HeaderPacing())

        For a server that never says its limit, learn it under a ceiling:

        >>> pacing = tk.HeaderPacing(adaptive=tk.AdaptiveRate(100.0))
        >>> pacing.statistics("host:api.example.test").rate
        100.0
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
        sends = ctx.sends
        place = yield Pace(line, self._random(), self.config, self._bound(ctx))
        ctx.note(line)

        place = yield from self._wait_turn(line, place, ctx)
        try:
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

    def _wait_turn(
        self, line: str, place: Reservation, ctx: Context
    ) -> Flow[Reservation]:
        """Sleep until the turn of ``place``, or of the place that replaced
        it, and return that place; give it back if the wait fails.

        A place is taken before the call sleeps, and a 429 seen meanwhile by
        any process pauses the key. A call whose turn came inside the pause
        takes a new place behind it, so that the line keeps its spacing when
        it resumes, instead of every call whose turn fell in the pause going
        at once.
        """
        try:
            for recheck in range(_RECHECKS + 1):
                if place.wait <= 0:
                    break
                yield Sleep(place.wait)
                if recheck == _RECHECKS or (yield Paused(line)) <= 0:
                    break
                yield Cancel(place)
                place = yield Pace(line, self._random(), self.config, self._bound(ctx))
        except BaseException:
            yield Cancel(place)
            raise
        return place

    def statistics(
        self, key: str | httpx.Request, backend: Backend | None = None
    ) -> PacingStatistics:
        """Return a snapshot of one key's line: learned rate, pause, spacing.

        Args:
            key: A request, keyed as it would be when sent; or a key as the
                key function returns it, or the line's name as recorded in
                ``throttlekit.keys``.
            backend: Where the line lives. ``None`` (default): the
                process-wide default backend, as for a transport built
                without ``backend=``.

        Raises:
            ValueError: The request has no key under this policy.
            BackendError: The backend failed and raises on failure.
        """
        line = self._line(key)
        now, gate = (backend or default_backend()).gate(line)
        return self._snapshot(line, now, gate)

    async def astatistics(
        self, key: str | httpx.Request, backend: Backend | None = None
    ) -> PacingStatistics:
        """Async twin of `statistics`."""
        line = self._line(key)
        now, gate = await (backend or default_backend()).agate(line)
        return self._snapshot(line, now, gate)

    def _line(self, key: str | httpx.Request) -> str:
        if isinstance(key, httpx.Request):
            found = self.key(key)
            if found is None:
                raise ValueError(f"{key.method} {key.url.path} has no pacing key")
            key = found
        prefix = f"{self.name}|"
        return key if key.startswith(prefix) else prefix + key

    def _snapshot(self, line: str, now: float, gate: pacing.Gate) -> PacingStatistics:
        control = self.config.adaptive
        rate = measured = target = None
        if control is not None:
            rate = min(control.ceiling, max(control.floor, gate.rate or math.inf))
            measured = pacing.measured(gate, now)
            target = gate.target if gate.target > 0 else None
        interval = gate.interval if now < gate.interval_until else 0.0
        paused_for = max(0.0, gate.paused_until - now)
        return PacingStatistics(
            line, rate, measured, paused_for, interval, gate.strikes, target
        )

    def _bound(self, ctx: Context) -> float:
        return min(ctx.remaining, self.max_retry_after)

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
class PacingStatistics:
    """A snapshot of one key's pacing line, shared by the whole fleet.

    Attributes:
        key: The line's name, as recorded in ``throttlekit.keys``.
        rate: The learned rate, calls per second: the ceiling until a 429
            cuts it. ``None`` without an adaptive rate.
        measured: The calls per second the server accepted since the last
            cut, the next cut's starting point; ``None`` when that says
            nothing yet (see `throttlekit._core.pacing`) or without an
            adaptive rate.
        paused_for: Seconds left of the fleet-wide pause; 0 when none.
        interval: Seconds between calls learned from headers, in force now;
            0 when none.
        strikes: 429s in a row that gave no hint of how long to wait.
        target: The rate the last cut measured firmly, calls per second,
            that the learned rate returns to and probes past slowly;
            ``None`` when there is none or without an adaptive rate.
    """

    key: str
    rate: float | None
    measured: float | None
    paused_for: float
    interval: float
    strikes: int
    target: float | None = None


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
