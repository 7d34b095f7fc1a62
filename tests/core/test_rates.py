"""Rate strings and `Limit` values."""

from __future__ import annotations

import pytest

import throttlekit as tk


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10/second", [(10, 1)]),
        ("600/minute", [(600, 60)]),
        ("10 per second", [(10, 1)]),
        ("5 per 2 seconds", [(5, 2)]),
        ("1000/hour;10/second", [(10, 1), (1000, 3600)]),
    ],
    ids=["slash", "minute", "per", "multiples", "several-sorted"],
)
def test_parse_rate_reads_amount_and_period(
    text: str, expected: list[tuple[int, int]]
) -> None:
    """A rate string gives its limits, shortest period first, burst = amount."""
    limits = tk.parse_rate(text)

    assert [(x.amount, x.period) for x in limits] == expected
    assert [x.burst for x in limits] == [amount for amount, _ in expected]


def test_burst_applies_to_the_shortest_period() -> None:
    """An explicit burst replaces the shortest limit's burst only."""
    limits = tk.parse_rate("10/second;1000/hour", burst=3)

    assert [x.burst for x in limits] == [3, 1000]


def test_interval_and_tolerance() -> None:
    """A limit's emission interval and tolerance follow from rate and burst."""
    (limit,) = tk.parse_rate("10/second", burst=5)

    assert limit.interval == pytest.approx(0.1)
    assert limit.tolerance == pytest.approx(0.5)


@pytest.mark.parametrize("text", ["ten/second", "10/fortnight", "", "10"])
def test_invalid_rate_string_names_the_value(text: str) -> None:
    """An invalid rate string raises ValueError quoting the value."""
    with pytest.raises(ValueError, match=f"rate {text!r}"):
        tk.parse_rate(text)


@pytest.mark.parametrize("burst", [0, -1, float("nan"), float("inf")])
def test_invalid_burst_names_the_parameter(burst: float) -> None:
    """A burst that is not positive and finite is refused by name."""
    with pytest.raises(ValueError, match="burst"):
        tk.parse_rate("10/second", burst=burst)


def test_limit_values_pass_through() -> None:
    """Ready `Limit` values are accepted as the rate."""
    limit = tk.Limit(amount=3, period=1, burst=2)

    assert tk.parse_rate([limit]) == (limit,)
    assert tk.parse_rate(limit) == (limit,)
