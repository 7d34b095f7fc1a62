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

With an adaptive rate (an `AdaptiveRate` in the config), the gate also
learns a rate the server tolerates when it does not announce its limit, or
shares it with clients we do not control. Calls are then spaced by at least
``1 / rate``; each 429 event cuts the rate, starting from the rate the
server actually accepted, and calm successes win it back a few percent at
a time up to the ceiling (see `throttlekit._core.backoff`).

What the server accepted is counted in the gate, so the whole fleet's
successes count, over a *measuring span*: from the last cut to now. A
server refuses when its budget is empty, so a span starts with the
budget empty, and everything sent in it was accepted until the 429 that
ends it. For a token bucket of rate ``R`` and burst ``B``, paused ``P``
seconds after the cut and then busy for ``t`` seconds (the span's
*active* time), the count is::

    count = refill + R · t,        refill = min(B, R · P)

The refill is unknown, so one span bounds the rate from both sides::

    count / (P + t)  <=  R  <=  count / t

The lower bound is exact when the bucket does not fill during the pause
(``B >= R · P``, as on a server whose ``Retry-After`` is just long
enough); the upper one when the span is long enough that the burst is
nothing beside it. Between the two, spans answer for each other: two
spans after equal pauses hold the same refill, so the rate is the slope
between them::

    R = (count - prior_count) / (t - prior_t)

The first span of a busy spell begins with the budget full (``B``), the
same refill as a later one when ``B <= R · P``; when ``B > R · P`` the
lower bound is exact instead, and the slope errs low, provided the later
span is the longer one: against a shorter one it would err high, so the
slope is taken only against a prior span shorter in active time. The estimate is
therefore the slope when it is above the lower bound, kept below the
upper one, and it is *firm*: the adaptive rate climbs back to it quickly
and probes past it slowly. Otherwise it is the lower bound, not firm.
The slope needs spans at least ``SLOPE_APART`` seconds apart in active
time; that is what the deeper *blind* cut at the first 429 of a busy
spell buys, when nothing is known: a rate well below the refused one
makes the next span long.

A span that began below the server's rate wasted budget unseen (the
bucket was full and overflowed), so the count holds less than the
refill plus the rate, and the slope errs low. The slope is firm only
when the span was *steady*: its learned rate at its first success was
at least ``STEADY`` of the slope.

Three cases say nothing about the server and measure nothing:

- a span shorter than ``MIN_SPAN`` (at the first 429 of a busy period,
  the server's burst is still in the count);
- a span with nothing accepted;
- a key that was idle: a span restarts at the first success after
  ``IDLE_GAP`` seconds without a success or a cut, since an idle server
  refilled unseen.

A span longer than ``MEASURE_SPAN`` keeps only its later half, at its
average rate, so that a long quiet stretch does not dilute the
measurement of a busy one. Such a span has no burst left to compare. If
it was steady, its average is the measurement, firm, and it is the
prior of the next span (its refill is nothing, so the next slope errs
low, if at all). If not, it may have begun below the limit: its cut
starts from the higher of its average and the rate that drew the 429,
is not firm, and leaves no prior.

A call arriving at ``now`` takes the place::

    start = max(now, tat, paused_until + jitter · spread   if paused)
    tat'  = start + max(interval, 1 / rate)                (0 when lapsed)

``jitter`` is a random fraction in [0, 1) chosen by the caller, so a fleet
waiting for the end of a pause resumes over ``spread`` seconds instead of all
at once. With an adaptive rate the spread is at most ``1 / rate``: the line
already spaces the callers resuming, and a longer spread would only leave
the server idle before the first of them.

What a response teaches is reduced to a `Lesson` first, so backends that
apply it elsewhere (a Lua script) need only `learn`'s arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .backoff import AdaptiveRate, AdaptiveState
from .headers import RateLimitInfo, pace

__all__ = [
    "FORGET_RATE",
    "IDLE_GAP",
    "MEASURE_SPAN",
    "MIN_SPAN",
    "Gate",
    "Lesson",
    "PacingConfig",
    "admit",
    "learn",
    "lesson",
    "measured",
]

#: Shortest measuring span, seconds, that says what the server accepted;
#: over less, the burst it allowed when idle is most of the count.
MIN_SPAN = 1.0
#: Longest measuring span, seconds; a longer one keeps its later half.
MEASURE_SPAN = 10.0
#: Seconds without a success or a cut after which a key counts as idle,
#: and its measuring span starts over at the next success. Longer than a
#: pause of one second, the shortest ``Retry-After`` in whole seconds.
IDLE_GAP = 2.0
#: Least excess of a span's active time, seconds, over its prior's for
#: their slope to estimate the server's rate; closer, one call more or
#: less in either count moves the slope too far.
SLOPE_APART = 0.1
#: A span is steady when its rate at its first success was at least this
#: share of what it measured: it did not begin far below the server's
#: rate, wasting budget unseen.
STEADY = 0.95
#: Seconds after its last cut that an unused learned rate is forgotten.
FORGET_RATE = 300.0


@dataclass(frozen=True)
class PacingConfig:
    """How a key's gate reacts to what the server says.

    Attributes:
        default_pause: Seconds to pause on a 429 without any hint.
        max_pause: Cap, in seconds, on that pause as it doubles.
        spread: Seconds over which paused callers resume.
        adaptive: Learn a tolerated rate from 429s; ``None`` for no.
    """

    default_pause: float = 1.0
    max_pause: float = 60.0
    spread: float = 0.5
    adaptive: AdaptiveRate | None = None

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
    """One key's pacing line; see the module docstring.

    Attributes:
        tat: When the line is free again, seconds.
        interval: Seconds between calls learned from headers.
        interval_until: When ``interval`` lapses, seconds.
        paused_until: When the fleet-wide pause ends, seconds.
        strikes: 429s in a row without a hint of how long to wait.
        rate: The learned rate, calls per second; 0 before any is learned
            (the ceiling applies).
        last_cut: When the learned rate was last cut, seconds.
        calm_since: Where the current calm interval started, seconds.
        span_start: Where the measuring span starts, seconds.
        span_count: Calls accepted in the measuring span.
        span_last: When the last call was accepted, seconds.
        span_resume: When the span's pause ended: its active time counts
            from here, seconds.
        span_rate: The learned rate when the span began.
        prior_count: Calls accepted in the span before this one.
        prior_active: That span's active time, seconds; 0 when there is
            none to compare with, and -1 while this span is folded (see
            ``MEASURE_SPAN``), which makes it no prior either.
        target: The firm measured rate of the last cut, that the rate
            climbs back to; 0 for none.
    """

    tat: float = 0.0
    interval: float = 0.0
    interval_until: float = 0.0
    paused_until: float = 0.0
    strikes: int = 0
    rate: float = 0.0
    last_cut: float = -math.inf
    calm_since: float = -math.inf
    span_start: float = -math.inf
    span_count: float = 0.0
    span_last: float = -math.inf
    span_resume: float = -math.inf
    prior_count: float = 0.0
    prior_active: float = 0.0
    target: float = 0.0
    span_rate: float = 0.0


@dataclass(frozen=True)
class Lesson:
    """What one response says about its key, in a form any backend applies.

    Attributes:
        pause: Seconds to pause the key, or ``None``.
        unannounced: A 429 that said nothing about when to come back.
        interval: Seconds between calls until ``interval_for`` passes.
        interval_for: Seconds the interval stays valid (until the reset).
        calm: The response was not refused for rate.
        accepted: The server took the call (a 2xx or 3xx answer).
    """

    pause: float | None = None
    unannounced: bool = False
    interval: float | None = None
    interval_for: float | None = None
    calm: bool = False
    accepted: bool = False


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
    accepted = 200 <= info.status < 400
    return Lesson(pause, False, interval, interval_for, True, accepted)


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

    gate = replace(
        gate,
        interval=interval,
        interval_until=interval_until,
        paused_until=paused_until,
        strikes=strikes,
    )
    if config.adaptive is not None:
        gate = _adapt(gate, taught, now, config.adaptive)
    return gate


def _adapt(gate: Gate, taught: Lesson, now: float, control: AdaptiveRate) -> Gate:
    state = AdaptiveState(
        gate.rate or control.ceiling,
        gate.last_cut,
        gate.calm_since,
        gate.target,
    )

    if not taught.calm:
        value, firm = _estimate(gate, now)
        state = control.on_congestion(state, now, measured=value, firm=firm)
        if state.last_cut != gate.last_cut:
            # The server's budget is empty now: a new span starts from it,
            # and this one becomes the prior the next cut compares with.
            # An empty span is no prior, nor a folded one that was not
            # steady: what it kept is diluted.
            count, active = gate.span_count, _active(gate, now)
            if gate.span_count <= 0 or (gate.prior_active < 0 and not firm):
                count, active = 0.0, 0.0
            gate = replace(
                gate,
                span_start=now,
                span_count=0.0,
                span_resume=gate.paused_until,
                span_rate=0.0,
                prior_count=count,
                prior_active=active,
            )
        else:
            # A 429 of the same event may lengthen the pause.
            gate = replace(gate, span_resume=max(gate.span_resume, gate.paused_until))
    elif taught.accepted:
        gate = _count(gate, now)
        state = control.on_success(state, now)
        if gate.span_count == 1:
            gate = replace(gate, span_rate=state.rate)

    return replace(
        gate,
        rate=state.rate,
        last_cut=state.last_cut,
        calm_since=state.calm_since,
        target=state.target,
    )


def _active(gate: Gate, now: float) -> float:
    """Return the seconds of the measuring span spent outside a pause."""
    return max(0.0, now - max(gate.span_start, gate.span_resume))


def _count(gate: Gate, now: float) -> Gate:
    """Count one accepted call at ``now`` in the measuring span."""
    if not now - max(gate.span_last, gate.span_start) <= IDLE_GAP:
        gate = replace(
            gate,
            span_start=now,
            span_count=0.0,
            span_resume=now,
            prior_count=0.0,
            prior_active=0.0,
        )
    elif now - gate.span_start > MEASURE_SPAN:
        half = MEASURE_SPAN / 2
        kept = gate.span_count * half / (now - gate.span_start)
        gate = replace(
            gate,
            span_start=now - half,
            span_count=kept,
            span_resume=now - half,
            prior_active=-1.0,
        )
    return replace(gate, span_count=gate.span_count + 1, span_last=now)


def measured(gate: Gate, now: float) -> float | None:
    """Return the calls per second the server accepted in the measuring
    span, or ``None`` when the span says nothing (see the module
    docstring)."""
    return _estimate(gate, now)[0]


def _estimate(gate: Gate, now: float) -> tuple[float | None, bool]:
    """Return the measured rate and whether it is firm."""
    span = now - gate.span_start
    idle = not now - max(gate.span_last, gate.span_start) <= IDLE_GAP
    if idle or not span >= MIN_SPAN or gate.span_count <= 0:
        return None, False
    low = gate.span_count / span
    active = _active(gate, now)
    if not active > 0:
        return low, False
    high = gate.span_count / active
    if gate.prior_active < 0:
        # A long span, folded: no burst left to compare. Sent all along at
        # about what it measured, it measured the server; begun below, it
        # may have wasted budget unseen, and the rate that drew the 429 is
        # closer.
        if gate.span_rate >= STEADY * low:
            return low, True
        return max(low, gate.rate), False
    # Only against a shorter prior: the first span of a busy spell began
    # with more than a later refill when B > R · P, which makes the slope
    # err low against a longer span but high against a shorter one.
    apart = active - gate.prior_active
    if gate.prior_active > 0 and apart >= SLOPE_APART:
        slope = (gate.span_count - gate.prior_count) / apart
        if slope > low:
            slope = min(high, slope)
            return slope, gate.span_rate >= STEADY * slope
    return low, False


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
    spread = config.spread
    if config.adaptive is not None:
        spread = min(spread, 1.0 / (gate.rate or config.adaptive.ceiling))
    start = max(now, gate.tat)
    if gate.paused_until > now:
        start = max(start, gate.paused_until + jitter * spread)

    interval = gate.interval if start < gate.interval_until else 0.0
    if config.adaptive is not None:
        interval = max(interval, 1.0 / (gate.rate or config.adaptive.ceiling))
    return start - now, replace(gate, tat=start + interval)


def idle_at(gate: Gate) -> float:
    """Return when the gate holds nothing worth keeping.

    A learned rate is kept for ``FORGET_RATE`` seconds after the last cut,
    so a key used in bursts does not start over at its ceiling each time.
    """
    learned = gate.last_cut + FORGET_RATE if gate.rate else -math.inf
    return max(gate.tat, gate.interval_until, gate.paused_until, learned)
