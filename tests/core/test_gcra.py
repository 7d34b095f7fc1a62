"""The pure GCRA: waits, several limits together, and reservations."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import throttlekit as tk
from throttlekit._core import gcra

TEN_PER_SECOND = tk.parse_rate("10/second")


def run(
    limits: tuple[tk.Limit, ...], arrivals: list[tuple[float, float]]
) -> list[float]:
    """Reserve each (time, cost) in order and return the admission times."""
    ledger = gcra.ReservationLedger(tuple(0.0 for _ in limits))
    admitted = []
    for now, cost in arrivals:
        slot = gcra.reserve(limits, ledger.tats, now, cost)
        ledger.commit(slot, now)
        admitted.append(now + slot.wait)
    return admitted


def test_burst_goes_at_once_then_the_rate_paces() -> None:
    """Ten calls go at once, the eleventh and twelfth a tenth of a second apart."""
    admitted = run(TEN_PER_SECOND, [(0.0, 1)] * 12)

    assert admitted[:10] == [0.0] * 10
    assert admitted[10:] == pytest.approx([0.1, 0.2])


def test_idle_bucket_refills_to_its_burst() -> None:
    """After a full period of quiet the whole burst is available again."""
    admitted = run(TEN_PER_SECOND, [(0.0, 1)] * 10 + [(1.0, 1)] * 10)

    assert admitted[10:] == [1.0] * 10


def test_cost_is_charged_in_units() -> None:
    """A call of cost 4 uses four units of the budget."""
    admitted = run(TEN_PER_SECOND, [(0.0, 4), (0.0, 4), (0.0, 4)])

    assert admitted == pytest.approx([0.0, 0.0, 0.2])


def test_several_limits_wait_for_the_slowest() -> None:
    """With 2/second and 3/minute, the fourth call waits for the minute."""
    limits = tk.parse_rate("2/second;3/minute")

    admitted = run(limits, [(0.0, 1)] * 4)

    assert admitted == pytest.approx([0.0, 0.0, 0.5, 20.0])


def test_short_limit_is_charged_at_admission_time() -> None:
    """A call held back by the long limit charges the short one when it goes."""
    limits = tk.parse_rate("2/second;3/minute")
    ledger = gcra.ReservationLedger((0.0, 0.0))
    for now in (0.0, 0.0, 0.0):
        ledger.commit(gcra.reserve(limits, ledger.tats, now, 1), now)

    slot = gcra.reserve(limits, ledger.tats, 0.0, 1)

    assert slot.wait == pytest.approx(20.0)
    assert slot.tats == pytest.approx((20.5, 80.0))


def test_cost_above_capacity_fails_at_once() -> None:
    """A cost larger than the burst raises CapacityExceeded naming the key."""
    with pytest.raises(tk.CapacityExceeded, match="'org:1'") as info:
        gcra.check_cost("org:1", tk.parse_rate("10/second;5/minute"), 6)

    assert (info.value.cost, info.value.capacity) == (6, 5)


@pytest.mark.parametrize("cost", [-1, float("nan"), float("inf")])
def test_invalid_cost_is_refused(cost: float) -> None:
    """A negative or non-finite cost raises ValueError."""
    with pytest.raises(ValueError, match="cost"):
        gcra.check_cost("k", TEN_PER_SECOND, cost)


def test_giving_back_the_last_reservation_restores_the_bucket() -> None:
    """Cancelling the newest reservation returns the bucket to its prior state."""
    ledger = gcra.ReservationLedger((0.0,))
    for _ in range(10):
        ledger.commit(gcra.reserve(TEN_PER_SECOND, ledger.tats, 0.0, 1), 0.0)
    before = ledger.tats

    handle = ledger.commit(gcra.reserve(TEN_PER_SECOND, ledger.tats, 0.0, 1), 0.0)
    ledger.cancel(handle, 0.0)

    assert ledger.tats == before
    assert gcra.reserve(TEN_PER_SECOND, ledger.tats, 0.0, 1).wait == pytest.approx(0.1)


def test_middle_reservation_is_undone_with_those_behind_it() -> None:
    """A place given back mid-line is returned once the ones behind it are too."""
    ledger = gcra.ReservationLedger((0.0,))
    for _ in range(10):
        ledger.commit(gcra.reserve(TEN_PER_SECOND, ledger.tats, 0.0, 1), 0.0)
    idle = ledger.tats
    first = ledger.commit(gcra.reserve(TEN_PER_SECOND, ledger.tats, 0.0, 1), 0.0)
    second = ledger.commit(gcra.reserve(TEN_PER_SECOND, ledger.tats, 0.0, 1), 0.0)

    ledger.cancel(first, 0.0)
    held = ledger.tats
    ledger.cancel(second, 0.0)

    assert held == pytest.approx((1.2,))
    assert ledger.tats == idle


def test_cancelling_twice_is_harmless() -> None:
    """A second cancel of the same reservation changes nothing."""
    ledger = gcra.ReservationLedger((0.0,))
    handle = ledger.commit(gcra.reserve(TEN_PER_SECOND, ledger.tats, 0.0, 1), 0.0)
    ledger.cancel(handle, 0.0)
    after_first = ledger.tats

    ledger.cancel(handle, 0.0)

    assert ledger.tats == after_first == (0.0,)


def test_reservations_keep_arrival_order() -> None:
    """Later arrivals never get an earlier turn than earlier ones."""
    admitted = run(TEN_PER_SECOND, [(t / 100, 1) for t in range(60)])

    assert admitted == sorted(admitted)


limit_strategy = st.builds(
    tk.Limit,
    amount=st.integers(1, 50),
    period=st.sampled_from([0.5, 1.0, 2.0, 60.0]),
    burst=st.integers(1, 20),
)
arrival_strategy = st.lists(
    st.tuples(st.floats(0, 2, allow_nan=False), st.integers(0, 3), st.booleans()),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    limits=st.lists(limit_strategy, min_size=1, max_size=3),
    arrivals=arrival_strategy,
)
def test_no_window_admits_more_than_rate_times_length_plus_burst(
    limits: list[tk.Limit],
    arrivals: list[tuple[float, int, bool]],
) -> None:
    """In any window of length t, at most rate * t + burst cost is admitted,
    for every limit, with some callers giving their places back."""
    capacity = gcra.capacity(limits)
    ledger = gcra.ReservationLedger(tuple(0.0 for _ in limits))
    now = 0.0
    admitted: list[tuple[float, float]] = []
    pending: list[tuple[object, float, float]] = []

    for gap, cost, gives_up in arrivals:
        now += gap
        # Callers who gave up do so before their turn comes.
        for handle, at, c in [p for p in pending if p[1] > now]:
            ledger.cancel(handle, now)
            pending.remove((handle, at, c))
        cost = min(cost, capacity)
        slot = gcra.reserve(limits, ledger.tats, now, cost)
        handle = ledger.commit(slot, now)
        if gives_up and slot.wait > 0:
            pending.append((handle, now + slot.wait, cost))
        else:
            admitted.append((now + slot.wait, cost))

    admitted.sort()
    for limit in limits:
        rate = limit.amount / limit.period
        for i, (start, _) in enumerate(admitted):
            total = 0.0
            for at, cost in admitted[i:]:
                total += cost
                assert total <= rate * (at - start) + limit.burst + 1e-6
