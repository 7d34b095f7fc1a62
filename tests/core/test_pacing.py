"""The pure pacing line: learned spacing, pauses and resumption."""

from __future__ import annotations

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
    spread=0.0,
    adaptive=tk.AdaptiveRate(20.0, floor=1.0, factor=0.9, step=1.0, calm=1.0),
)
OK = pacing.Lesson(calm=True, accepted=True)
REFUSED = pacing.Lesson(pause=0.0)


def test_adaptive_cut_starts_from_the_measured_rate() -> None:
    """A 429 after 10 accepted calls per second cuts to 90% of 10/s."""
    gate = pacing.Gate()
    for n in range(40):  # 40 calls over 4 seconds
        gate = pacing.learn(gate, OK, n * 0.1, ADAPTIVE)

    gate = pacing.learn(gate, REFUSED, 4.0, ADAPTIVE)

    assert gate.rate == pytest.approx(9.0)
    _, gate = pacing.admit(gate, 4.0, 0.0, ADAPTIVE)
    assert pacing.admit(gate, 4.0, 0.0, ADAPTIVE)[0] == pytest.approx(1 / 9.0)


def test_adaptive_burst_of_429s_cuts_once() -> None:
    """Refusals arriving within one window count as one congestion event."""
    gate = pacing.Gate()
    for n in range(40):
        gate = pacing.learn(gate, OK, n * 0.1, ADAPTIVE)

    for at in (4.0, 4.1, 4.5):
        gate = pacing.learn(gate, REFUSED, at, ADAPTIVE)

    assert gate.rate == pytest.approx(9.0)


def test_adaptive_rate_returns_to_its_ceiling_when_calm() -> None:
    """After a cut (from the ceiling, nothing measured yet), calm successes
    climb back to exactly the ceiling."""
    gate = pacing.learn(pacing.Gate(), REFUSED, 0.0, ADAPTIVE)
    cut = gate.rate
    for n in range(1, 40):
        gate = pacing.learn(gate, OK, float(n), ADAPTIVE)

    assert cut == pytest.approx(18.0)
    assert gate.rate == 20.0


def test_adaptive_never_falls_below_its_floor() -> None:
    """Repeated congestion events stop at the floor."""
    gate = pacing.Gate()
    for n in range(60):
        gate = pacing.learn(gate, REFUSED, n * 5.0, ADAPTIVE)

    assert gate.rate == 1.0


@given(
    events=st.lists(
        st.tuples(st.floats(0, 3, allow_nan=False), st.booleans()), max_size=80
    )
)
def test_adaptive_rate_stays_between_floor_and_ceiling(
    events: list[tuple[float, bool]],
) -> None:
    """Whatever mix of refusals and successes, the rate stays in bounds and
    spacing stays finite."""
    gate, now = pacing.Gate(), 0.0
    for gap, refused in events:
        now += gap
        gate = pacing.learn(gate, REFUSED if refused else OK, now, ADAPTIVE)
        wait, gate = pacing.admit(gate, now, 0.5, ADAPTIVE)
        assert 0.0 <= wait < 3600

    assert gate.rate == 0.0 or 1.0 <= gate.rate <= 20.0
