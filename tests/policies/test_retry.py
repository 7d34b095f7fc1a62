"""`Retry`: what is retried, how long it waits, and when it stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import throttlekit as tk
from throttlekit.testing import FakeClock

URL = "https://api.example.test/v1/items"
NO_JITTER = tk.Backoff(initial=1.0, multiplier=2.0, cap=5.0, jitter="none")


class Upstream:
    """Answers from a script of statuses, exceptions or (status, headers)."""

    def __init__(self, *script: object) -> None:
        self.script = list(script)
        self.calls = 0
        self.responses: list[httpx.Response] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        step = self.script.pop(0) if self.script else 200
        if isinstance(step, Exception):
            raise step
        status, headers = step if isinstance(step, tuple) else (step, {})
        response = httpx.Response(status, headers=headers, stream=Body())
        self.responses.append(response)
        return response


class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that knows whether it was closed."""

    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield b"{}"

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        yield b"{}"

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def client(upstream: Upstream, clock: FakeClock, retry: tk.Retry) -> httpx.Client:
    return httpx.Client(
        transport=tk.ThrottledTransport(
            retry,
            transport=httpx.MockTransport(upstream),
            backend=tk.MemoryBackend(clock=clock.now),
            sleep=clock.sleep,
            clock=clock.now,
        )
    )


def test_429_waits_retry_after_then_succeeds() -> None:
    """A 429 with Retry-After is retried after exactly that wait."""
    clock, upstream = FakeClock(), Upstream((429, {"Retry-After": "3"}), 200)

    response = client(upstream, clock, tk.Retry(backoff=NO_JITTER)).get(URL)

    assert response.status_code == 200
    assert clock.slept == [3.0]
    assert upstream.calls == 2


def test_overloads_back_off_exponentially_to_the_cap() -> None:
    """Without a server hint, waits follow the backoff envelope up to its cap."""
    clock, upstream = FakeClock(), Upstream(503, 502, 504, 503, 200)

    response = client(upstream, clock, tk.Retry(backoff=NO_JITTER)).get(URL)

    assert response.status_code == 200
    assert clock.slept == [1.0, 2.0, 4.0, 5.0]


def test_discarded_responses_are_closed() -> None:
    """Every response that is retried is closed before the next attempt."""
    clock, upstream = FakeClock(), Upstream(503, 503, 200)

    client(upstream, clock, tk.Retry(backoff=NO_JITTER)).get(URL)

    assert [r.stream.closed for r in upstream.responses[:2]] == [True, True]  # type: ignore[attr-defined]


def test_attempts_run_out_returning_the_last_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After the last attempt the last response comes back, with one warning."""
    clock, upstream = FakeClock(), Upstream(503, 503, 503, 503)

    with caplog.at_level(logging.WARNING, logger="throttlekit.retry"):
        response = client(upstream, clock, tk.Retry(3, backoff=NO_JITTER)).get(URL)

    assert response.status_code == 503
    assert upstream.calls == 3
    assert len(caplog.records) == 1
    assert "3 attempts made" in caplog.records[0].getMessage()


def test_transport_errors_are_retried_then_reraised_unchanged() -> None:
    """A connection error is retried; the last one is re-raised as it was."""
    last = httpx.ConnectError("refused again")
    clock = FakeClock()
    upstream = Upstream(httpx.ConnectError("refused"), last)

    with pytest.raises(httpx.ConnectError) as info:
        client(upstream, clock, tk.Retry(2, backoff=NO_JITTER)).get(URL)

    assert info.value is last
    assert clock.slept == [1.0]


@pytest.mark.parametrize("status", [401, 403, 400, 500], ids=str)
def test_other_statuses_are_not_retried(status: int) -> None:
    """Statuses outside the list, 401 and plain 403 included, are returned."""
    clock, upstream = FakeClock(), Upstream(status)

    response = client(upstream, clock, tk.Retry()).get(URL)

    assert response.status_code == status
    assert upstream.calls == 1


def test_rate_limited_403_is_retried() -> None:
    """A 403 that carries Retry-After is a rate limit, and is retried."""
    clock, upstream = FakeClock(), Upstream((403, {"Retry-After": "2"}), 200)

    response = client(upstream, clock, tk.Retry()).get(URL)

    assert response.status_code == 200
    assert clock.slept == [2.0]


def test_post_is_not_retried_unless_asked() -> None:
    """Non-idempotent methods are sent once unless methods opts them in."""
    clock = FakeClock()
    once = Upstream(503, 200)
    opted = Upstream(503, 200)

    client(once, clock, tk.Retry()).post(URL, content=b"x")
    client(opted, clock, tk.Retry(methods={"post"})).post(URL, content=b"x")

    assert (once.calls, opted.calls) == (1, 2)


def test_streamed_request_body_is_not_retried() -> None:
    """A request whose body came from an iterator is sent once."""
    clock, upstream = FakeClock(), Upstream(503, 200)

    def body() -> Iterator[bytes]:
        yield b"chunk"

    response = client(upstream, clock, tk.Retry()).put(URL, content=body())

    assert response.status_code == 503
    assert upstream.calls == 1


def test_retry_after_beyond_the_bound_raises_rate_limited() -> None:
    """A server wait above max_retry_after fails fast, carrying the delay."""
    clock, upstream = FakeClock(), Upstream((429, {"Retry-After": "600"}))

    with pytest.raises(tk.RateLimited) as info:
        client(upstream, clock, tk.Retry(max_retry_after=60)).get(URL)

    assert info.value.delay == 600.0
    assert clock.slept == []


def test_deadline_stops_a_wait_that_would_overrun_it() -> None:
    """A backoff that would run past the deadline returns the response now."""
    clock, upstream = FakeClock(), Upstream(503, 503, 503, 200)

    response = client(upstream, clock, tk.Retry(backoff=NO_JITTER, deadline=2.5)).get(
        URL
    )

    assert response.status_code == 503
    assert clock.slept == [1.0]


def test_function_exceptions_with_their_own_wait() -> None:
    """Under throttle, chosen exceptions are retried after the wait they carry."""

    class SlowDown(Exception):
        def __init__(self, wait: float) -> None:
            self.wait = wait

    failures = [SlowDown(0.01), SlowDown(0.02)]

    @tk.throttle(
        tk.Retry(
            exceptions=(SlowDown,), retry_after=lambda e: getattr(e, "wait", None)
        ),
        backend=tk.MemoryBackend(),
    )
    def fetch() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    assert fetch() == "done"


def test_async_retry_matches_sync() -> None:
    """The async transport retries with the same waits and closes responses."""
    clock, upstream = FakeClock(), Upstream((429, {"Retry-After": "1"}), 503, 200)
    transport = tk.AsyncThrottledTransport(
        tk.Retry(backoff=NO_JITTER),
        transport=httpx.MockTransport(upstream),
        backend=tk.MemoryBackend(clock=clock.now),
        sleep=clock.asleep,
        clock=clock.now,
    )

    async def main() -> int:
        async with httpx.AsyncClient(transport=transport) as http:
            return (await http.get(URL)).status_code

    assert asyncio.run(main()) == 200
    assert clock.slept == [1.0, 2.0]
    assert upstream.responses[0].stream.closed  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attempts": 0}, "attempts"),
        ({"deadline": -1}, "deadline"),
        ({"methods": "GET"}, "methods"),
        ({"exceptions": ValueError}, "exceptions"),
    ],
    ids=["attempts", "deadline", "methods-string", "exceptions-not-tuple"],
)
def test_bad_settings_fail_fast(kwargs: dict[str, object], message: str) -> None:
    """Invalid Retry settings are refused at construction, by name."""
    with pytest.raises((ValueError, TypeError), match=message):
        tk.Retry(**kwargs)  # type: ignore[arg-type]


@given(
    attempt=st.integers(1, 10_000),
    draw=st.floats(0, 1),
    initial=st.floats(0, 10),
    cap=st.floats(10, 100),
)
def test_every_backoff_delay_stays_within_zero_and_the_cap(
    attempt: int, draw: float, initial: float, cap: float
) -> None:
    """Jittered backoff never goes below zero nor above the cap."""
    backoff = tk.Backoff(initial=initial, cap=cap)

    assert 0.0 <= backoff.delay(attempt, lambda: draw) <= cap


def test_retry_budget_caps_retries_during_an_outage() -> None:
    """With the upstream down, retries stay within the budget's share."""
    clock, upstream = FakeClock(), Upstream(*([503] * 1000))
    retry = tk.Retry(4, backoff=NO_JITTER, budget=tk.RetryBudget(ratio=0.1, cap=5))
    http = client(upstream, clock, retry)

    for _ in range(100):
        assert http.get(URL).status_code == 503

    # The budget starts full (5, so the first call's share is lost to the
    # cap); the 99 calls after it earn 0.1 each: floor(5 + 9.9) retries.
    retries = upstream.calls - 100
    assert retries == 14


def test_retry_budget_refills_once_errors_stop() -> None:
    """First attempts refill a spent budget so retries resume."""
    clock = FakeClock()
    upstream = Upstream(*([503] * 20), *([200] * 30), 503, 200)
    backend = tk.MemoryBackend(clock=clock.now)
    retry = tk.Retry(2, backoff=NO_JITTER, budget=tk.RetryBudget(ratio=0.1, cap=1))
    http = httpx.Client(
        transport=tk.ThrottledTransport(
            retry,
            transport=httpx.MockTransport(upstream),
            backend=backend,
            sleep=clock.sleep,
        )
    )
    for _ in range(19):
        http.get(URL)
    for _ in range(10):
        http.get(URL)

    assert http.get(URL).status_code == 200
