"""Read what a server says about its rate limits from response headers.

`parse_headers` takes a status, the header lines and the current time, and
returns one `RateLimitInfo`. It never raises on anything a server sends: a
value it cannot read counts as absent, never as "go now", and every wait it
reports is finite and at least zero.

Dialects, in order of trust:

1. ``Retry-After`` (RFC 9110 §10.2.3), sent with 429 (RFC 6585 §4), 503
   and some 403s. It alone answers "when may I come back", so it is read on
   its own and reported as `RateLimitInfo.retry_after`. Its value is
   delay-seconds or an HTTP-date in any of the three forms of RFC 9110
   §5.6.7 (IMF-fixdate, the obsolete RFC 850 form, asctime). Fractional
   seconds are not in the spec but are seen in the wild; they are kept.
2. The IETF fields of draft-ietf-httpapi-ratelimit-headers (source
   ``"ietf"``): Structured Field lists (RFC 9651) of named policies,
   ``RateLimit-Policy: "default";q=100;w=10`` (quota ``q``, window ``w`` in
   seconds, quota units ``qu``, partition key ``pk``) and
   ``RateLimit: "default";r=50;t=30`` (``r`` remaining, ``t`` seconds until
   the quota resets). Earlier drafts' forms are read as source
   ``"ietf-draft"``: the dictionary ``RateLimit: limit=10, remaining=5,
   reset=3`` and unnamed policies ``RateLimit-Policy: 10;w=1, 50;w=60``.
3. ``X-RateLimit-Limit``, ``-Remaining``, ``-Reset`` and ``-Reset-After``
   (source ``"x-ratelimit"``; ``"github"`` when GitHub's ``-Used`` or
   ``-Resource`` is present too).
4. ``X-Rate-Limit-*``, the same suffixes (source ``"x-rate-limit"``).
5. ``RateLimit-Limit``, ``-Remaining``, ``-Reset`` from the drafts before
   the combined field (source ``"ratelimit-legacy"``).

``limit``, ``remaining`` and ``reset_after`` all come from the most trusted
dialect that gives a remaining count or a reset, and are never mixed across
dialects: two dialects in one response may describe different limits.
``policies`` come from the most trusted dialect that names any.

Field lines. Names are case-insensitive. A list field sent on several lines
(``RateLimit``, ``RateLimit-Policy``) is joined with ``", "`` before it is
parsed, as RFC 9110 §5.3 combines field lines. A single-number field sent on
several lines is read line by line, and the most cautious reading wins: the
smallest limit and remaining count, the latest reset, the longest
``Retry-After``. Of a line such as ``X-RateLimit-Limit: 100, 100;w=60`` the
first number is the limit, and members carrying ``w`` describe policies.

Numbers. Counts are integers of at most 15 digits, as in Structured Fields;
a decimal count is rounded down. Negative numbers, longer numbers,
exponents, ``NaN``, ``inf`` and words count as absent. In a Structured
Field, a malformed member is skipped and the others are kept.

Reset times are read by this rule, applied to every reset field:

- a value above ``1e12`` is epoch milliseconds;
- a value above ``1e9`` (September 2001 as epoch seconds) is epoch seconds;
- anything else is seconds from now (the drafts' delta form).

Epoch forms, and ``Retry-After`` HTTP-dates, are measured against the
response's ``Date`` header when it can be read, and against ``now``
otherwise; so a client whose clock is off from the server's still reads the
right wait. ``Date`` has one-second resolution and is stamped before the
response travels, so waits read this way err long by up to a second plus
the response's transit time, never short. A reset in the past is ``0``; one
more than 366 days away is not believable and counts as absent. Within a
family the delta field (``-Reset-After``) is preferred to ``-Reset``.

Several policies (the IETF fields) are ranked by how slowly they would pace
requests, `pace` of their remaining count and reset; ties go to the one with
fewer requests left. A policy without a reset is paced over its window, and
one with nothing left and no reset ranks first. The top-level ``limit``,
``remaining`` and ``reset_after`` describe the policy that ranks first.

Pacing spreads the remaining quota evenly over the time left::

    pace(remaining, reset_after) = reset_after / max(remaining, 1)

so with nothing left the next request waits for the reset.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from .._validate import seconds

__all__ = [
    "MAX_RETRY_AFTER",
    "Policy",
    "RateLimitInfo",
    "pace",
    "parse_headers",
    "parse_http_date",
]

#: Default bound, in seconds, above which ``Retry-After`` is flagged.
MAX_RETRY_AFTER = 3600.0

_EPOCH_MS_ABOVE = 1e12
_EPOCH_S_ABOVE = 1e9
_MAX_RESET = 366 * 86400.0
# Seconds of transit by which our clock may run past the server's Date and
# still count as the same clock.
_CLOCK_AGREEMENT = 0.25
_T = TypeVar("_T")
_ASCII_I = re.ASCII | re.IGNORECASE

Headers = (
    Mapping[str, str]
    | Mapping[bytes, bytes]
    | Iterable[tuple[str, str]]
    | Iterable[tuple[bytes, bytes]]
)


@dataclass(frozen=True)
class Policy:
    """One named quota a server enforces, as far as its headers tell.

    Attributes:
        name: The policy's name; ``None`` for the unnamed policies of early
            drafts and of ``X-RateLimit-Limit: 100, 100;w=60``.
        quota: Quota units allowed per window, or ``None`` if not given.
        window: Length of the window in seconds, or ``None``.
        remaining: Quota units left, or ``None``.
        reset_after: Seconds until the quota resets, or ``None``.
        quota_unit: What the quota counts (``qu``, for example
            ``"requests"``), or ``None``.
        partition_key: The server's partition key (``pk``), or ``None``.
    """

    name: str | None
    quota: int | None = None
    window: float | None = None
    remaining: int | None = None
    reset_after: float | None = None
    quota_unit: str | None = None
    partition_key: bytes | None = None


@dataclass(frozen=True)
class RateLimitInfo:
    """Everything a response's headers say about the server's rate limits.

    Attributes:
        status: The response's status code.
        limit: Requests allowed per window, or ``None``.
        remaining: Requests left in the window, or ``None``.
        reset_after: Seconds until the window resets, or ``None``.
        retry_after: Seconds the server asks us to wait (``Retry-After``),
            at most the parser's ``max_retry_after``; ``None`` if absent or
            unreadable.
        retry_after_too_large: The server asked for more than
            ``max_retry_after``; ``retry_after`` then holds that bound.
        policies: Policies the server described, in the order it gave them.
        used: Requests used in the window (GitHub), or ``None``.
        resource: Which of the server's limits applied (GitHub), or ``None``.
        source: The dialect ``limit``, ``remaining`` and ``reset_after``
            came from, for logs; ``None`` when no dialect gave them.
    """

    status: int
    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None
    retry_after: float | None = None
    retry_after_too_large: bool = False
    policies: tuple[Policy, ...] = ()
    used: int | None = None
    resource: str | None = None
    source: str | None = None

    @property
    def rate_limited(self) -> bool:
        """Whether the server refused the request over its rate limits.

        True for 429 (RFC 6585 §4), and for 403 or 503 when the response
        also carries ``Retry-After`` or a remaining count of zero, as
        GitHub and overloaded servers send.
        """
        if self.status == 429:
            return True
        told = self.retry_after is not None or self.remaining == 0
        return self.status in (403, 503) and told

    @property
    def delay(self) -> float | None:
        """Seconds before the server will take requests again, if known.

        ``retry_after`` when given; otherwise ``reset_after`` when nothing
        remains; otherwise ``None``.
        """
        if self.retry_after is not None:
            return self.retry_after
        if self.remaining == 0:
            return self.reset_after
        return None

    def policy(self, name: str) -> Policy | None:
        """Return the policy called ``name``, or ``None``."""
        return next((p for p in self.policies if p.name == name), None)


def parse_headers(
    status: int,
    headers: Headers,
    now: float,
    *,
    max_retry_after: float | timedelta = MAX_RETRY_AFTER,
) -> RateLimitInfo:
    """Read the rate-limit headers of a response.

    Args:
        status: The response's status code.
        headers: The header lines: a mapping, or ``(name, value)`` pairs of
            `str` or `bytes` so that repeated lines survive. An object with
            a ``multi_items()`` method, such as `httpx.Headers`, is read
            through it.
        now: The current time, epoch seconds.
        max_retry_after: Seconds above which ``Retry-After`` is reported as
            too large and clamped to this bound; default one hour.

    Returns:
        What the headers say; fields the headers do not give are ``None``.

    Raises:
        ValueError: ``now`` is not finite, or ``max_retry_after`` is not a
            finite number of seconds >= 0. Header values never raise.
    """
    bound = _check_args(now, max_retry_after)

    fields = _collect(headers)
    clock = _server_clock(fields.get("date", ()), now)
    readings = _readings(fields, clock)
    chosen = _choose(readings)
    policies = next((r.policies for r in readings if r.policies), ())
    wait = _retry_after(fields.get("retry-after", ()), clock, now)

    return RateLimitInfo(
        status=status,
        limit=chosen.limit,
        remaining=chosen.remaining,
        reset_after=chosen.reset_after,
        retry_after=None if wait is None else min(wait, bound),
        retry_after_too_large=wait is not None and wait > bound,
        policies=policies,
        used=chosen.used,
        resource=chosen.resource,
        source=chosen.source,
    )


def pace(remaining: float, reset_after: float) -> float:
    """Return the seconds between requests that spread a quota evenly.

    Args:
        remaining: Requests left before the reset; ``0`` means wait for it.
        reset_after: Seconds until the quota resets.

    Returns:
        ``reset_after / max(remaining, 1)``: finite and >= 0.

    Raises:
        ValueError: An argument is negative or not finite.
    """
    if not (math.isfinite(remaining) and remaining >= 0):
        raise ValueError(f"remaining must be a finite count >= 0, got {remaining!r}")
    if not (math.isfinite(reset_after) and reset_after >= 0):
        raise ValueError(
            f"reset_after must be finite seconds >= 0, got {reset_after!r}"
        )
    return reset_after / max(remaining, 1)


def _check_args(now: float, max_retry_after: float | timedelta) -> float:
    if not math.isfinite(now):
        raise ValueError(f"now must be finite epoch seconds, got {now!r}")
    bound = seconds("max_retry_after", max_retry_after)
    if bound is None or not math.isfinite(bound):
        raise ValueError(
            f"max_retry_after must be finite seconds >= 0, got {max_retry_after!r}"
        )
    return bound


# --- Field lines -----------------------------------------------------------


def _collect(headers: Headers) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for name, value in _pairs(headers):
        fields.setdefault(_text(name).strip().lower(), []).append(_text(value))
    return fields


def _pairs(headers: Headers) -> Iterable[tuple[str | bytes, str | bytes]]:
    multi_items = getattr(headers, "multi_items", None)
    if callable(multi_items):
        pairs: Iterable[tuple[str | bytes, str | bytes]] = multi_items()
        return pairs
    if isinstance(headers, Mapping):
        return headers.items()
    return headers


def _text(value: str | bytes) -> str:
    # Header bytes outside ASCII are opaque (RFC 9110 §5.5); latin-1 keeps
    # them as characters instead of failing to decode.
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


# --- HTTP dates (RFC 9110 §5.6.7) -------------------------------------------

_MONTH_NAMES = "jan feb mar apr may jun jul aug sep oct nov dec"
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES.split(), 1)}
_DAYS = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
_LONG_DAYS = {
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
}
_TIME = r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
_IMF_FIXDATE = re.compile(
    r"(?P<wday>[a-z]{3}), (?P<day>[0-9]{2}) (?P<month>[a-z]{3}) "
    rf"(?P<year>[0-9]{{4}}) {_TIME} GMT",
    _ASCII_I,
)
_RFC850_DATE = re.compile(
    r"(?P<wday>[a-z]{6,9}), (?P<day>[0-9]{2})-(?P<month>[a-z]{3})-"
    rf"(?P<year>[0-9]{{2}}) {_TIME} GMT",
    _ASCII_I,
)
_ASCTIME_DATE = re.compile(
    r"(?P<wday>[a-z]{3}) (?P<month>[a-z]{3}) {1,2}(?P<day>[0-9]{1,2}) "
    rf"{_TIME} (?P<year>[0-9]{{4}})",
    _ASCII_I,
)
_LAST_EPOCH = 253402300799  # 9999-12-31T23:59:59Z, the last time gmtime takes


def parse_http_date(text: str, now: float) -> float | None:
    """Return an HTTP-date as epoch seconds, or ``None`` if unreadable.

    Accepts the three forms of RFC 9110 §5.6.7, names in any case. The
    weekday must be a weekday's name but is not checked against the date.

    Args:
        text: The date, such as ``"Sun, 06 Nov 1994 08:49:37 GMT"``.
        now: The current time, epoch seconds; it places the two-digit years
            of the RFC 850 form.
    """
    text = text.strip()
    if match := _IMF_FIXDATE.fullmatch(text):
        return _epoch(match, _DAYS, int(match["year"]))
    if match := _RFC850_DATE.fullmatch(text):
        return _epoch(match, _LONG_DAYS, _full_year(int(match["year"]), now))
    if match := _ASCTIME_DATE.fullmatch(text):
        return _epoch(match, _DAYS, int(match["year"]))
    return None


def _full_year(two_digits: int, now: float) -> int:
    # RFC 9110 §5.6.7: a two-digit year that would be more than 50 years in
    # the future is the most recent past year with those last two digits.
    current = time.gmtime(min(max(now, 0.0), _LAST_EPOCH)).tm_year
    year = current - (current - two_digits) % 100
    return year + 100 if year + 100 - current <= 50 else year


def _epoch(match: re.Match[str], weekdays: set[str], year: int) -> float | None:
    month = _MONTHS.get(match["month"].lower())
    day, hour = int(match["day"]), int(match["hour"])
    minute, second = int(match["minute"]), int(match["second"])

    if match["wday"].lower() not in weekdays or month is None:
        return None
    if not (year >= 1 and 1 <= day <= _days_in(year, month)):
        return None
    # Second 60 is a leap second; timegm counts it into the next minute.
    if hour > 23 or minute > 59 or second > 60:
        return None

    return float(calendar.timegm((year, month, day, hour, minute, second)))


def _days_in(year: int, month: int) -> int:
    if month == 2:
        return 29 if calendar.isleap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _server_clock(lines: Iterable[str], now: float) -> float:
    dates = (parse_http_date(line, now) for line in lines)
    date = next((date for date in dates if date is not None), None)
    if date is None:
        return now
    # Date is the server's clock cut down to the second. When ours agrees
    # with it to within that second, ours is the same clock read more
    # finely; otherwise the clocks differ, and Date (which errs long) wins.
    if date <= now < date + 1.0 + _CLOCK_AGREEMENT:
        return now
    return date


# --- Retry-After (RFC 9110 §10.2.3) -----------------------------------------

_DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)


def _retry_after(lines: Iterable[str], clock: float, now: float) -> float | None:
    delays = (_one_retry_after(line, clock, now) for line in lines)
    return max((delay for delay in delays if delay is not None), default=None)


def _one_retry_after(line: str, clock: float, now: float) -> float | None:
    text = line.strip()
    if _DELAY_SECONDS.fullmatch(text):
        # An absurdly long number reads as inf; the caller's bound makes it
        # finite and flags it.
        return float(text)

    date = parse_http_date(text, now)
    if date is None:
        return None
    return max(date - clock, 0.0)


# --- Structured Fields (RFC 9651), read tolerantly ---------------------------


@dataclass(frozen=True)
class _Token:
    text: str


_Item = int | float | str | bool | bytes | _Token


@dataclass(frozen=True)
class _Member:
    key: str | None
    value: _Item
    params: dict[str, _Item] = field(default_factory=dict)


class _Malformed(Exception):
    """A member does not parse; it is skipped."""


def _unescape(match: re.Match[str]) -> str:
    return re.sub(r"\\([\"\\])", r"\1", match[1])


def _decode_bytes(match: re.Match[str]) -> bytes:
    try:
        return base64.b64decode(match[1], validate=True)
    except binascii.Error:
        raise _Malformed from None


# Tried in order: a decimal before the integer it starts with. Integers
# keep the 15-digit bound of RFC 9651 §3.3.1, so no value is ever huge;
# decimals may carry more than three fraction digits, as epoch resets do.
_ITEMS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], _Item]], ...] = (
    (re.compile(r"-?[0-9]{1,15}\.[0-9]+", re.ASCII), lambda m: float(m[0])),
    (re.compile(r"-?[0-9]{1,15}", re.ASCII), lambda m: int(m[0])),
    (re.compile(r'"((?:[^"\\]|\\["\\])*)"'), _unescape),
    (
        re.compile(r"[a-z*][-!#$%&'*+.^_`|~0-9a-z:/]*", _ASCII_I),
        lambda m: _Token(m[0]),
    ),
    (re.compile(r"\?([01])"), lambda m: m[1] == "1"),
    (re.compile(r":([A-Za-z0-9+/=]*):"), _decode_bytes),
)
_KEY = re.compile(r"[a-z*][-a-z0-9_.*]*", _ASCII_I)
_KEY_ASSIGN = re.compile(r"([a-z*][-a-z0-9_.*]*)[ \t]*=[ \t]*", _ASCII_I)
_PARAM_START = re.compile(r"[ \t]*;[ \t]*")
_EQUALS = re.compile(r"[ \t]*=[ \t]*")


class _Cursor:
    """Parse one list or dictionary member: ``[key=]item[;param[=item]]*``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def member(self) -> _Member:
        key = self._take(_KEY_ASSIGN)
        value = self._item()
        params = self._params()
        if self.pos != len(self.text):
            raise _Malformed
        return _Member(key[1].lower() if key else None, value, params)

    def _take(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        match = pattern.match(self.text, self.pos)
        if match:
            self.pos = match.end()
        return match

    def _item(self) -> _Item:
        for pattern, convert in _ITEMS:
            if match := self._take(pattern):
                return convert(match)
        raise _Malformed

    def _params(self) -> dict[str, _Item]:
        params: dict[str, _Item] = {}
        while self._take(_PARAM_START):
            key = self._take(_KEY)
            if key is None:
                raise _Malformed
            # A bare key is true (RFC 9651 §3.1.2); a repeated key's last
            # value wins.
            params[key[0].lower()] = self._item() if self._take(_EQUALS) else True
        return params


def _members(text: str) -> list[_Member]:
    members = (_member(chunk) for chunk in _split(text))
    return [member for member in members if member is not None]


def _member(chunk: str) -> _Member | None:
    try:
        return _Cursor(chunk).member()
    except _Malformed:
        return None


def _split(text: str) -> list[str]:
    # Split at the commas outside quoted strings; each piece is one member.
    chunks, start, quoted, escaped = [], 0, False, False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif quoted:
            escaped, quoted = char == "\\", char != '"'
        elif char == '"':
            quoted = True
        elif char == ",":
            chunks.append(text[start:index])
            start = index + 1
    chunks.append(text[start:])
    return [chunk.strip(" \t") for chunk in chunks if chunk.strip(" \t")]


# --- Values ----------------------------------------------------------------


def _number(value: _Item | None) -> float | None:
    # bool is an int to Python, but ?1 is not a number to a server.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value >= 0 else None


def _count(value: _Item | None) -> int | None:
    number = _number(value)
    return None if number is None else math.floor(number)


def _window(value: _Item | None) -> float | None:
    number = _number(value)
    return number if number else None


def _reset(value: _Item | None, clock: float) -> float | None:
    number = _number(value)
    if number is None:
        return None

    if number > _EPOCH_MS_ABOVE:
        number = number / 1000 - clock
    elif number > _EPOCH_S_ABOVE:
        number -= clock

    wait = max(number, 0.0)
    return wait if wait <= _MAX_RESET else None


def _name(value: _Item) -> str | None:
    if isinstance(value, _Token):
        return value.text
    return value if isinstance(value, str) else None


def _bytes(value: _Item | None) -> bytes | None:
    return value if isinstance(value, bytes) else None


# --- Dialects ----------------------------------------------------------------


@dataclass(frozen=True)
class _Reading:
    source: str | None
    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None
    policies: tuple[Policy, ...] = ()
    used: int | None = None
    resource: str | None = None

    @property
    def paces(self) -> bool:
        return self.remaining is not None or self.reset_after is not None

    @property
    def empty(self) -> bool:
        return self == _Reading(self.source)


_NOTHING = _Reading(None)
_FAMILIES = (
    ("x-ratelimit-", "x-ratelimit"),
    ("x-rate-limit-", "x-rate-limit"),
    ("ratelimit-", "ratelimit-legacy"),
)


def _readings(fields: dict[str, list[str]], clock: float) -> list[_Reading]:
    limit = _members(", ".join(fields.get("ratelimit", ())))
    policy = _members(", ".join(fields.get("ratelimit-policy", ())))
    readings = [
        _read_ietf(limit, policy, clock),
        _read_ietf_draft(limit, policy, clock),
    ]
    for prefix, source in _FAMILIES:
        readings.append(_read_family(fields, prefix, source, clock))
    return [reading for reading in readings if not reading.empty]


def _choose(readings: list[_Reading]) -> _Reading:
    pacing = (reading for reading in readings if reading.paces)
    limited = (reading for reading in readings if reading.limit is not None)
    return next(pacing, next(limited, _NOTHING))


def _read_ietf(limit: list[_Member], policy: list[_Member], clock: float) -> _Reading:
    declared = _by_name(policy)
    current = _by_name(limit)
    names = dict.fromkeys([*declared, *current])
    policies = tuple(
        _ietf_policy(name, declared.get(name), current.get(name), clock)
        for name in names
    )

    top = _most_constraining(policies)
    if top is None:
        return _Reading("ietf", policies=policies)
    return _Reading(
        "ietf", top.quota, top.remaining, top.reset_after, policies=policies
    )


def _by_name(members: list[_Member]) -> dict[str, _Member]:
    named: dict[str, _Member] = {}
    for member in members:
        name = _name(member.value) if member.key is None else None
        if name is not None:
            named.setdefault(name, member)
    return named


def _ietf_policy(
    name: str,
    declared: _Member | None,
    current: _Member | None,
    clock: float,
) -> Policy:
    quota = declared.params if declared else {}
    state = current.params if current else {}
    unit = quota.get("qu")
    return Policy(
        name,
        quota=_count(quota.get("q")),
        window=_window(quota.get("w")),
        remaining=_count(state.get("r")),
        reset_after=_reset(state.get("t"), clock),
        quota_unit=_name(unit) if unit is not None else None,
        partition_key=_bytes(state.get("pk")) or _bytes(quota.get("pk")),
    )


def _most_constraining(policies: Iterable[Policy]) -> Policy | None:
    known = [policy for policy in policies if policy.remaining is not None]
    return max(known, key=_slowness, default=None)


def _slowness(policy: Policy) -> tuple[float, float]:
    remaining = policy.remaining or 0
    span = policy.reset_after if policy.reset_after is not None else policy.window
    if span is None:
        # Nothing left and no idea when it comes back: the tightest of all.
        interval = math.inf if remaining == 0 else 0.0
    else:
        interval = pace(remaining, span)
    return interval, -remaining


def _read_ietf_draft(
    limit: list[_Member], policy: list[_Member], clock: float
) -> _Reading:
    values: dict[str, _Item] = {}
    for member in limit:
        if member.key is not None:
            values.setdefault(member.key, member.value)
    policies = tuple(
        Policy(None, quota=_count(m.value), window=_window(m.params.get("w")))
        for m in policy
        if m.key is None and _number(m.value) is not None
    )
    return _Reading(
        "ietf-draft",
        _count(values.get("limit")),
        _count(values.get("remaining")),
        _reset(values.get("reset"), clock),
        policies=policies,
    )


def _read_family(
    fields: dict[str, list[str]], prefix: str, source: str, clock: float
) -> _Reading:
    def lines(suffix: str) -> list[list[_Member]]:
        return [_members(line) for line in fields.get(prefix + suffix, ())]

    limits, used = lines("limit"), _firsts(lines("used"), _count)
    resets = _firsts(lines("reset-after"), lambda v: _reset(v, clock))
    resets = resets or _firsts(lines("reset"), lambda v: _reset(v, clock))
    resource = _resource(fields.get(prefix + "resource", ()))
    github = prefix == "x-ratelimit-" and (bool(used) or resource is not None)

    return _Reading(
        "github" if github else source,
        min(_firsts(limits, _count), default=None),
        min(_firsts(lines("remaining"), _count), default=None),
        max(resets, default=None),
        policies=_windowed(limits),
        used=max(used, default=None),
        resource=resource,
    )


def _firsts(lines: list[list[_Member]], read: Callable[[_Item], _T | None]) -> list[_T]:
    # The first number on each line is the value; members after it describe
    # policies. A first number that does not read leaves the line absent.
    found = []
    for members in lines:
        numbers = (m.value for m in members if m.key is None and _is_number(m))
        first = next(numbers, None)
        value = None if first is None else read(first)
        if value is not None:
            found.append(value)
    return found


def _is_number(member: _Member) -> bool:
    value = member.value
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _windowed(lines: list[list[_Member]]) -> tuple[Policy, ...]:
    return tuple(
        Policy(None, quota=_count(m.value), window=_window(m.params["w"]))
        for members in lines
        for m in members
        if "w" in m.params and m.key is None
    )


def _resource(lines: Iterable[str]) -> str | None:
    names = (line.strip() for line in lines)
    return next((name for name in names if name), None)
