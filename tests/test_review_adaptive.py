"""Regression tests for the adaptive rate's slope measurement (e111cbc),
found in review.

Each test states the behaviour that is broken, and what it should be.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from throttlekit._core import pacing
from throttlekit._core.backoff import AdaptiveRate, AdaptiveState

OK = pacing.Lesson(calm=True, accepted=True)
REFUSED = pacing.Lesson(pause=1.0)  # a 429 with Retry-After: 1


class Bucket:
    """A token-bucket server, like MerakiProfile's: ``rate`` tokens a
    second, at most ``burst`` held, starting full."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, 0.0

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + self.rate * (now - self.at))
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def test_a_burst_bigger_than_a_pause_refills_sets_no_firm_target_above_the_server() -> (
    None
):
    """A 10/s server with a burst of 50 (MerakiProfile(org_rate=10,
    org_burst=50)) behind HeaderPacing(adaptive=AdaptiveRate(100.0)), one
    call at a time, as the line admits it.

    The first span is the burst, at 100/s for 0.55 s (55 calls); its 429
    cuts blind to 50/s. The pause refills only 10, so the next span lasts
    0.23 s (12 calls), shorter in active time than the first. The slope
    between them is then (12 - 55) / (0.23 - 0.55), far above the server's
    rate (the burst the first span began with is not the refill of the
    second: the docstring's "the slope errs low" holds only when the later
    span is the longer). Today it is clamped to the upper bound 12 / 0.23
    and taken as firm: the target is 52/s for a 10/s server, the rate is
    cut only to 47/s, and the next 429 comes a second later. The same
    happens against the real RateLimitedAPI (statistics().target 49.45 two
    seconds into the job).

    A firm measurement must be close to the server's rate: the target is
    either none or within twice the server's rate.
    """
    server = Bucket(rate=10.0, burst=50.0)
    paced = pacing.PacingConfig(adaptive=AdaptiveRate(100.0))
    gate, now = pacing.Gate(), 0.0
    cuts: list[pacing.Gate] = []
    while len(cuts) < 2:
        assert now < 60.0, "the server never refused"
        wait, gate = pacing.admit(gate, now, 0.0, paced)
        now += wait
        if server.take(now):
            gate = pacing.learn(gate, OK, now, paced)
        else:
            gate = pacing.learn(gate, REFUSED, now, paced)
            cuts.append(gate)

    blind, second = cuts
    assert blind.rate == pytest.approx(50.0)  # the first cut is blind
    assert second.target == 0.0 or second.target <= 2 * server.rate, second


def test_a_tiny_growth_without_settled_growth_is_accepted_or_blamed_on_growth() -> None:
    """``growth`` is documented as any number in (0, 1], and
    ``settled_growth=None`` as "a tenth of growth". With growth=5e-324 the
    tenth underflows to 0.0, and the constructor raises
    "settled_growth must be in (0, growth=5e-324], got 0.0", blaming an
    argument the caller never passed (the version before the change
    accepted this growth). Either accept it with a settled_growth in
    (0, growth], or refuse it naming growth."""
    refused: ValueError | None = None
    try:
        control = AdaptiveRate(100.0, growth=5e-324)
    except ValueError as error:
        refused = error
    if refused is not None:
        assert str(refused).startswith("growth "), refused
    else:
        assert 0.0 < control.settled_growth <= control.growth


class _TookTooLong(Exception):
    pass


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise _TookTooLong(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)


def test_a_success_after_a_long_calm_above_a_target_returns_at_once() -> None:
    """ "A success after a long quiet spell takes every step at once": for
    the growth above no target that is one closed-form step (`_grown`),
    but above a firm target `_probed` loops once per calm interval until
    the share reaches growth or the rate the ceiling. With a valid but
    small settled_growth the share stays below growth for ages: 1e7 calm
    seconds take 1e7 iterations, about 5 s of CPU for one success (and
    settled_growth=5e-324, also accepted, makes every interval a no-op,
    so a success 1e9 s later spins for minutes). It must take no longer
    than any other transition."""
    control = AdaptiveRate(100.0, settled_growth=1e-17)
    state = AdaptiveState(50.0, last_cut=0.0, calm_since=0.0, target=50.0)

    with _deadline(1.0):
        after = control.on_success(state, 1e7)

    assert control.floor <= after.rate <= control.ceiling
    assert after.rate >= 50.0
