"""The test server's token bucket, on injected time."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from throttlekit.testing._bucket import TokenBucket, exact


def drain(bucket: TokenBucket, now: Fraction) -> int:
    """Take tokens at ``now`` until refused; return how many were taken."""
    taken = 0
    while bucket.wait(now) == 0:
        bucket.take(now)
        taken += 1
    return taken


def test_full_bucket_admits_the_burst_at_once() -> None:
    """A new bucket admits exactly ``burst`` requests at one instant."""
    bucket = TokenBucket(rate=10, burst=10, now=0)

    assert drain(bucket, Fraction(0)) == 10
    assert bucket.wait(Fraction(0)) == Fraction(1, 10)


def test_tokens_refill_continuously() -> None:
    """At 4/s, an empty bucket has a whole token again after exactly 0.25 s."""
    bucket = TokenBucket(rate=4, burst=2, now=0)
    drain(bucket, Fraction(0))

    assert bucket.wait(Fraction(1, 8)) == Fraction(1, 8)
    assert bucket.wait(Fraction(1, 4)) == 0
    bucket.take(Fraction(1, 4))
    assert bucket.wait(Fraction(1, 4)) == Fraction(1, 4)


def test_tokens_are_capped_at_the_burst() -> None:
    """A long idle spell refills the bucket to its burst, no further."""
    bucket = TokenBucket(rate=10, burst=3, now=0)
    drain(bucket, Fraction(0))

    assert drain(bucket, Fraction(3600)) == 3


def test_take_without_a_token_raises() -> None:
    """Taking from an empty bucket is refused rather than going negative."""
    bucket = TokenBucket(rate=1, burst=1, now=0)
    bucket.take(Fraction(0))

    with pytest.raises(ValueError, match="no token"):
        bucket.take(Fraction(1, 2))
    assert bucket.tokens == 0


def test_a_clock_read_from_the_past_adds_nothing() -> None:
    """A time before the last update neither refills nor rewinds the bucket."""
    bucket = TokenBucket(rate=1, burst=2, now=10)
    bucket.take(Fraction(10))

    assert bucket.wait(Fraction(5)) == 0
    bucket.take(Fraction(5))
    assert bucket.updated == 10
    assert bucket.wait(Fraction(10)) == 1


def test_floats_convert_exactly() -> None:
    """A float time or rate converts to the exact binary value it holds."""
    assert exact(0.5) == Fraction(1, 2)
    assert exact(0.1) == Fraction(0.1)
    with pytest.raises(ValueError, match="finite"):
        exact(math.inf)
    with pytest.raises(TypeError, match="number"):
        exact("1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rate", "burst", "message"),
    [(0, 1, "rate must be positive"), (1, 0.5, "burst must be at least 1")],
    ids=["zero-rate", "burst-below-one"],
)
def test_invalid_settings_are_refused(rate: float, burst: float, message: str) -> None:
    """A non-positive rate or a burst below one token is refused."""
    with pytest.raises(ValueError, match=message):
        TokenBucket(rate=rate, burst=burst, now=0)


@given(
    rate=st.integers(1, 50),
    burst=st.integers(1, 20),
    gaps=st.lists(st.integers(0, 400), min_size=1, max_size=80),
)
def test_no_window_admits_more_than_rate_times_length_plus_burst(
    rate: int, burst: int, gaps: list[int]
) -> None:
    """In any window of length t the bucket admits at most rate * t + burst."""
    bucket = TokenBucket(rate=rate, burst=burst, now=0)
    now = Fraction(0)
    admitted = []
    for gap in gaps:
        now += Fraction(gap, 1000)
        if bucket.wait(now) == 0:
            bucket.take(now)
            admitted.append(now)

    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= rate * (admitted[j] - start) + burst


@given(
    rate=st.integers(1, 50),
    burst=st.integers(1, 20),
    taken=st.integers(0, 40),
    later=st.integers(0, 3000),
)
def test_a_request_at_its_announced_time_is_admitted(
    rate: int, burst: int, taken: int, later: int
) -> None:
    """Arriving exactly ``wait`` seconds later finds a whole token."""
    bucket = TokenBucket(rate=rate, burst=burst, now=0)
    now = Fraction(0)
    for _ in range(taken):
        now += bucket.wait(now)
        bucket.take(now)

    now += Fraction(later, 1000)
    assert bucket.wait(now + bucket.wait(now)) == 0
