"""Backoff schedules and the adaptive rate controller, as pure arithmetic.

Backoff. Attempt ``n`` (counting from 1) of a retry waits at most the
envelope::

    envelope(n) = min(cap, initial * multiplier ** (n - 1))

With full jitter the wait is drawn uniformly from ``[0, envelope(n)]``, so
clients that failed together spread out instead of returning together; with
no jitter it is the envelope itself. The envelope is computed without ever
raising ``multiplier`` to a power that would overflow: from the attempt at
which it reaches the cap on, it is the cap.

Adaptive rate. A learned request rate, between ``floor`` and ``ceiling``
requests per second, starts at the ceiling and moves like a TCP congestion
window, cut hard when the server refuses and won back gently while it
does not:

- Multiplicative decrease: a congestion signal (a 429, RFC 6585 §4) at
  ``now`` cuts::

      rate' = max(floor, min(rate, measured) * factor)     measured known
      rate' = max(floor, rate * blind_factor)              otherwise

  where ``measured``, when the caller knows it, is the rate the server
  actually accepted since the last cut. Cutting from what got through,
  not from what was sent, lands next to the server's limit in one step
  however far above it the rate was. Knowing nothing (the first refusal
  of a busy spell, when the server's burst is most of what got through),
  the cut is deeper, by half by default, as TCP does: a rate well below
  the one refused makes the next measurement long and telling. Requests
  in flight when the server ran out all come back as 429s within about
  one round trip; together they are one congestion event and cut once: a
  signal at most ``max(window, rtt_guess)`` seconds after the last cut
  only restarts the calm.
- Increase: after ``calm`` seconds without a congestion signal, each
  further ``calm`` seconds multiplies the rate by ``1 + step``, up to
  exactly ``ceiling``::

      rate' = min(ceiling, rate * (1 + step) ** steps)

  The step depends on what the last cut knew. A *firm* measurement (one
  the caller vouches for) is kept as the ``target``: below it the rate
  climbs back by ``recovery`` (25%) a step, up to the target, and above
  it probes by ``settled_growth`` (0.5%, a tenth of ``growth``) a step,
  since the server was just seen to refuse little more; after
  ``PROBE_HOLD`` (30) intervals from the cut, the step grows evenly to
  ``growth`` over ``PROBE_RAMP`` (10) more, so a target that was too low
  holds the rate down for under a minute, not for ever.
  Without a target, the rate climbs by ``growth`` (5%). A step
  proportional to the rate, rather than
  a fixed number of requests per second, probes a 10/s server and a
  1000/s one equally gently, and climbs back from the floor in a number
  of steps that grows only with the logarithm of ``ceiling / floor``. The
  steps are counted on successes, so a key nobody uses does not climb; a
  success after a long quiet spell takes every step at once.

The state is a frozen `AdaptiveState` and every transition is a function
from one state to the next, so a backend can store the state anywhere.
"""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

__all__ = ["PROBE_HOLD", "PROBE_RAMP", "AdaptiveRate", "AdaptiveState", "Backoff"]

#: Calm intervals after a cut during which the rate probes past a firm
#: target by ``settled_growth`` alone.
PROBE_HOLD = 30
#: Calm intervals after the hold over which the probe's step grows evenly
#: from ``settled_growth`` to ``growth``.
PROBE_RAMP = 10

Jitter = Literal["full", "none"]
_JITTERS = ("full", "none")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with a cap and optional full jitter.

    Retrying at fixed intervals makes clients that failed together fail
    together again. Growing the wait gives an overloaded server room, and
    jitter spreads the retries out.

    Args:
        initial: Envelope of the first attempt, seconds; default 0.5.
        multiplier: Growth of the envelope per attempt, at least 1;
            default 2.
        cap: Largest wait, seconds, at least ``initial``; default 30.
        jitter: ``"full"`` (default) draws each wait uniformly from zero to
            the envelope; ``"none"`` waits the envelope.

    Raises:
        TypeError: An argument is not a number.
        ValueError: An argument is out of range; the message names it.

    Example:
        >>> Backoff(initial=1.0, cap=4.0, jitter="none").delay(5)
        4.0
    """

    initial: float = 0.5
    multiplier: float = 2.0
    cap: float = 30.0
    jitter: Jitter = "full"

    def __post_init__(self) -> None:
        _check("initial", self.initial, "a finite number >= 0", minimum=0.0)
        _check("multiplier", self.multiplier, "a finite number >= 1", minimum=1.0)
        cap_range = f"a finite number >= initial ({self.initial!r})"
        _check("cap", self.cap, cap_range, minimum=self.initial)
        if self.jitter not in _JITTERS:
            raise ValueError(f"jitter must be one of {_JITTERS!r}, got {self.jitter!r}")

    def envelope(self, attempt: int) -> float:
        """Return the largest wait before ``attempt`` (1 for the first).

        Raises:
            TypeError: ``attempt`` is not an integer.
            ValueError: ``attempt`` is below 1.
        """
        _check_attempt(attempt)
        if self.initial == 0 or self.multiplier == 1:
            return self.initial

        try:
            grown = self.initial * self.multiplier ** (attempt - 1)
        except OverflowError:
            # The power is beyond floats, so far beyond the cap.
            return self.cap
        return min(self.cap, grown)

    def delay(
        self,
        attempt: int,
        random: Callable[[], float] = _random.random,
    ) -> float:
        """Return the wait before ``attempt``, in seconds within ``[0, cap]``.

        Args:
            attempt: Which attempt is about to be made; 1 for the first
                retry.
            random: Source of uniform numbers in ``[0, 1]``; inject one to
                make the schedule repeatable. Unused without jitter.

        Raises:
            TypeError: ``attempt`` is not an integer.
            ValueError: ``attempt`` is below 1, or ``random`` returned a
                number outside ``[0, 1]``.
        """
        envelope = self.envelope(attempt)
        if self.jitter == "none":
            return envelope

        draw = random()
        if not 0.0 <= draw <= 1.0:
            raise ValueError(f"random must return a number in [0, 1], got {draw!r}")
        return envelope * draw


@dataclass(frozen=True)
class AdaptiveState:
    """Where an adaptive rate stands.

    Attributes:
        rate: The current rate, requests per second.
        last_cut: When the rate was last cut, seconds; ``-inf`` if never.
        calm_since: Where the current calm interval started, seconds: the
            last congestion signal, moved on by each recovery step;
            ``-inf`` if there was never any congestion.
        target: The rate the server was measured to accept at the last
            cut, requests per second; 0 when that cut was blind.
    """

    rate: float
    last_cut: float = -math.inf
    calm_since: float = -math.inf
    target: float = 0.0


@dataclass(frozen=True, init=False)
class AdaptiveRate:
    """Learn a rate the server tolerates: cut on 429s, recover when calm.

    A shared budget may be spent by clients we do not control, and some
    servers never say what their limit is, so the rate a server accepts can
    sit anywhere below the ceiling. This controller cuts the rate when the
    server signals congestion, once per congestion event, starting from the
    rate that actually got through, and wins it back a few percent at a
    time while the server stays calm. It holds no state itself: each method
    maps an `AdaptiveState` to the next. See the module docstring for the
    formulas.

    The defaults suit a server whose limit is anywhere from a tenth of the
    ceiling to the ceiling itself: a cut to 90% of the measured rate (to
    half the rate when nothing was measured), back to the measured rate
    in a second or two, then 0.5% more per calm second; 5% more when
    there is no firm measurement to climb back to.

    Args:
        ceiling: The most the rate may be, requests per second; positive.
            Set it to the most the client may ever send, such as the API's
            documented per-client limit.
        floor: The least the rate may fall to, requests per second, in
            ``(0, ceiling]``. ``None`` (default): ``ceiling * 0.01``.
        factor: Multiplier applied by a cut, in ``(0, 1)``; default 0.9.
        growth: Share of the current rate added per calm interval, in
            ``(0, 1]``; default 0.05.
        calm: Seconds without congestion that earn one step; positive,
            default 1.
        window: Seconds after a cut during which further congestion signals
            belong to the same event, at least 0; default 1. A larger
            ``rtt_guess`` passed to `on_congestion` widens it.
        blind_factor: Multiplier applied by a cut that knows no measured
            rate, in ``(0, 1)``; default 0.5.
        recovery: Share of the rate added per calm interval below a firm
            measured rate, in ``(0, 1]``; default 0.25.
        settled_growth: Share of the rate added per calm interval above a
            firm measured rate, in ``(0, growth]``. ``None`` (default): a
            tenth of ``growth``, 0.005.

    Raises:
        TypeError: An argument is not a number.
        ValueError: An argument is out of range; the message names it.

    Example:
        >>> control = AdaptiveRate(100.0)
        >>> state = control.on_congestion(control.start(), 0.0, measured=10.0)
        >>> state.rate
        9.0
    """

    ceiling: float
    floor: float
    factor: float
    growth: float
    calm: float
    window: float
    blind_factor: float
    recovery: float
    settled_growth: float

    def __init__(
        self,
        ceiling: float,
        *,
        floor: float | None = None,
        factor: float = 0.9,
        growth: float = 0.05,
        calm: float = 1.0,
        window: float = 1.0,
        blind_factor: float = 0.5,
        recovery: float = 0.25,
        settled_growth: float | None = None,
    ) -> None:
        _check("ceiling", ceiling, "a finite number > 0", above=0.0)
        floor = ceiling * 0.01 if floor is None else floor
        _check_adaptive(ceiling, floor, factor, growth, calm, window)
        _check("blind_factor", blind_factor, "in (0, 1)", above=0.0, below=1.0)
        _check("recovery", recovery, "in (0, 1]", above=0.0, maximum=1.0)
        if settled_growth is None:
            # A tenth of growth, unless that is too small for a float.
            settled_growth = growth / 10 or growth
        settled_range = f"in (0, growth={growth!r}]"
        _check(
            "settled_growth", settled_growth, settled_range, above=0.0, maximum=growth
        )

        settings = {
            "ceiling": ceiling,
            "floor": floor,
            "factor": factor,
            "growth": growth,
            "calm": calm,
            "window": window,
            "blind_factor": blind_factor,
            "recovery": recovery,
            "settled_growth": settled_growth,
        }
        for name, value in settings.items():
            object.__setattr__(self, name, float(value))

    def start(self) -> AdaptiveState:
        """Return the state of a key that has seen no congestion yet."""
        return AdaptiveState(self.ceiling)

    def on_congestion(
        self,
        state: AdaptiveState,
        now: float,
        rtt_guess: float | None = None,
        measured: float | None = None,
        firm: bool = False,
    ) -> AdaptiveState:
        """Return the state after a congestion signal at ``now``.

        Args:
            state: The current state.
            now: When the signal arrived, seconds.
            rtt_guess: A guess at the round trip, seconds; signals within
                ``max(window, rtt_guess)`` of the last cut do not cut again.
                ``None`` (default): ``window`` alone.
            measured: The rate the server actually accepted since the last
                cut, requests per second; ``None`` when unknown. When lower
                than the current rate, the cut starts from it: a rate far
                above what got through says little about what the server
                takes. Unknown, the cut is by ``blind_factor``.
            firm: ``measured`` is close to the server's rate, not merely
                below it: it becomes the target the rate climbs back to.

        Raises:
            ValueError: ``now`` is not finite, or ``rtt_guess`` is not a
                finite number >= 0.
        """
        _check("now", now, "finite seconds")
        if rtt_guess is not None:
            _check("rtt_guess", rtt_guess, "finite seconds >= 0", minimum=0.0)
        rate = self._bounded(state.rate)

        span = max(self.window, rtt_guess or 0.0)
        if now - state.last_cut <= span:
            # Part of the event already answered: only the calm restarts.
            return AdaptiveState(rate, state.last_cut, now, state.target)

        if measured is not None and math.isfinite(measured) and measured >= 0:
            base = min(rate, measured)
            target = max(self.floor, base) if firm else 0.0
            return AdaptiveState(max(self.floor, base * self.factor), now, now, target)
        return AdaptiveState(max(self.floor, rate * self.blind_factor), now, now)

    def on_success(self, state: AdaptiveState, now: float) -> AdaptiveState:
        """Return the state after a success at ``now``.

        Raises:
            ValueError: ``now`` is not finite.
        """
        _check("now", now, "finite seconds")
        rate = self._bounded(state.rate)
        calm_for = now - state.calm_since
        # Calm since forever (or since a corrupted, NaN time): all the way up.
        if rate >= self.ceiling or not calm_for < math.inf:
            return AdaptiveState(self.ceiling, state.last_cut, state.calm_since)

        steps = math.floor(calm_for / self.calm)
        if steps < 1:
            return replace(state, rate=rate)

        # The calm interval keeps its phase, so successes arriving often do
        # not round away part of each interval.
        calm_since = state.calm_since + steps * self.calm
        target = min(self.ceiling, state.target) if state.target > 0 else 0.0
        if not target:
            rate = self._grown(rate, steps, self.growth)
            return AdaptiveState(rate, state.last_cut, calm_since, target)

        # Calm intervals since the cut, before these steps.
        since = (state.calm_since - state.last_cut) / self.calm
        done = max(0, round(since)) if math.isfinite(since) else 0
        if rate < target:
            # Back to the firm measurement quickly, then probe gently.
            needed = math.ceil(math.log(target / rate) / math.log1p(self.recovery))
            if steps < needed:
                rate = rate * (1.0 + self.recovery) ** steps
                return AdaptiveState(rate, state.last_cut, calm_since, target)
            rate, steps, done = target, steps - needed, done + needed
        rate = self._probed(rate, steps, done)
        return AdaptiveState(rate, state.last_cut, calm_since, target)

    def _probed(self, rate: float, steps: int, done: int) -> float:
        # Above a firm target: `settled_growth` a step for the first
        # PROBE_HOLD calm intervals after the cut (``done`` of them are
        # past), then a step growing evenly to `growth` over PROBE_RAMP
        # more, so a target that was too low does not hold the rate down
        # for long; then `growth`.
        held = max(0, min(steps, PROBE_HOLD - done))
        rate = self._grown(rate, held, self.settled_growth)
        steps, done = steps - held, done + held
        while steps > 0 and done < PROBE_HOLD + PROBE_RAMP:
            done += 1
            share = (done - PROBE_HOLD) / PROBE_RAMP
            step = self.settled_growth + (self.growth - self.settled_growth) * share
            rate = min(self.ceiling, rate * (1.0 + step))
            steps -= 1
        return self._grown(rate, steps, self.growth)

    def _grown(self, rate: float, steps: int, growth: float) -> float:
        # Enough steps to pass the ceiling go exactly to it, without raising
        # 1 + growth to a power that could overflow.
        needed = math.log(self.ceiling / rate) / math.log1p(growth)
        if steps >= needed:
            return self.ceiling
        return min(self.ceiling, rate * (1.0 + growth) ** steps)

    def _bounded(self, rate: float) -> float:
        # A state saved under another configuration, or corrupted in
        # storage, is brought back inside this one's bounds.
        if math.isnan(rate):
            return self.ceiling
        return min(self.ceiling, max(self.floor, rate))


def _check_adaptive(
    ceiling: float,
    floor: float,
    factor: float,
    growth: float,
    calm: float,
    window: float,
) -> None:
    floor_range = f"in (0, ceiling={ceiling!r}]"
    _check("floor", floor, floor_range, above=0.0, maximum=ceiling)
    _check("factor", factor, "in (0, 1)", above=0.0, below=1.0)
    _check("growth", growth, "in (0, 1]", above=0.0, maximum=1.0)
    _check("calm", calm, "a finite number > 0 (seconds)", above=0.0)
    _check("window", window, "a finite number >= 0 (seconds)", minimum=0.0)


def _check(
    name: str,
    value: float,
    allowed: str,
    *,
    minimum: float = -math.inf,
    maximum: float = math.inf,
    above: float = -math.inf,
    below: float = math.inf,
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be {allowed}, got {value!r}")
    inside = minimum <= value <= maximum and above < value < below
    if not (math.isfinite(value) and inside):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _check_attempt(attempt: int) -> None:
    if isinstance(attempt, bool) or not isinstance(attempt, int):
        raise TypeError(f"attempt must be an integer >= 1, got {attempt!r}")
    if attempt < 1:
        raise ValueError(f"attempt must be an integer >= 1, got {attempt!r}")
