"""The adaptive rate's measurement: spans, bounds, slope and firm targets.

The timelines here are synthetic: a token-bucket server simulated in the
test answers calls that the pure pacing line admits, with no clock and no
network, so every count the assertions use comes from the bucket model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from throttlekit._core import pacing
from throttlekit._core.backoff import AdaptiveRate, AdaptiveState

OK = pacing.Lesson(calm=True, accepted=True)
PAUSE = 1.0
REFUSED = pacing.Lesson(pause=PAUSE)


def config(control: AdaptiveRate) -> pacing.PacingConfig:
    return pacing.PacingConfig(default_pause=PAUSE, adaptive=control)


# --- A simulated token-bucket server ------------------------------------------


@dataclass
class Bucket:
    """A token-bucket server: ``rate`` tokens a second, at most ``burst``
    held, one taken by each accepted call; it starts full."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    at: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + self.rate * (now - self.at))
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True)
class Refusal:
    """One 429 of a simulated run, and the span it ended.

    Attributes:
        at: When the 429 came.
        count: Calls the server accepted in the span.
        span: Seconds from the span's start (the previous 429, or the first
            call of the run) to this 429.
        active: Seconds from the span's first call (the end of the pause)
            to this 429.
        first: The gate just after the span's first accepted call, or
            ``None`` when the server accepted nothing in it.
        before: The gate just before the 429 was learned.
        after: The gate after it.
    """

    at: float
    count: int
    span: float
    active: float
    first: pacing.Gate | None
    before: pacing.Gate
    after: pacing.Gate


def run(server: Bucket, paced: pacing.PacingConfig, refusals: int) -> list[Refusal]:
    """Send one call at a time, as soon as the gate admits it, with no
    latency, until the server has refused ``refusals`` times."""
    gate, now = pacing.Gate(), 0.0
    start: float | None = None
    resumed: float | None = None
    count = 0
    first: pacing.Gate | None = None
    out: list[Refusal] = []
    while len(out) < refusals:
        assert now < 600.0, "the server never refused"
        wait, gate = pacing.admit(gate, now, 0.0, paced)
        now += wait
        start = now if start is None else start
        resumed = now if resumed is None else resumed
        if server.take(now):
            gate = pacing.learn(gate, OK, now, paced)
            count += 1
            first = gate if first is None else first
            continue
        after = pacing.learn(gate, REFUSED, now, paced)
        assert after.last_cut == now  # one call in flight: every 429 cuts
        assert after.span_rate == 0.0  # and every cut clears the span rate
        span, active = now - start, now - resumed
        out.append(Refusal(now, count, span, active, first, gate, after))
        gate, count, start, resumed, first = after, 0, now, None, None
    return out


def leftover(server: Bucket, refill: float, refusal: Refusal) -> float:
    """Tokens the bucket model says were left when the 429 came: the refill
    plus ``R`` times the active time, less what was accepted."""
    return refill + server.rate * refusal.active - refusal.count


# --- Measuring a server ---------------------------------------------------------


def test_a_blind_cut_makes_the_next_span_measure_the_rate_by_its_slope() -> None:
    """A 50/s server with a burst of 11 refills only 11 in a 1 s pause. The
    first span is the burst, too short to measure: the cut is blind, to
    half. At that rate the next span lasts seconds; its slope against the
    first is within 2% of 50, firm, and the next rate is 90% of it."""
    server = Bucket(rate=50.0, burst=11.0)
    control = AdaptiveRate(104.0, factor=0.9, growth=0.01)
    first, second = run(server, config(control), 2)

    refill = min(server.burst, server.rate * PAUSE)
    assert refill == 11.0
    # The counts are what the bucket model says: refill + R * t, whole calls.
    assert 0.0 <= leftover(server, server.burst, first) < 1.0
    assert 0.0 <= leftover(server, refill, second) < 1.0

    assert first.span < pacing.MIN_SPAN
    assert pacing.measured(first.before, first.at) is None
    assert first.after.rate == pytest.approx(104.0 * 0.5)
    assert first.after.target == 0.0

    apart = second.active - first.active
    slope = (second.count - first.count) / apart
    low = second.count / second.span
    high = second.count / second.active
    assert second.active > 3.0
    assert apart >= pacing.SLOPE_APART
    assert low < slope < high
    assert pacing.measured(second.before, second.at) == pytest.approx(slope)
    assert slope == pytest.approx(50.0, rel=0.02)

    # Firm: the span's first call, one calm second after the blind cut,
    # grew the rate by 1% and set the span rate to it, above the slope.
    assert second.first is not None
    assert second.first.rate == pytest.approx(52.0 * 1.01)
    assert second.first.span_rate == second.first.rate
    assert second.before.span_rate == second.first.rate
    assert second.before.span_rate >= pacing.STEADY * slope
    assert second.before.rate > slope
    assert second.after.target == pytest.approx(slope)
    assert second.after.rate == pytest.approx(0.9 * slope)


@pytest.mark.parametrize(
    ("burst", "ceiling"),
    [pytest.param(12.0, 24.0, id="burst-12"), pytest.param(15.0, 26.0, id="burst-15")],
)
def test_a_burst_the_pause_cannot_refill_gives_the_lower_bound(
    burst: float, ceiling: float
) -> None:
    """On a 10/s server whose burst is more than a 1 s pause refills, the
    refill is R * P and the lower bound, count over the span with the pause
    in it, is exact. The first span's fuller burst drags the slope below
    it, so the estimate is the lower bound, about 10, and it is not firm
    although the span was steady: the cut starts from it and sets no
    target."""
    server = Bucket(rate=10.0, burst=burst)
    control = AdaptiveRate(ceiling, factor=0.9, growth=0.01)
    first, second = run(server, config(control), 2)

    refill = min(server.burst, server.rate * PAUSE)
    assert refill == server.rate * PAUSE
    # The pause adds R * P to the part of a token the 429 left, so the
    # count is R * P + R * t give or take one call.
    assert -1.0 < leftover(server, refill, second) < 1.0
    assert pacing.measured(first.before, first.at) is None

    # A slope was there to take: the first span is the prior, far enough
    # apart in active time, and the second is not folded.
    apart = second.active - first.active
    assert (second.before.prior_count, second.before.prior_active) == (
        first.count,
        pytest.approx(first.active),
    )
    assert apart >= pacing.SLOPE_APART
    assert second.span <= pacing.MEASURE_SPAN

    low = second.count / second.span
    slope = (second.count - first.count) / apart
    assert slope < low
    assert pacing.measured(second.before, second.at) == pytest.approx(low)
    assert low == pytest.approx(10.0, rel=0.02)

    # Steady (its first call left the rate above the bound), and still not
    # firm: the lower bound never is.
    assert second.first is not None
    assert second.before.span_rate == second.first.rate
    assert second.before.span_rate >= pacing.STEADY * low
    assert second.before.rate > low
    assert second.after.target == 0.0
    assert second.after.rate == pytest.approx(0.9 * low)


def test_a_burst_the_pause_refills_exactly_measures_about_the_rate() -> None:
    """On a 10/s server with a burst of 10 and a 1 s pause, refill = B = R * P:
    both the slope and the lower bound are exact up to one call, and the
    estimate is the slope kept within the bounds, about 10."""
    server = Bucket(rate=10.0, burst=10.0)
    control = AdaptiveRate(22.0, factor=0.9, growth=0.01)
    first, second = run(server, config(control), 2)

    assert 0.0 <= leftover(server, server.burst, first) < 1.0
    assert 0.0 <= leftover(server, 10.0, second) < 1.0

    low = second.count / second.span
    high = second.count / second.active
    slope = (second.count - first.count) / (second.active - first.active)
    expected = min(high, max(low, slope))
    got = pacing.measured(second.before, second.at)

    assert got == pytest.approx(expected)
    assert got == pytest.approx(10.0, rel=0.02)
    assert low == pytest.approx(10.0, rel=0.02)
    assert second.after.target == pytest.approx(got)


def two_spans(
    control: AdaptiveRate,
    first: tuple[float, int],
    second: tuple[float, int],
) -> tuple[pacing.Gate, float]:
    """Return the gate just before the 429 ending a second span, and when
    that 429 comes.

    The first span spreads ``count`` accepted calls evenly over ``active``
    seconds from 0, then a 429 pauses the key for ``PAUSE``; the second does
    the same from the end of the pause.
    """
    paced = config(control)
    gate = pacing.Gate()
    active, count = first
    for n in range(count):
        gate = pacing.learn(gate, OK, n * active / count, paced)
    gate = pacing.learn(gate, REFUSED, active, paced)

    resume = active + PAUSE
    active, count = second
    for n in range(count):
        gate = pacing.learn(gate, OK, resume + n * active / count, paced)
    return gate, resume + active


CONTROL = AdaptiveRate(20.0, floor=0.5, factor=0.9, growth=0.05)


@pytest.mark.parametrize(
    "apart",
    [0.0, 0.05, -0.05, 0.09, -0.09],
    ids=lambda apart: f"apart={apart}",
)
def test_spans_too_close_in_active_time_fall_back_to_the_lower_bound(
    apart: float,
) -> None:
    """Two spans closer than SLOPE_APART in active time give no slope: the
    estimate is the lower bound, count over the span, and not firm."""
    assert abs(apart) < pacing.SLOPE_APART
    active = 2.0 + apart
    gate, now = two_spans(CONTROL, (2.0, 20), (active, 30))

    low = 30 / (PAUSE + active)
    assert pacing.measured(gate, now) == pytest.approx(low)
    cut = pacing.learn(gate, REFUSED, now, config(CONTROL))

    assert cut.target == 0.0
    assert cut.rate == pytest.approx(0.9 * min(gate.rate, low))


def test_spans_far_enough_apart_measure_the_slope() -> None:
    """The same spans half a second apart give the slope, firm: the second
    span's first call, one calm second after the cut to 90% of the first
    span's 10/s, set its span rate to 9 * 1.05, above the slope."""
    gate, now = two_spans(CONTROL, (2.0, 20), (2.5, 24))

    slope = (24 - 20) / 0.5
    assert 24 / 3.5 < slope < 24 / 2.5  # inside the bounds
    assert pacing.measured(gate, now) == pytest.approx(slope)
    assert gate.span_rate == pytest.approx(9.0 * 1.05)
    assert gate.span_rate >= pacing.STEADY * slope
    cut = pacing.learn(gate, REFUSED, now, config(CONTROL))

    assert cut.target == pytest.approx(slope)
    assert cut.rate == pytest.approx(0.9 * slope)


def test_the_first_accepted_call_of_a_span_sets_its_span_rate() -> None:
    """A cut clears the span rate; the span's first accepted call sets it to
    the learned rate after that call, and later calls leave it. A span that
    starts over after IDLE_GAP seconds without a success takes it from its
    own first call."""
    paced = config(CONTROL)
    gate = pacing.Gate()
    for n in range(20):
        gate = pacing.learn(gate, OK, n * 0.1, paced)
    assert gate.span_rate == gate.rate == 20.0  # the ceiling, from the start

    # 20 calls over 2 s: a lower bound of 10/s, cut to 9/s.
    gate = pacing.learn(gate, REFUSED, 2.0, paced)
    assert (gate.rate, gate.span_rate, gate.span_count) == (9.0, 0.0, 0.0)

    # The first call after the pause comes a calm second after the cut.
    gate = pacing.learn(gate, OK, 3.0, paced)
    assert gate.rate == pytest.approx(9.0 * 1.05)
    assert gate.span_rate == gate.rate
    gate = pacing.learn(gate, OK, 4.0, paced)
    assert gate.rate == pytest.approx(9.0 * 1.05**2)
    assert gate.span_rate == pytest.approx(9.0 * 1.05)

    # Idle past IDLE_GAP: the span starts over at the next success, whose
    # two calm seconds grow the rate before it is taken as the span rate.
    later = 4.0 + pacing.IDLE_GAP + 0.5
    gate = pacing.learn(gate, OK, later, paced)
    assert (gate.span_start, gate.span_count) == (later, 1.0)
    assert (gate.prior_count, gate.prior_active) == (0.0, 0.0)
    assert gate.rate == pytest.approx(9.0 * 1.05**4)
    assert gate.span_rate == gate.rate


def span_begun_at(rate: float, prior_count: float = 16.0) -> pacing.Gate:
    """Return the gate just before a 429 at 4.0 that ends a span begun at
    ``rate``.

    A cut at 0 paused the key until 1.0, and a 429 of the same event at 0.5
    restarted the calm, so the span's first call, at 1.0, leaves the rate
    at ``rate`` and takes it as the span rate. 40 calls follow evenly over
    the 3 s active (three calm steps grow the rate by 5% each), against a
    prior span of ``prior_count`` calls in 1 s active. The bounds are
    40 / 4 = 10 and 40 / 3; the slope is (40 - prior_count) / (3 - 1),
    exactly 12 with the default prior.
    """
    paced = config(CONTROL)
    gate = pacing.Gate(
        rate=rate,
        last_cut=0.0,
        calm_since=0.5,
        paused_until=1.0,
        span_start=0.0,
        span_resume=1.0,
        span_last=-0.5,
        prior_count=prior_count,
        prior_active=1.0,
    )
    for n in range(40):
        gate = pacing.learn(gate, OK, 1.0 + n * 3.0 / 40, paced)
        assert gate.span_rate == rate
    assert gate.span_count == 40.0
    assert gate.rate == pytest.approx(min(CONTROL.ceiling, rate * 1.05**3))
    return gate


@pytest.mark.parametrize(
    ("rate", "firm"),
    [(6.0, False), (11.3, False), (11.4, True), (12.0, True), (20.0, True)],
    ids=lambda value: str(value),
)
def test_a_span_that_began_below_the_slope_is_not_firm(rate: float, firm: bool) -> None:
    """The slope of 12 is firm only when the span rate its first call set
    is at least STEADY * 12 = 11.4; either way the cut starts from the
    lower of the slope and the rate."""
    gate = span_begun_at(rate)

    assert (gate.span_rate >= pacing.STEADY * 12.0) == firm
    assert pacing.measured(gate, 4.0) == 12.0
    cut = pacing.learn(gate, REFUSED, 4.0, config(CONTROL))

    assert cut.target == (12.0 if firm else 0.0)
    assert cut.rate == pytest.approx(0.9 * min(gate.rate, 12.0))


@pytest.mark.parametrize(
    "prior_count",
    [pytest.param(20.0, id="slope-at-bound"), pytest.param(24.0, id="slope-below")],
)
def test_a_slope_at_or_below_the_lower_bound_gives_it_not_firm(
    prior_count: float,
) -> None:
    """A slope of (40 - 20) / 2 = 10, at the lower bound, or 8, below it,
    is not used: the estimate is the lower bound, 10, and not firm, though
    the span was steady at the ceiling."""
    gate = span_begun_at(20.0, prior_count)

    assert (40.0 - prior_count) / 2.0 <= 40.0 / 4.0
    assert gate.span_rate >= pacing.STEADY * 10.0
    assert pacing.measured(gate, 4.0) == 10.0
    cut = pacing.learn(gate, REFUSED, 4.0, config(CONTROL))

    assert cut.target == 0.0
    assert cut.rate == pytest.approx(0.9 * 10.0)


def test_a_slope_above_the_upper_bound_is_clamped_and_firm_against_it() -> None:
    """A slope of (40 - 10) / 2 = 15 is above the upper bound 40 / 3: the
    estimate is the bound, and a span rate of 13 is steady against it,
    though not against 15."""
    gate = span_begun_at(13.0, prior_count=10.0)
    high = 40.0 / 3.0

    assert pacing.STEADY * high <= gate.span_rate < pacing.STEADY * 15.0
    assert pacing.measured(gate, 4.0) == pytest.approx(high)
    assert gate.rate > high
    cut = pacing.learn(gate, REFUSED, 4.0, config(CONTROL))

    assert cut.target == pytest.approx(high)
    assert cut.rate == pytest.approx(0.9 * high)


def test_a_blind_cut_below_the_server_rate_measures_but_is_not_firm() -> None:
    """A blind cut from 80/s lands at 40/s, well below a 50/s server; the
    next span's first call, a calm second later, sets its span rate to
    40 * 1.05 = 42. The bucket overflows unseen until the rate has grown
    past 50, so the span's slope, inside the bounds, is above 42 / STEADY:
    not firm, and the cut sets no target."""
    server = Bucket(rate=50.0, burst=11.0)
    control = AdaptiveRate(80.0, factor=0.9, growth=0.05)
    first, second = run(server, config(control), 2)

    assert pacing.measured(first.before, first.at) is None
    assert first.after.rate == 40.0
    assert second.first is not None
    assert second.first.rate == pytest.approx(40.0 * 1.05)
    assert second.before.span_rate == second.first.rate
    # Budget went unused: the count falls short of refill + R * t.
    assert leftover(server, min(server.burst, server.rate * PAUSE), second) > 1.0

    apart = second.active - first.active
    slope = (second.count - first.count) / apart
    low = second.count / second.span
    high = second.count / second.active
    assert second.before.prior_count == first.count
    assert apart >= pacing.SLOPE_APART
    assert second.span <= pacing.MEASURE_SPAN
    assert low < slope < high
    assert pacing.measured(second.before, second.at) == pytest.approx(slope)

    assert second.before.span_rate < pacing.STEADY * slope
    assert second.before.rate > slope
    assert second.after.target == 0.0
    assert second.after.rate == pytest.approx(0.9 * slope)


def folded(count: float, span_rate: float) -> pacing.Gate:
    """Return the gate after a success at 12.0 folds a span that began at
    0 (paused until 1.0) with ``count`` calls: it keeps the later half,
    5 s at its average, plus the call, and its rate stays 15 (the calm
    restarted at 11.5)."""
    gate = pacing.Gate(
        rate=15.0,
        last_cut=0.0,
        calm_since=11.5,
        paused_until=1.0,
        span_start=0.0,
        span_resume=1.0,
        span_count=count,
        span_last=11.9,
        span_rate=span_rate,
        prior_count=10.0,
        prior_active=1.0,
    )
    gate = pacing.learn(gate, OK, 12.0, config(CONTROL))

    half = pacing.MEASURE_SPAN / 2
    assert gate.prior_active == -1.0
    assert (gate.span_start, gate.span_resume) == (12.0 - half, 12.0 - half)
    assert gate.span_count == pytest.approx(count * half / 12.0 + 1)
    assert (gate.rate, gate.span_rate) == (15.0, span_rate)
    return gate


def test_a_steady_folded_span_is_firm_and_becomes_the_prior() -> None:
    """A folded span whose span rate is at least STEADY times its average
    measures the average, firm; its cut keeps it, kept half and all, as
    the prior the next span's slope is taken against."""
    gate = folded(100.0, span_rate=8.0)
    low = gate.span_count / (12.5 - gate.span_start)
    assert low == pytest.approx((100.0 * 5.0 / 12.0 + 1) / 5.5)
    assert pacing.STEADY * low <= gate.span_rate < gate.rate

    assert pacing.measured(gate, 12.5) == pytest.approx(low)
    paced = config(CONTROL)
    cut = pacing.learn(gate, REFUSED, 12.5, paced)

    assert cut.target == pytest.approx(low)
    assert cut.rate == pytest.approx(0.9 * low)
    assert cut.prior_count == gate.span_count
    assert cut.prior_active == pytest.approx(12.5 - gate.span_start)

    # The next span: 60 calls over 8 s active after the 1 s pause. Against
    # the folded prior its slope is inside the bounds 60 / 9 and 60 / 8.
    after = cut
    for n in range(60):
        after = pacing.learn(after, OK, 13.5 + n * 8.0 / 60, paced)
    slope = (60 - cut.prior_count) / (8.0 - cut.prior_active)
    assert 60 / 9.0 < slope < 60 / 8.0
    assert pacing.measured(after, 21.5) == pytest.approx(slope)


@pytest.mark.parametrize(
    ("count", "span_rate", "higher"),
    [
        pytest.param(100.0, 7.0, "rate", id="average-below-rate"),
        pytest.param(400.0, 20.0, "average", id="average-above-rate"),
    ],
)
def test_an_unsteady_folded_span_measures_at_least_the_rate_and_is_not_firm(
    count: float, span_rate: float, higher: str
) -> None:
    """A folded span whose span rate is below STEADY times its average may
    have begun below the limit: it measures the higher of its average and
    the rate, not firm, and leaves no prior for the next span."""
    gate = folded(count, span_rate)
    low = gate.span_count / (12.5 - gate.span_start)
    assert gate.span_rate < pacing.STEADY * low
    assert (low > gate.rate) == (higher == "average")

    want = max(low, gate.rate)
    assert pacing.measured(gate, 12.5) == pytest.approx(want)
    cut = pacing.learn(gate, REFUSED, 12.5, config(CONTROL))

    assert cut.target == 0.0
    assert cut.rate == pytest.approx(0.9 * min(gate.rate, want))
    assert (cut.prior_count, cut.prior_active) == (0.0, 0.0)


def test_a_span_shorter_than_min_span_measures_nothing() -> None:
    """Calls accepted over less than MIN_SPAN are the server's burst, not
    its rate: the cut is blind, by blind_factor."""
    control = AdaptiveRate(20.0, blind_factor=0.4)
    gate = pacing.Gate()
    for n in range(20):
        gate = pacing.learn(gate, OK, n * 0.045, config(control))

    assert pacing.measured(gate, 0.9) is None
    cut = pacing.learn(gate, REFUSED, 0.9, config(control))

    assert cut.rate == pytest.approx(8.0)
    assert cut.target == 0.0


# --- Recovery after a cut -------------------------------------------------------


@pytest.mark.parametrize("factor", [0.9, 0.5, 0.3])
@pytest.mark.parametrize("recovery", [0.25, 0.1])
def test_a_firm_cut_recovers_to_its_target_then_probes_slowly(
    factor: float, recovery: float
) -> None:
    """After a firm cut the rate climbs by ``recovery`` a calm step, reaches
    the target exactly in ceil(log(1 / factor) / log1p(recovery)) steps, and
    then grows by ``settled_growth`` a step."""
    control = AdaptiveRate(
        100.0, floor=1.0, factor=factor, recovery=recovery, settled_growth=0.005
    )
    state = control.on_congestion(control.start(), 0.0, measured=40.0, firm=True)
    assert (state.rate, state.target) == (pytest.approx(40.0 * factor), 40.0)

    needed = math.ceil(math.log(1 / factor) / math.log1p(recovery))
    rates = []
    for step in range(1, needed + 6):
        state = control.on_success(state, float(step))
        rates.append(state.rate)
        assert state.target == 40.0

    climbing = [40.0 * factor * (1 + recovery) ** k for k in range(1, needed)]
    assert rates[: needed - 1] == pytest.approx(climbing)
    assert all(rate < 40.0 for rate in rates[: needed - 1])
    assert rates[needed - 1] == 40.0
    assert rates[needed:] == pytest.approx([40.0 * 1.005**k for k in range(1, 6)])

    # One success after the same calm takes every step at once.
    once = control.on_congestion(control.start(), 0.0, measured=40.0, firm=True)
    once = control.on_success(once, float(needed + 5))
    assert once.rate == pytest.approx(rates[-1])


def test_recovery_never_passes_the_ceiling() -> None:
    """A target at or near the ceiling is reached, and settled growth stops
    exactly at the ceiling."""
    control = AdaptiveRate(100.0, floor=1.0)
    for measured in (100.0, 99.9, 1_000.0):
        state = control.on_congestion(
            control.start(), 0.0, measured=measured, firm=True
        )
        assert state.target == min(100.0, measured)
        for step in range(1, 30):
            state = control.on_success(state, float(step))
            assert state.rate <= 100.0
        assert state.rate == 100.0


def test_a_blind_cut_sets_no_target_and_grows_by_growth() -> None:
    """With nothing measured the cut is by blind_factor, sets no target, and
    the rate grows back by ``growth`` a step."""
    control = AdaptiveRate(100.0, floor=1.0, growth=0.05, blind_factor=0.5)
    state = control.on_congestion(control.start(), 0.0)
    assert (state.rate, state.target) == (50.0, 0.0)

    rates = []
    for step in range(1, 6):
        state = control.on_success(state, float(step))
        rates.append(state.rate)

    assert rates == pytest.approx([50.0 * 1.05**k for k in range(1, 6)])
    assert state.target == 0.0


def test_a_measurement_that_is_not_firm_sets_no_target() -> None:
    """A measured but not firm cut starts from the measurement, sets no
    target, and the rate grows back by ``growth``."""
    control = AdaptiveRate(100.0, floor=1.0, factor=0.9, growth=0.05)
    state = control.on_congestion(control.start(), 0.0, measured=40.0)
    assert (state.rate, state.target) == (pytest.approx(36.0), 0.0)

    state = control.on_success(state, 1.0)

    assert state.rate == pytest.approx(36.0 * 1.05)


@pytest.mark.parametrize(
    ("measured", "target", "rate"),
    [
        pytest.param(0.42, 1.0, 1.0, id="below-floor"),
        pytest.param(40.0, 40.0, 36.0, id="between"),
        pytest.param(150.0, 100.0, 90.0, id="above-rate"),
    ],
)
def test_a_firm_cut_targets_the_measurement_within_floor_and_rate(
    measured: float, target: float, rate: float
) -> None:
    """A firm cut's target is max(floor, min(rate, measured)): never below
    the floor, however little was measured, nor above the rate cut from."""
    control = AdaptiveRate(100.0, floor=1.0, factor=0.9)
    state = control.on_congestion(control.start(), 0.0, measured=measured, firm=True)

    assert state.target == pytest.approx(target)
    assert state.rate == pytest.approx(rate)


def test_congestion_within_the_window_keeps_the_target() -> None:
    """A 429 of the same event neither cuts again nor forgets the target."""
    control = AdaptiveRate(100.0, floor=1.0, window=1.0)
    state = control.on_congestion(control.start(), 0.0, measured=40.0, firm=True)

    again = control.on_congestion(state, 0.5, measured=5.0, firm=True)

    assert (again.rate, again.last_cut, again.target) == (state.rate, 0.0, 40.0)
    assert again.calm_since == 0.5


# --- Settings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"blind_factor": 0.0}, "blind_factor"),
        ({"blind_factor": 1.0}, "blind_factor"),
        ({"blind_factor": -0.5}, "blind_factor"),
        ({"blind_factor": math.nan}, "blind_factor"),
        ({"recovery": 0.0}, "recovery"),
        ({"recovery": 1.5}, "recovery"),
        ({"recovery": -0.1}, "recovery"),
        ({"recovery": math.inf}, "recovery"),
        ({"settled_growth": 0.0}, "settled_growth"),
        ({"settled_growth": -0.01}, "settled_growth"),
        ({"settled_growth": 0.06}, "settled_growth"),
        ({"growth": 0.01, "settled_growth": 0.02}, "settled_growth"),
        ({"settled_growth": math.nan}, "settled_growth"),
    ],
    ids=lambda value: str(value),
)
def test_new_settings_are_checked_by_name(options: dict[str, float], name: str) -> None:
    """Out-of-range blind_factor, recovery and settled_growth are refused by
    name; settled_growth may not exceed growth."""
    with pytest.raises(ValueError, match=name):
        AdaptiveRate(10.0, **options)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("blind_factor", "0.5"),
        ("blind_factor", True),
        ("blind_factor", None),
        ("recovery", "0.5"),
        ("recovery", True),
        ("recovery", None),
        ("settled_growth", "0.005"),
        ("settled_growth", True),
    ],
    ids=lambda value: str(value),
)
def test_new_settings_must_be_numbers(name: str, value: object) -> None:
    """A setting that is not a number is a TypeError naming it."""
    with pytest.raises(TypeError, match=name):
        AdaptiveRate(10.0, **{name: value})  # type: ignore[arg-type]


def test_the_edges_of_the_new_settings_are_allowed() -> None:
    """recovery may be 1 and settled_growth may equal growth; by default
    settled_growth is a tenth of growth."""
    control = AdaptiveRate(10.0, growth=0.02, settled_growth=0.02, recovery=1.0)

    assert (control.recovery, control.settled_growth) == (1.0, 0.02)
    default = AdaptiveRate(10.0)
    assert (default.blind_factor, default.recovery) == (0.5, 0.25)
    assert default.settled_growth == pytest.approx(0.005)
    assert AdaptiveRate(10.0, growth=0.2).settled_growth == pytest.approx(0.02)


# --- Properties -----------------------------------------------------------------


def _control(
    ceiling: float,
    floor_share: float,
    factor: float,
    blind: float,
    recovery: float,
    growth: float,
    settled_share: float,
    calm: float,
    window: float,
) -> AdaptiveRate:
    return AdaptiveRate(
        ceiling,
        floor=ceiling * floor_share,
        factor=factor,
        growth=growth,
        calm=calm,
        window=window,
        blind_factor=blind,
        recovery=recovery,
        settled_growth=growth * settled_share,
    )


controls = st.builds(
    _control,
    ceiling=st.floats(1.0, 1_000.0),
    floor_share=st.floats(0.001, 1.0),
    factor=st.floats(0.05, 0.95),
    blind=st.floats(0.05, 0.95),
    recovery=st.floats(0.01, 1.0),
    growth=st.floats(0.001, 1.0),
    settled_share=st.floats(0.01, 1.0),
    calm=st.floats(0.1, 5.0),
    window=st.floats(0.0, 3.0),
)
KINDS = {
    "ok": OK,
    "429": REFUSED,
    "429-long": pacing.Lesson(pause=5.0),
    "429-bare": pacing.Lesson(unannounced=True),
    "503": pacing.Lesson(calm=True),
}
timelines = st.lists(
    st.tuples(
        st.one_of(st.floats(0.0, 0.2), st.floats(0.0, 15.0)),
        st.sampled_from(sorted(KINDS)),
    ),
    max_size=120,
)


@settings(max_examples=200)
@given(control=controls, events=timelines)
# A slow trickle after a blind cut: 4 calls accepted over 9.5 s, span rate
# 10/s. In the draft its lower bound of 4/9.5 = 0.42/s was firm, below the
# floor of 1; now the slope against the first span, 3/8, is below that
# bound, and the bound is not firm.
@example(
    control=AdaptiveRate(20.0, floor=1.0),
    events=[
        (0.0, "ok"),
        (0.5, "429"),
        (1.5, "ok"),
        (2.0, "ok"),
        (2.0, "ok"),
        (2.0, "ok"),
        (2.0, "429"),
    ],
)
# The same trickle, with a slope that is used: 4 calls in 4.5 s active after
# the pause against the first span's 1 call in 0.5 s, (4 - 1) / 4 = 0.75/s,
# between the bounds 4/5.5 and 4/4.5, and firm: a measurement below the
# floor of 1, which the target must not follow.
@example(
    control=AdaptiveRate(20.0, floor=1.0),
    events=[
        (0.0, "ok"),
        (0.5, "429"),
        (1.0, "ok"),
        (1.5, "ok"),
        (1.5, "ok"),
        (1.0, "ok"),
        (0.5, "429"),
    ],
)
def test_rate_target_and_measurement_stay_in_range(
    control: AdaptiveRate, events: list[tuple[float, str]]
) -> None:
    """Whatever mix of accepted calls and 429s, at increasing times, the
    gate's rate stays within [floor, ceiling], its target is 0 or within
    [floor, ceiling], and the measured rate is None or finite and >= 0."""
    paced = config(control)
    gate, now = pacing.Gate(), 0.0
    for gap, kind in events:
        now += gap
        gate = pacing.learn(gate, KINDS[kind], now, paced)

        assert control.floor <= gate.rate <= control.ceiling
        assert gate.target == 0.0 or control.floor <= gate.target <= control.ceiling
        got = pacing.measured(gate, now)
        assert got is None or (math.isfinite(got) and got >= 0.0)


def test_a_prior_longer_than_the_span_gives_no_slope() -> None:
    """Against a prior span longer in active time, the slope is not taken:
    a first span that began with a burst larger than a pause refills would
    make it err high. The lower bound is the measurement, not firm."""
    control = AdaptiveRate(100.0, factor=0.9)
    gate = pacing.Gate(
        rate=50.0,
        last_cut=10.0,
        calm_since=10.0,
        span_start=10.0,
        span_count=12.0,
        span_last=11.2,
        span_resume=11.0,
        span_rate=50.0,
        prior_count=55.0,
        prior_active=0.55,
    )
    low = 12.0 / 1.23

    assert pacing.measured(gate, 11.23) == pytest.approx(low)
    cut = pacing.learn(gate, REFUSED, 11.23, config(control))

    assert cut.target == 0.0
    assert cut.rate == pytest.approx(0.9 * low)


def test_a_burst_bigger_than_a_pause_refills_sets_no_target_above_the_server() -> None:
    """A 10/s server with a burst of 50, one call at a time as the line
    admits it: the first span is the burst, 55 calls in 0.55 s, and its 429
    cuts blind to 50/s; the pause refills only 10, so the next span is
    shorter in active time. A slope against that longer prior would err
    high (the prior began with 50, the span with 10), so it is not taken:
    the second cut measures the lower bound, sets no target, and lands
    below the server's rate."""
    server = Bucket(rate=10.0, burst=50.0)
    paced = config(AdaptiveRate(100.0))
    gate, now = pacing.Gate(), 0.0
    cuts: list[pacing.Gate] = []
    while len(cuts) < 2:
        assert now < 60.0, "the server never refused"
        wait, gate = pacing.admit(gate, now, 0.0, paced)
        now += wait
        lesson = OK if server.take(now) else REFUSED
        gate = pacing.learn(gate, lesson, now, paced)
        if lesson is REFUSED:
            cuts.append(gate)

    blind, second = cuts
    assert blind.rate == pytest.approx(50.0)
    assert blind.prior_active > second.prior_active > 0
    assert second.target == 0.0
    assert second.rate < server.rate


def test_a_growth_too_small_to_tenth_is_its_own_settled_growth() -> None:
    """settled_growth defaults to a tenth of growth; where that underflows
    to zero, it is growth itself, rather than an error about a setting the
    caller never passed."""
    control = AdaptiveRate(100.0, growth=5e-324)

    assert control.settled_growth == control.growth == 5e-324


@pytest.mark.timeout(10)
def test_a_success_long_after_a_cut_above_a_target_takes_its_steps_at_once() -> None:
    """Above a firm target, a success after a long calm takes the hold, the
    ramp and the rest in closed form, however small settled_growth: with
    one that changes nothing per step, a success 1e9 calm seconds later
    lands on the ceiling at once instead of stepping a billion times."""
    control = AdaptiveRate(100.0, settled_growth=5e-324)
    state = AdaptiveState(50.0, last_cut=0.0, calm_since=0.0, target=50.0)

    after = control.on_success(state, 1e9)

    assert after.rate == control.ceiling


def test_a_429_of_the_same_event_moves_the_spans_resume_to_its_pause() -> None:
    """A second 429 within the window does not cut again, but a longer
    pause it asks for is no sending time: the span's active time starts at
    its end."""
    paced = config(AdaptiveRate(100.0))
    gate = pacing.learn(pacing.Gate(), REFUSED, 0.0, paced)
    longer = pacing.Lesson(pause=2.0)

    gate = pacing.learn(gate, longer, 0.5, paced)

    assert gate.last_cut == 0.0
    assert gate.span_resume == 2.5
