"""A key's pacing line: spacing learned from headers, and the fleet pause.

Every key a `HeaderPacing` policy sees has one `Gate`, kept in the backend so
that every process reads and writes the same one. It holds a line much like a
GCRA bucket with a burst of one, except that its spacing is learned:

- ``tat``: the moment the line is free again;
- ``interval``: seconds between calls, learned from the last response's
  remaining count and reset, ``reset_after / max(remaining, 1)``, valid until
  that reset (``interval_until``); after it, calls are not spaced;
- ``paused_until``: the fleet-wide pause set by a 429, or a 503 with
  ``Retry-After`` (RFC 9110 §10.2.3, RFC 6585 §4);
- ``strikes``: 429s in a row that gave no hint of how long to wait; each one
  doubles the default pause, up to a cap, and any other answer resets it.

A call arriving at ``now`` takes the place::

    start = max(now, tat, paused_until + jitter · spread   if paused)
    tat'  = start + interval                               (0 when lapsed)

``jitter`` is a random fraction in [0, 1) chosen by the caller, so a fleet
waiting for the end of a pause resumes over ``spread`` seconds instead of all
at once. What a response teaches is reduced to a `Lesson` first, so backends
that apply it elsewhere (a Lua script) need only `learn`'s arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .headers import RateLimitInfo, pace

__all__ = ["Gate", "Lesson", "PacingConfig", "admit", "learn", "lesson"]


@dataclass(frozen=True)
class PacingConfig:
    """How a key's gate reacts to what the server says.

    Attributes:
        default_pause: Seconds to pause on a 429 without any hint.
        max_pause: Cap, in seconds, on that pause as it doubles.
        spread: Seconds over which paused callers resume.
    """

    default_pause: float = 1.0
    max_pause: float = 60.0
    spread: float = 0.5

    def __post_init__(self) -> None:
        for name in ("default_pause", "max_pause", "spread"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite seconds >= 0, got {value!r}")
        if self.max_pause < self.default_pause:
            raise ValueError(
                f"max_pause ({self.max_pause!r}) must be >= default_pause "
                f"({self.default_pause!r})"
            )


@dataclass(frozen=True)
class Gate:
    """One key's pacing line; see the module docstring."""

    tat: float = 0.0
    interval: float = 0.0
    interval_until: float = 0.0
    paused_until: float = 0.0
    strikes: int = 0


@dataclass(frozen=True)
class Lesson:
    """What one response says about its key, in a form any backend applies.

    Attributes:
        pause: Seconds to pause the key, or ``None``.
        unannounced: A 429 that said nothing about when to come back.
        interval: Seconds between calls until ``interval_for`` passes.
        interval_for: Seconds the interval stays valid (until the reset).
        calm: The response was not refused for rate.
    """

    pause: float | None = None
    unannounced: bool = False
    interval: float | None = None
    interval_for: float | None = None
    calm: bool = False


def lesson(info: RateLimitInfo) -> Lesson:
    """Reduce a parsed response to what its key's gate should learn."""
    interval = interval_for = None
    if info.remaining is not None and info.reset_after is not None:
        interval = pace(info.remaining, info.reset_after)
        interval_for = info.reset_after

    if info.rate_limited:
        delay = info.delay
        return Lesson(
            pause=delay,
            unannounced=delay is None,
            interval=interval,
            interval_for=interval_for,
        )
    pause = info.reset_after if info.remaining == 0 else None
    return Lesson(pause, False, interval, interval_for, calm=True)


def learn(gate: Gate, taught: Lesson, now: float, config: PacingConfig) -> Gate:
    """Return the gate after applying ``taught`` at ``now``."""
    pause = taught.pause
    strikes = 0 if taught.calm else gate.strikes
    if taught.unannounced:
        pause = min(config.max_pause, config.default_pause * 2.0 ** min(strikes, 60))
        strikes += 1

    paused_until = gate.paused_until
    if pause is not None:
        paused_until = max(paused_until, now + pause)

    interval, interval_until = gate.interval, gate.interval_until
    if taught.interval is not None and taught.interval_for is not None:
        interval, interval_until = taught.interval, now + taught.interval_for

    return replace(
        gate,
        interval=interval,
        interval_until=interval_until,
        paused_until=paused_until,
        strikes=strikes,
    )


def admit(
    gate: Gate, now: float, jitter: float, config: PacingConfig
) -> tuple[float, Gate]:
    """Return the wait for a call arriving at ``now`` and the gate after it.

    Args:
        gate: The key's gate.
        now: The current time, seconds, in the gate's clock.
        jitter: A random fraction in [0, 1) spreading resumption after a
            pause.
        config: The pacing settings.
    """
    start = max(now, gate.tat)
    if gate.paused_until > now:
        start = max(start, gate.paused_until + jitter * config.spread)

    interval = gate.interval if start < gate.interval_until else 0.0
    return start - now, replace(gate, tat=start + interval)


def idle_at(gate: Gate) -> float:
    """Return when the gate holds nothing worth keeping."""
    return max(gate.tat, gate.interval_until, gate.paused_until)
