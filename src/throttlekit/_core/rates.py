"""Parse rate strings into `Limit` values.

Rate strings use the notation of the ``limits`` package, which does the
parsing: ``"10/second"``, ``"600/minute"``, ``"10 per second"``,
``"5 per 2 seconds"``, and several limits at once separated by ``;`` as in
``"10/second;1000/hour"``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import limits

__all__ = ["Limit", "parse_rate"]

_ZERO_PERIOD = re.compile(r"(?:/|\bper\b)\s*0+\s*[a-z]", re.IGNORECASE)


@dataclass(frozen=True)
class Limit:
    """One rate limit: ``amount`` cost units per ``period`` seconds.

    Attributes:
        amount: Cost units admitted per period; positive.
        period: Length of the period in seconds; positive.
        burst: Cost units admitted at once from idle; at least 1.
    """

    amount: float
    period: float
    burst: float

    def __post_init__(self) -> None:
        _check_positive("amount", self.amount)
        _check_positive("period", self.period)
        _check_positive("burst", self.burst)

    @property
    def interval(self) -> float:
        """Seconds one unit of cost occupies (the emission interval)."""
        return self.period / self.amount

    @property
    def tolerance(self) -> float:
        """Seconds of schedule a full burst may run ahead of the clock."""
        return self.burst * self.interval

    def __str__(self) -> str:
        return f"{self.amount:g}/{self.period:g}s burst {self.burst:g}"


def parse_rate(
    rate: str | Limit | Iterable[Limit],
    burst: float | None = None,
) -> tuple[Limit, ...]:
    """Turn a rate string (or ready `Limit` values) into limits.

    Args:
        rate: A rate string such as ``"10/second;1000/hour"``, a `Limit`, or
            an iterable of them.
        burst: Cost units allowed at once. Applies to the limit with the
            shortest period; the others keep their amount as burst. ``None``
            (default) means each limit's burst equals its amount.

    Returns:
        The limits, shortest period first.

    Raises:
        ValueError: ``rate`` cannot be parsed, or ``burst`` is not positive.
    """
    if burst is not None:
        _check_positive("burst", burst)
    parsed = _parse(rate)
    parsed.sort(key=lambda limit: limit.period)
    if burst is not None:
        first = parsed[0]
        parsed[0] = Limit(first.amount, first.period, float(burst))
    return tuple(parsed)


def _parse(rate: str | Limit | Iterable[Limit]) -> list[Limit]:
    if isinstance(rate, Limit):
        return [rate]
    if not isinstance(rate, (str, list, tuple)):
        raise TypeError(
            f"rate must be a rate string such as '10/second' or Limit values, "
            f"got {rate!r}"
        )
    if not isinstance(rate, str):
        items = list(rate)
        if not items or not all(isinstance(item, Limit) for item in items):
            raise TypeError(f"rate must be a string or Limit values, got {rate!r}")
        return items
    if _ZERO_PERIOD.search(rate):
        # limits reads "10 per 0 seconds" as per one second; refuse it.
        raise ValueError(f"rate {rate!r} must have a positive period")
    try:
        items_ = limits.parse_many(rate)
    except ValueError:
        raise ValueError(
            f"rate {rate!r} is not a rate string; expected forms like "
            "'10/second', '600/minute', '10 per second' or "
            "'10/second;1000/hour'"
        ) from None
    return [_from_item(rate, item) for item in items_]


def _from_item(rate: str, item: limits.RateLimitItem) -> Limit:
    if item.amount <= 0:
        raise ValueError(f"rate {rate!r} must admit a positive amount")

    amount = float(item.amount)
    return Limit(amount, float(item.get_expiry()), amount)


def _check_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
