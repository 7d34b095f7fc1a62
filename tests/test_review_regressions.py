"""Regression tests for bugs found in review.

Each test states the behaviour that a reviewer found broken, and pins the
fix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

import throttlekit as tk
from throttlekit.testing import FakeClock

URL = "http://127.0.0.1:1/api/v1/organizations/1/networks"


class TrackedBody(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body that records whether it was closed."""

    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield b"{}"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"{}"

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def test_retry_closes_the_response_it_refuses_to_wait_for() -> None:
    """A 429 whose wait Retry cannot afford is closed before RateLimited is raised."""
    bodies: list[TrackedBody] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        body = TrackedBody()
        bodies.append(body)
        return httpx.Response(429, headers={"Retry-After": "7200"}, stream=body)

    transport = tk.ThrottledTransport(
        tk.Retry(attempts=3),
        transport=httpx.MockTransport(upstream),
        backend=tk.MemoryBackend(),
    )
    with httpx.Client(transport=transport) as client, pytest.raises(tk.RateLimited):
        client.get(URL)
    assert bodies
    assert bodies[0].closed


def test_outer_budget_keeps_the_charge_of_a_sent_attempt() -> None:
    """A budget outside Retry is not refunded once an attempt reached the server."""
    clock = FakeClock(100.0)
    backend = tk.MemoryBackend(clock=clock.now)
    outer = tk.RateLimit("1/minute", burst=1, key="org")
    inner = tk.RateLimit("1/second", burst=1, key="x", name="inner")
    transport = tk.ThrottledTransport(
        outer,
        tk.Retry(attempts=3, backoff=tk.Backoff(initial=0.01, cap=0.01)),
        inner,
        transport=httpx.MockTransport(lambda request: httpx.Response(503)),
        backend=backend,
        sleep=clock.sleep,
        clock=clock.now,
        max_wait=0.5,
    )
    with httpx.Client(transport=transport) as client, pytest.raises(tk.RateLimited):
        client.get(URL)  # attempt 1 is sent; attempt 2 is refused by `inner`

    # The first attempt reached the server, so the 1/minute budget is spent.
    place = backend.reserve("rate:1/60s~1|org", outer.limits, 1, None)
    assert place.wait > 50


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_throttle_refuses_generator_functions(kind: str) -> None:
    """A generator's body runs outside the policies, so throttle refuses it."""
    if kind == "sync":

        def pages(n: int) -> Iterator[int]:
            yield n

    else:

        async def pages(n: int) -> AsyncIterator[int]:  # type: ignore[misc]
            yield n

    with pytest.raises(TypeError, match="generator function"):
        tk.throttle(tk.RateLimit("1/second"))(pages)


def test_same_name_different_limits_still_limit() -> None:
    """Two policies sharing a name but not limits still limit, not reset each other."""
    clock = FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)

    def client(rate: str) -> httpx.Client:
        transport = tk.ThrottledTransport(
            tk.RateLimit(rate, name="meraki", key="org"),
            transport=httpx.MockTransport(lambda request: httpx.Response(200)),
            backend=backend,
            sleep=clock.sleep,
            clock=clock.now,
        )
        return httpx.Client(transport=transport)

    a, b = client("2/second"), client("3/second")
    try:
        for i in range(20):
            (a if i % 2 else b).get(URL)
    except tk.ConfigurationError:
        return  # failing fast on the clash is fine too
    # 20 calls at 2-3 per second cannot all go within a few seconds.
    assert clock.now() >= 5


def test_idle_pacing_gates_are_swept_without_a_rate_limit() -> None:
    """Idle pacing lines are swept even when no RateLimit runs."""
    clock = FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)

    def upstream(request: httpx.Request) -> httpx.Response:
        headers = {"X-RateLimit-Remaining": "50", "X-RateLimit-Reset": "1"}
        return httpx.Response(200, headers=headers)

    transport = tk.ThrottledTransport(
        tk.HeaderPacing(key=tk.keys.path_param("organizations")),
        transport=httpx.MockTransport(upstream),
        backend=backend,
        sleep=clock.sleep,
        clock=clock.now,
    )
    with httpx.Client(transport=transport) as client:
        for round_ in range(3):
            for i in range(1500):
                client.get(f"http://127.0.0.1:1/organizations/{round_}-{i}/x")
            clock.advance(86400)
    assert backend.statistics().gates <= 3000


def test_retry_does_not_retry_an_unsupported_protocol() -> None:
    """An error that cannot succeed on a retry is raised at once."""
    clock = FakeClock()
    calls = 0

    def upstream(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.UnsupportedProtocol("unsupported protocol 'htp://'")

    transport = tk.ThrottledTransport(
        tk.Retry(attempts=6),
        transport=httpx.MockTransport(upstream),
        backend=tk.MemoryBackend(clock=clock.now),
        sleep=clock.sleep,
        clock=clock.now,
    )
    with (
        httpx.Client(transport=transport) as client,
        pytest.raises(httpx.UnsupportedProtocol),
    ):
        client.get(URL)
    assert calls == 1


@pytest.mark.parametrize("value", [b"org", object()], ids=["bytes", "object"])
def test_key_function_returning_a_non_string_fails_fast(value: object) -> None:
    """A key function returning something other than a string raises TypeError."""
    transport = tk.ThrottledTransport(
        tk.RateLimit("10/second", key=lambda request: value),  # type: ignore[arg-type,return-value]
        transport=httpx.MockTransport(lambda request: httpx.Response(200)),
        backend=tk.MemoryBackend(),
    )
    with httpx.Client(transport=transport) as client, pytest.raises(TypeError):
        client.get(URL)


def test_argument_key_with_a_missing_argument_raises_the_calls_error() -> None:
    """A call missing the keyed argument raises the call's own TypeError."""

    @tk.throttle(
        tk.RateLimit("10/second", key=tk.keys.argument("org_id")),
        backend=tk.MemoryBackend(),
    )
    def get(org_id: str) -> str:
        return org_id

    with pytest.raises(TypeError):
        get()  # type: ignore[call-arg]


def test_argument_key_reads_a_value_passed_through_kwargs() -> None:
    """keys.argument finds a value the function takes through **kwargs."""

    @tk.throttle(
        tk.RateLimit("10/second", key=tk.keys.argument("org_id")),
        backend=tk.MemoryBackend(),
    )
    def get(**params: str) -> dict[str, str]:
        return params

    assert get(org_id="1") == {"org_id": "1"}


def test_a_zero_period_is_refused() -> None:
    """A rate with a zero period is refused, not read as per one second."""
    with pytest.raises(ValueError, match="rate"):
        tk.RateLimit("10 per 0 seconds")


@pytest.mark.parametrize(
    "settings",
    [{"backoff": "fast"}, {"retry_after": 5}, {"statuses": ["429"]}],
    ids=["backoff", "retry_after", "statuses"],
)
def test_retry_refuses_settings_of_the_wrong_type(settings: dict[str, object]) -> None:
    """Retry refuses settings of the wrong type at construction."""
    with pytest.raises(TypeError):
        tk.Retry(**settings)  # type: ignore[arg-type]
