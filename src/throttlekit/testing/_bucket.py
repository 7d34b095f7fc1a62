"""An exact token bucket, the limiter of the rate-limited test server.

A bucket holds up to ``burst`` tokens and gains ``rate`` tokens per second,
continuously. A request needs one token: it is admitted when the bucket holds
at least one, and then takes it. After an idle spell of ``t`` seconds the
bucket holds::

    tokens' = min(burst, tokens + rate * t)

A request refused at ``now`` would be admitted after::

    wait = (1 - tokens) / rate

Arithmetic is done on `fractions.Fraction` values, so a request arriving at
exactly the moment its token is due is admitted: no rounding error turns a
client that paces at exactly the rate into a rejected one. In any window of
length ``t`` a bucket admits at most ``rate * t + burst`` requests.
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = ["TokenBucket", "exact"]

Number = int | float | Fraction


def exact(value: Number, name: str = "value") -> Fraction:
    """Return ``value`` as an exact fraction, refusing non-finite numbers.

    A float converts to the exact binary value it holds.

    Raises:
        TypeError: ``value`` is not a number.
        ValueError: ``value`` is NaN or infinite.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return Fraction(value)


class TokenBucket:
    """A token bucket on an injected clock, with exact arithmetic.

    Args:
        rate: Tokens gained per second; positive.
        burst: Tokens held at most, and at the start; at least 1.
        now: The time the bucket starts full, seconds on the caller's clock.

    Raises:
        ValueError: ``rate`` is not positive or ``burst`` is below 1.
    """

    def __init__(self, rate: Number, burst: Number, now: Number) -> None:
        self.rate = exact(rate, "rate")
        self.burst = exact(burst, "burst")
        if self.rate <= 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")

        self.tokens = self.burst
        self.updated = exact(now, "now")

    def wait(self, now: Number) -> Fraction:
        """Return the seconds until a token is available; 0 when one is."""
        tokens = self._refilled(exact(now, "now"))
        if tokens >= 1:
            return Fraction(0)
        return (1 - tokens) / self.rate

    def take(self, now: Number) -> None:
        """Take one token at ``now``.

        Raises:
            ValueError: The bucket holds no whole token at ``now``; check
                with `wait` first.
        """
        moment = exact(now, "now")
        tokens = self._refilled(moment)
        if tokens < 1:
            raise ValueError(f"no token at {float(moment):.6f}; wait first")

        self.tokens = tokens - 1
        self.updated = max(self.updated, moment)

    def _refilled(self, now: Fraction) -> Fraction:
        # A clock read that lands before the last update (two threads reading
        # the clock, then deciding in the other order) adds nothing.
        elapsed = max(Fraction(0), now - self.updated)
        return min(self.burst, self.tokens + elapsed * self.rate)
