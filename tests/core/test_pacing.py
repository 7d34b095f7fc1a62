"""The pure pacing line: learned spacing, pauses and resumption."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

import throttlekit as tk
from throttlekit._core import pacing
from throttlekit._core.headers import parse_headers

CONFIG = pacing.PacingConfig(default_pause=1.0, max_pause=8.0, spread=0.5)


def taught(status: int, headers: dict[str, str]) -> pacing.Lesson:
    return pacing.lesson(parse_headers(status, headers, now=1_000_000.0))


def test_remaining_quota_is_spread_until_the_reset() -> None:
    """Ten left with five seconds to the reset spaces calls half a second apart."""
    lesson = taught(200, {"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": "5"})
    gate = pacing.learn(pacing.Gate(), lesson, 100.0, CONFIG)

    waits = []
    for _ in range(3):
        wait, gate = pacing.admit(gate, 100.0, 0.0, CONFIG)
        waits.append(wait)

    assert waits == pytest.approx([0.0, 0.5, 1.0])


def test_spacing_lapses_at_the_reset() -> None:
    """After the reset passes, calls are no longer spaced."""
    lesson = taught(200, {"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "2"})
    gate = pacing.learn(pacing.Gate(), lesson, 0.0, CONFIG)

    waits = [pacing.admit(gate, 3.0, 0.0, CONFIG)[0] for _ in range(2)]

    assert waits == [0.0, 0.0]


def test_nothing_remaining_pauses_until_the_reset() -> None:
    """A success with nothing left pauses the key until the reset."""
    lesson = taught(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4"})

    gate = pacing.learn(pacing.Gate(), lesson, 10.0, CONFIG)

    assert gate.paused_until == 14.0
    assert pacing.admit(gate, 10.0, 0.0, CONFIG)[0] == pytest.approx(4.0)


def test_429_pauses_for_retry_after_and_spreads_resumption() -> None:
    """A 429 with Retry-After pauses the key; jitter spreads the restart."""
    gate = pacing.learn(pacing.Gate(), taught(429, {"Retry-After": "3"}), 0.0, CONFIG)

    first, gate = pacing.admit(gate, 0.0, 0.0, CONFIG)
    last, gate = pacing.admit(gate, 0.0, 0.999, CONFIG)

    assert first == pytest.approx(3.0)
    assert last == pytest.approx(3.0 + 0.999 * 0.5)


def test_503_with_retry_after_pauses_but_bare_503_does_not() -> None:
    """A 503 pauses only when it says for how long."""
    told = pacing.learn(pacing.Gate(), taught(503, {"Retry-After": "2"}), 0.0, CONFIG)
    bare = pacing.learn(pacing.Gate(), taught(503, {}), 0.0, CONFIG)

    assert told.paused_until == 2.0
    assert bare.paused_until == 0.0


def test_unannounced_429s_double_the_pause_up_to_the_cap() -> None:
    """Repeated 429s without hints pause 1, 2, 4, 8, 8 seconds; success resets."""
    gate = pacing.Gate()
    pauses = []
    for now in (0.0, 100.0, 200.0, 300.0, 400.0):
        gate = pacing.learn(gate, taught(429, {}), now, CONFIG)
        pauses.append(gate.paused_until - now)
    calm = pacing.learn(gate, taught(200, {}), 500.0, CONFIG)

    assert pauses == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert calm.strikes == 0


def test_a_shorter_pause_never_shortens_a_longer_one() -> None:
    """Pauses only extend: a later, shorter Retry-After keeps the longer pause."""
    gate = pacing.learn(pacing.Gate(), taught(429, {"Retry-After": "10"}), 0.0, CONFIG)

    gate = pacing.learn(gate, taught(429, {"Retry-After": "1"}), 1.0, CONFIG)

    assert gate.paused_until == 10.0


@pytest.mark.parametrize(
    "field", ["default_pause", "max_pause", "spread"], ids=lambda f: f
)
def test_invalid_config_names_the_field(field: str) -> None:
    """Negative or infinite settings are refused by name."""
    with pytest.raises(ValueError, match=field):
        pacing.PacingConfig(**{field: -1.0})


@given(
    headers=st.dictionaries(
        st.sampled_from(
            ["Retry-After", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit"]
        ),
        st.text(max_size=30),
    ),
    status=st.sampled_from([200, 429, 503]),
    now=st.floats(0, 1e6),
    jitter=st.floats(0, 0.999),
)
def test_any_headers_give_a_finite_non_negative_wait(
    headers: dict[str, str], status: int, now: float, jitter: float
) -> None:
    """Whatever the server sends, the next wait is finite and not negative."""
    gate = pacing.learn(pacing.Gate(), taught(status, headers), now, CONFIG)

    wait, _ = pacing.admit(gate, now, jitter, CONFIG)

    assert 0.0 <= wait < 366 * 86400 + CONFIG.max_pause + CONFIG.spread


ADAPTIVE = pacing.PacingConfig(
    spread=0.5,
    adaptive=tk.AdaptiveRate(20.0, floor=1.0, factor=0.9, growth=0.05, calm=1.0),
)
OK = pacing.Lesson(calm=True, accepted=True)
REFUSED = pacing.Lesson(pause=1.0)


def replay(
    gate: pacing.Gate, lessons: list[tuple[float, pacing.Lesson]]
) -> pacing.Gate:
    for now, taught in lessons:
        gate = pacing.learn(gate, taught, now, ADAPTIVE)
    return gate


def test_adaptive_cut_starts_from_the_rate_accepted_since_the_last_cut() -> None:
    """After a first cut, 40 calls accepted in the 4 seconds to the next 429
    measure 10/s, and the cut lands at 90% of that."""
    gate = replay(pacing.Gate(), [(0.0, REFUSED)])
    gate = replay(gate, [(n * 0.1, OK) for n in range(1, 41)])

    assert pacing.measured(gate, 4.0) == pytest.approx(10.0)
    gate = pacing.learn(gate, REFUSED, 4.0, ADAPTIVE)

    assert gate.rate == pytest.approx(9.0)
    assert (gate.last_cut, gate.span_start, gate.span_count) == (4.0, 4.0, 0.0)


def test_the_pause_counts_in_the_measuring_span() -> None:
    """Calls accepted after a pause are measured over the pause too: the
    server refilled while nobody sent."""
    gate = replay(pacing.Gate(), [(0.0, REFUSED)])
    gate = replay(gate, [(1.0 + n * 0.05, OK) for n in range(1, 21)])

    gate = pacing.learn(gate, REFUSED, 2.0, ADAPTIVE)

    assert gate.rate == pytest.approx(20 / 2.0 * 0.9)


def test_the_first_429_of_a_busy_spell_measures_nothing() -> None:
    """A burst accepted in the first tenth of a second is not a rate: the
    first cut is blind, to half the ceiling."""
    gate = replay(pacing.Gate(), [(n * 0.01, OK) for n in range(10)])

    assert pacing.measured(gate, 0.1) is None
    gate = pacing.learn(gate, REFUSED, 0.1, ADAPTIVE)

    assert gate.rate == pytest.approx(10.0)
    assert gate.target == 0.0


def test_a_span_with_nothing_accepted_measures_nothing() -> None:
    """Two events with no success between them halve the rate twice, not
    cut it to the floor."""
    gate = replay(pacing.Gate(), [(0.0, REFUSED), (1.5, REFUSED)])

    assert gate.rate == pytest.approx(20.0 * 0.5 * 0.5)


def test_an_idle_key_starts_a_new_span() -> None:
    """Successes after an idle spell start a new span, so the quiet seconds
    before it do not dilute the rate measured at the next 429."""
    gate = replay(pacing.Gate(), [(0.0, REFUSED), (0.5, OK)])
    gate = replay(gate, [(10.0 + n * 0.01, OK) for n in range(30)])

    assert (gate.span_start, gate.span_count) == (10.0, 30.0)
    assert gate.rate == pytest.approx(10.0 * 1.05**10)  # ten calm seconds
    assert pacing.measured(gate, 10.3) is None
    gate = pacing.learn(gate, REFUSED, 10.3, ADAPTIVE)

    assert gate.rate == pytest.approx(10.0 * 1.05**10 * 0.5)


def test_a_long_span_keeps_its_later_half() -> None:
    """A span longer than MEASURE_SPAN keeps half of it at its average rate,
    and then measures the higher of that and the rate it was sent at."""
    gate = pacing.Gate(
        span_start=0.0,
        span_count=100.0,
        span_last=19.0,
        rate=4.0,
        last_cut=-0.5,
        calm_since=19.5,
    )

    gate = pacing.learn(gate, OK, 20.0, ADAPTIVE)

    half = pacing.MEASURE_SPAN / 2
    assert (gate.span_start, gate.span_count) == (20.0 - half, 26.0)
    assert gate.prior_active == -1.0
    assert pacing.measured(gate, 20.0) == pytest.approx(26.0 / half)
    faster = replace(gate, rate=8.0)
    assert pacing.measured(faster, 20.0) == pytest.approx(8.0)


def test_adaptive_burst_of_429s_cuts_once() -> None:
    """Refusals arriving within one window count as one congestion event."""
    gate = replay(pacing.Gate(), [(0.0, REFUSED)])
    gate = replay(gate, [(n * 0.1, OK) for n in range(1, 41)])

    gate = replay(gate, [(at, REFUSED) for at in (4.0, 4.1, 4.5, 5.0)])

    assert gate.rate == pytest.approx(9.0)
    assert gate.last_cut == 4.0


def test_adaptive_rate_spaces_the_line() -> None:
    """Calls on an adaptive line are spaced by one over the learned rate."""
    gate = pacing.Gate(rate=8.0)

    first, gate = pacing.admit(gate, 0.0, 0.0, ADAPTIVE)
    second, gate = pacing.admit(gate, 0.0, 0.0, ADAPTIVE)

    assert (first, second) == (0.0, 0.125)


def test_adaptive_line_resumes_within_one_spacing_of_a_pause() -> None:
    """After a pause, the first caller on an adaptive line waits at most one
    spacing more, however long the configured spread."""
    gate = pacing.Gate(rate=10.0, paused_until=5.0)

    wait, _ = pacing.admit(gate, 0.0, 0.5, ADAPTIVE)

    assert wait == pytest.approx(5.0 + 0.5 * 0.1)


def test_adaptive_rate_returns_to_its_ceiling_when_calm() -> None:
    """After a blind cut (from the ceiling, nothing measured yet), calm
    successes climb back to exactly the ceiling."""
    gate = pacing.learn(pacing.Gate(), REFUSED, 0.0, ADAPTIVE)
    cut = gate.rate
    for n in range(1, 40):
        gate = pacing.learn(gate, OK, float(n), ADAPTIVE)

    assert cut == pytest.approx(10.0)
    assert gate.rate == 20.0


def test_adaptive_never_falls_below_its_floor() -> None:
    """Repeated congestion events stop at the floor."""
    gate = pacing.Gate()
    for n in range(60):
        gate = pacing.learn(gate, REFUSED, n * 5.0, ADAPTIVE)

    assert gate.rate == 1.0


def test_without_adaptive_nothing_is_learned_about_the_rate() -> None:
    """A gate without an adaptive rate keeps no rate and measures nothing."""
    gate = pacing.learn(pacing.Gate(), OK, 0.0, CONFIG)
    gate = pacing.learn(gate, REFUSED, 2.0, CONFIG)

    assert (gate.rate, gate.span_count) == (0.0, 0.0)


lessons = st.lists(
    st.tuples(st.floats(0, 3, allow_nan=False), st.sampled_from(["ok", "429", "503"])),
    max_size=80,
)
TAUGHT = {"ok": OK, "429": REFUSED, "503": pacing.Lesson(calm=True)}


@given(events=lessons)
def test_adaptive_rate_stays_between_floor_and_ceiling(
    events: list[tuple[float, str]],
) -> None:
    """Whatever mix of refusals and successes, the rate stays in bounds, the
    measured rate is never negative and spacing stays finite."""
    gate, now = pacing.Gate(), 0.0
    for gap, kind in events:
        now += gap
        gate = pacing.learn(gate, TAUGHT[kind], now, ADAPTIVE)
        wait, gate = pacing.admit(gate, now, 0.5, ADAPTIVE)
        assert 0.0 <= wait < 3600
        got = pacing.measured(gate, now)
        assert got is None or got >= 0.0

    assert gate.rate == 0.0 or 1.0 <= gate.rate <= 20.0


@given(
    events=lessons,
    offsets=st.lists(st.floats(0, 0.999), min_size=1, max_size=20),
)
def test_a_burst_of_refusals_cuts_the_gate_once(
    events: list[tuple[float, str]], offsets: list[float]
) -> None:
    """However many 429s arrive within one window of a cut, the gate's rate
    is cut once."""
    gate, now = pacing.Gate(), 0.0
    for gap, kind in events:
        now += gap
        gate = pacing.learn(gate, TAUGHT[kind], now, ADAPTIVE)
    start = now + 2.0
    cut = pacing.learn(gate, REFUSED, start, ADAPTIVE)

    for offset in sorted(offsets):
        gate = pacing.learn(cut, REFUSED, start + offset, ADAPTIVE)
        assert (gate.rate, gate.last_cut) == (cut.rate, start)


@given(events=lessons)
def test_a_calm_gate_returns_to_its_ceiling(events: list[tuple[float, str]]) -> None:
    """After any history, successes one calm apart climb back to exactly the
    ceiling."""
    gate, now = pacing.Gate(), 0.0
    for gap, kind in events:
        now += gap
        gate = pacing.learn(gate, TAUGHT[kind], now, ADAPTIVE)

    # From the floor: 30 steps of 0.5% past a firm target, 9 growing ones,
    # then log(20 / 1.5) / log(1.05), about 53, of 5%.
    for _ in range(120):
        now += 1.0
        gate = pacing.learn(gate, OK, now, ADAPTIVE)

    assert gate.rate == 20.0
