"""The foundation's bucket property, against a real Redis: in any window of
length t, at most rate * t + burst cost is admitted, for every limit.

Redis time runs on its own, so the property is checked on the admission
times the server gave, whatever the gaps between calls were.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import throttlekit as tk
from throttlekit._core import gcra
from throttlekit.backends.redis import RedisBackend

limit_strategy = st.builds(
    tk.Limit,
    amount=st.integers(1, 50),
    period=st.sampled_from([0.1, 0.5, 1.0, 60.0]),
    burst=st.integers(1, 10),
)
# Each step: a cost, an optional max_wait (seconds), and whether the caller
# gives up (cancels) an earlier reservation first, by index.
step_strategy = st.tuples(
    st.sampled_from([0, 0.5, 1, 2, 3]),
    st.one_of(st.none(), st.sampled_from([0.0, 0.05, 1.0])),
    st.one_of(st.none(), st.integers(0, 50)),
)


@pytest.fixture(scope="module")
def backend(redis_url: str) -> Iterator[RedisBackend]:
    backend = RedisBackend.from_url(redis_url, namespace="property")
    yield backend
    backend.close()


@settings(max_examples=80, deadline=None)
@given(
    limits=st.lists(limit_strategy, min_size=1, max_size=2),
    steps=st.lists(step_strategy, min_size=1, max_size=40),
)
def test_no_window_admits_more_than_rate_times_length_plus_burst(
    backend: RedisBackend,
    limits: list[tk.Limit],
    steps: list[tuple[float, float | None, int | None]],
) -> None:
    """In any window of server time of length t, at most rate * t + burst
    cost is admitted, with refusals and callers giving places back."""
    key = uuid.uuid4().hex
    capacity = gcra.capacity(limits)
    held: list[tk.Reservation] = []

    for cost, max_wait, gives_up in steps:
        if gives_up is not None and held:
            backend.cancel(held.pop(gives_up % len(held)))
        with contextlib.suppress(tk.RateLimited):
            held.append(backend.reserve(key, limits, min(cost, capacity), max_wait))

    # Integer microseconds: seconds since the epoch as floats would blur
    # the window lengths by tenths of a microsecond.
    admitted = sorted(
        (r.handle.admit_us, r.cost)  # type: ignore[attr-defined]
        for r in held
    )
    for limit in limits:
        rate = limit.amount / limit.period
        for i, (start, _) in enumerate(admitted):
            total = 0.0
            for at, cost in admitted[i:]:
                total += cost
                assert total <= rate * (at - start) / 1e6 + limit.burst + 1e-9
