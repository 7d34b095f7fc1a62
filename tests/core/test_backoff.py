"""Pure backoff schedules and the AIMD adaptive rate controller."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from throttlekit._core.backoff import (
    PROBE_HOLD,
    PROBE_RAMP,
    AdaptiveRate,
    AdaptiveState,
    Backoff,
)


def constant(value: float) -> Callable[[], float]:
    return lambda: value


def never() -> float:
    raise AssertionError("random was called without jitter")


# --- Backoff -------------------------------------------------------------------


def test_envelope_doubles_from_initial_up_to_the_cap() -> None:
    """The default schedule grows 0.5, 1, 2, ... and stops at 30 seconds."""
    backoff = Backoff()

    envelopes = [backoff.envelope(attempt) for attempt in range(1, 9)]

    assert envelopes == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


@pytest.mark.parametrize(
    "attempt",
    [
        pytest.param(1_100, id="float-overflow"),
        pytest.param(10**6, id="million"),
        pytest.param(10**400, id="beyond-float-range"),
    ],
)
def test_huge_attempt_numbers_stay_at_the_cap(attempt: int) -> None:
    """No attempt number is large enough to overflow the schedule."""
    assert Backoff().envelope(attempt) == 30.0
    assert Backoff().delay(attempt, constant(1.0)) == 30.0


def test_full_jitter_scales_the_envelope_by_the_draw() -> None:
    """Full jitter waits the envelope times a uniform draw."""
    backoff = Backoff(initial=1.0, multiplier=3.0, cap=100.0)

    assert backoff.delay(3, constant(0.25)) == 2.25
    assert backoff.delay(3, constant(0.0)) == 0.0
    assert backoff.delay(3, constant(1.0)) == 9.0


def test_without_jitter_the_delay_is_the_envelope() -> None:
    """jitter='none' waits the envelope and never draws a number."""
    backoff = Backoff(initial=2.0, cap=5.0, jitter="none")

    assert [backoff.delay(n, never) for n in (1, 2, 3)] == [2.0, 4.0, 5.0]


def test_a_multiplier_of_one_keeps_the_delay_constant() -> None:
    """multiplier=1 gives the same envelope on every attempt."""
    backoff = Backoff(initial=3.0, multiplier=1.0, cap=10.0)

    assert {backoff.envelope(n) for n in (1, 2, 10**400)} == {3.0}


def test_a_zero_initial_delay_stays_zero() -> None:
    """initial=0 never waits, however many attempts."""
    assert Backoff(initial=0.0).envelope(10**400) == 0.0


@pytest.mark.parametrize("draw", [-0.1, 1.5, math.nan])
def test_a_random_source_outside_the_unit_interval_is_refused(draw: float) -> None:
    """A draw outside [0, 1] raises instead of breaking the cap."""
    with pytest.raises(ValueError, match="random"):
        Backoff().delay(1, constant(draw))


@pytest.mark.parametrize(
    ("options", "name"),
    [
        pytest.param({"initial": -1.0}, "initial", id="negative-initial"),
        pytest.param({"initial": math.nan}, "initial", id="nan-initial"),
        pytest.param({"multiplier": 0.5}, "multiplier", id="shrinking"),
        pytest.param({"cap": math.inf}, "cap", id="infinite-cap"),
        pytest.param({"initial": 5.0, "cap": 1.0}, "cap", id="cap-below-initial"),
        pytest.param({"jitter": "equal"}, "jitter", id="unknown-jitter"),
    ],
)
def test_backoff_rejects_bad_settings(options: dict[str, object], name: str) -> None:
    """Bad settings fail at construction, naming the parameter."""
    with pytest.raises(ValueError, match=name):
        Backoff(**options)  # type: ignore[arg-type]


def test_backoff_rejects_a_non_number() -> None:
    """A setting that is not a number is a type error naming it."""
    with pytest.raises(TypeError, match="cap"):
        Backoff(cap="30")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("attempt", "error"),
    [
        pytest.param(0, ValueError, id="zero"),
        pytest.param(-3, ValueError, id="negative"),
        pytest.param(1.5, TypeError, id="float"),
        pytest.param(True, TypeError, id="bool"),
    ],
)
def test_attempt_must_be_a_positive_integer(
    attempt: object, error: type[Exception]
) -> None:
    """Attempts count from 1; anything else names the argument."""
    with pytest.raises(error, match="attempt"):
        Backoff().envelope(attempt)  # type: ignore[arg-type]


backoffs = st.builds(
    lambda initial, growth, extra: Backoff(initial, growth, initial + extra),
    st.floats(min_value=0.0, max_value=100.0),
    st.floats(min_value=1.0, max_value=10.0),
    st.floats(min_value=0.0, max_value=1e6),
)


@settings(max_examples=300)
@given(
    backoff=backoffs,
    attempt=st.integers(min_value=1, max_value=10**30),
    draw=st.floats(min_value=0.0, max_value=1.0),
)
def test_every_delay_lies_within_zero_and_the_cap(
    backoff: Backoff, attempt: int, draw: float
) -> None:
    """No attempt and no draw yields a delay below zero or above the cap."""
    assert 0.0 <= backoff.delay(attempt, constant(draw)) <= backoff.cap


@settings(max_examples=300)
@given(backoff=backoffs, attempt=st.integers(min_value=1, max_value=5_000))
def test_the_envelope_never_shrinks(backoff: Backoff, attempt: int) -> None:
    """Each attempt's envelope is at least the previous one's, up to the cap."""
    before, after = backoff.envelope(attempt), backoff.envelope(attempt + 1)

    assert before <= after <= backoff.cap
    if before == backoff.cap:
        assert after == backoff.cap


# --- AdaptiveRate ----------------------------------------------------------------


def test_defaults_suit_any_server_below_the_ceiling() -> None:
    """The floor defaults to one percent of the ceiling; a cut keeps 90%, and
    each calm second adds 5%."""
    control = AdaptiveRate(10.0)

    assert (control.floor, control.factor, control.growth) == (0.1, 0.9, 0.05)
    assert (control.calm, control.window) == (1.0, 1.0)
    assert control.start() == AdaptiveState(10.0)


def test_congestion_cuts_the_rate_by_the_factor() -> None:
    """A 429 with nothing measured cuts the rate itself and marks the cut and
    the calm's start."""
    control = AdaptiveRate(10.0, factor=0.5)

    state = control.on_congestion(control.start(), now=100.0)

    assert state == AdaptiveState(5.0, last_cut=100.0, calm_since=100.0)


def test_a_cut_starts_from_a_lower_measured_rate() -> None:
    """A measured rate below the current one is what the cut starts from; a
    higher one changes nothing."""
    control = AdaptiveRate(100.0, factor=0.5)

    low = control.on_congestion(control.start(), now=0.0, measured=10.0)
    high = control.on_congestion(control.start(), now=0.0, measured=500.0)

    assert (low.rate, high.rate) == (5.0, 50.0)


@pytest.mark.parametrize(
    "measured", [math.nan, -1.0, math.inf], ids=["nan", "negative", "infinite"]
)
def test_a_meaningless_measurement_is_ignored(measured: float) -> None:
    """A measured rate that is not a finite number >= 0 cuts from the rate."""
    control = AdaptiveRate(10.0, factor=0.5)

    state = control.on_congestion(control.start(), now=0.0, measured=measured)

    assert state.rate == 5.0


def test_a_burst_of_congestion_within_the_window_cuts_once() -> None:
    """429s arriving within a window of the last cut are one event."""
    control = AdaptiveRate(10.0, factor=0.5, window=1.0)
    state = control.on_congestion(control.start(), now=100.0)

    for now in (100.1, 100.5, 100.99):
        state = control.on_congestion(state, now, measured=1.0)

    assert state == AdaptiveState(5.0, last_cut=100.0, calm_since=100.99)


def test_congestion_after_the_window_cuts_again() -> None:
    """A 429 more than a window after the last cut is a new event."""
    control = AdaptiveRate(10.0, factor=0.5, window=1.0)
    state = control.on_congestion(control.start(), now=100.0)

    same = control.on_congestion(state, now=101.0)
    state = control.on_congestion(state, now=101.01)

    assert (same.rate, state.rate) == (5.0, 2.5)


def test_a_longer_round_trip_widens_the_event() -> None:
    """rtt_guess longer than the window keeps later 429s in the same event."""
    control = AdaptiveRate(10.0, factor=0.5, window=1.0)
    state = control.on_congestion(control.start(), now=100.0)

    state = control.on_congestion(state, now=102.0, rtt_guess=3.0)

    assert state.rate == 5.0


def test_cuts_stop_at_the_floor() -> None:
    """However many events, the rate never drops below the floor."""
    control = AdaptiveRate(10.0, floor=2.0, factor=0.5)
    state = control.start()

    for now in range(10):
        state = control.on_congestion(state, float(now * 10), measured=0.0)

    assert state.rate == 2.0


def test_each_calm_interval_grows_the_rate_by_its_share() -> None:
    """After a cut, each full calm interval multiplies the rate by 1 + growth."""
    control = AdaptiveRate(100.0, blind_factor=0.25, growth=0.5, calm=2.0)
    cut = control.on_congestion(control.start(), now=100.0)

    early = control.on_success(cut, now=101.9)
    first = control.on_success(early, now=102.0)
    later = control.on_success(first, now=106.5)

    assert early == cut
    assert first == AdaptiveState(37.5, last_cut=100.0, calm_since=102.0)
    assert later == AdaptiveState(84.375, last_cut=100.0, calm_since=106.0)


def test_growth_stops_exactly_at_the_ceiling() -> None:
    """A step that would pass the ceiling lands on it."""
    control = AdaptiveRate(10.0, factor=0.5, growth=1.0, calm=1.0)
    cut = control.on_congestion(control.start(), now=0.0)

    state = control.on_success(cut, now=1.0)

    assert state.rate == 10.0


def test_a_long_calm_returns_exactly_to_the_ceiling() -> None:
    """A success long after the last 429 restores the ceiling exactly."""
    control = AdaptiveRate(7.0, factor=0.3)
    state = control.on_congestion(control.start(), now=0.0)

    state = control.on_success(state, now=1e6)

    assert state.rate == 7.0


def test_congestion_inside_an_event_restarts_the_calm() -> None:
    """A 429 that does not cut still postpones the recovery."""
    control = AdaptiveRate(10.0, factor=0.5, growth=0.5, calm=2.0, window=1.0)
    state = control.on_congestion(control.start(), now=100.0)
    state = control.on_congestion(state, now=100.9)

    assert control.on_success(state, now=102.5).rate == 5.0
    assert control.on_success(state, now=102.9).rate == 7.5


def test_a_state_outside_the_bounds_is_brought_back() -> None:
    """A stored rate above the ceiling or below the floor is clamped."""
    control = AdaptiveRate(10.0, floor=1.0)

    assert control.on_success(AdaptiveState(50.0), now=0.0).rate == 10.0
    assert control.on_congestion(AdaptiveState(0.01), now=0.0).rate == 1.0
    assert control.on_success(AdaptiveState(math.nan), now=0.0).rate == 10.0


@pytest.mark.parametrize(
    ("options", "name"),
    [
        pytest.param({"ceiling": 0.0}, "ceiling", id="zero-ceiling"),
        pytest.param({"ceiling": math.inf}, "ceiling", id="infinite-ceiling"),
        pytest.param({"floor": 0.0}, "floor", id="zero-floor"),
        pytest.param({"floor": 11.0}, "floor", id="floor-above-ceiling"),
        pytest.param({"factor": 1.0}, "factor", id="factor-one"),
        pytest.param({"factor": 0.0}, "factor", id="factor-zero"),
        pytest.param({"growth": 0.0}, "growth", id="zero-growth"),
        pytest.param({"growth": 1.5}, "growth", id="growth-above-one"),
        pytest.param({"calm": 0.0}, "calm", id="zero-calm"),
        pytest.param({"window": -1.0}, "window", id="negative-window"),
    ],
)
def test_adaptive_rate_rejects_bad_settings(
    options: dict[str, float], name: str
) -> None:
    """Bad settings fail at construction, naming the parameter."""
    settings_ = {"ceiling": 10.0, **options}
    ceiling = settings_.pop("ceiling")

    with pytest.raises(ValueError, match=name):
        AdaptiveRate(ceiling, **settings_)


def test_a_ceiling_that_is_not_a_number_is_named() -> None:
    """A ceiling of the wrong type raises TypeError naming it."""
    with pytest.raises(TypeError, match="ceiling"):
        AdaptiveRate("100/s")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("now", "rtt_guess", "name"),
    [
        pytest.param(math.nan, None, "now", id="nan-now"),
        pytest.param(1.0, -0.5, "rtt_guess", id="negative-rtt"),
        pytest.param(1.0, math.inf, "rtt_guess", id="infinite-rtt"),
    ],
)
def test_congestion_arguments_are_checked(
    now: float, rtt_guess: float | None, name: str
) -> None:
    """on_congestion refuses a non-finite time or a bad round-trip guess."""
    control = AdaptiveRate(10.0)

    with pytest.raises(ValueError, match=name):
        control.on_congestion(control.start(), now, rtt_guess)


controls = st.builds(
    lambda ceiling, floor_share, factor, growth, calm, window: AdaptiveRate(
        ceiling,
        floor=ceiling * floor_share,
        factor=factor,
        growth=growth,
        calm=calm,
        window=window,
    ),
    st.floats(min_value=0.1, max_value=1e4),
    st.floats(min_value=0.0001, max_value=1.0),
    st.floats(min_value=0.05, max_value=0.95),
    st.floats(min_value=0.01, max_value=1.0),
    st.floats(min_value=0.01, max_value=60.0),
    # A window of zero, or one well above the clock's float resolution.
    st.one_of(st.just(0.0), st.floats(min_value=0.001, max_value=10.0)),
)
# Each event: congested or not, seconds since the last one, and the rate
# measured for a congestion signal (None: unknown).
events = st.lists(
    st.tuples(
        st.booleans(),
        st.floats(min_value=0.0, max_value=30.0),
        st.one_of(st.none(), st.floats(min_value=0.0, max_value=2e4)),
    ),
    max_size=50,
)


def replay(
    control: AdaptiveRate, history: list[tuple[bool, float, float | None]]
) -> tuple[AdaptiveState, float]:
    state, now = control.start(), 1_000.0
    for congested, gap, measured in history:
        now += gap
        if congested:
            state = control.on_congestion(state, now, measured=measured)
        else:
            state = control.on_success(state, now)
        assert control.floor <= state.rate <= control.ceiling
    return state, now


@settings(max_examples=200)
@given(control=controls, history=events)
def test_the_rate_stays_between_floor_and_ceiling(
    control: AdaptiveRate, history: list[tuple[bool, float, float | None]]
) -> None:
    """No sequence of successes, 429s and measurements moves the rate out of
    its bounds."""
    replay(control, history)


@settings(max_examples=200)
@given(
    control=controls,
    history=events,
    measured=st.one_of(st.none(), st.floats(min_value=0.0, max_value=2e4)),
    offsets=st.lists(st.floats(min_value=0.0, max_value=0.999), min_size=1),
)
def test_a_burst_within_one_window_cuts_once(
    control: AdaptiveRate,
    history: list[tuple[bool, float, float | None]],
    measured: float | None,
    offsets: list[float],
) -> None:
    """Any number of 429s inside one window after a cut leave one cut, from
    the lower of the rate and the measured rate."""
    state, now = replay(control, history)
    start = now + control.window + 1.0
    cut = control.on_congestion(state, start, measured=measured)
    if measured is None:
        expected = state.rate * control.blind_factor
    else:
        expected = min(state.rate, measured) * control.factor
    assert cut.rate == max(control.floor, expected)

    for offset in sorted(offsets):
        burst = control.on_congestion(
            cut, start + offset * control.window, measured=0.0
        )
        assert burst.rate == cut.rate
        cut = burst


@settings(max_examples=200)
@given(control=controls, history=events)
def test_enough_calm_returns_exactly_to_the_ceiling(
    control: AdaptiveRate, history: list[tuple[bool, float, float | None]]
) -> None:
    """Successes spaced one calm apart climb back to exactly the ceiling, in
    a number of steps logarithmic in ceiling / floor."""
    state, now = replay(control, history)
    ratio = control.ceiling / control.floor
    steps = math.ceil(math.log(ratio) / math.log1p(control.growth)) + 2

    for _ in range(steps):
        now += control.calm
        state = control.on_success(state, now)

    assert state.rate == control.ceiling


@settings(max_examples=200)
@given(control=controls, history=events, gap=st.floats(min_value=0.0, max_value=60.0))
def test_calm_never_lowers_the_rate(
    control: AdaptiveRate,
    history: list[tuple[bool, float, float | None]],
    gap: float,
) -> None:
    """A success never lowers the rate, and a cut never raises it."""
    state, now = replay(control, history)

    calm = control.on_success(state, now + gap)
    cut = control.on_congestion(state, now + gap, measured=None)

    assert cut.rate <= state.rate <= calm.rate


def test_past_a_firm_target_the_probe_speeds_up_after_the_hold() -> None:
    """Past a firm target the rate probes by settled_growth for PROBE_HOLD
    calm intervals after the cut, then by a step growing evenly to growth
    over PROBE_RAMP more, then by growth; one late success takes the same
    steps."""
    control = AdaptiveRate(1e6, floor=1.0, factor=0.9)
    cut = control.on_congestion(control.start(), 0.0, measured=10.0, firm=True)
    assert (cut.rate, cut.target) == (9.0, 10.0)

    rates, state = [cut.rate], cut
    for second in range(1, 51):
        state = control.on_success(state, float(second))
        rates.append(state.rate)

    steps = [after / before - 1.0 for before, after in itertools.pairwise(rates)]
    assert rates[1] == 10.0  # one recovery step of 25%, stopped at the target
    for interval, share in enumerate(steps[1:], start=2):
        ramp = min(1.0, max(0, interval - PROBE_HOLD) / PROBE_RAMP)
        want = 0.005 + (0.05 - 0.005) * ramp
        assert share == pytest.approx(want), interval
    late = control.on_success(cut, 50.0)
    assert late.rate == pytest.approx(rates[-1])
