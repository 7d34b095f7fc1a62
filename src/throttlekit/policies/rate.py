"""`RateLimit`: keep calls inside a rate, shared through the backend."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from .. import keys as _keys
from .._core import gcra
from .._core.rates import Limit, parse_rate
from .._exceptions import RateLimited
from .._flow import Cancel, Context, Flow, Reserve, Send, Sleep
from .._validate import seconds

__all__ = ["RateLimit"]

logger = logging.getLogger("throttlekit.bucket")

Cost = float | Callable[[Any], float]


class RateLimit:
    """Keep calls on each key inside a rate, with a burst.

    Every process and thread using the same backend shares one budget per
    key. A call that finds the budget spent takes the next place in line and
    sleeps until its turn (first come, first served), unless that would take
    longer than the call's ``max_wait``: then it raises `RateLimited` and
    spends nothing.

    Args:
        rate: A rate string such as ``"10/second"``, ``"600/minute"``,
            ``"10 per second"``, or several limits decided together, such as
            ``"10/second;1000/hour"``; or `Limit` values.
        burst: Cost units admitted at once from idle, for the limit with the
            shortest period. ``None`` (default): the rate's amount.
        key: Which budget a call spends: a key function from
            `throttlekit.keys`, a fixed string, or ``None`` (default) for one
            budget shared by every call. A key function returning ``None``
            lets the call pass this policy untouched.
        cost: What one call spends, a number (default 1) or a function of the
            call.
        name: Prefix of the budget names. ``None`` (default) derives one from
            the limits, so processes configured alike share budgets.
        max_wait: Seconds a call may wait here. ``None`` (default) leaves the
            bound to the transport.

    Raises:
        ValueError: An argument is invalid; the message names it.
        CapacityExceeded: A fixed ``cost`` above the burst capacity.

    Example:
        >>> import throttlekit as tk
        >>> policy = tk.RateLimit(
        ...     "10/second", burst=10, key=tk.keys.path_param("organizations")
        ... )
    """

    def __init__(
        self,
        rate: str | Limit | Iterable[Limit],
        *,
        burst: float | None = None,
        key: _keys.KeyFunc | str | None = None,
        cost: Cost = 1,
        name: str | None = None,
        max_wait: float | timedelta | None = None,
    ) -> None:
        self.limits = parse_rate(rate, burst)
        self.key = _keys.resolve(key)
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"name must be a non-empty string or None, got {name!r}")
        self.name = name if name is not None else _default_name(self.limits)
        self.max_wait = seconds("max_wait", max_wait)

        self._cost = cost
        if not callable(cost):
            gcra.check_cost(self.name, self.limits, _check_cost(cost))

    def __repr__(self) -> str:
        return f"RateLimit({self.name!r})"

    def flow(self, call: Any, ctx: Context) -> Flow[Any]:
        """Wait for the call's place in line, then send it on."""
        key = self.key(call)
        if key is None:
            return (yield Send(call))

        bucket = f"{self.name}|{key}"
        cost = _check_cost(self._cost(call) if callable(self._cost) else self._cost)
        max_wait = ctx.remaining
        if self.max_wait is not None:
            max_wait = min(max_wait, self.max_wait)
        sends = ctx.sends
        reservation = yield Reserve(
            bucket, self.limits, cost, None if math.isinf(max_wait) else max_wait
        )
        ctx.note(bucket)

        try:
            if reservation.wait > 0:
                yield Sleep(reservation.wait)
            return (yield Send(call))
        except BaseException as exc:
            # Not sent (cancelled while waiting, or refused further in):
            # give the place back so the budget is not spent for nothing.
            if ctx.sends == sends:
                yield Cancel(reservation)
                if isinstance(exc, RateLimited):
                    logger.debug("gave back %s: refused downstream", bucket)
            raise


def _default_name(limits: tuple[Limit, ...]) -> str:
    parts = (f"{x.amount:g}/{x.period:g}s~{x.burst:g}" for x in limits)
    return "rate:" + ";".join(parts)


def _check_cost(cost: object) -> float:
    if isinstance(cost, bool) or not isinstance(cost, (int, float)):
        raise TypeError(f"cost must be a number, got {cost!r}")
    if not (cost >= 0 and math.isfinite(cost)):
        raise ValueError(f"cost must be a finite number >= 0, got {cost!r}")
    return float(cost)
