"""The pure rate-limit header parser: dialects, bad values, time and pacing."""

from __future__ import annotations

import math
from datetime import timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from throttlekit._core.headers import (
    MAX_RETRY_AFTER,
    Policy,
    RateLimitInfo,
    pace,
    parse_headers,
    parse_http_date,
)

# Tue, 14 Nov 2023 22:13:20 GMT
NOW = 1_700_000_000.0
NOW_DATE = "Tue, 14 Nov 2023 22:13:20 GMT"


def parse(
    headers: dict[str, str] | list[tuple[str, str]],
    status: int = 200,
    now: float = NOW,
    **options: float,
) -> RateLimitInfo:
    return parse_headers(status, headers, now, **options)


def retry_after(value: str, **options: float) -> float | None:
    return parse({"Retry-After": value}, 429, **options).retry_after


# --- Retry-After -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("120", 120.0, id="delay-seconds"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("1.5", 1.5, id="fraction-kept"),
        pytest.param("  30 ", 30.0, id="surrounding-space"),
        pytest.param("Tue, 14 Nov 2023 22:14:50 GMT", 90.0, id="imf-fixdate"),
        pytest.param("Tuesday, 14-Nov-23 22:14:50 GMT", 90.0, id="rfc850"),
        pytest.param("Tue Nov 14 22:14:50 2023", 90.0, id="asctime"),
        pytest.param("tue, 14 NOV 2023 22:14:50 gmt", 90.0, id="any-case"),
        pytest.param("Fri, 03 Nov 2023 08:26:40 GMT", 0.0, id="past-date"),
        pytest.param(NOW_DATE, 0.0, id="date-is-now"),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value: str, expected: float) -> None:
    """Retry-After gives seconds to wait from either of its two forms."""
    assert retry_after(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("-5", id="negative"),
        pytest.param("", id="empty"),
        pytest.param("soon", id="word"),
        pytest.param("nan", id="nan"),
        pytest.param("inf", id="inf"),
        pytest.param("1e3", id="exponent"),
        pytest.param("12s", id="unit-suffix"),
        pytest.param("0x10", id="hex"),
        pytest.param(".5", id="no-integer-part"),
        pytest.param("\u0663", id="non-ascii-digit"),
        pytest.param("Tue, 31 Feb 2023 22:14:50 GMT", id="no-such-day"),
        pytest.param("Tue, 14 Nov 2023 24:00:00 GMT", id="hour-24"),
        pytest.param("Xyz, 14 Nov 2023 22:14:50 GMT", id="not-a-weekday"),
        pytest.param("Tue, 14 Foo 2023 22:14:50 GMT", id="not-a-month"),
        pytest.param("Tue, 14 Nov 2023 22:14:50 UTC", id="not-gmt"),
        pytest.param("2023-11-14T22:14:50Z", id="iso-8601"),
    ],
)
def test_unreadable_retry_after_is_absent_not_zero(value: str) -> None:
    """A Retry-After that does not parse counts as absent, never as retry now."""
    info = parse({"Retry-After": value}, 429)

    assert info.retry_after is None
    assert info.retry_after_too_large is False


def test_retry_after_above_the_bound_is_clamped_and_flagged() -> None:
    """A delay above max_retry_after reports the bound and says it was too large."""
    info = parse({"Retry-After": "61"}, 429, max_retry_after=60.0)

    assert info.retry_after == 60.0
    assert info.retry_after_too_large is True


def test_retry_after_at_the_bound_is_not_flagged() -> None:
    """A delay equal to max_retry_after is within bounds."""
    info = parse({"Retry-After": "60"}, 429, max_retry_after=60.0)

    assert info.retry_after == 60.0
    assert info.retry_after_too_large is False


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("9" * 500, id="endless-digits"),
        pytest.param("Fri, 31 Dec 9999 23:59:59 GMT", id="year-9999"),
        pytest.param("86400", id="one-day"),
    ],
)
def test_huge_retry_after_is_flagged_and_finite(value: str) -> None:
    """An enormous delay becomes the default bound, flagged, never infinity."""
    info = parse({"Retry-After": value}, 429)

    assert info.retry_after == MAX_RETRY_AFTER
    assert info.retry_after_too_large is True


def test_max_retry_after_accepts_a_timedelta() -> None:
    """The bound may be given as a timedelta."""
    info = parse_headers(
        429, {"Retry-After": "90"}, NOW, max_retry_after=timedelta(minutes=1)
    )

    assert (info.retry_after, info.retry_after_too_large) == (60.0, True)


def test_retry_after_date_is_measured_against_the_date_header() -> None:
    """An HTTP-date is read against the server's Date, so a fast local clock
    does not shorten the wait."""
    headers = {"Date": NOW_DATE, "Retry-After": "Tue, 14 Nov 2023 22:14:50 GMT"}

    assert parse(headers, 429, now=NOW + 100).retry_after == 90.0


def test_unreadable_date_header_falls_back_to_now() -> None:
    """A Date header that does not parse leaves the local clock in charge."""
    headers = {"Date": "yesterday", "Retry-After": "Tue, 14 Nov 2023 22:14:50 GMT"}

    assert parse(headers, 429, now=NOW + 30).retry_after == 60.0


def test_repeated_retry_after_lines_take_the_longest() -> None:
    """Several Retry-After lines yield the most cautious readable one."""
    lines = [("Retry-After", "5"), ("Retry-After", "junk"), ("Retry-After", "20")]

    assert parse(lines, 429).retry_after == 20.0


def test_header_names_are_case_insensitive() -> None:
    """Field names match whatever their case."""
    assert parse({"RETRY-AFTER": "7"}, 429).retry_after == 7.0
    assert parse({"retry-after": "7"}, 429).retry_after == 7.0


# --- HTTP dates --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Sun, 06 Nov 1994 08:49:37 GMT", id="imf-fixdate"),
        pytest.param("Sunday, 06-Nov-94 08:49:37 GMT", id="rfc850"),
        pytest.param("Sun Nov  6 08:49:37 1994", id="asctime-padded-day"),
        pytest.param("Sun Nov 6 08:49:37 1994", id="asctime-single-space"),
    ],
)
def test_the_three_http_date_forms_agree(text: str) -> None:
    """RFC 9110's three date forms name the same instant."""
    assert parse_http_date(text, NOW) == 784_111_777.0


def test_two_digit_years_up_to_fifty_years_ahead_are_in_the_future() -> None:
    """An RFC 850 year 49 years ahead of now stays in the future."""
    assert parse_http_date("Friday, 01-Jan-72 00:00:00 GMT", NOW) == 3_218_832_000.0


def test_two_digit_years_further_ahead_are_in_the_past() -> None:
    """An RFC 850 year more than 50 years ahead means the previous century."""
    assert parse_http_date("Tuesday, 01-Jan-74 00:00:00 GMT", NOW) == 126_230_400.0


def test_a_leap_second_is_accepted() -> None:
    """Second 60 reads as the first second of the next minute."""
    text = "Sat, 31 Dec 2016 23:59:60 GMT"

    assert parse_http_date(text, NOW) == 1_483_228_800.0


def test_february_29_exists_only_in_leap_years() -> None:
    """The day of the month is checked against the calendar."""
    assert parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT", NOW) == 1_709_164_800.0
    assert parse_http_date("Wed, 29 Feb 2023 00:00:00 GMT", NOW) is None


# --- X-RateLimit-* and relatives ---------------------------------------------


def test_x_ratelimit_fields_give_limit_remaining_and_reset() -> None:
    """The common X-RateLimit trio is read as counts and a delta reset."""
    headers = {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "42",
        "X-RateLimit-Reset": "30",
    }

    info = parse(headers)

    assert (info.limit, info.remaining, info.reset_after) == (100, 42, 30.0)
    assert info.source == "x-ratelimit"


def test_github_fields_give_used_resource_and_epoch_reset() -> None:
    """GitHub's fields add used and resource, and reset in epoch seconds."""
    headers = {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "4987",
        "x-ratelimit-used": "13",
        "x-ratelimit-reset": "1700001200",
        "x-ratelimit-resource": "core",
    }

    info = parse(headers)

    assert (info.limit, info.remaining, info.used) == (5000, 4987, 13)
    assert (info.reset_after, info.resource) == (1200.0, "core")
    assert info.source == "github"


def test_x_rate_limit_family_is_read() -> None:
    """The hyphenated X-Rate-Limit family reads like X-RateLimit."""
    headers = {
        "X-Rate-Limit-Limit": "15",
        "X-Rate-Limit-Remaining": "14",
        "X-Rate-Limit-Reset": "1700000900",
    }

    info = parse(headers)

    assert (info.limit, info.remaining, info.reset_after) == (15, 14, 900.0)
    assert info.source == "x-rate-limit"


def test_legacy_ratelimit_fields_are_read_with_their_policies() -> None:
    """Early drafts' RateLimit-Limit lists the limit, then windowed policies."""
    headers = {
        "RateLimit-Limit": "10, 10;w=1, 50;w=60",
        "RateLimit-Remaining": "9",
        "RateLimit-Reset": "1",
    }

    info = parse(headers)

    assert (info.limit, info.remaining, info.reset_after) == (10, 9, 1.0)
    assert info.policies == (
        Policy(None, quota=10, window=1.0),
        Policy(None, quota=50, window=60.0),
    )
    assert info.source == "ratelimit-legacy"


def test_limit_takes_the_first_number_of_a_list() -> None:
    """X-RateLimit-Limit: 100, 100;w=60 means a limit of 100 over 60 seconds."""
    info = parse({"X-RateLimit-Limit": "100, 100;w=60"})

    assert info.limit == 100
    assert info.policies == (Policy(None, quota=100, window=60.0),)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("30", 30.0, id="delta-seconds"),
        pytest.param("2.5", 2.5, id="fractional-delta"),
        pytest.param("1700000045", 45.0, id="epoch-seconds"),
        pytest.param("1700000003.250", 3.25, id="fractional-epoch"),
        pytest.param("1700000002500", 2.5, id="epoch-milliseconds"),
        pytest.param("1699999000", 0.0, id="epoch-in-the-past"),
        pytest.param("1699999000000", 0.0, id="epoch-ms-in-the-past"),
        pytest.param("31622400", 31_622_400.0, id="delta-of-366-days"),
        pytest.param("31622401", None, id="delta-beyond-366-days"),
        pytest.param("1000000000", None, id="largest-delta-is-decades"),
        pytest.param("1800000000", None, id="epoch-years-ahead"),
        pytest.param("-3", None, id="negative"),
        pytest.param("soon", None, id="word"),
        pytest.param("1234567890123456", None, id="sixteen-digits"),
    ],
)
def test_reset_rule_tells_epoch_ms_epoch_seconds_and_deltas_apart(
    value: str, expected: float | None
) -> None:
    """Above 1e12 is epoch ms, above 1e9 epoch seconds, else a delta."""
    info = parse({"X-RateLimit-Reset": value, "X-RateLimit-Remaining": "1"})

    assert info.reset_after == expected


def test_epoch_reset_is_measured_against_the_date_header() -> None:
    """An epoch reset is read against the server's Date, cancelling skew."""
    headers = {
        "Date": NOW_DATE,
        "X-RateLimit-Remaining": "5",
        "X-RateLimit-Reset": "1700000005000",
    }

    assert parse(headers, now=NOW + 100).reset_after == 5.0
    assert parse(headers, now=NOW - 100).reset_after == 5.0


def test_delta_reset_ignores_the_date_header() -> None:
    """A delta reset is already relative; the Date header does not move it."""
    headers = {"Date": "Fri, 03 Nov 2023 08:26:40 GMT", "X-RateLimit-Reset": "8"}

    assert parse(headers).reset_after == 8.0


def test_reset_after_is_preferred_to_reset() -> None:
    """Within a family the delta field wins over the epoch field."""
    headers = {
        "X-RateLimit-Remaining": "3",
        "X-RateLimit-Reset": "1700000060",
        "X-RateLimit-Reset-After": "2.5",
    }

    assert parse(headers).reset_after == 2.5


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("7", 7, id="integer"),
        pytest.param("4.9", 4, id="decimal-rounds-down"),
        pytest.param("0", 0, id="zero"),
        pytest.param("-1", None, id="negative"),
        pytest.param("1" * 16, None, id="too-many-digits"),
        pytest.param("lots", None, id="word"),
        pytest.param("", None, id="empty"),
        pytest.param("?1", None, id="boolean"),
        pytest.param("NaN", None, id="nan"),
    ],
)
def test_counts_are_non_negative_integers_or_absent(
    value: str, expected: int | None
) -> None:
    """A count that is not a plain non-negative number counts as absent."""
    assert parse({"X-RateLimit-Remaining": value}).remaining == expected


def test_repeated_single_number_lines_take_the_most_cautious() -> None:
    """Several lines of one count field yield the least; of a reset, the latest."""
    lines = [
        ("X-RateLimit-Remaining", "10"),
        ("X-RateLimit-Remaining", "3"),
        ("X-RateLimit-Reset", "4"),
        ("X-RateLimit-Reset", "9"),
    ]

    info = parse(lines)

    assert (info.remaining, info.reset_after) == (3, 9.0)


# --- IETF RateLimit and RateLimit-Policy ---------------------------------------


def test_ietf_fields_join_policy_and_state_by_name() -> None:
    """RateLimit-Policy's quota and RateLimit's state meet under one name."""
    headers = {
        "RateLimit-Policy": '"default";q=100;w=10',
        "RateLimit": '"default";r=50;t=30',
    }

    info = parse(headers)

    assert info.policies == (Policy("default", 100, 10.0, 50, 30.0),)
    assert (info.limit, info.remaining, info.reset_after) == (100, 50, 30.0)
    assert info.source == "ietf"


def test_ietf_names_may_be_tokens() -> None:
    """Policy names written as tokens rather than strings are read too."""
    headers = {"RateLimit-Policy": "default;q=10;w=1", "RateLimit": "default;r=2"}

    assert parse(headers).policy("default") == Policy("default", 10, 1.0, 2)


def test_ietf_quota_unit_and_partition_key_are_kept() -> None:
    """The qu and pk parameters survive into the policy."""
    headers = {
        "RateLimit-Policy": '"day";q=1000;w=86400;qu="requests";pk=:dXNlcjE=:',
    }

    policy = parse(headers).policy("day")

    assert policy == Policy(
        "day",
        quota=1000,
        window=86400.0,
        quota_unit="requests",
        partition_key=b"user1",
    )


def test_the_slowest_pacing_policy_sets_the_top_level_values() -> None:
    """With several policies the one that paces slowest describes the response."""
    headers = {
        "RateLimit-Policy": '"burst";q=100;w=60, "day";q=1000;w=86400',
        "RateLimit": '"burst";r=50;t=30, "day";r=10;t=3600',
    }

    info = parse(headers)

    assert [policy.name for policy in info.policies] == ["burst", "day"]
    assert (info.limit, info.remaining, info.reset_after) == (1000, 10, 3600.0)


def test_policies_pacing_alike_yield_to_the_one_with_less_left() -> None:
    """When two policies pace alike, the one with fewer requests left wins."""
    headers = {"RateLimit": '"a";r=20;t=10, "b";r=2;t=1'}

    assert parse(headers).remaining == 2


def test_a_spent_policy_without_a_reset_ranks_first() -> None:
    """Nothing left and no reset is the tightest a policy can be."""
    headers = {"RateLimit": '"hour";r=5;t=10, "odd";r=0'}

    info = parse(headers)

    assert (info.remaining, info.reset_after) == (0, None)


def test_a_policy_without_reset_is_paced_over_its_window() -> None:
    """A missing reset is bounded by the policy's window when ranking."""
    headers = {
        "RateLimit-Policy": '"slow";q=10;w=100, "fast";q=10;w=1',
        "RateLimit": '"slow";r=5, "fast";r=5;t=1',
    }

    assert parse(headers).limit == 10
    assert parse(headers).reset_after is None


def test_ietf_fields_split_over_lines_are_joined() -> None:
    """A list field sent on several lines reads as one comma-joined list."""
    lines = [
        ("RateLimit-Policy", '"burst";q=100;w=60'),
        ("ratelimit-policy", '"day";q=1000;w=86400'),
        ("RateLimit", '"burst";r=99;t=59'),
        ("RateLimit", '"day";r=999;t=86399'),
    ]

    info = parse(lines)

    assert info.policy("burst") == Policy("burst", 100, 60.0, 99, 59.0)
    assert info.policy("day") == Policy("day", 1000, 86400.0, 999, 86399.0)


def test_httpx_headers_keep_their_repeated_lines() -> None:
    """An httpx.Headers object is read through its repeated lines."""
    headers = httpx.Headers(
        [("RateLimit", '"a";r=1;t=2'), ("RateLimit", '"b";r=3;t=4')]
    )

    info = parse_headers(200, headers, NOW)

    assert [policy.name for policy in info.policies] == ["a", "b"]


def test_bytes_header_pairs_are_accepted() -> None:
    """Raw byte pairs, as a transport sees them, are read too."""
    info = parse_headers(429, [(b"retry-after", b"3")], NOW)

    assert info.retry_after == 3.0


def test_a_malformed_member_is_skipped_and_the_rest_kept() -> None:
    """One bad list member does not cost the others."""
    headers = {"RateLimit": '"a";r=5;t=1.2.3, "b";r=7;t=10, "c";r='}

    info = parse(headers)

    assert [policy.name for policy in info.policies] == ["b"]
    assert (info.remaining, info.reset_after) == (7, 10.0)


@pytest.mark.parametrize(
    "state",
    [
        pytest.param('"a";r=-1;t=-5', id="negative"),
        pytest.param('"a";r=?1;t=?0', id="booleans"),
        pytest.param('"a";r="5";t=x', id="string-and-token"),
        pytest.param('"a";r=:AAA=:;t=1800000000', id="bytes-and-far-epoch"),
    ],
)
def test_ietf_parameters_of_the_wrong_kind_are_absent(state: str) -> None:
    """A parameter that is not a usable number counts as absent."""
    info = parse({"RateLimit": state})

    assert info.policies == (Policy("a"),)
    assert (info.remaining, info.reset_after, info.source) == (None, None, None)


def test_string_escapes_in_names_are_decoded() -> None:
    """Quoted names undo their backslash escapes."""
    info = parse({"RateLimit": r'"a\"b\\c";r=1'})

    assert info.policies[0].name == 'a"b\\c'


def test_ietf_draft_dictionary_form_is_read() -> None:
    """Earlier drafts' combined dictionary field gives limit, remaining, reset."""
    headers = {
        "RateLimit": "limit=10, remaining=5, reset=3",
        "RateLimit-Policy": "10;w=1, 50;w=60",
    }

    info = parse(headers)

    assert (info.limit, info.remaining, info.reset_after) == (10, 5, 3.0)
    assert info.policies == (
        Policy(None, quota=10, window=1.0),
        Policy(None, quota=50, window=60.0),
    )
    assert info.source == "ietf-draft"


# --- Order of trust ----------------------------------------------------------


def test_ietf_fields_outrank_x_ratelimit() -> None:
    """With both present, the IETF fields describe the limit."""
    headers = {
        "RateLimit": '"default";r=1;t=2',
        "X-RateLimit-Remaining": "99",
        "X-RateLimit-Reset": "60",
    }

    info = parse(headers)

    assert (info.remaining, info.reset_after, info.source) == (1, 2.0, "ietf")


def test_x_ratelimit_outranks_the_legacy_fields() -> None:
    """X-RateLimit wins over the early drafts' RateLimit-Remaining."""
    headers = {"X-RateLimit-Remaining": "4", "RateLimit-Remaining": "40"}

    assert parse(headers).remaining == 4


def test_dialects_are_not_mixed_field_by_field() -> None:
    """The chosen dialect's fields are used as they are, gaps and all."""
    headers = {"X-RateLimit-Remaining": "4", "RateLimit-Limit": "40"}

    info = parse(headers)

    assert (info.limit, info.remaining) == (None, 4)


def test_policies_alone_do_not_outrank_a_pacing_dialect() -> None:
    """Quotas without state yield to a dialect that says what remains."""
    headers = {
        "RateLimit-Policy": '"default";q=100;w=60',
        "X-RateLimit-Remaining": "4",
        "X-RateLimit-Reset": "6",
    }

    info = parse(headers)

    assert (info.remaining, info.reset_after, info.source) == (4, 6.0, "x-ratelimit")
    assert info.policies == (Policy("default", 100, 60.0),)


def test_no_rate_limit_headers_give_an_empty_reading() -> None:
    """A response without any of these fields reports nothing."""
    assert parse({"Content-Type": "text/plain"}) == RateLimitInfo(status=200)


# --- What the response means -------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        pytest.param(429, {}, True, id="429"),
        pytest.param(403, {"X-RateLimit-Remaining": "0"}, True, id="403-spent"),
        pytest.param(403, {"Retry-After": "5"}, True, id="403-retry-after"),
        pytest.param(403, {"X-RateLimit-Remaining": "8"}, False, id="403-other"),
        pytest.param(503, {"Retry-After": "5"}, True, id="503-retry-after"),
        pytest.param(503, {}, False, id="503-bare"),
        pytest.param(200, {"X-RateLimit-Remaining": "0"}, False, id="200-spent"),
    ],
)
def test_rate_limited_names_refusals_over_limits(
    status: int, headers: dict[str, str], expected: bool
) -> None:
    """A 429, or a 403/503 carrying a wait or a spent quota, is a refusal."""
    assert parse(headers, status).rate_limited is expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            {
                "Retry-After": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": "9",
            },
            5.0,
            id="retry-after-first",
        ),
        pytest.param(
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "9"},
            9.0,
            id="spent-waits-for-reset",
        ),
        pytest.param(
            {"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "9"},
            None,
            id="quota-left",
        ),
    ],
)
def test_delay_is_the_server_imposed_wait(
    headers: dict[str, str], expected: float | None
) -> None:
    """delay is Retry-After, else the reset when nothing remains, else None."""
    assert parse(headers, 429).delay == expected


# --- pace ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remaining", "reset_after", "expected"),
    [
        pytest.param(10, 5.0, 0.5, id="spread"),
        pytest.param(1, 12.0, 12.0, id="last-one"),
        pytest.param(0, 12.0, 12.0, id="spent-waits-for-reset"),
        pytest.param(4, 0.0, 0.0, id="reset-now"),
    ],
)
def test_pace_spreads_the_remaining_quota_evenly(
    remaining: int, reset_after: float, expected: float
) -> None:
    """pace is the time left divided by the requests left, at least one."""
    assert pace(remaining, reset_after) == expected


@pytest.mark.parametrize(
    ("remaining", "reset_after", "name"),
    [
        pytest.param(-1, 1.0, "remaining", id="negative-remaining"),
        pytest.param(math.nan, 1.0, "remaining", id="nan-remaining"),
        pytest.param(1, -1.0, "reset_after", id="negative-reset"),
        pytest.param(1, math.inf, "reset_after", id="infinite-reset"),
    ],
)
def test_pace_rejects_impossible_arguments(
    remaining: float, reset_after: float, name: str
) -> None:
    """pace refuses negative or non-finite input, naming the argument."""
    with pytest.raises(ValueError, match=name):
        pace(remaining, reset_after)


# --- Arguments -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "bound", "name"),
    [
        pytest.param(math.nan, 60.0, "now", id="nan-now"),
        pytest.param(NOW, math.inf, "max_retry_after", id="infinite-bound"),
        pytest.param(NOW, -1.0, "max_retry_after", id="negative-bound"),
    ],
)
def test_bad_arguments_fail_fast(now: float, bound: float, name: str) -> None:
    """The caller's own arguments are checked, naming the bad one."""
    with pytest.raises(ValueError, match=name):
        parse_headers(200, {}, now, max_retry_after=bound)


# --- Fuzzing -------------------------------------------------------------------

KNOWN_NAMES = [
    "Retry-After",
    "Date",
    "RateLimit",
    "RateLimit-Policy",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Reset-After",
    "X-RateLimit-Used",
    "X-RateLimit-Resource",
    "X-Rate-Limit-Remaining",
    "X-Rate-Limit-Reset",
]
NUMBER = r"-?[0-9]{0,17}(\.[0-9]{0,5})?"
ITEM = rf'({NUMBER}|"[^"]{{0,4}}"?|[a-z*]{{1,3}}|\?[012]|:[A-Za-z0-9+/=]{{0,6}}:?)'
MEMBER = rf"([a-z]{{1,6}}=)?{ITEM}(;[a-z]{{1,2}}(={ITEM})?){{0,3}}"
NEAR_VALID = [
    rf"{NUMBER}",
    rf"{MEMBER}(, ?{MEMBER}){{0,3}}",
    r"[A-Z][a-z]{2,8}, [0-9]{1,2}[ -][A-Z][a-z]{2}[ -][0-9]{2,5} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT",
    r"[A-Z][a-z]{2} [A-Z][a-z]{2} {1,2}[0-9]{1,2} [0-9:]{8} [0-9]{4}",
]
values = st.one_of(
    st.text(),
    *(st.from_regex(pattern, fullmatch=True) for pattern in NEAR_VALID),
)
names = st.one_of(st.sampled_from(KNOWN_NAMES), st.text(max_size=20))


def assert_wait(wait: float | None, bound: float = math.inf) -> None:
    if wait is not None:
        assert math.isfinite(wait)
        assert 0.0 <= wait <= bound


@settings(max_examples=300)
@given(
    status=st.integers(),
    lines=st.lists(st.tuples(names, values), max_size=8),
    now=st.floats(allow_nan=False, allow_infinity=False),
    bound=st.floats(min_value=0.0, max_value=1e9),
)
def test_fuzzed_headers_never_raise_or_yield_bad_waits(
    status: int, lines: list[tuple[str, str]], now: float, bound: float
) -> None:
    """Whatever a server sends, parsing succeeds and every wait is finite, >= 0."""
    info = parse_headers(status, lines, now, max_retry_after=bound)

    assert_wait(info.retry_after, bound)
    assert_wait(info.reset_after)
    assert_wait(info.delay, max(bound, info.reset_after or 0.0))
    for policy in info.policies:
        assert_wait(policy.reset_after)
        assert_wait(policy.window)
    for count in (info.limit, info.remaining, info.used):
        assert count is None or count >= 0
    if info.remaining is not None and info.reset_after is not None:
        assert_wait(pace(info.remaining, info.reset_after))
