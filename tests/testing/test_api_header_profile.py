"""`HeaderProfile`: a fixed-window server that announces its limit."""

from __future__ import annotations

from fractions import Fraction

import httpx

import throttlekit as tk
from throttlekit.testing import ApiRequest, HeaderProfile, RateLimitedAPI

CALL = ApiRequest("GET", "/items/1", "127.0.0.1")


def test_window_counts_down_and_refuses_with_retry_after() -> None:
    """Three per two seconds: remaining counts down, the fourth is refused."""
    limiter = HeaderProfile(quota=3, window=2.0).limiter()

    answers = [limiter.decide(CALL, Fraction(n, 10)) for n in range(4)]

    assert [a.status for a in answers] == [200, 200, 200, 429]
    assert dict(answers[0].headers)["ratelimit"] == '"default";r=2;t=2'
    assert dict(answers[3].headers)["retry-after"] == "2"
    assert dict(answers[3].headers)["ratelimit-policy"] == '"default";q=3;w=2'


def test_a_new_window_starts_after_the_old_one_ends() -> None:
    """After the window has passed, the quota is whole again."""
    limiter = HeaderProfile(quota=1, window=1.0).limiter()
    limiter.decide(CALL, Fraction(0))

    answer = limiter.decide(CALL, Fraction(1))

    assert answer.status == 200
    assert dict(answer.headers)["ratelimit"] == '"default";r=0;t=1'


def test_headers_are_read_by_the_parser_on_loopback() -> None:
    """The real server's fields parse into a remaining count and a reset."""
    with RateLimitedAPI(HeaderProfile(quota=5, window=10.0)) as api:
        response = httpx.get(f"{api.url}/items/1", trust_env=False)

    info = tk.parse_headers(response.status_code, response.headers, 0.0)
    assert (info.remaining, info.reset_after, info.source) == (4, 10.0, "ietf")
